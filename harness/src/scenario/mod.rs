//! Scenario files: `scenarios/<group>/<name>.toml`, one case each, with a closed schema.
//!
//! ```
//! use harness::scenario::Scenario;
//! let scenario = Scenario::parse("x.toml", r#"
//! description = "All three channels live."
//! [[steps]]
//! do = "open-chat"
//! [[steps]]
//! do = "say"
//! text = "list my files"
//! [expect.chat]
//! chat = "waiting"
//! "#).unwrap();
//! assert_eq!(scenario.steps.len(), 2);
//! ```

mod browser_config;
pub mod describe;
pub mod diagnose;
pub mod reference;
mod step;

pub use browser_config::{BrowserConfig, Feature, Latency, OpenerMode, SlowOrigin, StorageMode};
pub use step::{Condition, Decision, ForgedPayload, HostileOpens, PauseClock, Step};

use crate::contract::Engine;
use fake_provider::Faults;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A scenario's id: its path under `scenarios/` without `.toml` (`channels/no-broadcast-channel`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ScenarioId(pub String);

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The closed vocabulary of outcomes (as web-platform-tests: PASS, FAIL, TIMEOUT, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    #[default]
    Pass,
    Fail,
    Timeout,
    PreconditionFailed,
    Skipped,
    /// Not as expected, then as expected when run again (`--retries`): a run's outcome,
    /// never a scenario's expectation.
    Flaky,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Timeout => "timeout",
            Outcome::PreconditionFailed => "precondition-failed",
            Outcome::Skipped => "skipped",
            Outcome::Flaky => "flaky",
        }
    }
}

/// How the user presses a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// A mouse click.
    #[default]
    Click,
    /// The button is focused and the user presses Enter (keyboard and switch users): the
    /// browser turns the key press into a trusted click.
    Keyboard,
    /// A click with Ctrl held, as a user opens a link in a background tab: the chat tab keeps
    /// the focus, and the tab the click opens loads behind it (Chromium and Firefox).
    CtrlClick,
    /// A click with Shift held, as a user opens a link in a new window: the tab the click
    /// opens is the first tab of a window of its own.
    ShiftClick,
}

impl Activation {
    fn is_click(&self) -> bool {
        *self == Activation::Click
    }
}

/// A deployment's own configuration a case needs (`[platform]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformConfig {
    /// The `Cross-Origin-Opener-Policy` of the platform's pages.
    pub opener_policy: reference_server::OpenerPolicy,
    /// The platform has a connector `notes` that is the provider's MCP server (`{provider}/mcp`),
    /// configured by that URL alone (the reference server's default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mcp_connector: bool,
    /// The platform's chat can be embedded in another site's frame: a frame keeps a session
    /// of its own (the reference server's session cookie is then `SameSite=None; Secure;
    /// Partitioned`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub embeddable: bool,
}

impl PlatformConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Why a remote target configured as `target` says cannot run a case that needs this
    /// configuration, if it cannot.
    pub fn unmet_by(&self, target: &PlatformConfig) -> Option<String> {
        let mut needs = Vec::new();
        if self.opener_policy != reference_server::OpenerPolicy::Unset
            && self.opener_policy != target.opener_policy
        {
            needs.push(format!(
                "a platform configured with opener_policy = \"{name}\" (if yours is, say it with --target-opener-policy {name})",
                name = self.opener_policy.name()
            ));
        }
        if self.mcp_connector && !target.mcp_connector {
            needs.push(
                "a connector `notes` that is the provider's MCP server at {provider}/mcp (if yours has one, say it with --target-mcp-connector)"
                    .to_owned(),
            );
        }
        if self.embeddable && !target.embeddable {
            needs.push(
                "a chat that keeps a session inside another site's frame (if yours does, say it with --target-embeddable)"
                    .to_owned(),
            );
        }
        (!needs.is_empty()).then(|| {
            format!(
                "the case needs {}; the harness cannot configure a remote target",
                needs.join(", and ")
            )
        })
    }

    /// Why a remote target of the default configuration cannot run this case, if it cannot.
    pub fn needs(&self) -> Option<String> {
        self.unmet_by(&PlatformConfig::default())
    }
}

/// Whether `id` is spelt as the MCP conformance suite names its scenarios (`auth/basic-cimd`).
fn is_mcp_suite_id(id: &str) -> bool {
    let name_part = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    id.split_once('/')
        .is_some_and(|(group, name)| name_part(group) && name_part(name))
}

