//! `harness run`: discovers scenarios, prepares the target and the browsers, runs each scenario
//! in each engine (N at a time with `-j`), compares traces with snapshots, prints progress and
//! a summary, and writes reports.

use crate::browser::webdriver::{DriverProcess, Session};
use crate::check::invariants::{
    CheckResult, CheckStatus, NORMATIVE_TRACE, REFERENCE_TRANSCRIPT, STEP, Violation,
};
use crate::check::snapshot;
use crate::check::trace::{Layer, without_the_provider};
use crate::check::verdict::{Attempt, ScenarioResult};
use crate::contract::Engine;
use crate::deployment::Target;
use crate::deployment::profile::ProviderProfile;
use crate::report;
use crate::run::expectations::Expectations;
use crate::run::one_scenario::{Artifacts, keep_artifacts, run_scenario};
use crate::scenario::{Outcome, PlatformConfig, ScenarioFile, discover};
use anyhow::Context;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report into this folder (`index.html`).
    pub html: Option<PathBuf>,
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
            snapshots_root: snapshot::default_root(),
            pattern: "*".into(),
            engines: vec![Engine::Chromium],
            seed: 1,
            target: None,
            provider: None,
            provider_profile: None,
            webdriver: None,
            json: None,
            junit: None,
            html: None,
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

struct Job {
    index: usize,
    engine: Engine,
    file: ScenarioFile,
}

struct Shared {
    options: RunOptions,
    expectations: Option<Expectations>,
    queue: Mutex<VecDeque<Job>>,
    remote: Option<Target>,
    done: Mutex<usize>,
    failed: std::sync::atomic::AtomicBool,
    /// How each engine's browser was set up, from the first session of each engine and
    /// switches (a case that needs switches of its own is a setup of its own).
    browsers: Mutex<std::collections::BTreeMap<String, crate::browser::webdriver::BrowserSetup>>,
    /// Two WebKitGTK sessions at once disturb each other's window and script commands now
    /// and then: the first worker to take a WebKit scenario runs all of them, one at a time,
    /// while the other workers take the other engines' scenarios.
    webkit_claimed: std::sync::atomic::AtomicBool,
    total: usize,
    started: Instant,
}

impl Shared {
    /// The next scenario this worker may run, or None when none is left for it.
    fn next_job(&self, holds_webkit: &mut bool) -> Option<Job> {
        next_job(
            &mut self.queue.lock().unwrap(),
            |job| job.engine,
            &self.webkit_claimed,
            holds_webkit,
        )
    }
}

/// The first queued job this worker may run: any other engine's, and WebKit's only for the
/// one worker that claimed WebKit first.
fn next_job<J>(
    queue: &mut VecDeque<J>,
    engine_of: impl Fn(&J) -> Engine,
    webkit_claimed: &std::sync::atomic::AtomicBool,
    holds_webkit: &mut bool,
) -> Option<J> {
    let position = queue.iter().position(|job| {
        if engine_of(job) != Engine::Webkit || *holds_webkit {
            return true;
        }
        *holds_webkit = !webkit_claimed.swap(true, std::sync::atomic::Ordering::SeqCst);
        *holds_webkit
    })?;
    queue.remove(position)
}

