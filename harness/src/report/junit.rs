//! The `--junit` report, for CI systems, written with `quick-junit` (the data model and writer
//! cargo-nextest uses): a test suite per engine; a test case per scenario, with each check's
//! status as a property; a `flaky` run as a pass with its failed attempts; a skip with its
//! reason; what the console printed about a failure as its `system-out`. Text a browser left
//! with control characters XML forbids is filtered.

use super::console::{failure_details, rerun_command, skip_reasons};
use crate::check::invariants::CheckStatus;
use crate::check::verdict::ScenarioResult;
use crate::scenario::Outcome;
use quick_junit::{
    FlakyOrRerun, NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};
use std::time::Duration;

/// The report as JUnit XML.
pub fn junit(results: &[ScenarioResult]) -> String {
    let mut report = Report::new("alumia-harness");
    let engines: std::collections::BTreeSet<&str> =
        results.iter().map(|r| r.engine.as_str()).collect();
    for engine in engines {
        let runs: Vec<&ScenarioResult> = results.iter().filter(|r| r.engine == engine).collect();
        let mut suite = TestSuite::new(engine);
        suite.add_test_cases(runs.iter().map(|r| test_case(r)));
        suite.set_time(Duration::from_millis(
            runs.iter().map(|r| r.duration_ms).sum(),
        ));
        report.add_test_suite(suite);
    }
    report.to_string().expect("a JUnit report serializes")
}

fn test_case(result: &ScenarioResult) -> TestCase {
    let mut case = TestCase::new(result.scenario.as_str(), status(result));
    case.set_classname(format!("{}.{}", result.engine, group_of(&result.scenario)));
    case.set_time(Duration::from_millis(result.duration_ms));
    case.add_property(Property::new("seed", result.seed.to_string()));
    case.add_property(Property::new("expected", result.expected.as_str()));
    for check in &result.checks {
        let status = match check.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::NotApplicable => "not-applicable",
        };
        let value = match &check.reason {
            Some(reason) => format!("{status}: {reason}"),
            None => status.to_owned(),
        };
        case.add_property(Property::new(format!("check:{}", check.id), value));
    }
    if !result.as_expected() {
        case.set_system_out(failure_details(result));
    } else if !result.informative.is_empty() {
        case.set_system_out(result.informative.join("\n"));
    }
    case
}

/// The scenario's group (`channels` of `channels/baseline`), for CI systems that group by
/// class.
fn group_of(scenario: &str) -> &str {
    scenario
        .split_once('/')
        .map_or(scenario, |(group, _)| group)
}

/// Each violation as `check: sentence`, one a line.
fn sentences(violations: &[crate::check::invariants::Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.invariant, v.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn status(result: &ScenarioResult) -> TestCaseStatus {
    let attempts = || {
        result.attempts.iter().map(|attempt| {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_message(attempt.outcome.as_str());
            rerun.set_description(sentences(&attempt.violations));
            rerun
        })
    };
    if result.outcome == Outcome::Skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(skip_reasons(result));
        return status;
    }
    if result.as_expected() && !result.known_failures.is_empty() {
        let mut status = TestCaseStatus::skipped();
        status.set_message(format!(
            "known failure: {}",
            result.known_failures.join("; ")
        ));
        return status;
    }
    if result.as_expected() {
        let mut status = TestCaseStatus::success();
        status.add_reruns(attempts());
        return status;
    }
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_message(format!(
            "{} (expected {}); rerun: {}",
            result.outcome.as_str(),
            result.expected.as_str(),
            rerun_command(&result.scenario, result.seed)
        ))
        .set_type(result.outcome.as_str())
        .set_description(sentences(&result.violations));
    status.add_reruns(attempts());
    if result.outcome == Outcome::Flaky {
        status.set_rerun_kind(FlakyOrRerun::Flaky);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(json: serde_json::Value) -> ScenarioResult {
        serde_json::from_value(json).expect("a result as the JSON report keeps it")
    }

    #[test]
    fn a_flaky_run_is_a_pass_with_its_failed_attempts_and_text_is_safe_for_xml() {
        let flaky = result(serde_json::json!({
            "scenario": "channels/baseline", "engine": "chromium", "outcome": "flaky",
            "expected": "pass", "violations": [], "checks": [], "duration_ms": 1200, "seed": 7,
            "allow_flaky": true,
            "attempts": [{"outcome": "fail", "violations": [
                {"invariant": "channels-complete", "detail": "a browser said \u{1b}[31mno\u{7} here"}
            ]}]
        }));
        let skipped = result(serde_json::json!({
            "scenario": "embedded/chat-in-another-sites-frame", "engine": "webkit",
            "outcome": "skipped", "expected": "skipped", "duration_ms": 0, "seed": 7,
            "violations": [{"invariant": "step", "detail": "the target keeps no session in a frame"}],
            "checks": []
        }));
        let xml = junit(&[flaky, skipped]);
        assert!(!xml.contains('\u{7}') && !xml.contains('\u{1b}'), "{xml}");
        let report = quick_junit::Report::deserialize_from_str(&xml).expect("it reads back");
        let suites: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites, ["chromium", "webkit"]);
        match &report.test_suites[0].test_cases[0].status {
            TestCaseStatus::Success { flaky_runs } => {
                assert_eq!(flaky_runs.len(), 1);
                let said = flaky_runs[0].description.as_ref().unwrap().as_str();
                assert!(
                    said.contains("channels-complete: a browser said no here"),
                    "{said}"
                );
            }
            other => panic!("a flaky pass is a success with its flaky runs: {other:?}"),
        }
        match &report.test_suites[1].test_cases[0].status {
            TestCaseStatus::Skipped { message, .. } => assert!(
                message
                    .as_ref()
                    .is_some_and(|m| m.as_str().contains("no session in a frame")),
                "{message:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
