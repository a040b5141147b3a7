//! The detection matrix: the harness against each known-bad reference server (a separate
//! process started with `--defect NAME`), every scenario in Chromium. A defect that no
//! scenario catches is a missing check.

use crate::command::{RunOptions, run};
use crate::process::KillOnDrop;
use crate::webdriver::Engine;
use fake_provider::{ClientRegistration, FakeProvider};
use reference_server::DEFAULT_CLIENTS;
use std::fmt::Write as _;
use std::process::Child;
use std::time::{Duration, Instant};

/// How one defect fared: the scenarios that caught it, with the invariants that fired.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub defect: String,
    pub caught_by: Vec<(String, Vec<String>)>,
    pub scenarios: usize,
}

/// Starts a defective server: `(defect, bind address, provider URL) -> process`.
pub type Spawn<'a> = &'a dyn Fn(&str, &str, &str) -> anyhow::Result<Child>;

/// Runs every scenario against each defective server.
pub async fn matrix(
    defects: &[String],
    spawn: Spawn<'_>,
    base: &RunOptions,
) -> anyhow::Result<Vec<MatrixRow>> {
    let mut rows = Vec::new();
    for defect in defects {
        let provider = FakeProvider::builder().seed(base.seed).start().await?;
        let port = crate::webdriver::free_port()?;
        let platform = format!("http://127.0.0.1:{port}/");
        for (_, _, id, secret) in DEFAULT_CLIENTS {
            provider.rules().register_client(ClientRegistration::new(
                id,
                secret,
                &format!("{platform}oauth/redirect"),
            ));
        }
        let _server = KillOnDrop(spawn(
            defect,
            &format!("127.0.0.1:{port}"),
            provider.public_url().as_str(),
        )?);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server with defect {defect} did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let options = RunOptions {
            target: Some(platform.parse()?),
            provider: Some(provider.public_url().clone()),
            engines: vec![Engine::Chromium],
            jobs: 1,
            json: None,
            junit: None,
            html: None,
            accept: false,
            run_id: format!("defect-{defect}"),
            ..base.clone()
        };
        println!("--- defect {defect}");
        let results = run(&options).await?;
        let caught_by = results
            .iter()
            .filter(|r| !r.as_expected())
            .map(|r| {
                let mut invariants: Vec<String> =
                    r.violations.iter().map(|v| v.invariant.clone()).collect();
                invariants.dedup();
                (r.scenario.clone(), invariants)
            })
            .collect();
        rows.push(MatrixRow {
            defect: defect.clone(),
            caught_by,
            scenarios: results.len(),
        });
    }
    Ok(rows)
}

/// The matrix as a table: defect by scenario, caught or not, and by what.
pub fn table(rows: &[MatrixRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| defect | caught by (scenario: invariants) |\n|---|---|"
    );
    for row in rows {
        let caught = if row.caught_by.is_empty() {
            format!("**NOT CAUGHT** by any of {} scenarios", row.scenarios)
        } else {
            row.caught_by
                .iter()
                .map(|(scenario, invariants)| format!("{scenario}: {}", invariants.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(out, "| {} | {caught} |", row.defect);
    }
    out
}