/// Runs the selected scenarios; returns their results (the caller decides the exit status).
pub async fn run(options: &RunOptions) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut files = discover(&options.scenarios_root, &options.pattern)?;
    if let Some((k, n)) = options.shard {
        files.retain(|f| shard_of(&f.id.0, n) == k);
    }
    if options.accept && options.target.is_some() {
        anyhow::bail!(
            "--accept writes snapshots from the embedded reference server only; drop --target to accept"
        );
    }
    let remote = match (&options.target, &options.provider) {
        (Some(target), Some(provider)) => Some(match &options.provider_profile {
            Some(path) => {
                Target::remote_profiled(
                    target.clone(),
                    provider.clone(),
                    ProviderProfile::read(path)?,
                    options.target_platform.clone(),
                )
                .await?
            }
            None => {
                Target::remote(
                    target.clone(),
                    provider.clone(),
                    options.target_platform.clone(),
                )
                .await?
            }
        }),
        (Some(_), None) => anyhow::bail!(
            "--target needs --provider URL: the fake provider the deployment's connectors point at (see docs/target-contract.md)"
        ),
        (None, Some(_)) => anyhow::bail!(
            "--provider is for --target runs; the embedded target starts its own provider"
        ),
        (None, None) => None,
    };
    if options.provider_profile.is_some() && options.target.is_none() {
        anyhow::bail!(
            "--provider-profile drives a real provider behind a --target deployment; the embedded target uses the fake provider (hint: add --target URL)"
        );
    }
    let shared_faults = remote
        .as_ref()
        .is_some_and(|r| r.provider.profile().is_none());
    if shared_faults && options.jobs > 1 {
        anyhow::bail!(
            "-j {} with --target: the provider's faults are set per scenario on one shared provider, so scenarios against it run one at a time (use -j 1, or one `fake-provider serve` per CI shard with --shard)",
            options.jobs
        );
    }
    let mut jobs = VecDeque::new();
    for engine in &options.engines {
        for file in &files {
            jobs.push_back(Job {
                index: jobs.len(),
                engine: *engine,
                file: file.clone(),
            });
        }
    }
    let total = jobs.len();
    println!(
        "harness: {} scenario(s) x {} engine(s), -j {}, seed {}, target {}{}",
        files.len(),
        options.engines.len(),
        options.jobs,
        options.seed,
        options
            .target
            .as_ref()
            .map(Url::to_string)
            .unwrap_or_else(|| "embedded reference server".into()),
        options
            .shard
            .map(|(k, n)| format!(", shard {k}/{n}"))
            .unwrap_or_default(),
    );
    let expectations = match &options.expectations {
        Some(path) => {
            let all: Vec<String> = discover(&options.scenarios_root, "*")?
                .into_iter()
                .map(|f| f.id.0)
                .collect();
            Some(Expectations::read(path, &all)?)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        options: options.clone(),
        expectations,
        queue: Mutex::new(jobs),
        remote,
        done: Mutex::new(0),
        browsers: Mutex::new(std::collections::BTreeMap::new()),
        failed: std::sync::atomic::AtomicBool::new(false),
        webkit_claimed: std::sync::atomic::AtomicBool::new(false),
        total,
        started: Instant::now(),
    });
    let mut workers = Vec::new();
    for _ in 0..options.jobs.max(1).min(total.max(1)) {
        let shared = shared.clone();
        workers.push(tokio::spawn(async move { worker(shared).await }));
    }
    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await.context("a worker panicked")??);
    }
    results.sort_by_key(|(index, _)| *index);
    let results: Vec<ScenarioResult> = results.into_iter().map(|(_, r)| r).collect();
    println!();
    print!("{}", report::summary_table(&results));
    println!(
        "total {:.1} s, seed {}",
        shared.started.elapsed().as_secs_f64(),
        options.seed
    );
    if let Some(path) = &options.json {
        let browsers: Vec<_> = shared.browsers.lock().unwrap().values().cloned().collect();
        std::fs::write(path, report::json(&results, options.seed, &browsers))
            .with_context(|| format!("cannot write the JSON report {}", path.display()))?;
    }
    if let Some(dir) = &options.html {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("index.html");
        std::fs::write(&path, report::html(&results, options.seed))
            .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report::junit(&results))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    Ok(results)
}

