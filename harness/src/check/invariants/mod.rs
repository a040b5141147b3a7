//! The checks of a verdict (`docs/verdicts.md`): each has a stable id, a one-line summary and
//! the sentence of the spec (`../shared/spec/oauth-flow.md`), of `docs/target-contract.md` or
//! of an RFC that it enforces, as the MCP and OpenID conformance suites give theirs. After
//! every scenario each browser check passes, fails with violations naming it, or is reported
//! not applicable with the reason (never a silent pass). Each has a test where a
//! deliberately broken platform makes it fire (`harness/tests/invariants_catch_broken_platforms.rs`,
//! the defect matrix in `harness/tests/defects.rs`).
//!
//! A check is a value: a [`Check`] (its [`Rule`], when it applies, its judgement of one
//! [`Run`]) in a file of its family, named once in [`catalogue`]; every list of checks is
//! derived from there. Adding one is one new file (or a check in a family's file) and one
//! catalogue line.

mod authorization_request;
pub mod catalogue;
mod chat;
mod disconnect;
mod isolation;
mod layers;
mod payload;
mod provider_log;
mod secrets;
mod simulator;
mod tabs;

pub use catalogue::{
    CATALOGUE, browser_check_ids, is_browser_check, is_check, rule, simulator_check_ids,
};
pub use chat::{CHAT_RESUMED, RESEND_ONLY_WHEN_CONNECTED, REVOCATION};
pub use disconnect::{REVOKED_AT_PROVIDER, UNUSED_AFTER_DISCONNECT};
pub use isolation::{
    HOSTILE_RECEIVES_NOTHING, ORG_ISOLATION, PROVIDER_NEVER_GETS_PLATFORM_AUTH,
    REDIRECT_BOUND_TO_SESSION,
};
pub use layers::{NORMATIVE_TRACE, PROVIDER_CONTRACT, REFERENCE_TRANSCRIPT, STEP};
pub use payload::{
    CHANNELS_COMPLETE, MESSAGE_AS_TEXT, PAYLOAD_SHAPE, payload_object, payload_problem,
};
pub use provider_log::{
    BOUNDED_RETRIES, REFRESH_SINGLE_FLIGHT, REGISTRATION_REUSED, RESOURCE_CONSISTENT,
    SINGLE_EXCHANGE, registrations_beyond_one, resource_inconsistencies, retries_beyond_bound,
};
pub use secrets::NO_SECRET_VISIBLE;
pub use simulator::{FOREIGN_ORIGIN_IGNORED, NO_DUPLICATE_CONNECTION, RESEND_AT_MOST_ONCE};
pub use tabs::{CALLBACK_CLOSED, OPENED_AS_TAB, OPENED_IN_GESTURE};

use crate::check::observation::Observation;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// After every scenario in a real browser.
    Browser,
    /// In the deterministic simulator (`harness sim`).
    Simulator,
    /// Both.
    Both,
}

/// What a check asks and the text it enforces: what a team reads before a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub summary: &'static str,
    /// The sentence it enforces, with where it stands.
    pub enforces: &'static str,
    pub tier: Tier,
}

/// The facts one browser run gives its checks.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub scenario: &'a Scenario,
    pub observation: &'a Observation,
    /// The platform's origin (`http://127.0.0.1:PORT`), as the browser names it.
    pub platform_origin: &'a str,
}

/// A check of a browser run: its rule, when it can be exercised, and its judgement.
pub trait Check: Sync {
    /// The check's rule (a check of the catalogue is a static, so its rule is too).
    fn rule(&self) -> &Rule;

    /// It reads the fake provider's request log, which a real provider does not give: against
    /// one it is not applicable.
    fn reads_provider_log(&self) -> bool {
        false
    }

    /// Why the scenario itself leaves it nothing to look at, whatever the platform does (no
    /// step or setting of the file can make it happen), if so: `harness explain` says it
    /// before any run, and a run reports the check not applicable for the same reason.
    fn out_of_scope(&self, _scenario: &Scenario) -> Option<String> {
        None
    }

