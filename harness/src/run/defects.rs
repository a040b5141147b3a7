//! The two-sided matrix. Sensitivity: the harness against each known-bad reference server (a
//! separate process started with `--defect NAME`) must fail a scenario naming a check.
//! Specificity: against each conformant variant (`--variant NAME`, differing from the
//! reference only where the target contract leaves it open) every scenario must pass. Each
//! server runs as its own process on port 0 and says where it listens and which redirect URI
//! to register; the harness drives it through `--target`, as a team drives its deployment.

use crate::contract::Engine;
pub use crate::run::defect_catalogue::{
    CAUGHT_ONLY_IN, DEFECT_CATCHES, VARIANT_SCENARIOS, catalogue_text, catching_engine,
};
use crate::run::options::{FailFast, RunOptions};
use crate::run::pool::SessionPool;
use crate::run::spawned::{Spawn, SpawnedPlatform, run_on};
use crate::run::suite::Quiet;
use crate::scenario::PlatformConfig;
use futures_util::StreamExt;
use std::fmt::Write as _;
use std::sync::Arc;

/// Which side of the matrix a platform is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Breaks one promise: some scenario must fail, naming a check.
    Defect,
    /// Conformant, differing from the reference: every scenario must pass.
    Variant,
}

/// One platform of the matrix and the scenarios it runs.
#[derive(Debug, Clone)]
pub struct Subject {
    pub side: Side,
    /// What the server is started with: one defect, or one or more variants at once.
    pub names: Vec<String>,
    /// The scenarios (`--scenario` globs, comma-separated).
    pub scenarios: String,
    /// Only shard `k` of `n` of them (`--shard k/n`), so one subject's many scenarios can run
    /// as `n` rows at once, each against servers of its own.
    pub shard: Option<(usize, usize)>,
    /// The engine its scenarios run in: Chromium, unless the defect is caught only where
    /// Chromium cannot run the case ([`CAUGHT_ONLY_IN`]).
    pub engine: Engine,
}

impl Subject {
    pub fn defect(name: &str, scenarios: &str) -> Self {
        Self {
            side: Side::Defect,
            names: vec![name.to_owned()],
            scenarios: scenarios.to_owned(),
            shard: None,
            engine: catching_engine(name),
        }
    }

    pub fn variants(names: &[&str], scenarios: &str) -> Self {
        Self {
            side: Side::Variant,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            scenarios: scenarios.to_owned(),
            shard: None,
            engine: Engine::Chromium,
        }
    }

    /// This subject as `n` rows, each with a shard of its scenarios (rows of the matrix run
    /// at once; one subject's scenarios against one server run one at a time).
    pub fn in_shards(self, n: usize) -> Vec<Subject> {
        if n <= 1 {
            return vec![self];
        }
        (1..=n)
            .map(|k| Subject {
                shard: Some((k, n)),
                ..self.clone()
            })
            .collect()
    }

    /// `defect x`, `variant y`, or `variants a+b+...`, and the shard if any.
    pub fn label(&self) -> String {
        let label = match (self.side, self.names.len()) {
            (Side::Defect, _) => format!("defect {}", self.names.join("+")),
            (Side::Variant, 1) => format!("variant {}", self.names[0]),
            (Side::Variant, n) if n == VARIANT_SCENARIOS.len() => "all variants at once".into(),
            (Side::Variant, _) => format!("variants {}", self.names.join("+")),
        };
        let label = match self.shard {
            Some((k, n)) => format!("{label} (shard {k}/{n})"),
            None => label,
        };
        match self.engine {
            Engine::Chromium => label,
            other => format!("{label} (in {})", other.name()),
        }
    }
}

/// How one platform fared.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub subject: Subject,
    /// Scenarios whose outcome was not the expected one, with the checks that fired.
    pub failed: Vec<(String, Vec<String>)>,
    /// Every scenario's outcome.
    pub outcomes: Vec<(String, crate::scenario::Outcome)>,
    pub scenarios: usize,
    /// The runs themselves, for the HTML report (`harness defects --html`).
    pub results: Vec<crate::check::verdict::ScenarioResult>,
}

