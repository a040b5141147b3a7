//! One scenario's verdict in one engine: its outcome beside the expected one, every check's
//! status, the traces and their differences, and what a failure keeps.

use crate::check::invariants::{CheckResult, Violation};
use crate::contract::Engine;
use crate::scenario::{Outcome, ScenarioFile};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One scenario's result in one engine, as the JSON report keeps it (`harness report` renders
/// the other reports from it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub engine: String,
    pub outcome: Outcome,
    pub expected: Outcome,
    pub violations: Vec<Violation>,
    /// Every check's status (pass, fail, not applicable with its reason).
    pub checks: Vec<CheckResult>,
    pub duration_ms: u64,
    /// The MCP conformance suite's scenarios this case checks too (its file's
    /// `mcp_conformance`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_conformance: Vec<String>,
    /// The normative trace (compared with `<id>.snap` on every target).
    #[serde(default)]
    pub trace: String,
    /// The whole transcript (compared with `<id>.reference.snap` on the embedded target).
    #[serde(default)]
    pub transcript: String,
    /// Against another target than the reference server: how its transcript differs from the
    /// reference server's, in what the contract leaves open. Never part of the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub informative: Vec<String>,
    /// The command that runs it again, where it is not `harness run --scenario ID --seed N`
    /// (a run of the defect matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    /// The run in time order, for the report's sequence chart (placeholders, no secret).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<crate::check::timeline::Moment>,
    /// Snapshot differences that fail the run: (snapshot file, diff).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<PathBuf>,
    pub seed: u64,
    #[serde(skip)]
    pub pending: Option<PendingArtifacts>,
    /// Why this run's failures are expected, from the `--expect` baseline (file and line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_failures: Vec<String>,
    /// Earlier attempts (`--retries`): what each ended as.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// A `flaky` outcome counts as expected (`--allow-flaky`).
    #[serde(default)]
    pub allow_flaky: bool,
    /// What the run did otherwise than its file says, not part of the verdict: a pause of the
    /// servers' clocks the target could not take, waited for real.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One earlier attempt of a retried scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub outcome: Outcome,
    pub violations: Vec<Violation>,
}

impl ScenarioResult {
    /// A passing result with nothing observed yet, expecting what the scenario file says for
    /// `engine`.
    pub fn new(file: &ScenarioFile, engine: Engine, seed: u64) -> Self {
        Self {
            scenario: file.id.0.clone(),
            engine: engine.name().to_owned(),
            outcome: Outcome::Pass,
            expected: file.scenario.expect.outcome_for(engine.name()),
            violations: Vec::new(),
            checks: Vec::new(),
            duration_ms: 0,
            mcp_conformance: file.scenario.mcp_conformance.clone(),
            trace: String::new(),
            transcript: String::new(),
            informative: Vec::new(),
            rerun: None,
            timeline: Vec::new(),
            diffs: Vec::new(),
            artifacts: None,
            seed,
            pending: None,
            known_failures: Vec::new(),
            attempts: Vec::new(),
            allow_flaky: false,
            notes: Vec::new(),
        }
    }

    /// The outcome is what the scenario file expects (an unexpected pass is a failure too;
    /// `flaky` is one unless `--allow-flaky`).
    pub fn as_expected(&self) -> bool {
        self.outcome == self.expected || (self.outcome == Outcome::Flaky && self.allow_flaky)
    }

    /// What the run violated (checks, the trace layers, a step), each id once in order; a
    /// flaky run's failed attempts count too.
    pub fn violated(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for violation in self
            .attempts
            .iter()
            .flat_map(|a| &a.violations)
            .chain(&self.violations)
        {
            if !ids.contains(&violation.invariant) {
                ids.push(violation.invariant.clone());
            }
        }
        ids
    }

    /// Of what the run violated, the checks judged after a browser run (no trace layer, no
    /// step): what names a broken rule.
    pub fn checks_that_fired(&self) -> Vec<String> {
        self.violated()
            .into_iter()
            .filter(|id| crate::check::invariants::is_browser_check(id))
            .collect()
    }
}

/// What a failed run keeps, prepared before the final verdict.
#[derive(Debug, Clone, Default)]
pub struct PendingArtifacts {
    pub files: Vec<(String, String)>,
    pub open_tabs: Vec<(String, fantoccini::wd::WindowHandle)>,
}
