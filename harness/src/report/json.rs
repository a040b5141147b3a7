//! The `--json` report.

use crate::check::verdict::ScenarioResult;

/// The JSON report: the seed, how each browser was set up (engine, version, the flags and
/// preferences the harness changed), the catalogue of checks (id, summary, the text each
/// enforces) and every result with its checks' statuses.
pub fn json(
    results: &[ScenarioResult],
    seed: u64,
    browsers: &[crate::browser::webdriver::BrowserSetup],
) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "seed": seed,
        "browsers": browsers,
        "checks": crate::check::invariants::catalogue::rules().collect::<Vec<_>>(),
        "results": results,
    }))
    .expect("results serialize")
}