/// One worker: its own driver (geckodriver serves one session) and, unless fresh sessions are
/// asked for, one session per engine reused for its scenarios.
async fn worker(shared: Arc<Shared>) -> anyhow::Result<Vec<(usize, ScenarioResult)>> {
    let options = &shared.options;
    let mut drivers: Vec<(Engine, DriverProcess)> = Vec::new();
    let mut session: Option<Session> = None;
    let mut results = Vec::new();
    let mut holds_webkit = false;
    while let Some(job) = shared.next_job(&mut holds_webkit) {
        if options.fail_fast && shared.failed.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let engine = job.engine;
        let file = &job.file;
        if shared.remote.is_some()
            && let Some(reason) = file.scenario.platform.unmet_by(&options.target_platform)
        {
            results.push((
                job.index,
                not_for_remote(file, engine, options.seed, reason),
            ));
            continue;
        }
        if let Some(remote) = &shared.remote
            && file
                .scenario
                .provider
                .mcp
                .clients_known_by
                .metadata_documents()
            && let Some(reason) = fake_provider::cannot_fetch_documents_of(&remote.platform)
        {
            results.push((
                job.index,
                not_for_remote(file, engine, options.seed, reason),
            ));
            continue;
        }
        if let Some(reason) = shared
            .remote
            .as_ref()
            .and_then(|r| r.provider.profile())
            .and_then(|profile| profile.cannot_run(&file.scenario))
        {
            results.push((
                job.index,
                not_for_remote(file, engine, options.seed, reason),
            ));
            continue;
        }
        let webdriver_url = match &options.webdriver {
            Some(url) => url.clone(),
            None => {
                if !drivers.iter().any(|(e, _)| *e == engine) {
                    drivers.push((engine, DriverProcess::spawn(engine)?));
                }
                drivers
                    .iter()
                    .find(|(e, _)| *e == engine)
                    .expect("spawned")
                    .1
                    .url
                    .clone()
            }
        };
        let driver_log = drivers
            .iter()
            .find(|(e, _)| *e == engine)
            .map(|(_, d)| d.log_path.clone());
        let artifacts = Artifacts {
            root: options.artifacts.join(engine.name()),
            driver_log,
        };
        let switches = engine.switches_for_case(&file.scenario.browser, &file.scenario.platform);
        // A session of another engine, or started with other switches, is of no use here.
        if let Some(current) = session.take() {
            if current.engine == engine && Ok(&current.browser_args) == switches.as_ref() {
                session = Some(current);
            } else {
                let _ = tokio::time::timeout(CLOSE_BUDGET, current.close()).await;
            }
        }
        let result = match switches {
            Err(reason) => precondition_failed(file, engine, options.seed, reason),
            Ok(switches) => {
                // No retry unless asked for (`--retries N`); a run that fails and then
                // passes is `flaky`, never a pass, and each attempt is kept in the report.
                let mut attempts: Vec<Attempt> = Vec::new();
                loop {
                    let current = match session.take() {
                        Some(current) => current,
                        None => Session::start_with(engine, &webdriver_url, &switches)
                            .await
                            .with_context(|| {
                                format!("starting {} for {}", engine.name(), file.id)
                            })?,
                    };
                    shared
                        .browsers
                        .lock()
                        .unwrap()
                        .entry(format!("{} {:?}", engine.name(), current.browser_args))
                        .or_insert_with(|| current.setup.clone());
                    // A retry signs in as another user of another org: what the first
                    // attempt left on a long-lived target is not the retry's.
                    let run_id = match attempts.len() {
                        0 => options.run_id.clone(),
                        n => format!("{}retry{n}", options.run_id),
                    };
                    let run = tokio::time::timeout(SCENARIO_BUDGET, async {
                        let target = match &shared.remote {
                            Some(_) => None,
                            None => Some(
                                Target::embedded_for(&file.scenario.platform, options.seed, None)
                                    .await?,
                            ),
                        };
                        let target = target
                            .as_ref()
                            .or(shared.remote.as_ref())
                            .expect("a remote target or an embedded one");
                        anyhow::Ok(
                            run_scenario(
                                file,
                                target,
                                &current,
                                engine,
                                options.seed,
                                &run_id,
                                &artifacts,
                            )
                            .await,
                        )
                    })
                    .await;
                    let (mut result, healthy) = match run {
                        Ok(result) => (result?, true),
                        Err(_) => (hung(file, engine, options.seed), false),
                    };
                    let provider = match &shared.remote {
                        None => Compared::Embedded,
                        Some(remote) if remote.provider.profile().is_some() => {
                            Compared::RealProvider
                        }
                        Some(_) => Compared::Remote,
                    };
                    compare_snapshots(options, file, engine, &mut result, provider);
                    if let Some(expectations) = &shared.expectations {
                        expectations.apply(&mut result);
                    }
                    if !result.as_expected() && healthy {
                        keep_artifacts(&mut result, &artifacts.root, &current).await;
                    }
                    let retry = !result.as_expected() && attempts.len() < options.retries;
                    if healthy && options.reuse_session && !retry {
                        session = Some(current);
                    } else {
                        let _ = tokio::time::timeout(CLOSE_BUDGET, current.close()).await;
                    }
                    if !healthy {
                        // A driver that hung is not asked again: the next run spawns another.
                        drivers.retain(|(e, _)| *e != engine);
                    }
                    if !retry {
                        if !attempts.is_empty() && result.as_expected() {
                            result.outcome = Outcome::Flaky;
                        }
                        result.allow_flaky = options.allow_flaky;
                        result.attempts = attempts;
                        break result;
                    }
                    println!(
                        "  {} [{}]: {} on attempt {}, run again with a fresh browser (--retries {})",
                        file.id,
                        engine.name(),
                        result.outcome.as_str(),
                        attempts.len() + 1,
                        options.retries
                    );
                    attempts.push(Attempt {
                        outcome: result.outcome,
                        violations: result.violations.clone(),
                    });
                }
            }
        };
        {
            let mut done = shared.done.lock().unwrap();
            *done += 1;
            println!("{}", report::console_line(*done, shared.total, &result));
            print!("{}", report::informative(&result));
            if !result.as_expected() {
                print!("{}", report::failure_details(&result));
                shared
                    .failed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        results.push((job.index, result));
    }
    if let Some(current) = session {
        let _ = tokio::time::timeout(CLOSE_BUDGET, current.close()).await;
    }
    Ok(results)
}

/// How long one scenario may take in all before it is a `timeout` (a WebDriver command that
/// never answers): every step has its own budget too.
pub const SCENARIO_BUDGET: std::time::Duration = std::time::Duration::from_secs(150);
/// How long closing a browser session may take.
const CLOSE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// A scenario whose run did not finish within [`SCENARIO_BUDGET`].
fn hung(file: &ScenarioFile, engine: Engine, seed: u64) -> ScenarioResult {
    not_run(
        file,
        engine,
        seed,
        Outcome::Timeout,
        format!(
            "the run did not finish within {SCENARIO_BUDGET:?}: a WebDriver command never answered (the driver is replaced for the next scenario)"
        ),
    )
}

/// A result that ends before any check: its outcome and why.
fn not_run(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    outcome: Outcome,
    reason: String,
) -> ScenarioResult {
    let mut result = ScenarioResult::new(file, engine, seed);
    result.outcome = outcome;
    result.violations.push(Violation {
        invariant: STEP.into(),
        detail: reason,
    });
    result
}

/// A case that needs the platform configured in a way the harness cannot configure a remote
/// target: skipped, and says why (never a pass).
fn not_for_remote(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    reason: String,
) -> ScenarioResult {
    let mut result = not_run(file, engine, seed, Outcome::Skipped, reason);
    result.expected = Outcome::Skipped;
    result
}

/// The engine cannot produce the scenario's browser configuration with its own means.
pub fn precondition_failed(
    file: &ScenarioFile,
    engine: Engine,
    seed: u64,
    reason: String,
) -> ScenarioResult {
    not_run(file, engine, seed, Outcome::PreconditionFailed, reason)
}

/// What the run's traces are compared as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compared {
    /// The embedded reference server and fake provider: both layers are the verdict's.
    Embedded,
    /// Another platform against the fake provider: the normative layer only.
    Remote,
    /// Another platform against a real provider: the normative layer without the provider's
    /// pages and log, which are the fake provider's in the snapshots.
    RealProvider,
}

/// Compares the run's two layers with their snapshots (`docs/verdicts.md`). The normative
/// trace is part of the verdict on every target (against a real provider, without the
/// provider's pages and requests); the reference transcript fails a run on the embedded
/// target only (a regression guard of the reference server), and against another target its
/// difference is kept as informative. `--accept` writes missing or changed snapshots instead
/// (embedded target only).
fn compare_snapshots(
    options: &RunOptions,
    file: &ScenarioFile,
    engine: Engine,
    result: &mut ScenarioResult,
    compared: Compared,
) {
    if result.trace.is_empty() {
        return;
    }
    let embedded = compared == Compared::Embedded;
    let real_provider = compared == Compared::RealProvider;
    for layer in [Layer::Normative, Layer::Transcript] {
        let actual = match layer {
            Layer::Normative if real_provider => without_the_provider(&result.trace),
            Layer::Normative => result.trace.clone(),
            Layer::Transcript => result.transcript.clone(),
        };
        let name = snapshot::name_in(file, engine.name(), layer);
        let path = snapshot::path_for(&options.snapshots_root, &name);
        let existing = match layer {
            Layer::Normative if real_provider => {
                snapshot::read(&path).map(|body| without_the_provider(&body))
            }
            _ => snapshot::read(&path),
        };
        let check = snapshot_check(layer);
        let status = |status, reason: Option<&str>| CheckResult {
            id: check.to_owned(),
            status,
            reason: reason.map(str::to_owned),
        };
        if layer == Layer::Transcript && !embedded {
            result.checks.push(status(
                CheckStatus::NotApplicable,
                Some("the target is not the reference server: its transcript is informative"),
            ));
        }
        if existing
            .as_deref()
            .is_some_and(|body| snapshot::matches(body, &actual))
        {
            if layer == Layer::Normative && real_provider {
                result.checks.push(status(
                    CheckStatus::Pass,
                    Some("compared without the provider's pages and requests, which are the fake provider's in the snapshot"),
                ));
            } else if layer == Layer::Normative || embedded {
                result.checks.push(status(CheckStatus::Pass, None));
            }
            continue;
        }
        if options.accept && embedded && result.outcome == result.expected {
            if let Err(error) =
                snapshot::write(&path, &file.id.0, &file.scenario.description, &actual)
            {
                eprintln!("cannot write {}: {error}", path.display());
            }
            result
                .checks
                .push(status(CheckStatus::Pass, Some("accepted")));
            continue;
        }
        if options.accept && embedded {
            eprintln!(
                "{} [{}]: not accepted, the run is {} where {} is expected; its {} is among the artifacts",
                file.id,
                engine.name(),
                result.outcome.as_str(),
                result.expected.as_str(),
                match layer {
                    Layer::Normative => "trace",
                    Layer::Transcript => "transcript",
                }
            );
        }
        let Some(body) = existing else {
            if layer == Layer::Transcript && !embedded {
                continue;
            }
            result.violations.push(Violation {
                invariant: check.into(),
                detail: format!(
                    "no snapshot at {} (a missing snapshot is a failure)",
                    path.display()
                ),
            });
            result.checks.push(status(CheckStatus::Fail, None));
            continue;
        };
        let diff = snapshot::diff(&body, &actual);
        if layer == Layer::Transcript && !embedded {
            result.informative.extend(diff.lines().map(str::to_owned));
            continue;
        }
        result.checks.push(status(CheckStatus::Fail, None));
        result.violations.push(Violation {
            invariant: check.into(),
            detail: format!(
                "the {} {} differs from {}",
                engine.name(),
                match layer {
                    Layer::Normative => "normative trace",
                    Layer::Transcript => "reference transcript",
                },
                path.display()
            ),
        });
        result.diffs.push((path.display().to_string(), diff));
    }
    // A snapshot difference fails a run that passed its checks, but never makes one that was
    // to fail them "fail as expected": that stays an unexpected pass.
    if result.outcome == Outcome::Pass
        && !result.violations.is_empty()
        && result.expected == Outcome::Pass
    {
        result.outcome = Outcome::Fail;
    }
}

/// The check a snapshot comparison reports as.
fn snapshot_check(layer: Layer) -> &'static str {
    match layer {
        Layer::Normative => NORMATIVE_TRACE,
        Layer::Transcript => REFERENCE_TRANSCRIPT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn one_worker_runs_every_webkit_scenario_and_the_others_run_the_rest() {
        let mut queue: VecDeque<(usize, Engine)> = [
            Engine::Chromium,
            Engine::Webkit,
            Engine::Webkit,
            Engine::Firefox,
            Engine::Webkit,
        ]
        .into_iter()
        .enumerate()
        .collect();
        let claimed = AtomicBool::new(false);
        let (mut first, mut second) = (false, false);
        let picks = [
            next_job(&mut queue, |job| job.1, &claimed, &mut first),
            next_job(&mut queue, |job| job.1, &claimed, &mut second),
            next_job(&mut queue, |job| job.1, &claimed, &mut first),
            next_job(&mut queue, |job| job.1, &claimed, &mut second),
            next_job(&mut queue, |job| job.1, &claimed, &mut second),
            next_job(&mut queue, |job| job.1, &claimed, &mut first),
            next_job(&mut queue, |job| job.1, &claimed, &mut first),
            next_job(&mut queue, |job| job.1, &claimed, &mut first),
        ];
        let indexes: Vec<Option<usize>> = picks.iter().map(|p| p.map(|(i, _)| i)).collect();
        // The second worker claims WebKit first (its second pick), and runs all of it; the
        // first worker skips to Firefox, then finds nothing it may run.
        assert_eq!(
            indexes,
            vec![
                Some(0),
                Some(1),
                Some(3),
                Some(2),
                Some(4),
                None,
                None,
                None
            ]
        );
        assert!(second && !first);
    }
}
