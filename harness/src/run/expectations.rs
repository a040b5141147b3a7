//! A baseline for a team that is not green yet (`harness run --expect FILE`): the scenarios, or
//! scenario checks, known to fail on its deployment, each with a reason. A listed failure does
//! not fail the run; a listed entry that passes now is stale and fails it, so the baseline only
//! shrinks (as the MCP conformance suite's expected-failures file and wpt's metadata do).
//!
//! ```toml
//! [[known-failure]]
//! id = "channels/polling-only:chat-resumed"   # scenario, or scenario:check
//! engine = "firefox"                          # optional: one engine only
//! reason = "our card stops polling after 30 s (TICKET-12)"
//! ```

use crate::check::invariants::{PROVIDER_CONTRACT, STEP, Violation, is_check};
use crate::check::verdict::ScenarioResult;
use crate::contract::Engine;
use crate::scenario::Outcome;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The id of the violation a stale entry adds.
pub const STALE: &str = "stale-expectation";

/// One known failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFailure {
    pub scenario: String,
    /// A check of the scenario; `None` for the scenario as a whole.
    pub check: Option<String>,
    pub engine: Option<String>,
    pub reason: String,
    /// Where it is written, for messages (`baseline.toml:4`).
    pub at: String,
}

/// A parsed `--expect` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub entries: Vec<KnownFailure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "known-failure", default)]
    known_failure: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: toml::Spanned<String>,
    engine: Option<String>,
    reason: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Expectations {
    /// Reads `path`; `scenarios` are every scenario id there is. Unknown scenarios, checks and
    /// engines are errors naming the file and line.
    pub fn read(path: &Path, scenarios: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the expectations file {}: {e}", path.display())
        })?;
        Self::parse(path, &text, scenarios)
    }

    pub fn parse(path: &Path, text: &str, scenarios: &[String]) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!(":{}", line_of(text, s.start)))
                .unwrap_or_default();
            anyhow::anyhow!(
                "{}{line}: {}hint: each entry is [[known-failure]] with id = \"<scenario>\" or \"<scenario>:<check>\", reason = \"...\" and optionally engine = \"chromium\"",
                path.display(),
                e.message()
            )
        })?;
        let mut entries = Vec::new();
        for entry in file.known_failure {
            let at = format!(
                "{}:{}",
                path.display(),
                line_of(text, entry.id.span().start)
            );
            let id = entry.id.into_inner();
            let (scenario, check) = match id.split_once(':') {
                Some((scenario, check)) => (scenario.to_owned(), Some(check.to_owned())),
                None => (id.clone(), None),
            };
            if !scenarios.contains(&scenario) {
                anyhow::bail!(
                    "{at}: unknown scenario {scenario:?} (hint: `harness list` shows the ids)"
                );
            }
            if let Some(check) = &check
                && !(is_check(check) || check == PROVIDER_CONTRACT || check == STEP)
            {
                anyhow::bail!(
                    "{at}: unknown check {check:?} (hint: `harness explain {scenario}` lists the checks)"
                );
            }
            if let Some(engine) = &entry.engine
                && !Engine::NAMES.contains(&engine.as_str())
            {
                anyhow::bail!(
                    "{at}: unknown engine {engine:?} (allowed: {})",
                    Engine::NAMES.join(", ")
                );
            }
            if entry.reason.trim().is_empty() {
                anyhow::bail!("{at}: the reason is empty: say why this fails");
            }
            entries.push(KnownFailure {
                scenario,
                check,
                engine: entry.engine,
                reason: entry.reason,
                at,
            });
        }
        Ok(Self { entries })
    }

    /// Applies the baseline to one result: listed failures become the expected outcome (the
    /// result keeps its violations, and `known_failures` says why), and listed entries that did
    /// not fail add a `stale-expectation` violation, which fails the run.
    pub fn apply(&self, result: &mut ScenarioResult) {
        let entries: Vec<&KnownFailure> = self
            .entries
            .iter()
            .filter(|e| {
                e.scenario == result.scenario
                    && e.engine
                        .as_deref()
                        .is_none_or(|engine| engine == result.engine)
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        let mut stale = Vec::new();
        let mut known = Vec::new();
        for entry in &entries {
            let failed = match &entry.check {
                None => !result.as_expected(),
                Some(check) => result.violations.iter().any(|v| &v.invariant == check),
            };
            if failed {
                known.push(format!("{} ({})", entry.reason, entry.at));
            } else {
                stale.push(Violation {
                    invariant: STALE.into(),
                    detail: format!(
                        "{} lists {}{} as failing ({}), but it passes now: remove the entry",
                        entry.at,
                        entry.scenario,
                        entry
                            .check
                            .as_deref()
                            .map(|c| format!(":{c}"))
                            .unwrap_or_default(),
                        entry.reason
                    ),
                    mark: None,
                });
            }
        }
        let whole_scenario_known = entries.iter().any(|e| e.check.is_none());
        let unlisted = result.violations.iter().any(|v| {
            !entries
                .iter()
                .any(|e| e.check.as_deref() == Some(v.invariant.as_str()))
        });
        result.known_failures = known;
        if stale.is_empty() && !result.as_expected() && (whole_scenario_known || !unlisted) {
            // Every failure of this run is listed: as expected, for now.
            result.expected = result.outcome;
        }
        if !stale.is_empty() {
            result.violations.extend(stale);
            if result.outcome == Outcome::Pass {
                result.outcome = Outcome::Fail;
            }
        }
    }
}

/// The path of an expectations file, for messages.
pub fn describe(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(", expectations {}", p.display()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::invariants::{CHANNELS_COMPLETE, CHAT_RESUMED};

    fn scenarios() -> Vec<String> {
        vec!["channels/baseline".into(), "opener/noopener".into()]
    }

    fn result(violations: &[&str]) -> ScenarioResult {
        let file = crate::scenario::ScenarioFile {
            id: crate::scenario::ScenarioId("channels/baseline".into()),
            path: "channels/baseline.toml".into(),
            scenario: crate::scenario::Scenario::parse(
                "channels/baseline.toml",
                "description = \"d\"\n[[steps]]\ndo = \"open-chat\"\n",
            )
            .unwrap(),
        };
        let mut result = ScenarioResult::new(&file, crate::contract::Engine::Chromium, 1);
        result.outcome = if violations.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        result.expected = Outcome::Pass;
        result.violations = violations
            .iter()
            .map(|id| Violation {
                invariant: (*id).into(),
                detail: "x".into(),
                mark: None,
            })
            .collect();
        result
    }

    fn expectations(text: &str) -> Expectations {
        Expectations::parse(Path::new("baseline.toml"), text, &scenarios()).unwrap()
    }

    #[test]
    fn a_listed_check_that_fails_is_as_expected_and_an_unlisted_one_is_not() {
        let file = expectations(
            "[[known-failure]]\nid = \"channels/baseline:chat-resumed\"\nreason = \"TICKET-1\"\n",
        );
        let mut listed = result(&[CHAT_RESUMED]);
        file.apply(&mut listed);
        assert!(listed.as_expected());
        assert_eq!(listed.known_failures, vec!["TICKET-1 (baseline.toml:2)"]);
        let mut more = result(&[CHAT_RESUMED, CHANNELS_COMPLETE]);
        file.apply(&mut more);
        assert!(!more.as_expected());
    }

    #[test]
    fn a_listed_entry_that_passes_now_is_stale_and_fails_the_run() {
        let file =
            expectations("[[known-failure]]\nid = \"channels/baseline\"\nreason = \"TICKET-2\"\n");
        let mut passing = result(&[]);
        file.apply(&mut passing);
        assert!(!passing.as_expected());
        assert_eq!(passing.violations[0].invariant, STALE);
        assert!(passing.violations[0].detail.contains("baseline.toml:2"));
    }

    #[test]
    fn an_entry_for_another_engine_changes_nothing() {
        let file = expectations(
            "[[known-failure]]\nid = \"channels/baseline\"\nengine = \"webkit\"\nreason = \"r\"\n",
        );
        let mut failing = result(&[CHAT_RESUMED]);
        file.apply(&mut failing);
        assert!(!failing.as_expected());
        assert!(failing.known_failures.is_empty());
    }

    #[test]
    fn unknown_ids_are_errors_naming_the_line() {
        let parse = |text: &str| {
            Expectations::parse(Path::new("b.toml"), text, &scenarios())
                .unwrap_err()
                .to_string()
        };
        let error = parse("\n[[known-failure]]\nid = \"channels/nope\"\nreason = \"r\"\n");
        assert!(error.starts_with("b.toml:3: unknown scenario"), "{error}");
        let error =
            parse("[[known-failure]]\nid = \"opener/noopener:no-such-check\"\nreason = \"r\"\n");
        assert!(error.starts_with("b.toml:2: unknown check"), "{error}");
        let error =
            parse("[[known-failure]]\nid = \"opener/noopener\"\nreason = \"r\"\ncolour = 1\n");
        assert!(error.starts_with("b.toml:4:"), "{error}");
    }
}
