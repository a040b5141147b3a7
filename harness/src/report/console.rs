//! What the console shows: a line per result, the informative differences, the summary table,
//! and what to do next when a scenario did not go as expected.

use crate::check::verdict::ScenarioResult;
use crate::scenario::Outcome;
use std::fmt::Write as _;

pub fn console_line(index: usize, total: usize, result: &ScenarioResult) -> String {
    let mark = if result.as_expected() { "ok  " } else { "FAIL" };
    let expected = if !result.known_failures.is_empty() && result.as_expected() {
        " (a known failure: --expect)".to_owned()
    } else if result.outcome == Outcome::Skipped {
        format!(" ({})", skip_reasons(result))
    } else if result.outcome == result.expected {
        String::new()
    } else {
        format!(" (expected {})", result.expected.as_str())
    };
    format!(
        "[{index:>width$}/{total}] {mark} {:<20} {:<8} {} {:>6.1} s{expected}",
        result.outcome.as_str(),
        result.engine,
        result.scenario,
        result.duration_ms as f64 / 1000.0,
        width = total.to_string().len(),
    )
}

/// What differs from the reference server's transcript against another target, in what the
/// contract leaves open: shown, never part of the verdict.
pub fn informative(result: &ScenarioResult) -> String {
    const SHOWN: usize = 12;
    let mut out = String::new();
    for note in &result.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if result.informative.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "  informative: the transcript differs from the reference server's in {} line(s) the contract leaves open (not part of the verdict):",
        result.informative.len()
    );
    for line in result.informative.iter().take(SHOWN) {
        let _ = writeln!(out, "    {line}");
    }
    if result.informative.len() > SHOWN {
        let _ = writeln!(out, "    … (all of them in the JSON report)");
    }
    out
}

pub fn summary_table(results: &[ScenarioResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<9} {:<20} {:<20} {:>8}",
        "scenario", "engine", "outcome", "expected", "time"
    );
    for r in results {
        let _ = writeln!(
            out,
            "{:<width$}  {:<9} {:<20} {:<20} {:>6.1} s",
            r.scenario,
            r.engine,
            r.outcome.as_str(),
            r.expected.as_str(),
            r.duration_ms as f64 / 1000.0
        );
    }
    let unexpected = results.iter().filter(|r| !r.as_expected()).count();
    let _ = writeln!(
        out,
        "{} scenario run(s): {} as expected, {} unexpected",
        results.len(),
        results.len() - unexpected,
        unexpected
    );
    out
}

/// Why a result was skipped: the details it carries.
pub(super) fn skip_reasons(result: &ScenarioResult) -> String {
    let reasons: Vec<&str> = result
        .violations
        .iter()
        .map(|v| v.detail.as_str())
        .collect();
    reasons.join("; ")
}

/// What a person needs when a scenario did not go as expected: violations, the seed, and the
/// commands to rerun it and to accept a new snapshot.
pub fn failure_details(result: &ScenarioResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "--- {} [{}]: {} (expected {})",
        result.scenario,
        result.engine,
        result.outcome.as_str(),
        result.expected.as_str()
    );
    for violation in &result.violations {
        let _ = writeln!(
            out,
            "  violation {}: {}",
            violation.invariant, violation.detail
        );
    }
    for known in &result.known_failures {
        let _ = writeln!(out, "  known failure: {known}");
    }
    for (path, diff) in &result.diffs {
        let _ = writeln!(out, "  {path} differs (- expected, + actual):");
        for line in diff.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "  seed: {}", result.seed);
    let _ = writeln!(
        out,
        "  rerun:  {}",
        rerun_command(&result.scenario, result.seed)
    );
    let _ = writeln!(
        out,
        "  accept: {}",
        accept_command(&result.scenario, result.seed)
    );
    if let Some(dir) = &result.artifacts {
        let _ = writeln!(out, "  artifacts: {}", dir.display());
    }
    out
}

/// The command that reruns one scenario.
pub fn rerun_command(scenario: &str, seed: u64) -> String {
    format!("cargo run -p harness -- run --scenario '{scenario}' --seed {seed}")
}

/// The command that accepts a new snapshot for one scenario.
pub fn accept_command(scenario: &str, seed: u64) -> String {
    format!("cargo run -p harness -- run --scenario '{scenario}' --seed {seed} --accept")
}
