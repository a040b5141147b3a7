//! `harness run`: discovers scenarios, prepares the target and the browser, runs each scenario,
//! compares traces with snapshots, prints progress and a summary, and writes reports.

use crate::invariants::{SNAPSHOT, Violation};
use crate::report;
use crate::scenario::{Outcome, ScenarioFile, discover};
use crate::snapshot;
use crate::suite::{Artifacts, ScenarioResult, run_scenario};
use crate::target::Target;
use crate::webdriver::{DriverProcess, Engine, Session};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Instant;
use url::Url;

/// Everything `harness run` takes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenarios_root: PathBuf,
    pub snapshots_root: PathBuf,
    pub pattern: String,
    pub engine: Engine,
    pub seed: u64,
    /// A deployment elsewhere; `None` runs the embedded reference server.
    pub target: Option<Url>,
    /// The fake provider the deployment is configured against (with `target`).
    pub provider: Option<Url>,
    /// A running WebDriver endpoint instead of a spawned driver.
    pub webdriver: Option<String>,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub artifacts: PathBuf,
    /// Write snapshots for new or changed traces (embedded target only).
    pub accept: bool,
    /// Keeps identities apart between runs against a long-lived deployment.
    pub run_id: String,
    /// One browser session for every scenario (faster), instead of a fresh one each.
    pub reuse_session: bool,
}

/// Runs the selected scenarios; returns their results (the caller decides the exit status).
pub async fn run(options: &RunOptions) -> anyhow::Result<Vec<ScenarioResult>> {
    let files = discover(&options.scenarios_root, &options.pattern)?;
    if options.accept && options.target.is_some() {
        anyhow::bail!(
            "--accept writes snapshots from the embedded reference server only; drop --target to accept"
        );
    }
    let remote = match (&options.target, &options.provider) {
        (Some(target), Some(provider)) => {
            Some(Target::remote(target.clone(), provider.clone()).await?)
        }
        (Some(_), None) => anyhow::bail!(
            "--target needs --provider URL: the fake provider the deployment's connectors point at (see docs/target-contract.md)"
        ),
        (None, Some(_)) => anyhow::bail!(
            "--provider is for --target runs; the embedded target starts its own provider"
        ),
        (None, None) => None,
    };
    let driver = match &options.webdriver {
        Some(_) => None,
        None => Some(DriverProcess::spawn(options.engine)?),
    };
    let webdriver_url = options
        .webdriver
        .clone()
        .or_else(|| driver.as_ref().map(|d| d.url.clone()))
        .expect("a spawned or given WebDriver");
    let artifacts = Artifacts {
        root: options.artifacts.clone(),
        driver_log: driver.as_ref().map(|d| d.log_path.clone()),
    };
    println!(
        "harness: {} scenario(s), engine {}, seed {}, target {}",
        files.len(),
        options.engine.name(),
        options.seed,
        options
            .target
            .as_ref()
            .map(Url::to_string)
            .unwrap_or_else(|| "embedded reference server".into())
    );
    let started = Instant::now();
    let mut results = Vec::new();
    let mut shared_session: Option<Session> = None;
    for (index, file) in files.iter().enumerate() {
        eprint!(
            "[{:>w$}/{}] running {} ...\r",
            index + 1,
            files.len(),
            file.id,
            w = files.len().to_string().len()
        );
        let embedded;
        let target = match &remote {
            Some(target) => target,
            None => {
                embedded = Target::embedded(options.seed, None).await?;
                &embedded
            }
        };
        let session = match shared_session.take() {
            Some(session) => session,
            None => Session::start(options.engine, &webdriver_url)
                .await
                .with_context(|| format!("starting {} for {}", options.engine.name(), file.id))?,
        };
        let mut result = run_scenario(
            file,
            target,
            &session,
            options.engine,
            options.seed,
            &options.run_id,
            &artifacts,
        )
        .await;
        if options.reuse_session {
            shared_session = Some(session);
        } else {
            let _ = session.close().await;
        }
        let diff = compare_snapshot(options, file, &mut result, remote.is_none());
        if !result.as_expected() && result.artifacts.is_none() {
            // A snapshot-only failure: keep the actual trace and the diff.
            let dir = options.artifacts.join(&file.id.0);
            if std::fs::create_dir_all(&dir).is_ok()
                && std::fs::write(dir.join("trace.txt"), &result.trace).is_ok()
            {
                let _ = std::fs::write(dir.join("snapshot.diff"), diff.as_deref().unwrap_or(""));
                result.artifacts = Some(dir);
            }
        }
        println!("{}", report::console_line(index + 1, files.len(), &result));
        if !result.as_expected() {
            print!("{}", report::failure_details(&result, diff.as_deref()));
        }
        results.push(result);
    }
    if let Some(session) = shared_session {
        let _ = session.close().await;
    }
    println!();
    print!("{}", report::summary_table(&results));
    println!(
        "total {:.1} s, seed {}",
        started.elapsed().as_secs_f64(),
        options.seed
    );
    if let Some(path) = &options.json {
        std::fs::write(path, report::json(&results, options.seed))
            .with_context(|| format!("cannot write the JSON report {}", path.display()))?;
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report::junit(&results))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    Ok(results)
}

/// Compares the trace with its snapshot; a missing or different snapshot fails the scenario,
/// unless `--accept` writes it. Returns the diff when they differ.
fn compare_snapshot(
    options: &RunOptions,
    file: &ScenarioFile,
    result: &mut ScenarioResult,
    embedded: bool,
) -> Option<String> {
    if result.trace.is_empty() {
        return None;
    }
    let path = snapshot::path_for(&options.snapshots_root, &file.id.0);
    let existing = snapshot::read(&path);
    if existing
        .as_deref()
        .is_some_and(|body| snapshot::matches(body, &result.trace))
    {
        return None;
    }
    if options.accept && embedded {
        if let Err(error) =
            snapshot::write(&path, &file.id.0, &file.scenario.description, &result.trace)
        {
            eprintln!("cannot write {}: {error}", path.display());
        }
        return None;
    }
    let (detail, diff) = match &existing {
        None => (
            format!(
                "no snapshot at {} (a missing snapshot is a failure)",
                path.display()
            ),
            None,
        ),
        Some(body) => (
            format!("the trace differs from {}", path.display()),
            Some(snapshot::diff(body, &result.trace)),
        ),
    };
    result.violations.push(Violation {
        invariant: SNAPSHOT.into(),
        detail,
    });
    if result.outcome == Outcome::Pass {
        result.outcome = Outcome::Fail;
    }
    diff
}
