//! `harness bench`: wall time of the whole suite with a fresh browser session per scenario and
//! with one reused session, and the baseline scenario against its floor: the same navigations
//! driven bare, without the recorder, the checks or the trace.

use crate::browser::webdriver::{DriverProcess, Session};
use crate::deployment::Target;
use crate::run::one_scenario::{Artifacts, run_scenario};
use crate::run::options::RunOptions;
use crate::run::suite::{Console, run};
use crate::scenario::{ScenarioFile, discover};
use anyhow::Context;
use fantoccini::{Client, Locator};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// The baseline's user actions, driven bare: sign in, open the chat, ask, connect, allow, and
/// wait for the answer.
async fn baseline_floor(client: &Client, target: &Target, run: usize) -> anyhow::Result<Duration> {
    let org = format!("floor{run}");
    crate::browser::run::reset_windows(client).await?;
    let started = Instant::now();
    let login = target.login_url("floor", &org, &crate::contract::chat_path(&org, "main"));
    client.goto(login.as_str()).await?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("body[data-ready=true]"))
        .await?;
    let chat = client.window().await?;
    client
        .find(Locator::Css("[data-testid=chat-input]"))
        .await?
        .send_keys("list my files")
        .await?;
    client
        .find(Locator::Css("[data-testid=chat-send]"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-testid=connect-card-button]"))
        .await?
        .click()
        .await?;
    let provider = loop {
        if let Some(tab) = client.windows().await?.into_iter().find(|w| *w != chat) {
            break tab;
        }
        anyhow::ensure!(started.elapsed() < WAIT, "no provider tab");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client.switch_to_window(provider).await?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-testid=consent-allow]"))
        .await?
        .click()
        .await?;
    client.switch_to_window(chat.clone()).await?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-testid=agent-answer]"))
        .await?;
    let elapsed = started.elapsed();
    // Leave one window for the next run.
    for extra in client.windows().await?.into_iter().filter(|w| *w != chat) {
        client.switch_to_window(extra).await?;
        client.close_window().await?;
    }
    client.switch_to_window(chat).await?;
    Ok(elapsed)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the benchmark; returns a Markdown report.
pub async fn bench(base: &RunOptions, runs: usize) -> anyhow::Result<String> {
    let mut report = String::new();
    let _ = writeln!(report, "| measurement | wall time |\n|---|---|");
    let suite = |label: String, options: RunOptions| async move {
        let started = Instant::now();
        let (results, _) = run(&options, &Console).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            results.iter().all(|r| r.as_expected()),
            "{label}: the suite did not go as expected; benchmark figures would mean nothing"
        );
        Ok::<_, anyhow::Error>(format!(
            "| {label} ({} runs) | {:.1} s |\n",
            results.len(),
            elapsed.as_secs_f64()
        ))
    };
    // Local drivers for every row but the Grid's.
    let quiet = RunOptions {
        webdriver: None,
        ..base.clone()
    };
    let first = base.engines[0];
    report.push_str(
        &suite(
            format!(
                "whole suite, {}, -j 1, fresh session per scenario",
                first.name()
            ),
            RunOptions {
                engines: vec![first],
                jobs: 1,
                reuse_session: false,
                ..quiet.clone()
            },
        )
        .await?,
    );
    for engine in &base.engines {
        for jobs in [1, 2] {
            report.push_str(
                &suite(
                    format!("whole suite, {}, -j {jobs}, reused sessions", engine.name()),
                    RunOptions {
                        engines: vec![*engine],
                        jobs,
                        reuse_session: true,
                        ..quiet.clone()
                    },
                )
                .await?,
            );
        }
    }
    if base.engines.len() > 1 {
        report.push_str(
            &suite(
                format!(
                    "whole suite, all of {}, -j 2",
                    base.engines
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
                RunOptions {
                    jobs: 2,
                    reuse_session: true,
                    ..quiet.clone()
                },
            )
            .await?,
        );
    }
    if let Some(grid) = &base.webdriver {
        let grid_engines: Vec<_> = base
            .engines
            .iter()
            .copied()
            .filter(|e| e.has_bidi())
            .collect();
        report.push_str(
            &suite(
                format!("whole suite through the Selenium Grid at {grid}, -j 2"),
                RunOptions {
                    engines: grid_engines,
                    jobs: 2,
                    reuse_session: true,
                    webdriver: Some(grid.clone()),
                    ..quiet.clone()
                },
            )
            .await?,
        );
    }

    let baseline: ScenarioFile = discover(&base.scenarios_root, "channels/baseline")?.remove(0);
    let driver = DriverProcess::spawn(first)?;
    let session = Session::start(first, &driver.url)
        .await
        .context("starting the browser")?;
    let scratch = tempfile::tempdir()?;
    let artifacts = Artifacts {
        root: scratch.path().to_owned(),
        driver_log: None,
    };
    let mut harnessed = Vec::new();
    let mut floor = Vec::new();
    for index in 0..runs {
        let target = Target::embedded(base.seed, None).await?;
        let started = Instant::now();
        let result = run_scenario(
            &baseline,
            &target,
            &session,
            base.engines[0],
            base.seed,
            "",
            &artifacts,
        )
        .await;
        harnessed.push(started.elapsed());
        anyhow::ensure!(
            result.as_expected(),
            "the baseline failed: {:?}",
            result.violations
        );
        let target = Target::embedded(base.seed, None).await?;
        floor.push(baseline_floor(&session.client, &target, index).await?);
    }
    session.close().await?;
    let (harnessed, floor) = (median(harnessed), median(floor));
    let _ = writeln!(
        report,
        "| channels/baseline with the harness (median of {runs}, reused session) | {} |",
        ms(harnessed)
    );
    let _ = writeln!(
        report,
        "| channels/baseline floor: same navigations, bare (median of {runs}) | {} |",
        ms(floor)
    );
    let _ = writeln!(
        report,
        "| ratio harness / floor | {:.2}x |",
        harnessed.as_secs_f64() / floor.as_secs_f64()
    );
    Ok(report)
}
