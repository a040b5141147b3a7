//! Every scenario file under `scenarios/` as its own test in each engine, run by the same
//! suite engine as `harness run` (`run::suite`): in real headless Chromium (`scenario_<name>`),
//! Firefox (`scenario_<name>_in_firefox`) and WebKitGTK under Xvfb
//! (`scenario_<name>_in_webkit`) against the embedded reference server. Its outcome must be
//! the one the file expects, its normative trace must equal `snapshots/<id>.snap` and its
//! reference transcript `snapshots/<id>.reference.snap` (or the engine's own snapshot where
//! the file says the engine legitimately differs).
//!
//! `cargo test -p harness --test scenarios baseline` runs one. An engine whose driver is
//! missing has its tests ignored, with the reason printed first; in CI (`CI` set) they fail.
//! A new scenario file needs no Rust: the tests are listed from the files when the binary
//! starts.

use harness::contract::Engine;
use harness::report::failure_details;
use harness::run::options::RunOptions;
use harness::run::suite::{Job, Quiet, Suite};
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Arc;

/// The test's name: Chromium under the plain name (`cargo test <name>`), then every other
/// engine with its name after `_in_`.
fn test_name(job: &Job) -> String {
    let name: String = job
        .file
        .id
        .0
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    match job.engine {
        Engine::Chromium => format!("scenario_{name}"),
        other => format!("scenario_{name}_in_{}", other.name()),
    }
}

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let seed: u64 = std::env::var("HARNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let options = RunOptions {
        engines: vec![Engine::Chromium, Engine::Firefox, Engine::Webkit],
        seed,
        ..RunOptions::default()
    };
    // One runtime for every test of this binary: the pooled browser sessions live on it.
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    );
    let suite = Arc::new(
        runtime
            .block_on(Suite::prepare(options))
            .expect("the suite's options are valid"),
    );
    let mut jobs = suite.plan().unwrap_or_else(|e| panic!("{e:#}"));
    // Scenario by scenario, each in every engine: WebKit's, which run one at a time, are
    // spread among the others, so a second test thread always has something to run.
    jobs.sort_by(|a, b| (&a.file.id.0, a.index).cmp(&(&b.file.id.0, b.index)));
    let available: Vec<(Engine, bool)> = [Engine::Chromium, Engine::Firefox, Engine::Webkit]
        .into_iter()
        .map(|engine| {
            (
                engine,
                harness::browser::webdriver::driver_available_for_tests(engine),
            )
        })
        .collect();
    let mut trials = Vec::new();
    for job in jobs {
        let engine = job.engine;
        let available = available.iter().any(|(e, yes)| *e == engine && *yes);
        let (suite, runtime) = (suite.clone(), runtime.clone());
        let trial = Trial::test(test_name(&job), move || {
            let result = runtime
                .block_on(suite.run_job(&job, &Quiet))
                .map_err(|e| Failed::from(format!("{e:#}")))?;
            if result.as_expected() {
                return Ok(());
            }
            Err(format!(
                "{}{} in {}: {} but the scenario expects {}",
                failure_details(&result),
                job.file.id,
                engine.name(),
                result.outcome.as_str(),
                result.expected.as_str(),
            )
            .into())
        });
        trials.push(trial.with_ignored_flag(!available));
    }
    let conclusion = libtest_mimic::run(&arguments, trials);
    // Every pooled session is closed (its browser quits) and its driver ended.
    runtime.block_on(suite.pool.close_all());
    conclusion.exit_code()
}
