//! The one suite engine, behind `harness run` and `cargo test` alike: a plan (the selected
//! scenarios in each engine, sharded), a pool of browser sessions (`run::pool`), one attempt
//! per scenario (again with `--retries`, reported `flaky`), judged by `run::judge` and the
//! baseline of known failures, its progress told to a [`Progress`]. Writing reports is the
//! caller's (`report::Reports`).

use crate::check::verdict::{Attempt, ScenarioResult};
use crate::contract::Engine;
use crate::deployment::Target;
use crate::deployment::profile::ProviderProfile;
use crate::report;
use crate::run::expectations::Expectations;
use crate::run::judge::{self, Compared, SCENARIO_BUDGET};
use crate::run::one_scenario::{Artifacts, keep_artifacts, run_scenario};
use crate::run::options::{RunOptions, shard_of};
use crate::run::pool::{SessionPool, close};
use crate::scenario::{Outcome, ScenarioFile, discover};
use anyhow::Context;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use url::Url;

/// One scenario in one engine, in the plan's order.
#[derive(Debug, Clone)]
pub struct Job {
    pub index: usize,
    pub engine: Engine,
    pub file: ScenarioFile,
}

/// What a suite run tells as it goes.
pub trait Progress: Send + Sync {
    /// The plan, before the first scenario.
    fn planned(&self, _suite: &Suite, _jobs: &[Job]) {}
    /// An attempt that was not as expected, run again with a fresh browser (`--retries`).
    fn retrying(&self, _job: &Job, _result: &ScenarioResult, _attempt: usize) {}
    /// A scenario's final result, the `done`-th of `total`.
    fn finished(&self, _done: usize, _total: usize, _result: &ScenarioResult) {}
    /// Every scenario ran.
    fn ended(&self, _suite: &Suite, _results: &[ScenarioResult]) {}
}

/// Tells nothing (`harness soak` and `bench` print their own tables).
pub struct Quiet;

impl Progress for Quiet {}

/// A line per scenario, the details of one that was not as expected, and the summary.
pub struct Console;

impl Progress for Console {
    fn planned(&self, suite: &Suite, jobs: &[Job]) {
        let options = &suite.options;
        let scenarios: std::collections::BTreeSet<&str> =
            jobs.iter().map(|j| j.file.id.0.as_str()).collect();
        println!(
            "harness: {} scenario(s) x {} engine(s), -j {}, seed {}, target {}{}",
            scenarios.len(),
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
    }

    fn retrying(&self, job: &Job, result: &ScenarioResult, attempt: usize) {
        println!(
            "  {} [{}]: {} on attempt {attempt}, run again with a fresh browser (--retries {})",
            job.file.id,
            job.engine.name(),
            result.outcome.as_str(),
            attempt,
        );
    }

    fn finished(&self, done: usize, total: usize, result: &ScenarioResult) {
        println!("{}", report::console_line(done, total, result));
        print!("{}", report::informative(result));
        if !result.as_expected() {
            print!("{}", report::failure_details(result));
        }
    }

    fn ended(&self, suite: &Suite, results: &[ScenarioResult]) {
        println!();
        print!("{}", report::summary_table(results));
        println!(
            "total {:.1} s, seed {}",
            suite.started.elapsed().as_secs_f64(),
            suite.options.seed
        );
    }
}

/// A suite ready to run: its options, its target, its baseline and its browsers.
pub struct Suite {
    pub options: RunOptions,
    expectations: Option<Expectations>,
    /// The deployment under test; `None` starts the embedded reference server per scenario.
    remote: Option<Target>,
    /// Its browser sessions: its own, or lent by the defect matrix to all its rows. Whoever
    /// made the pool closes it.
    pub pool: Arc<SessionPool>,
    /// Two WebKitGTK sessions at once disturb each other's window and script commands now
    /// and then: WebKit scenarios run one at a time.
    webkit: tokio::sync::Mutex<()>,
    started: Instant,
}

impl Suite {
    /// Checks the options, reaches the target and reads the baseline; a pool of its own.
    pub async fn prepare(options: RunOptions) -> anyhow::Result<Suite> {
        let pool = Arc::new(SessionPool::new(
            options.webdriver.clone(),
            options.reuse_session,
        ));
        Self::prepare_with(options, pool).await
    }

    /// A suite whose scenarios take their browser sessions from `pool`, which outlives it:
    /// the defect matrix runs many suites (a server each) on the same browsers.
    pub async fn prepare_with(
        options: RunOptions,
        pool: Arc<SessionPool>,
    ) -> anyhow::Result<Suite> {
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
        Ok(Suite {
            pool,
            options,
            expectations,
            remote,
            webkit: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        })
    }

