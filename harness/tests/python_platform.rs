//! A platform nobody here wrote the harness around: `interop/python-platform`, written in
//! Python's standard library from `docs/target-contract.md` and the spec alone, sharing no code
//! and no page script with the reference server, and choosing otherwise wherever the contract
//! leaves a choice (paths, wording, client authentication, when it refreshes, a test call after
//! the exchange, payloads as JSON text, a callback that closes at once). It runs as a remote
//! target, one process per configuration a case needs, and must pass every scenario in
//! Chromium; and so must it when it declares COOP `same-origin` on every page. Whenever it needs
//! something the contract does not say, the contract is what changes.

mod support;

use harness::check::verdict::ScenarioResult;
use harness::run::options::RunOptions;
use harness::run::pool::SessionPool;
use harness::run::spawned::{ServerFlags, SpawnedPlatform, run_on};
use harness::run::suite::Console;
use harness::scenario::{Outcome, PlatformConfig};
use reference_server::OpenerPolicy;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

fn spawn_python_platform(flags: &ServerFlags<'_>) -> anyhow::Result<Child> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/python-platform/platform.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args(["--bind", "127.0.0.1:0", "--provider-url", flags.provider])
        .arg("--database")
        .arg(flags.data_dir.join("platform.sqlite3"));
    if let Some(policy) = flags.opener_policy {
        command.args(["--opener-policy", policy]);
    }
    if flags.embeddable {
        command.arg("--embeddable");
    }
    Ok(command.stdout(Stdio::piped()).spawn()?)
}

/// Whether `python3` runs here: without it the test skips locally and fails in CI.
fn python_available() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        found || !ci,
        "python3 is missing in CI (.ci/run installs it)"
    );
    if !found {
        eprintln!("skipped: python3 is not installed (hint: apt-get install python3)");
    }
    found
}

/// Every scenario against the Python platform declaring `opener_policy`, in Chromium: each
/// result as expected, and every outcome a pass but those in `not_passing` (nothing skipped,
/// nothing passing vacuously).
fn passes_every_scenario(opener_policy: OpenerPolicy, not_passing: &[(&str, Outcome)]) {
    if !support::chromium_available() || !python_available() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let platform = SpawnedPlatform {
        label: format!("python platform ({})", opener_policy.name()),
        defect: None,
        variants: Vec::new(),
        declared: PlatformConfig {
            opener_policy,
            mcp_connector: true,
            embeddable: false,
        },
        spawn: &spawn_python_platform,
    };
    let options = RunOptions {
        seed: 26,
        artifacts: scratch.path().to_owned(),
        ..RunOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = Arc::new(SessionPool::new(None, true));
    let results: Vec<ScenarioResult> = runtime
        .block_on(run_on(&platform, "*", &options, &pool, &Console))
        .unwrap();
    runtime.block_on(pool.close_all());
    let every = harness::scenario::discover(&harness::scenario::default_root(), "*").unwrap();
    assert_eq!(results.len(), every.len());
    let unexpected: Vec<String> = results
        .iter()
        .filter(|r| !r.as_expected())
        .map(|r| {
            format!(
                "{}: {} ({})",
                r.scenario,
                r.outcome.as_str(),
                r.violations
                    .iter()
                    .map(|v| format!("{}: {}", v.invariant, v.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} fails what a conformant platform must pass (its artifacts: {}):\n{}",
        platform.label,
        scratch.keep().display(),
        unexpected.join("\n")
    );
    let other_than_pass: Vec<(String, Outcome)> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| (r.scenario.clone(), r.outcome))
        .collect();
    let expected: Vec<(String, Outcome)> = not_passing
        .iter()
        .map(|(id, outcome)| ((*id).to_owned(), *outcome))
        .collect();
    assert_eq!(other_than_pass, expected);
}

#[test]
fn the_python_platform_passes_every_scenario_in_chromium() {
    passes_every_scenario(
        OpenerPolicy::Unset,
        &[(SLOW_PLATFORM, Outcome::PreconditionFailed)],
    );
}

/// Chromium cannot hold a request for a while (`webdriver::CHROMIUM_CANNOT_DELAY`).
const SLOW_PLATFORM: &str = "network/slow-platform";

#[test]
fn the_python_platform_with_coop_same_origin_on_every_page_passes_every_scenario() {
    // Under site-wide COOP no page of another origin holds the chat: the forgery from the
    // provider's page has nothing to post to.
    passes_every_scenario(
        OpenerPolicy::SiteWide,
        &[
            (
                "hostile/forged-success-from-another-origin",
                Outcome::PreconditionFailed,
            ),
            (SLOW_PLATFORM, Outcome::PreconditionFailed),
        ],
    );
}
