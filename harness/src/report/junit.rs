//! The `--junit` report, for CI systems.

use super::console::skip_reasons;
use super::escape;
use crate::check::verdict::ScenarioResult;
use crate::scenario::Outcome;
use std::fmt::Write as _;

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
            escape(&r.engine),
            escape(&r.scenario),
            r.duration_ms as f64 / 1000.0
        );
        if r.outcome == Outcome::Skipped {
            let _ = write!(out, "<skipped message=\"{}\"/>", escape(&skip_reasons(r)));
        } else if r.as_expected() && !r.known_failures.is_empty() {
            let _ = write!(
                out,
                "<skipped message=\"known failure: {}\"/>",
                escape(&r.known_failures.join("; "))
            );
        }
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
                escape(&details.join("\n"))
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}
