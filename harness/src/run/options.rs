//! What a suite run takes: which scenarios in which engines, against what, and how (the
//! reports to write are the caller's: `report::Reports`).

use crate::contract::Engine;
use crate::scenario::PlatformConfig;
use std::path::PathBuf;
use url::Url;

/// Everything `harness run` takes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenarios_root: PathBuf,
    pub snapshots_root: PathBuf,
    pub pattern: String,
    pub engines: Vec<Engine>,
    pub seed: u64,
    /// A deployment elsewhere; `None` runs the embedded reference server.
    pub target: Option<Url>,
    /// The fake provider the deployment is configured against (with `target`), or the real
    /// one (with `provider_profile`).
    pub provider: Option<Url>,
    /// How to drive a real provider at `provider` (`--provider-profile`).
    pub provider_profile: Option<PathBuf>,
    /// A running WebDriver endpoint (a Selenium Grid, say) instead of spawned drivers.
    pub webdriver: Option<String>,
    pub artifacts: PathBuf,
    /// Write snapshots for new or changed traces (embedded target only).
    pub accept: bool,
    /// Keeps identities apart between runs against a long-lived deployment.
    pub run_id: String,
    /// One browser session per worker for all its scenarios, instead of a fresh one each.
    pub reuse_session: bool,
    /// How many browser sessions run at once.
    pub jobs: usize,
    /// Only the scenarios of shard K of N (1-based), a stable split for parallel CI jobs.
    pub shard: Option<(usize, usize)>,
    /// Whether the run stops before its last scenario.
    pub fail_fast: FailFast,
    /// A baseline of known failures (`--expect FILE`, see `expectations`).
    pub expectations: Option<PathBuf>,
    /// Run a scenario that is not as expected again, up to this many times, with a fresh
    /// browser; one that then passes is `flaky`.
    pub retries: usize,
    /// A `flaky` outcome does not fail the run.
    pub allow_flaky: bool,
    /// What the remote target is configured to do (`--target-opener-policy`): the cases whose
    /// `[platform]` asks for it run there, those that ask for another configuration are
    /// skipped. The embedded reference server is started as each case asks.
    pub target_platform: PlatformConfig,
}

impl Default for RunOptions {
    /// Every scenario of this repository in headless Chromium against the embedded reference
    /// server, one session reused, seed 1: change what differs with struct update syntax.
    fn default() -> Self {
        Self {
            scenarios_root: crate::scenario::default_root(),
            snapshots_root: crate::check::snapshot::default_root(),
            pattern: "*".into(),
            engines: vec![Engine::Chromium],
            seed: 1,
            target: None,
            provider: None,
            provider_profile: None,
            webdriver: None,
            artifacts: default_artifacts(),
            accept: false,
            run_id: String::new(),
            reuse_session: true,
            jobs: 1,
            shard: None,
            fail_fast: FailFast::Off,
            expectations: None,
            retries: 0,
            allow_flaky: false,
            target_platform: PlatformConfig::default(),
        }
    }
}

/// `K/N` as in `--shard 2/3`.
pub fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(k, n)| {
        Some((
            k.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => anyhow::bail!("--shard {text:?} is not K/N with 1 <= K <= N (e.g. --shard 2/3)"),
    }
}

/// The shard a scenario belongs to: a hash of its id, so adding a scenario moves no other.
pub fn shard_of(scenario_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in scenario_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards as u64) as usize + 1
}