/// How a chat must end (invariants 4 and 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChatExpectation {
    /// Every queued message was re-sent exactly once and answered.
    Resumed,
    /// Nothing was re-sent and the card shows the error.
    ErrorShown,
    /// Nothing was re-sent and the card still waits (e.g. the user closed the provider tab).
    Waiting,
    /// The last tool call gave a tool error and a reconnect prompt.
    ToolErrorAndReconnect,
    /// Every message was answered (a queued one after its connection), with no tool error,
    /// reconnect prompt or card error: the connection held.
    Answered,
    /// The queued message was re-sent and its tool call gave a tool error, with no reconnect
    /// prompt: the connection is fine, the provider's answer was not.
    ToolError,
}

/// What one engine does differently, beside the case (like web-platform-tests' expectations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineExpectation {
    /// The outcome in this engine; anything but `pass` needs `reason`.
    #[serde(default)]
    pub outcome: Outcome,
    /// Why this engine differs (required).
    pub reason: String,
    /// This engine's normative trace legitimately differs: it has its own snapshot,
    /// `snapshots/<id>.<engine>.snap`.
    #[serde(default)]
    pub own_snapshot: bool,
    /// This engine's reference transcript differs (the normative trace does not): it has its
    /// own `snapshots/<id>.<engine>.reference.snap`.
    #[serde(default)]
    pub own_reference: bool,
}

/// What the scenario expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The outcome this scenario has today; anything but `pass` needs a `reason`.
    #[serde(default)]
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// How each chat tab must end, by tab name.
    #[serde(default)]
    pub chat: BTreeMap<String, ChatExpectation>,
    /// The bound within which a chat must resume, from the consent (default 15 000 ms).
    pub resume_within_ms: Option<u64>,
    /// Per-engine differences, by engine name.
    #[serde(default)]
    pub engines: BTreeMap<String, EngineExpectation>,
}

impl Expectation {
    /// The outcome expected in `engine`.
    pub fn outcome_for(&self, engine: &str) -> Outcome {
        self.engines
            .get(engine)
            .map(|e| e.outcome)
            .unwrap_or(self.outcome)
    }

    /// Whether `engine` keeps its own normative trace (`own_snapshot`) or, with `transcript`,
    /// its own reference transcript (`own_snapshot` or `own_reference`).
    pub fn own_snapshot(&self, engine: &str, transcript: bool) -> bool {
        self.engines
            .get(engine)
            .is_some_and(|e| e.own_snapshot || (transcript && e.own_reference))
    }
}

/// One scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what this case shows.
    pub description: String,
    #[serde(default)]
    pub browser: BrowserConfig,
    /// The fake provider's faults for this run.
    #[serde(default)]
    pub provider: Faults,
    /// What the platform must be configured to do for this case (a deployment's own
    /// headers). The embedded reference server is started so; a remote target is not the
    /// harness's to configure, so there the case is skipped, with the reason.
    #[serde(default, skip_serializing_if = "PlatformConfig::is_default")]
    pub platform: PlatformConfig,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Expectation,
    /// The scenarios of the MCP conformance suite (`modelcontextprotocol/conformance`) this
    /// case checks too, by their ids (`auth/resource-mismatch`): reports carry them, so a team
    /// can read both side by side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_conformance: Vec<String>,
}

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    pub file: PathBuf,
    pub message: String,
}

