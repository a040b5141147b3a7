//! `harness soak --runs N`: the suite N times with the same seed, to measure how often a
//! verdict changes between runs of the same code. Per scenario and engine: how many runs were
//! not as expected, and why (the checks that fired, counted).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::run::options::RunOptions;
//! let rows = harness::run::soak::soak(&RunOptions::default(), 10).await?;
//! println!("{}", harness::run::soak::table(&rows));
//! # Ok(()) }
//! ```

use crate::run::options::RunOptions;
use crate::run::suite::{Console, run};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One scenario in one engine over all runs.
#[derive(Debug, Clone, Serialize)]
pub struct SoakRow {
    pub scenario: String,
    pub engine: String,
    pub runs: usize,
    /// Runs whose outcome was not the expected one.
    pub unexpected: usize,
    /// Each outcome seen, with how many runs ended so.
    pub outcomes: BTreeMap<String, usize>,
    /// Why: each check (or step) that fired in those runs, with how many runs it fired in.
    pub reasons: BTreeMap<String, usize>,
}

/// Runs the suite `runs` times with `options` (reports of single runs are not written).
pub async fn soak(options: &RunOptions, runs: usize) -> anyhow::Result<Vec<SoakRow>> {
    let quiet = RunOptions {
        fail_fast: crate::run::options::FailFast::Off,
        ..options.clone()
    };
    let mut rows: BTreeMap<(String, String), SoakRow> = BTreeMap::new();
    for run_number in 1..=runs {
        println!("=== soak run {run_number} of {runs}");
        for result in run(&quiet, &Console).await?.0 {
            let row = rows
                .entry((result.scenario.clone(), result.engine.clone()))
                .or_insert_with(|| SoakRow {
                    scenario: result.scenario.clone(),
                    engine: result.engine.clone(),
                    runs: 0,
                    unexpected: 0,
                    outcomes: BTreeMap::new(),
                    reasons: BTreeMap::new(),
                });
            row.runs += 1;
            *row.outcomes
                .entry(result.outcome.as_str().to_owned())
                .or_default() += 1;
            if !result.as_expected() {
                row.unexpected += 1;
                let mut fired: Vec<&str> = result
                    .violations
                    .iter()
                    .map(|v| v.invariant.as_str())
                    .collect();
                fired.sort();
                fired.dedup();
                for check in fired {
                    *row.reasons.entry(check.to_owned()).or_default() += 1;
                }
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// The rows as a table, the unstable ones first, and a total.
pub fn table(rows: &[SoakRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | engine | runs | not as expected | why (check: runs) |\n|---|---|---|---|---|"
    );
    let mut ordered: Vec<&SoakRow> = rows.iter().collect();
    ordered.sort_by_key(|r| (std::cmp::Reverse(r.unexpected), r.scenario.clone()));
    for row in &ordered {
        let why = row
            .reasons
            .iter()
            .map(|(check, count)| format!("{check}: {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {why} |",
            row.scenario, row.engine, row.runs, row.unexpected
        );
    }
    let runs: usize = rows.iter().map(|r| r.runs).sum();
    let unexpected: usize = rows.iter().map(|r| r.unexpected).sum();
    let unstable = rows.iter().filter(|r| r.unexpected > 0).count();
    let _ = writeln!(
        out,
        "\n{runs} scenario run(s), {unexpected} not as expected, in {unstable} scenario/engine pair(s)"
    );
    out
}