/// `harness run`'s flags, as clap reads them: [`RunArgs::options`] makes them the suite's
/// options and the reports to write.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A deployment to test instead of the embedded reference server.
    #[arg(long)]
    pub target: Option<url::Url>,
    /// The fake provider the --target deployment is configured against (`fake-provider serve`),
    /// or, with --provider-profile, the real provider it is configured against.
    #[arg(long)]
    pub provider: Option<url::Url>,
    /// A real provider's profile (TOML: its pages and what it does): --provider is then
    /// driven through its own pages; cases that need the fake provider are skipped, with
    /// the reason (docs/remote.md).
    #[arg(long, requires = "provider")]
    pub provider_profile: Option<PathBuf>,
    /// Browser engines: chromium, firefox, webkit, a comma-separated list, or all.
    #[arg(long, default_value = "chromium")]
    pub engine: String,
    /// How many browser sessions run at once.
    #[arg(short = 'j', long = "jobs", default_value_t = 1)]
    pub jobs: usize,
    /// Run shard K of N (e.g. 2/3): a stable subset, for splitting CI.
    #[arg(long)]
    pub shard: Option<String>,
    /// Stop at the first scenario whose outcome is not the expected one.
    #[arg(long)]
    pub fail_fast: bool,
    /// Glob over scenario ids (`channels/*`).
    #[arg(long, default_value = "*")]
    pub scenario: String,
    /// Seed of every random choice (default: from the clock, printed).
    #[arg(long, env = "HARNESS_SEED")]
    pub seed: Option<u64>,
    /// Use a running WebDriver endpoint instead of spawning a driver.
    #[arg(long)]
    pub webdriver: Option<String>,
    /// Write a JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report (index.html) into this folder; `--html` alone writes
    /// it into target/harness/report/.
    #[arg(long, num_args = 0..=1, default_missing_value = "target/harness/report")]
    pub html: Option<PathBuf>,
    /// Where failed scenarios keep their artifacts.
    #[arg(long, default_value_os_t = default_artifacts())]
    pub artifacts: PathBuf,
    /// Write the snapshots of new or changed traces (embedded target only).
    #[arg(long)]
    pub accept: bool,
    /// A fresh browser session for every scenario instead of one shared session.
    #[arg(long)]
    pub fresh_session: bool,
    /// A baseline of known failures (TOML, [[known-failure]] id reason [engine]): listed
    /// failures do not fail the run, a listed entry that passes now does (docs/verdicts.md).
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Run a scenario that is not as expected again, up to N times, each with a fresh
    /// browser. One that then passes is reported `flaky`, which fails the run unless
    /// --allow-flaky. Default: no retry.
    #[arg(long, default_value_t = 0)]
    pub retries: usize,
    /// A `flaky` outcome does not fail the run.
    #[arg(long)]
    pub allow_flaky: bool,
    /// With --target: the Cross-Origin-Opener-Policy your deployment is configured with
    /// (unset, site-wide, callback-noopener-allow-popups). Cases whose [platform] asks for
    /// it run; cases that ask for another are skipped, with the reason.
    #[arg(long, requires = "target")]
    pub target_opener_policy: Option<String>,
    /// With --target: your deployment has a connector `notes` that is the provider's MCP
    /// server (`{provider}/mcp`, known by its URL). Cases whose [platform] asks for it run;
    /// without this flag they are skipped, with the reason.
    #[arg(long, requires = "target")]
    pub target_mcp_connector: bool,
    /// With --target: your deployment's chat keeps a session inside another site's frame
    /// (a partitioned session cookie). Cases whose [platform] asks for it run; without
    /// this flag they are skipped, with the reason.
    #[arg(long, requires = "target")]
    pub target_embeddable: bool,
    /// Folder of the scenario files.
    #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = crate::scenario::default_root())]
    pub scenarios: PathBuf,
    /// Folder of the snapshots.
    #[arg(long, env = "HARNESS_SNAPSHOTS", default_value_os_t = crate::check::snapshot::default_root())]
    pub snapshots: PathBuf,
}

/// Where failed scenarios keep their artifacts by default: `target/harness/`.
pub fn default_artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/harness")
}

/// A seed from the clock, for a run that names none (printed, so it can be given again).
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(1)
}

impl RunArgs {
    /// The suite's options and the reports to write; a bad engine list, shard or opener
    /// policy is an error that names it.
    pub fn options(self) -> anyhow::Result<(RunOptions, crate::report::Reports)> {
        let run_id = if self.target.is_some() {
            format!("{:x}", clock_seed())
        } else {
            String::new()
        };
        let options = RunOptions {
            scenarios_root: self.scenarios,
            snapshots_root: self.snapshots,
            pattern: self.scenario,
            engines: Engine::parse_list(&self.engine)?,
            jobs: self.jobs.max(1),
            shard: self.shard.as_deref().map(parse_shard).transpose()?,
            fail_fast: if self.fail_fast {
                FailFast::AtFirstFailure
            } else {
                FailFast::Off
            },
            seed: self.seed.unwrap_or_else(clock_seed),
            target: self.target,
            provider: self.provider,
            provider_profile: self.provider_profile,
            webdriver: self.webdriver,
            artifacts: self.artifacts,
            accept: self.accept,
            run_id,
            reuse_session: !self.fresh_session,
            expectations: self.expect,
            retries: self.retries,
            allow_flaky: self.allow_flaky,
            target_platform: PlatformConfig {
                opener_policy: self
                    .target_opener_policy
                    .as_deref()
                    .map(reference_server::OpenerPolicy::parse)
                    .transpose()?
                    .unwrap_or_default(),
                mcp_connector: self.target_mcp_connector,
                embeddable: self.target_embeddable,
            },
        };
        let reports = crate::report::Reports {
            json: self.json,
            junit: self.junit,
            html: self.html,
        };
        Ok((options, reports))
    }
}

/// When a run stops before its last scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailFast {
    /// Never: every scenario runs.
    #[default]
    Off,
    /// At the first scenario whose outcome is not the expected one (`--fail-fast`).
    AtFirstFailure,
    /// At the first scenario a check of the catalogue failed on (the defect matrix): one that
    /// differs only in its trace or a step does not stop it, for a later scenario may name
    /// the broken rule.
    AtFirstCheckFailure,
}

impl FailFast {
    /// Whether `result` stops the run.
    pub fn stops_at(self, result: &crate::check::verdict::ScenarioResult) -> bool {
        match self {
            FailFast::Off => false,
            FailFast::AtFirstFailure => !result.as_expected(),
            FailFast::AtFirstCheckFailure => {
                !result.as_expected() && !result.checks_that_fired().is_empty()
            }
        }
    }
}