impl Scenario {
    /// Parses and validates a scenario; `file` names it in errors.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Self, ScenarioError> {
        let file = file.as_ref().to_owned();
        let scenario: Scenario = toml::from_str(text).map_err(|error| ScenarioError {
            file: file.clone(),
            message: describe_toml_error(&error, text),
        })?;
        scenario.validate().map_err(|message| ScenarioError {
            file,
            message: at_step_line(message, text),
        })?;
        Ok(scenario)
    }

    /// The scenario as a file's text, in the shape authors write: every value the file format
    /// would fill in anyway (a default) left out, so a generated file reads like a written one.
    /// `Scenario::parse(_, &scenario.to_file())` gives back the same scenario.
    pub fn to_file(&self) -> String {
        let toml::Value::Table(mut table) =
            toml::Value::try_from(self).expect("a scenario serializes to TOML")
        else {
            unreachable!("a scenario is a table")
        };
        let same = |table: &toml::Table| {
            toml::Value::Table(table.clone())
                .try_into::<Scenario>()
                .is_ok_and(|parsed| parsed == *self)
        };
        // Within each section and each step, drop every key the scenario does not need; then
        // every section left empty.
        let sections: Vec<String> = table.keys().cloned().collect();
        for section in sections {
            let paths: Vec<(Option<usize>, String)> = match &table[&section] {
                toml::Value::Table(inner) => inner.keys().map(|k| (None, k.clone())).collect(),
                toml::Value::Array(steps) => steps
                    .iter()
                    .enumerate()
                    .flat_map(|(index, step)| {
                        step.as_table()
                            .into_iter()
                            .flat_map(|t| t.keys())
                            .filter(|key| *key != "do")
                            .map(move |key| (Some(index), key.clone()))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (index, key) in paths {
                let mut trial = table.clone();
                let holder = match (index, trial.get_mut(&section)) {
                    (None, Some(toml::Value::Table(inner))) => Some(inner),
                    (Some(index), Some(toml::Value::Array(steps))) => {
                        steps.get_mut(index).and_then(toml::Value::as_table_mut)
                    }
                    _ => None,
                };
                if let Some(holder) = holder {
                    holder.remove(&key);
                    if same(&trial) {
                        table = trial;
                    }
                }
            }
            if table[&section].as_table().is_some_and(|t| t.is_empty()) {
                let mut trial = table.clone();
                trial.remove(&section);
                if same(&trial) {
                    table = trial;
                }
            }
        }
        // In the order of the fields (as files are written), not the table's alphabetical one.
        let order = [
            "description",
            "browser",
            "provider",
            "platform",
            "steps",
            "expect",
        ];
        debug_assert!(table.keys().all(|k| order.contains(&k.as_str())));
        order
            .iter()
            .filter_map(|key| {
                let value = table.remove(*key)?;
                let one: toml::Table = [(key.to_string(), value)].into_iter().collect();
                Some(toml::to_string(&one).expect("a table serializes"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Combinations that cannot mean anything.
    fn validate(&self) -> Result<(), String> {
        if self.description.trim().is_empty() || self.description.contains('\n') {
            return Err("description must be one non-empty line".into());
        }
        let expected = std::iter::once(self.expect.outcome)
            .chain(self.expect.engines.values().map(|e| e.outcome));
        if expected.into_iter().any(|o| o == Outcome::Flaky) {
            return Err(
                "expect.outcome = \"flaky\": flaky is what a run with --retries reports, not an expectation (say pass, or fail with a reason)".into(),
            );
        }
        if self.expect.outcome != Outcome::Pass && self.expect.reason.is_none() {
            return Err(format!(
                "expect.outcome = \"{}\" needs expect.reason: say why this case does not pass",
                self.expect.outcome.as_str()
            ));
        }
        if self.steps.is_empty() {
            return Err("steps is empty: a scenario needs at least one [[steps]] entry".into());
        }
        if let Some(id) = self.mcp_conformance.iter().find(|id| !is_mcp_suite_id(id)) {
            return Err(format!(
                "mcp_conformance: {id:?} is not an MCP conformance suite scenario id (they read group/name in lowercase, e.g. \"auth/basic-cimd\")"
            ));
        }
        for (engine, expectation) in &self.expect.engines {
            if !Engine::NAMES.contains(&engine.as_str()) {
                return Err(format!(
                    "expect.engines.{engine}: unknown engine (allowed: {})",
                    Engine::NAMES.join(", ")
                ));
            }
            if expectation.reason.trim().is_empty() {
                return Err(format!(
                    "expect.engines.{engine}.reason is empty: say why this engine differs"
                ));
            }
        }
        let mut tabs = vec![];
        for (index, step) in self.steps.iter().enumerate() {
            let at = format!("step {} (do = \"{}\")", index + 1, step.name());
            match step {
                Step::OpenChat { tab, .. } | Step::OpenConnectors { tab } => tabs.push(tab.clone()),
                Step::Connect { tab, opens, .. } => {
                    require_tab(&tabs, tab, &at)?;
                    tabs.push(opens.clone());
                }
                Step::RevisitCallback { tab } => tabs.push(tab.clone()),
                Step::Say { tab, .. }
                | Step::Consent { tab, .. }
                | Step::CloseTab { tab }
                | Step::Reload { tab, .. }
                | Step::Leave { tab }
                | Step::GoBack { tab }
                | Step::Disconnect { tab, .. }
                | Step::WaitFor { tab, .. } => require_tab(&tabs, tab, &at)?,
                Step::ForgeSuccess { tab, chat } => {
                    require_tab(&tabs, tab, &at)?;
                    require_tab(&tabs, chat, &at)?;
                }
                Step::OpenHostilePage { tab, popup, .. } => {
                    tabs.push(tab.clone());
                    tabs.push(popup.clone());
                }
                Step::ForgeMessages { from, chat, .. } => {
                    require_tab(&tabs, from, &at)?;
                    require_tab(&tabs, chat, &at)?;
                    if from == chat {
                        return Err(format!(
                            "{at}: from and chat are both \"{chat}\": a storage event never fires in the tab that writes, so the forgeries must come from another platform tab (e.g. from = \"connectors\" after an open-connectors step)"
                        ));
                    }
                }
                Step::ExpectChat { tab, .. } => require_tab(&tabs, tab, &at)?,
                Step::RedirectFromAnotherSession { tab, .. } | Step::ReplayRedirect { tab } => {
                    tabs.push(tab.clone())
                }
                Step::ProbeAnotherOrg {
                    tab, callback_tab, ..
                } => {
                    require_tab(&tabs, tab, &at)?;
                    tabs.push(callback_tab.clone());
                }
                Step::ProviderRevokes | Step::Pause { .. } => {}
            }
            if let Step::Consent {
                after_ms: Some(ms), ..
            } = step
                && *ms > 30_000
            {
                return Err(format!(
                    "{at}: after_ms = {ms} is over the 30 000 ms a user may think"
                ));
            }
            if let Step::OpenChat { embedded: true, .. } = step
                && !self.platform.embeddable
            {
                return Err(format!(
                    "{at}: embedded = true needs a platform whose chat keeps a session in another site's frame (hint: add `embeddable = true` under [platform])"
                ));
            }
            if let Step::Pause { ms, .. } = step
                && *ms > 30_000
            {
                return Err(format!(
                    "{at}: ms = {ms} is over the 30 000 ms a pause may last"
                ));
            }
        }
        for tab in self.expect.chat.keys() {
            if !tabs.contains(tab) {
                return Err(format!(
                    "expect.chat names the tab \"{tab}\", which no step opens"
                ));
            }
        }
        Ok(())
    }
}

fn require_tab(tabs: &[String], tab: &str, at: &str) -> Result<(), String> {
    if tabs.iter().any(|t| t == tab) {
        Ok(())
    } else {
        Err(format!(
            "{at} uses the tab \"{tab}\" before a step opens it (open-chat, open-connectors, connect's `opens` and revisit-callback open tabs; opened so far: {})",
            if tabs.is_empty() {
                "none".to_owned()
            } else {
                tabs.join(", ")
            }
        ))
    }
}

/// Where in `text` a TOML error is, as `line N: ` (empty when the parser does not say).
pub fn toml_error_line(error: &toml::de::Error, text: &str) -> String {
    error
        .span()
        .map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        })
        .unwrap_or_default()
}

fn describe_toml_error(error: &toml::de::Error, text: &str) -> String {
    const HINT: &str = "hint: the keys of a scenario are description, mcp_conformance, [platform], [browser], [provider], [[steps]] and [expect]; scenarios/channels/baseline.toml is a complete example and README.md lists every key";
    if let Some(at_the_field) = diagnose::step_error::<Step>(text) {
        return format!("{at_the_field}\n{HINT}");
    }
    let location = toml_error_line(error, text);
    // The key on the line toml points at, when its message does not name it.
    let key = error
        .span()
        .and_then(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count();
            text.lines().nth(line)
        })
        .and_then(|line| line.split_once('='))
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty() && !error.message().contains(key.as_str()))
        .map(|key| format!("`{key}`: "))
        .unwrap_or_default();
    format!("{location}{key}{}\n{HINT}", error.message().trim())
}

/// A validation message about step N (`step N (do = ...)`) with the line where that step starts.
fn at_step_line(message: String, text: &str) -> String {
    let number = message
        .strip_prefix("step ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    match number.and_then(|n| diagnose::step_line(text, n)) {
        Some(line) => format!("line {line}: {message}"),
        None => message,
    }
}

/// A scenario found on disk.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    pub id: ScenarioId,
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// Every `*.toml` under `root` whose id matches `pattern` (globs over ids separated by
/// commas, `*` for all), sorted by id. Any file that does not parse is an error.
pub fn discover(root: &Path, pattern: &str) -> anyhow::Result<Vec<ScenarioFile>> {
    let matchers = pattern
        .split(',')
        .map(|glob| {
            glob::Pattern::new(glob.trim())
                .map_err(|e| anyhow::anyhow!("--scenario {glob:?} is not a glob: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let walk = format!("{}/**/*.toml", root.display());
    let mut found = Vec::new();
    for entry in glob::glob(&walk)? {
        let path = entry?;
        let id = scenario_id(root, &path);
        if !matchers.iter().any(|m| m.matches(&id.0)) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let scenario = Scenario::parse(&path, &text)?;
        found.push(ScenarioFile { id, path, scenario });
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    if found.is_empty() {
        anyhow::bail!(
            "no scenario under {} matches {pattern:?} (hint: `harness list` shows the ids)",
            root.display()
        );
    }
    Ok(found)
}

/// `scenarios/channels/no-bc.toml` under `scenarios/` is `channels/no-bc`.
pub fn scenario_id(root: &Path, path: &Path) -> ScenarioId {
    let relative = path.strip_prefix(root).unwrap_or(path).with_extension("");
    ScenarioId(
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The JSON Schema of scenario files, as committed at `scenarios/scenario.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    format!(
        "{}\n",
        serde_json::to_string_pretty(&schema).expect("a schema serializes")
    )
}

/// The `scenarios/` folder of this repository.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}
