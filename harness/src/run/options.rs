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
    /// Stop at the first scenario whose outcome is not the expected one.
    pub fail_fast: bool,
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
            artifacts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/harness"),
            accept: false,
            run_id: String::new(),
            reuse_session: true,
            jobs: 1,
            shard: None,
            fail_fast: false,
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