    /// Why it cannot be exercised in this run (nothing it looks at happened), if it cannot.
    fn not_applicable(&self, _run: &Run) -> Option<String> {
        None
    }

    /// Every way this run broke the rule, one sentence each; none is a pass.
    fn judge(&self, run: &Run) -> Vec<String>;

    /// As [`Check::judge`], each with where it shows in the run when the check can say.
    fn findings(&self, run: &Run) -> Vec<Finding> {
        self.judge(run).into_iter().map(Finding::from).collect()
    }

    /// What a passing judgement could not look at, if anything.
    fn partly_seen(&self, _run: &Run) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
    /// Where in the run it shows, when the check can say: for the report's sequence chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
}

/// Where a violation shows in the run: a delivery from one tab to another that should have
/// happened and did not (`to` set), or something in one tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// What is missing or wrong there, in a few words (`no storage write`).
    pub what: String,
}

/// One way a run broke a check's rule: the sentence, and where it shows if the check knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detail: String,
    pub mark: Option<Mark>,
}

impl From<String> for Finding {
    fn from(detail: String) -> Self {
        Self { detail, mark: None }
    }
}

pub fn violation(invariant: &str, detail: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.to_owned(),
        detail: detail.into(),
        mark: None,
    }
}

/// What became of one check in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Pass,
    Fail,
    NotApplicable,
}

/// One check's result: its id, status, and why it did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The invariants' verdict on one run: every violation, and every check's status.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub checks: Vec<CheckResult>,
}

/// Every browser check of the catalogue, in order, then the provider's contract.
pub fn check(scenario: &Scenario, observation: &Observation, platform_origin: &str) -> Verdict {
    let run = Run {
        scenario,
        observation,
        platform_origin,
    };
    let mut verdict = Verdict::default();
    for check in catalogue::browser_checks() {
        let id = check.rule().id;
        let found: Vec<Violation> = check
            .findings(&run)
            .into_iter()
            .map(|finding| Violation {
                mark: finding.mark,
                ..violation(id, finding.detail)
            })
            .collect();
        let not_applicable = match &observation.real_provider {
            Some(profile) if check.reads_provider_log() => Some(format!(
                "reads the fake provider's request log; a real provider (profile {profile}) keeps its own"
            )),
            _ => check
                .out_of_scope(scenario)
                .or_else(|| check.not_applicable(&run)),
        };
        let (status, reason) = match (found.is_empty(), not_applicable) {
            (false, _) => (CheckStatus::Fail, None),
            (true, Some(reason)) => (CheckStatus::NotApplicable, Some(reason)),
            (true, None) => (CheckStatus::Pass, check.partly_seen(&run)),
        };
        verdict.checks.push(CheckResult {
            id: id.to_owned(),
            status,
            reason,
        });
        verdict.violations.extend(found);
    }
    for stray in &observation.provider_violations {
        verdict.violations.push(violation(
            PROVIDER_CONTRACT,
            format!("{} {}: {}", stray.method, stray.path, stray.detail),
        ));
    }
    verdict
}

/// Why a check is out of scope unless the scenario has a step named `name` (as its file
/// spells it): "the scenario has no {name} step".
fn unless_a_step(scenario: &Scenario, name: &str) -> Option<String> {
    (!scenario.steps.iter().any(|step| step.name() == name))
        .then(|| format!("the scenario has no {name} step"))
}

/// Why a check of an MCP server's authorization is out of scope in a scenario without one.
fn unless_an_mcp_connector(scenario: &Scenario) -> Option<String> {
    (!scenario.platform.mcp_connector)
        .then(|| "the scenario has no MCP connector ([platform] mcp_connector)".into())
}

/// The usual reason a check does not apply: "no {what} in this run".
fn none_in_this_run(what: &str) -> Option<String> {
    Some(format!("no {what} in this run"))
}

/// Applies `unless` what it looks at did not happen: then "no {what} in this run".
fn unless(happened: bool, what: &str) -> Option<String> {
    if happened {
        None
    } else {
        none_in_this_run(what)
    }
}
