//! Reports of a run: the console lines and summary table, `--json` and `--junit`.

use crate::suite::ScenarioResult;
use std::fmt::Write as _;

pub fn console_line(index: usize, total: usize, result: &ScenarioResult) -> String {
    let mark = if result.as_expected() { "ok  " } else { "FAIL" };
    let expected = if result.outcome == result.expected {
        String::new()
    } else {
        format!(" (expected {})", result.expected.as_str())
    };
    format!(
        "[{index:>width$}/{total}] {mark} {:<20} {} {:>6.1} s{expected}",
        result.outcome.as_str(),
        result.scenario,
        result.duration_ms as f64 / 1000.0,
        width = total.to_string().len(),
    )
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

pub fn json(results: &[ScenarioResult], seed: u64) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "seed": seed, "results": results }))
        .expect("results serialize")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| !r.as_expected()).count();
    let total_s: f64 = results.iter().map(|r| r.duration_ms as f64 / 1000.0).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"alumia-harness\" tests=\"{}\" failures=\"{failures}\" time=\"{total_s:.3}\">\n",
        results.len()
    );
    for r in results {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            xml_escape(&r.engine),
            xml_escape(&r.scenario),
            r.duration_ms as f64 / 1000.0
        );
        if !r.as_expected() {
            let details: Vec<String> = r
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.invariant, v.detail))
                .collect();
            let _ = write!(
                out,
                "<failure message=\"{} (expected {})\">{}</failure>",
                r.outcome.as_str(),
                r.expected.as_str(),
                xml_escape(&details.join("\n"))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// What a person needs when a scenario did not go as expected: violations, the seed, and the
/// commands to rerun it and to accept a new snapshot.
pub fn failure_details(result: &ScenarioResult, snapshot_diff: Option<&str>) -> String {
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
    if let Some(diff) = snapshot_diff {
        let _ = writeln!(
            out,
            "  trace differs from its snapshot (- expected, + actual):"
        );
        for line in diff.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "  seed: {}", result.seed);
    let _ = writeln!(
        out,
        "  rerun:  {}",
        crate::suite::rerun_command(&result.scenario, result.seed)
    );
    let _ = writeln!(
        out,
        "  accept: {}",
        crate::suite::accept_command(&result.scenario, result.seed)
    );
    if let Some(dir) = &result.artifacts {
        let _ = writeln!(out, "  artifacts: {}", dir.display());
    }
    out
}