    /// The selected scenarios of the shard, in each engine: engine by engine, scenarios in
    /// the order of their ids.
    pub fn plan(&self) -> anyhow::Result<Vec<Job>> {
        let options = &self.options;
        let mut files = discover(&options.scenarios_root, &options.pattern)?;
        if let Some((k, n)) = options.shard {
            files.retain(|f| shard_of(&f.id.0, n) == k);
        }
        let mut jobs = Vec::new();
        for engine in &options.engines {
            for file in &files {
                jobs.push(Job {
                    index: jobs.len(),
                    engine: *engine,
                    file: file.clone(),
                });
            }
        }
        Ok(jobs)
    }

    /// Why the target cannot run this scenario, if it cannot: a case that needs the platform
    /// or the provider configured in a way the harness cannot configure a remote target.
    fn cannot_run_here(&self, file: &ScenarioFile) -> Option<String> {
        let remote = self.remote.as_ref()?;
        if let Some(reason) = file
            .scenario
            .platform
            .unmet_by(&self.options.target_platform)
        {
            return Some(reason);
        }
        if file
            .scenario
            .provider
            .mcp
            .clients_known_by
            .metadata_documents()
            && let Some(reason) = fake_provider::cannot_fetch_documents_of(&remote.platform)
        {
            return Some(reason);
        }
        remote
            .provider
            .profile()
            .and_then(|profile| profile.cannot_run(&file.scenario))
    }

