//! Running scenarios: one scenario in one session against one target, judged by the invariants,
//! with artifacts kept when the outcome is not the expected one.

use crate::browser::run::{StepError, run_steps};
use crate::browser::webdriver::Session;
use crate::check::invariants::{self, STEP, Violation};
use crate::check::trace::{Layer, Normalizer, render};
use crate::check::verdict::{PendingArtifacts, ScenarioResult};
use crate::contract::Engine;
use crate::contract::Identity;
use crate::deployment::Target;
use crate::scenario::{Outcome, ScenarioFile};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A short, stable hash (FNV-1a, 64 bits, 10 hex digits): the same inputs give the same
/// identity on every machine.
fn short_hash(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")[..10].to_owned()
}

/// The org and user a scenario runs as: derived from the seed, the scenario, the engine and a
/// run id (empty on the embedded target, whose database is fresh each time). Against one
/// deployment the same case in two engines runs as two orgs: neither finds the other's
/// connection.
pub fn identity(seed: u64, scenario: &str, engine: Engine, run_id: &str) -> Identity {
    let hash = short_hash(&[&seed.to_string(), scenario, engine.name(), run_id]);
    Identity {
        org: format!("h{hash}"),
        user: format!("u{hash}"),
    }
}

/// Where a run keeps what a person needs to understand a failure.
pub struct Artifacts {
    pub root: PathBuf,
    pub driver_log: Option<PathBuf>,
}

pub async fn run_scenario(
    file: &ScenarioFile,
    target: &Target,
    session: &Session,
    engine: Engine,
    seed: u64,
    run_id: &str,
    artifacts: &Artifacts,
) -> ScenarioResult {
    let started = Instant::now();
    let identity = identity(seed, &file.id.0, engine, run_id);
    let mut result = ScenarioResult::new(file, engine, seed);
    if session.bidi.is_none() && session.proxy.is_none() {
        result.outcome = Outcome::PreconditionFailed;
        result.violations.push(Violation {
            invariant: STEP.into(),
            detail: format!(
                "the WebDriver endpoint gives no BiDi socket (webSocketUrl) for {}: the harness cannot record",
                engine.name()
            ),
            mark: None,
        });
        return result;
    }
    let raw = match run_steps(session, target, file, &identity).await {
        Ok(raw) => raw,
        Err(error) => {
            result.outcome = Outcome::Fail;
            result.violations.push(Violation {
                invariant: STEP.into(),
                detail: format!("{error:#}"),
                mark: None,
            });
            result.duration_ms = started.elapsed().as_millis() as u64;
            return result;
        }
    };
    result.notes = raw.notes.clone();
    let platform_origin = target.platform.origin().ascii_serialization();
    let provider_origin = target.provider.public_url().origin().ascii_serialization();
    let verdict = invariants::check(&file.scenario, &raw.observation, &platform_origin);
    result.violations = verdict.violations;
    result.checks = verdict.checks;
    if let Some(StepError::Precondition(reason)) = &raw.step_error {
        // The deployment's declared configuration leaves the case nothing to test, as a
        // browser that cannot produce a configuration does: no check, no trace.
        result.outcome = Outcome::PreconditionFailed;
        result.expected = Outcome::PreconditionFailed;
        result.violations.push(Violation {
            invariant: STEP.into(),
            detail: reason.clone(),
            mark: None,
        });
        result.duration_ms = started.elapsed().as_millis() as u64;
        return result;
    }
    let timed_out = matches!(raw.step_error, Some(StepError::Timeout(_)));
    match &raw.step_error {
        Some(StepError::Timeout(detail))
        | Some(StepError::Failed(detail))
        | Some(StepError::Precondition(detail)) => {
            result.violations.insert(
                0,
                Violation {
                    invariant: STEP.into(),
                    detail: detail.clone(),
                    mark: None,
                },
            );
        }
        None => {}
    }
    result.outcome = if timed_out {
        Outcome::Timeout
    } else if result.violations.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    let new_normalizer = || {
        let mut normalizer = Normalizer::new(
            &platform_origin,
            &provider_origin,
            &identity,
            &raw.observation.secrets,
        );
        if let Some(origin) = &raw.observation.hostile_origin {
            normalizer.add_exact_first(origin, "[HOSTILE]");
        }
        if let Some(other) = &raw.observation.other_identity {
            normalizer.add_exact_first(&other.org, "[OTHER-ORG]");
            normalizer.add_exact_first(&other.user, "[OTHER-USER]");
        }
        normalizer
    };
    result.trace = render(
        &raw.observation,
        &mut new_normalizer(),
        Layer::Normative,
        &identity.org,
    );
    let mut normalizer = new_normalizer();
    result.transcript = render(
        &raw.observation,
        &mut normalizer,
        Layer::Transcript,
        &identity.org,
    );
    result.timeline = crate::check::timeline::moments(&raw.observation, &mut normalizer);
    // Violation details are shown to people: no secret in them either.
    for violation in &mut result.violations {
        violation.detail = normalizer.apply(&violation.detail);
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    // What a person needs if the final verdict (snapshot included) is not the expected one;
    // written by `keep_artifacts`, with secrets already redacted.
    let observation = serde_json::to_string_pretty(&raw.observation).unwrap_or_default();
    let requests =
        serde_json::to_string_pretty(&raw.observation.provider_requests).unwrap_or_default();
    let events = serde_json::to_string_pretty(&raw.events).unwrap_or_default();
    let driver_log = artifacts
        .driver_log
        .as_deref()
        .and_then(|log| std::fs::read_to_string(log).ok())
        .map(|text| normalizer.apply(&text))
        .unwrap_or_default();
    result.pending = Some(PendingArtifacts {
        files: vec![
            ("observation.json".into(), normalizer.apply(&observation)),
            ("provider-requests.json".into(), normalizer.apply(&requests)),
            ("bidi-events.json".into(), normalizer.apply(&events)),
            ("driver.log".into(), driver_log),
        ],
        open_tabs: raw.open_tabs,
    });
    if !result.as_expected() {
        keep_artifacts(&mut result, &artifacts.root, session).await;
    }
    result
}

/// Writes a result's artifacts under `<root>/<scenario>/`: the trace, the observation and the
/// provider's requests (secrets redacted), the result, the driver's log and a screenshot of
/// every tab still open. Sets `result.artifacts`.
pub async fn keep_artifacts(result: &mut ScenarioResult, root: &Path, session: &Session) {
    if result.artifacts.is_some() {
        return;
    }
    let dir = root.join(&result.scenario);
    let pending = result.pending.clone().unwrap_or_default();
    let shots = crate::browser::run::screenshots(&session.client, &pending.open_tabs).await;
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("trace.txt"), &result.trace)?;
        std::fs::write(dir.join("transcript.txt"), &result.transcript)?;
        for (name, text) in &pending.files {
            std::fs::write(dir.join(name), text)?;
        }
        std::fs::write(
            dir.join("result.json"),
            serde_json::to_string_pretty(&*result).unwrap_or_default(),
        )?;
        for (tab, png) in &shots {
            std::fs::write(dir.join(format!("tab-{tab}.png")), png)?;
        }
        Ok(())
    })();
    if written.is_ok() {
        result.artifacts = Some(dir);
    }
}