impl MatrixRow {
    /// A defect is caught by a named check; a variant passes every scenario.
    pub fn holds(&self) -> bool {
        match self.subject.side {
            Side::Defect => self.failed.iter().any(|(_, violated)| {
                violated
                    .iter()
                    .any(|id| crate::check::invariants::is_browser_check(id))
            }),
            Side::Variant => self.failed.is_empty() && self.scenarios > 0,
        }
    }
}

/// Runs each subject's scenarios against its own server and provider, in Chromium
/// ([`run_on`]: one server per configuration the cases need), `base.jobs` subjects at a time
/// on one pool of browser sessions. Each row is printed when it ends; the rows come back in
/// the order of `subjects`.
pub async fn matrix(
    subjects: &[Subject],
    spawn: Spawn<'_>,
    base: &RunOptions,
) -> anyhow::Result<Vec<MatrixRow>> {
    let pool = Arc::new(SessionPool::new(base.webdriver.clone(), base.reuse_session));
    // Unordered: a row that waits out an answer budget holds one slot, not the rows behind it.
    let mut rows: Vec<(usize, anyhow::Result<MatrixRow>)> =
        futures_util::stream::iter(subjects.iter().enumerate().map(|(at, subject)| {
            let pool = &pool;
            async move { (at, matrix_row(subject, spawn, base, pool).await) }
        }))
        .buffer_unordered(base.jobs.max(1))
        .collect()
        .await;
    rows.sort_by_key(|(at, _)| *at);
    pool.close_all().await;
    rows.into_iter().map(|(_, row)| row).collect()
}

/// One subject's row: its servers, its scenarios, what failed and which checks fired.
async fn matrix_row(
    subject: &Subject,
    spawn: Spawn<'_>,
    base: &RunOptions,
    pool: &Arc<SessionPool>,
) -> anyhow::Result<MatrixRow> {
    let names: Vec<reference_server::Variant> = match subject.side {
        Side::Defect => Vec::new(),
        Side::Variant => subject
            .names
            .iter()
            .map(|name| reference_server::Variant::parse(name))
            .collect::<anyhow::Result<_>>()?,
    };
    // What the subject's server is configured as where a case leaves it open: the opener
    // policy its variants choose, declared as a team declares its deployment's (a step
    // that configuration cannot play is then a precondition, not a failure).
    let platform = SpawnedPlatform {
        label: subject.label(),
        defect: (subject.side == Side::Defect).then(|| subject.names[0].clone()),
        variants: match subject.side {
            Side::Defect => Vec::new(),
            Side::Variant => subject.names.clone(),
        },
        declared: PlatformConfig {
            opener_policy: reference_server::Variant::combined(&names).opener_policy,
            mcp_connector: true,
            embeddable: false,
        },
        spawn,
    };
    let options = RunOptions {
        // A variant must pass every scenario: never stop early.
        fail_fast: match subject.side {
            Side::Defect => base.fail_fast,
            Side::Variant => FailFast::Off,
        },
        shard: subject.shard,
        engines: vec![subject.engine],
        ..base.clone()
    };
    let results = run_on(&platform, &subject.scenarios, &options, pool, &Quiet).await?;
    // Printed whole, so rows that run at once do not interleave.
    let mut told = format!("--- {}\n", subject.label());
    for (done, result) in results.iter().enumerate() {
        let _ = writeln!(
            told,
            "{}",
            crate::report::console_line(done + 1, results.len(), result)
        );
        told.push_str(&crate::report::informative(result));
        if subject.side == Side::Variant && !result.as_expected() {
            told.push_str(&crate::report::failure_details(result));
        }
    }
    print!("{told}");
    let failed = results
        .iter()
        .filter(|r| !r.as_expected())
        .map(|r| (r.scenario.clone(), r.violated()))
        .collect();
    Ok(MatrixRow {
        subject: subject.clone(),
        failed,
        outcomes: results
            .iter()
            .map(|r| (r.scenario.clone(), r.outcome))
            .collect(),
        scenarios: results.len(),
        results,
    })
}