    /// One scenario in one engine, judged: skipped where the target cannot run it,
    /// `precondition-failed` where the engine cannot make its browser, otherwise run once
    /// (and again with `--retries`, a pass after a failure being `flaky`, never a pass).
    pub async fn run_job(
        &self,
        job: &Job,
        progress: &dyn Progress,
    ) -> anyhow::Result<ScenarioResult> {
        let options = &self.options;
        let (file, engine) = (&job.file, job.engine);
        if let Some(reason) = self.cannot_run_here(file) {
            return Ok(judge::not_for_remote(file, engine, options.seed, reason));
        }
        let switches = match engine.switches_for_case(&file.scenario) {
            Ok(switches) => switches,
            Err(reason) => {
                return Ok(judge::precondition_failed(
                    file,
                    engine,
                    options.seed,
                    reason,
                ));
            }
        };
        let _one_webkit_at_a_time = match engine {
            Engine::Webkit => Some(self.webkit.lock().await),
            _ => None,
        };
        let mut attempts: Vec<Attempt> = Vec::new();
        loop {
            let lease = self
                .pool
                .take(engine, &switches)
                .await
                .with_context(|| format!("for {}", file.id))?;
            let artifacts = Artifacts {
                root: options.artifacts.join(engine.name()),
                driver_log: lease.driver.as_ref().map(|d| d.log_path.clone()),
            };
            // A retry signs in as another user of another org: what the first attempt left on
            // a long-lived target is not the retry's.
            let run_id = match attempts.len() {
                0 => options.run_id.clone(),
                n => format!("{}retry{n}", options.run_id),
            };
            let run = tokio::time::timeout(SCENARIO_BUDGET, async {
                let embedded = match &self.remote {
                    Some(_) => None,
                    None => Some(
                        Target::embedded_for(&file.scenario.platform, options.seed, None).await?,
                    ),
                };
                let target = embedded
                    .as_ref()
                    .or(self.remote.as_ref())
                    .expect("a remote target or an embedded one");
                anyhow::Ok(
                    run_scenario(
                        file,
                        target,
                        &lease.session,
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
                Err(_) => (judge::hung(file, engine, options.seed), false),
            };
            let compared = match &self.remote {
                None => Compared::Embedded,
                Some(remote) if remote.provider.profile().is_some() => Compared::RealProvider,
                Some(_) => Compared::Remote,
            };
            judge::compare_snapshots(
                &options.snapshots_root,
                options.accept,
                file,
                engine,
                &mut result,
                compared,
            );
            if let Some(expectations) = &self.expectations {
                expectations.apply(&mut result);
            }
            if !result.as_expected() && healthy {
                keep_artifacts(&mut result, &artifacts.root, &lease.session).await;
            }
            // A browser that hung, or whose run a retry follows (with a fresh browser), is not
            // lent again; nor one whose run timed out (a command may have hung). A run that
            // failed on a verdict about the platform, every step answered, leaves the browser
            // as a pass does (the defect matrix's rows fail so, one after another).
            let last_attempt = attempts.len() >= options.retries;
            let verdict_only = result.outcome == Outcome::Fail && last_attempt;
            if healthy && (result.as_expected() || verdict_only) {
                self.pool.give_back(lease).await;
            } else {
                close(lease).await;
            }
            if result.as_expected() || attempts.len() >= options.retries {
                if !attempts.is_empty() && result.as_expected() {
                    result.outcome = Outcome::Flaky;
                }
                result.allow_flaky = options.allow_flaky;
                result.attempts = attempts;
                return Ok(result);
            }
            progress.retrying(job, &result, attempts.len() + 1);
            attempts.push(Attempt {
                outcome: result.outcome,
                violations: result.violations.clone(),
            });
        }
    }

    /// Runs the plan, `options.jobs` scenarios at a time; returns the results in the plan's
    /// order (the caller decides the exit status and writes the reports, and closes the
    /// pool).
    pub async fn run(
        self: &Arc<Self>,
        jobs: Vec<Job>,
        progress: &'static dyn Progress,
    ) -> anyhow::Result<Vec<ScenarioResult>> {
        progress.planned(self, &jobs);
        let total = jobs.len();
        let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
        let webkit_claimed = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..self.options.jobs.max(1).min(total.max(1)) {
            let (suite, queue, webkit_claimed, failed, done) = (
                self.clone(),
                queue.clone(),
                webkit_claimed.clone(),
                failed.clone(),
                done.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut results = Vec::new();
                let mut holds_webkit = false;
                loop {
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let next = next_job(
                        &mut queue.lock().unwrap_or_else(|p| p.into_inner()),
                        |job: &Job| job.engine,
                        &webkit_claimed,
                        &mut holds_webkit,
                    );
                    let Some(job) = next else { break };
                    let result = suite.run_job(&job, progress).await?;
                    if suite.options.fail_fast.stops_at(&result) {
                        failed.store(true, Ordering::SeqCst);
                    }
                    progress.finished(done.fetch_add(1, Ordering::SeqCst) + 1, total, &result);
                    results.push((job.index, result));
                }
                anyhow::Ok(results)
            }));
        }
        let mut outcome = Vec::new();
        for worker in workers {
            outcome.push(worker.await.context("a worker panicked"));
        }
        let mut results = Vec::new();
        for worker in outcome {
            results.extend(worker??);
        }
        results.sort_by_key(|(index, _)| *index);
        let results: Vec<ScenarioResult> = results.into_iter().map(|(_, r)| r).collect();
        progress.ended(self, &results);
        Ok(results)
    }
}

/// Prepares and runs the suite `options` selects; returns the results in the plan's order,
/// and the suite (how its browsers were set up, for the reports).
pub async fn run(
    options: &RunOptions,
    progress: &'static dyn Progress,
) -> anyhow::Result<(Vec<ScenarioResult>, Arc<Suite>)> {
    let suite = Arc::new(Suite::prepare(options.clone()).await?);
    let pool = suite.pool.clone();
    let ran = run_suite(suite, progress).await;
    // Every session closed (its browser quits, its driver ends), whatever the run came to.
    pool.close_all().await;
    ran
}

/// [`run`], its browser sessions taken from `pool` and left there for the pool's owner.
pub async fn run_in(
    options: &RunOptions,
    pool: Arc<SessionPool>,
    progress: &'static dyn Progress,
) -> anyhow::Result<(Vec<ScenarioResult>, Arc<Suite>)> {
    let suite = Arc::new(Suite::prepare_with(options.clone(), pool).await?);
    run_suite(suite, progress).await
}

async fn run_suite(
    suite: Arc<Suite>,
    progress: &'static dyn Progress,
) -> anyhow::Result<(Vec<ScenarioResult>, Arc<Suite>)> {
    let jobs = suite.plan()?;
    let results = suite.run(jobs, progress).await?;
    Ok((results, suite))
}

/// The first queued job this worker may run: any other engine's, and WebKit's only for the
/// one worker that claimed WebKit first (so no worker waits for the WebKit lock while other
/// engines' scenarios are left).
fn next_job<J>(
    queue: &mut VecDeque<J>,
    engine_of: impl Fn(&J) -> Engine,
    webkit_claimed: &AtomicBool,
    holds_webkit: &mut bool,
) -> Option<J> {
    let position = queue.iter().position(|job| {
        if engine_of(job) != Engine::Webkit || *holds_webkit {
            return true;
        }
        *holds_webkit = !webkit_claimed.swap(true, Ordering::SeqCst);
        *holds_webkit
    })?;
    queue.remove(position)
}

#[cfg(test)]
mod tests {
    use super::*;

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
