//! Judging one attempt: a run that could not happen (a timeout, a configuration the engine
//! or the target cannot make) as a result with its reason, and the comparison of a run's two
//! layers with their snapshots (`docs/verdicts.md`).

use crate::check::invariants::{
    CheckResult, CheckStatus, NORMATIVE_TRACE, REFERENCE_TRANSCRIPT, STEP, Violation,
};
use crate::check::snapshot;
use crate::check::trace::{Layer, without_the_provider};
use crate::check::verdict::ScenarioResult;
use crate::contract::Engine;
use crate::scenario::{Outcome, ScenarioFile};
use std::path::Path;

/// How long one scenario may take in all before it is a `timeout` (a WebDriver command that
/// never answers): every step has its own budget too.
pub const SCENARIO_BUDGET: std::time::Duration = std::time::Duration::from_secs(150);

/// A scenario whose run did not finish within [`SCENARIO_BUDGET`].
pub fn hung(file: &ScenarioFile, engine: Engine, seed: u64) -> ScenarioResult {
    not_run(
        file,
        engine,
        seed,
        Outcome::Timeout,
        format!(
            "the run did not finish within {SCENARIO_BUDGET:?}: a WebDriver command never answered (the driver is replaced for the next scenario)"
        ),
    )
}

/// A result that ends before any check: its outcome and why.
fn not_run(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    outcome: Outcome,
    reason: String,
) -> ScenarioResult {
    let mut result = ScenarioResult::new(file, engine, seed);
    result.outcome = outcome;
    result.violations.push(Violation {
        invariant: STEP.into(),
        detail: reason,
        mark: None,
    });
    result
}

/// A case that needs the platform configured in a way the harness cannot configure a remote
/// target: skipped, and says why (never a pass).
pub fn not_for_remote(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    reason: String,
) -> ScenarioResult {
    let mut result = not_run(file, engine, seed, Outcome::Skipped, reason);
    result.expected = Outcome::Skipped;
    result
}

/// The engine cannot produce the scenario's browser configuration with its own means.
pub fn precondition_failed(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    reason: String,
) -> ScenarioResult {
    not_run(file, engine, seed, Outcome::PreconditionFailed, reason)
}

/// What the run's traces are compared as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// The embedded reference server and fake provider: both layers are the verdict's.
    Embedded,
    /// Another platform against the fake provider: the normative layer only.
    Remote,
    /// Another platform against a real provider: the normative layer without the provider's
    /// pages and log, which are the fake provider's in the snapshots.
    RealProvider,
}

/// Compares the run's two layers with their snapshots (`docs/verdicts.md`). The normative
/// trace is part of the verdict on every target (against a real provider, without the
/// provider's pages and requests); the reference transcript fails a run on the embedded
/// target only (a regression guard of the reference server), and against another target its
/// difference is kept as informative. `--accept` writes missing or changed snapshots instead
/// (embedded target only).
pub fn compare_snapshots(
    snapshots_root: &Path,
    accept: bool,
    file: &ScenarioFile,
    engine: Engine,
    result: &mut ScenarioResult,
    compared: Compared,
) {
    if result.trace.is_empty() {
        return;
    }
    let embedded = compared == Compared::Embedded;
    let real_provider = compared == Compared::RealProvider;
    for layer in [Layer::Normative, Layer::Transcript] {
        let actual = match layer {
            Layer::Normative if real_provider => without_the_provider(&result.trace),
            Layer::Normative => result.trace.clone(),
            Layer::Transcript => result.transcript.clone(),
        };
        let name = snapshot::name_in(file, engine.name(), layer);
        let path = snapshot::path_for(snapshots_root, &name);
        let existing = match layer {
            Layer::Normative if real_provider => {
                snapshot::read(&path).map(|body| without_the_provider(&body))
            }
            _ => snapshot::read(&path),
        };
        let check = snapshot_check(layer);
        let status = |status, reason: Option<&str>| CheckResult {
            id: check.to_owned(),
            status,
            reason: reason.map(str::to_owned),
        };
        if layer == Layer::Transcript && !embedded {
            result.checks.push(status(
                CheckStatus::NotApplicable,
                Some("the target is not the reference server: its transcript is informative"),
            ));
        }
        if existing
            .as_deref()
            .is_some_and(|body| snapshot::matches(body, &actual))
        {
            if layer == Layer::Normative && real_provider {
                result.checks.push(status(
                    CheckStatus::Pass,
                    Some("compared without the provider's pages and requests, which are the fake provider's in the snapshot"),
                ));
            } else if layer == Layer::Normative || embedded {
                result.checks.push(status(CheckStatus::Pass, None));
            }
            continue;
        }
        if accept && embedded && result.outcome == result.expected {
            if let Err(error) =
                snapshot::write(&path, &file.id.0, &file.scenario.description, &actual)
            {
                eprintln!("cannot write {}: {error}", path.display());
            }
            result
                .checks
                .push(status(CheckStatus::Pass, Some("accepted")));
            continue;
        }
        if accept && embedded {
            eprintln!(
                "{} [{}]: not accepted, the run is {} where {} is expected; its {} is among the artifacts",
                file.id,
                engine.name(),
                result.outcome.as_str(),
                result.expected.as_str(),
                match layer {
                    Layer::Normative => "trace",
                    Layer::Transcript => "transcript",
                }
            );
        }
        let Some(body) = existing else {
            if layer == Layer::Transcript && !embedded {
                continue;
            }
            result.violations.push(Violation {
                invariant: check.into(),
                detail: format!(
                    "no snapshot at {} (a missing snapshot is a failure)",
                    snapshot::shown(&path)
                ),
                mark: None,
            });
            result.checks.push(status(CheckStatus::Fail, None));
            continue;
        };
        let diff = snapshot::diff(&body, &actual);
        if layer == Layer::Transcript && !embedded {
            result.informative.extend(diff.lines().map(str::to_owned));
            continue;
        }
        result.checks.push(status(CheckStatus::Fail, None));
        result.violations.push(Violation {
            invariant: check.into(),
            detail: format!(
                "the {} {} differs from {}",
                engine.name(),
                match layer {
                    Layer::Normative => "normative trace",
                    Layer::Transcript => "reference transcript",
                },
                snapshot::shown(&path)
            ),
            mark: None,
        });
        result.diffs.push((snapshot::shown(&path), diff));
    }
    // A snapshot difference fails a run that passed its checks, but never makes one that was
    // to fail them "fail as expected": that stays an unexpected pass.
    if result.outcome == Outcome::Pass
        && !result.violations.is_empty()
        && result.expected == Outcome::Pass
    {
        result.outcome = Outcome::Fail;
    }
}

/// The check a snapshot comparison reports as.
fn snapshot_check(layer: Layer) -> &'static str {
    match layer {
        Layer::Normative => NORMATIVE_TRACE,
        Layer::Transcript => REFERENCE_TRANSCRIPT,
    }
}