/// The matrix as a table: each platform, whether it holds, and what failed where.
pub fn table(rows: &[MatrixRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| platform | scenarios | verdict | failed (scenario: checks) |\n|---|---|---|---|"
    );
    for row in rows {
        let verdict = match (row.subject.side, row.holds()) {
            (Side::Defect, true) => "caught by a check".to_owned(),
            // A scenario failed, but on no check of the catalogue (its trace differed, or a
            // step could not be played): the defect shows, yet no rule names it.
            (Side::Defect, false) if !row.failed.is_empty() => {
                "**NOT CAUGHT by a check** (only the trace or a step differed: see docs/verdicts.md)"
                    .to_owned()
            }
            (Side::Defect, false) => "**NOT CAUGHT**: every scenario passed".to_owned(),
            (Side::Variant, true) => "passes".to_owned(),
            (Side::Variant, false) => "**FAILS**".to_owned(),
        };
        let failed = row
            .failed
            .iter()
            .map(|(scenario, checks)| format!("{scenario}: {}", checks.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            out,
            "| {} | {} | {verdict} | {failed} |",
            row.subject.label(),
            row.scenarios
        );
    }
    // A conformant variant that fails is the harness's mistake or the reference's: say what
    // each failed check saw, so a failure in CI can be read without running it again.
    for row in rows
        .iter()
        .filter(|r| r.subject.side == Side::Variant && !r.holds())
    {
        for result in row.results.iter().filter(|r| !r.violations.is_empty()) {
            let _ = writeln!(out, "\n{}: {}:", row.subject.label(), result.scenario);
            for violation in &result.violations {
                let detail: String = violation.detail.chars().take(600).collect();
                let _ = writeln!(out, "  {}: {detail}", violation.invariant);
            }
        }
    }
    out
}

/// The rows of `harness defects`: each defect, each variant (`a+b`: one server with both at
/// once), then, where more than one variant row is asked for, all their variants at once, as
/// `jobs` rows, or one row for each of the `cases` scenarios where there are fewer.
pub fn subjects(
    defects: &[String],
    variants: &[String],
    scenario: &str,
    jobs: usize,
    cases: usize,
) -> Vec<Subject> {
    let mut subjects: Vec<Subject> = defects
        .iter()
        .map(|d| Subject::defect(d, scenario))
        .collect();
    let rows_of: Vec<Vec<&str>> = variants.iter().map(|v| v.split('+').collect()).collect();
    subjects.extend(
        rows_of
            .iter()
            .map(|names| Subject::variants(names, scenario)),
    );
    if rows_of.len() > 1 {
        let mut all: Vec<&str> = Vec::new();
        for name in rows_of.iter().flatten() {
            if !all.contains(name) {
                all.push(name);
            }
        }
        subjects.extend(Subject::variants(&all, scenario).in_shards(jobs.min(cases)));
    }
    subjects
}

/// What `harness defects` runs: which defects and variants (every one the server lists where
/// both are empty), on which scenarios, how many rows at a time.
#[derive(Debug, clap::Args)]
pub struct MatrixRequest {
    /// Only these defects (default: every one the server lists, unless --variant is given).
    #[arg(long = "defect")]
    pub defects: Vec<String>,
    /// Only these variants (default: every one the server lists, unless --defect is given);
    /// `a+b` is one server with both at once.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    /// Run every scenario against each defect (the full matrix) instead of stopping at the
    /// first that catches it. Variants always run every scenario.
    #[arg(long)]
    pub full: bool,
    /// Only these scenarios (globs over ids, comma-separated).
    #[arg(long, default_value = "*")]
    pub scenario: String,
    #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Rows of the matrix at a time, each with a browser session and servers of its own.
    #[arg(short = 'j', long, default_value_t = 2)]
    pub jobs: usize,
    /// Write an HTML report of every run of the matrix into this folder (index.html).
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,
}

/// `harness defects`: the matrix against the reference-server binary `server`, each defect and
/// variant (every one it lists, unless some are named) as its own process; prints the table and
/// says whether every row holds.
pub async fn against_server(
    server: &std::path::Path,
    request: MatrixRequest,
) -> anyhow::Result<bool> {
    let (full, seed, jobs, scenario, html) = (
        request.full,
        request.seed,
        request.jobs,
        request.scenario.as_str(),
        request.html.as_deref(),
    );
    let (defects, variants) = (request.defects, request.variants);
    let list = |flag: &str| -> anyhow::Result<Vec<String>> {
        let listed = std::process::Command::new(server)
            .arg(flag)
            .output()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot run the reference server {}: {e} (hint: `cargo build -p reference-server`, or --server PATH)",
                    server.display()
                )
            })?;
        anyhow::ensure!(
            listed.status.success(),
            "{} {flag} failed (hint: build it with `cargo build -p reference-server`)",
            server.display()
        );
        Ok(String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    };
    let (defects, variants) = match (defects.is_empty(), variants.is_empty()) {
        (true, true) => (list("--list-defects")?, list("--list-variants")?),
        _ => (defects, variants),
    };
    let cases = crate::scenario::discover(&crate::scenario::default_root(), scenario)?.len();
    let subjects = subjects(&defects, &variants, scenario, jobs, cases);
    let spawn =
        |flags: &crate::run::spawned::ServerFlags<'_>| -> anyhow::Result<std::process::Child> {
            let mut command = std::process::Command::new(server);
            command.args(["--bind", "127.0.0.1:0", "--provider-url", flags.provider]);
            command.arg("--data-dir").arg(flags.data_dir);
            if let Some(defect) = flags.defect {
                command.args(["--defect", defect]);
            }
            for variant in flags.variants {
                command.args(["--variant", variant]);
            }
            if let Some(policy) = flags.opener_policy {
                command.args(["--opener-policy", policy]);
            }
            if flags.embeddable {
                command.arg("--embeddable");
            }
            Ok(command
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::piped())
                .spawn()?)
        };
    let options = crate::run::options::RunOptions {
        fail_fast: if full {
            FailFast::Off
        } else {
            FailFast::AtFirstCheckFailure
        },
        seed,
        jobs,
        artifacts: crate::run::options::default_artifacts().join("matrix"),
        ..RunOptions::default()
    };
    let rows = matrix(&subjects, &spawn, &options).await?;
    println!("\n{}", table(&rows));
    if let Some(dir) = html {
        // Each run named by the platform it ran against (`defect no-pkce: channels/baseline`).
        let results: Vec<crate::check::verdict::ScenarioResult> = rows
            .iter()
            .flat_map(|row| {
                row.results.iter().cloned().map(|mut result| {
                    result.rerun = Some(format!(
                        "cargo run -p harness -- defects --{} {} --scenario '{}' --seed {}",
                        match row.subject.side {
                            Side::Defect => "defect",
                            Side::Variant => "variant",
                        },
                        row.subject.names.join("+"),
                        result.scenario,
                        result.seed
                    ));
                    result.scenario = format!("{}: {}", row.subject.label(), result.scenario);
                    result
                })
            })
            .collect();
        let reports = crate::report::Reports {
            html: Some(dir.to_owned()),
            ..Default::default()
        };
        reports.write(&results, seed, &[])?;
    }
    Ok(rows.iter().all(|r| r.holds()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(subjects: &[Subject]) -> Vec<(String, Option<(usize, usize)>)> {
        subjects.iter().map(|s| (s.label(), s.shard)).collect()
    }

    #[test]
    fn a_plus_joins_variants_into_one_row_and_all_at_once_is_sharded_only_over_cases() {
        let one = subjects(&[], &["close-at-once+site-wide-coop".into()], "*", 2, 61);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].names, ["close-at-once", "site-wide-coop"]);
        let rows = subjects(
            &["no-pkce".into()],
            &["close-delay".into(), "close-at-once+close-delay".into()],
            "hostile/*",
            2,
            7,
        );
        assert_eq!(
            names(&rows),
            [
                ("defect no-pkce".to_owned(), None),
                ("variant close-delay".to_owned(), None),
                ("variants close-at-once+close-delay".to_owned(), None),
                (
                    "variants close-delay+close-at-once (shard 1/2)".to_owned(),
                    Some((1, 2))
                ),
                (
                    "variants close-delay+close-at-once (shard 2/2)".to_owned(),
                    Some((2, 2))
                ),
            ]
        );
        // One case: one row for all at once, not an empty second shard.
        let single = subjects(&[], &["a".into(), "b".into()], "channels/baseline", 2, 1);
        assert_eq!(single.last().unwrap().shard, None);
    }
}
