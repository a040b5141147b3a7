//! Runs one scenario in one browser session against one target: applies the browser
//! configuration, signs in, performs the steps, then gathers what was observed.

use crate::browser::hostile::{HostileOrigin, RECEIVED_HOOK};
use crate::browser::other_session::OtherSession;
use crate::browser::recording::{DOC_HOOK, Recorder};
use crate::check::observation::{
    CallbackTab, ChatCheck, ChatState, CrossSessionRedirect, HostilePage, HostileReceipt, MARKER,
    Observation, OtherOrgProbe, SKIPPED_MARK,
};
use crate::contract::{self, Identity};
mod gather;
mod steps;

pub use gather::screenshots;
use gather::{read_chat, visible_count};

use crate::browser::webdriver::Session;
use crate::contract::Engine;
use crate::deployment::Target;
use crate::scenario::describe::describe_step;
use crate::scenario::{
    Activation, Condition, Decision, ForgedPayload, HostileOpens, OpenerMode, PauseClock,
    ScenarioFile, SlowOrigin, Step,
};
use anyhow::{Context, anyhow};
use fantoccini::wd::WindowHandle;
use fantoccini::{Client, Locator};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The recorder installed in every document (see `recorder.js`).
const RECORDER_JS: &str = include_str!("recorder.js");
/// WebDriver's code point for the Enter key (W3C WebDriver, "Keyboard actions").
const ENTER_KEY: &str = "\u{E007}";
/// The hidden function through which the harness asks a page for its surfaces.
const SURFACES_HOOK: &str = "__alumiaHarnessSurfaces";

/// How long a step may wait for the page (an element, a tab, an answer).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a step did not complete.
#[derive(Debug)]
pub enum StepError {
    Timeout(String),
    Failed(String),
    /// The step cannot be played on a deployment configured as it declared (its
    /// `[platform]` or `--target-*` flags): the case is `precondition-failed` with this
    /// reason, never the platform's failure.
    Precondition(String),
}

/// Everything a run produced before judging.
pub struct RawRun {
    /// Every BiDi event of the run, as received (kept among artifacts).
    pub events: Vec<serde_json::Value>,
    pub observation: Observation,
    pub step_error: Option<StepError>,
    pub identity: Identity,
    /// The tabs still open at the end, by name (for screenshots when the run failed).
    pub open_tabs: Vec<(String, WindowHandle)>,
    /// What the run did otherwise than its file says (a pause of the servers' clocks waited
    /// for real), for the report.
    pub notes: Vec<String>,
}

/// `(recorder)(config)` for a scenario's browser configuration and the recorder's transport.
pub fn recorder_call(file: &ScenarioFile, recorder: &Recorder<'_>) -> String {
    // Without BiDi the recorder is a page script: the configuration comes from the engine's own
    // switches (see `webdriver::Engine::switches_for`), never from the recorder.
    let none = crate::scenario::BrowserConfig::default();
    let browser = match recorder {
        Recorder::Bidi(_) => &file.scenario.browser,
        Recorder::Proxy(_) => &none,
    };
    let config = json!({
        "marker": MARKER,
        "channelName": contract::CHANNEL_NAME,
        "removeFeatures": browser.remove_features.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
        "storage": browser.storage.as_str(),
        "opener": match browser.opener { OpenerMode::Keep => "keep", OpenerMode::Noopener => "noopener" },
        "surfacesHook": SURFACES_HOOK,
        "transport": recorder.transport(),
        "reportUrl": recorder.report_url(),
        "docHook": DOC_HOOK,
    });
    format!("({RECORDER_JS})({config})")
}

struct Tabs {
    by_name: BTreeMap<String, WindowHandle>,
    /// Every tab ever named, closed ones included: context id (= window handle) to name.
    ever: BTreeMap<String, String>,
    /// The session's first window, until a step takes it.
    spare: Option<WindowHandle>,
    /// The session's first window, for good.
    home: WindowHandle,
    /// Tabs whose chat is in a frame of another site's page: steps there act in the frame.
    framed: std::collections::BTreeSet<String>,
}

impl Tabs {
    fn handle(&self, tab: &str) -> Result<WindowHandle, StepError> {
        self.by_name
            .get(tab)
            .cloned()
            .ok_or_else(|| StepError::Failed(format!("no open tab named \"{tab}\"")))
    }

    fn insert(&mut self, name: &str, handle: WindowHandle) {
        self.ever
            .insert(String::from(handle.clone()), name.to_owned());
        self.by_name.insert(name.to_owned(), handle);
    }

    /// Context id (= window handle) to tab name, for every tab ever named.
    fn names(&self) -> BTreeMap<String, String> {
        self.ever.clone()
    }
}

struct Run<'a> {
    client: &'a Client,
    engine: Engine,
    recorder: Recorder<'a>,
    /// Without BiDi: which tab each reporting document belongs to (read from the page), ...
    documents: BTreeMap<String, String>,
    /// ... and, for documents that were never current when the harness looked (a callback
    /// that closed itself), the tab the step running when the document reported first acted
    /// on: by wall-clock time in ms (the browser's and the harness's clock are the machine's),
    /// so that reports arriving late are still attributed to the step that caused them.
    owners: Vec<(u64, String)>,
    /// Without BiDi: tabs seen gone (closed by themselves), in order.
    gone: Vec<String>,
    target: &'a Target,
    identity: &'a Identity,
    tabs: Tabs,
    said: BTreeMap<String, usize>,
    answers_seen: BTreeMap<String, usize>,
    consent_at: Option<Instant>,
    observation: Observation,
    /// Names handed out to tabs the harness did not open itself.
    last_callback_url: Option<String>,
    /// The third origin of hostile pages, started by the first step that needs it.
    hostile: Option<HostileOrigin>,
    /// Another browser session (over HTTP), signed in by the first step that needs it.
    other: Option<OtherSession>,
    /// Connect URL templates by connector, learnt at sign-in for the steps that need them.
    connect_urls: BTreeMap<String, String>,
    /// WebDriver commands outside the steps that did not answer in time (see [`answered`]).
    unanswered: std::sync::Mutex<Vec<String>>,
    /// Why the step just run was skipped, for its line in the trace.
    step_note: Option<String>,
    /// What the run did otherwise than its file says, for the report (not the verdict).
    notes: Vec<String>,
}

/// How long a WebDriver command outside a step may take before the harness stops waiting.
const ANSWER: Duration = Duration::from_secs(10);

/// The answer to a WebDriver command outside a step, or `None` when it failed or did not
/// answer within [`ANSWER`]; a command that did not answer is noted in `unanswered`, which
/// makes the run a `timeout` naming it instead of a run that hangs.
async fn answered<T, E>(
    unanswered: &std::sync::Mutex<Vec<String>>,
    what: impl FnOnce() -> String,
    command: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(ANSWER, command).await {
        Ok(answer) => answer.ok(),
        Err(_) => {
            unanswered
                .lock()
                .expect("not poisoned")
                .push(format!("{} (no answer within {ANSWER:?})", what()));
            None
        }
    }
}

fn cmd<T>(result: Result<T, fantoccini::error::CmdError>, what: &str) -> Result<T, StepError> {
    result.map_err(|e| StepError::Failed(format!("{what}: {}", describe(&e))))
}

/// A WebDriver error with its code: some drivers (WebKitWebDriver) send an empty message.
fn describe(error: &fantoccini::error::CmdError) -> String {
    match error {
        fantoccini::error::CmdError::Standard(e) if e.message.is_empty() => {
            format!("webdriver returned error \"{}\" with no message", e.error())
        }
        fantoccini::error::CmdError::Standard(e) => {
            format!("webdriver returned error \"{}\": {}", e.error(), e.message)
        }
        other => other.to_string(),
    }
}

impl Run<'_> {
    async fn switch(&self, tab: &str) -> Result<(), StepError> {
        let handle = self.tabs.handle(tab)?;
        cmd(
            self.client.switch_to_window(handle).await,
            &format!("switch to tab {tab}"),
        )?;
        if self.tabs.framed.contains(tab) {
            cmd(
                self.client.enter_frame(0).await,
                &format!("enter the frame of tab {tab} that embeds the chat"),
            )?;
        }
        Ok(())
    }

    /// Returns a tab to navigate: the existing one, the spare first window, or a new tab.
    async fn tab_for(&mut self, tab: &str) -> Result<(), StepError> {
        // The step loads a page of its own in the tab: a chat frame it showed is gone.
        self.tabs.framed.remove(tab);
        if self.tabs.by_name.contains_key(tab) {
            return self.switch(tab).await;
        }
        let handle = match self.tabs.spare.take() {
            Some(handle) => handle,
            None => {
                // New Window needs the current window to be open, and the one WebDriver is on
                // may be closing itself (a callback page the harness just looked at):
                // WebKitWebDriver then answers "no such window". Ask from the session's first
                // window (the first step's page), which no callback ever loads in. (The order
                // of WebKit's window list is not the order of creation.)
                let open = self.windows().await?;
                let from = if open.contains(&self.tabs.home) {
                    Some(self.tabs.home.clone())
                } else {
                    // A step closed the first window: any other that is open.
                    open.first().cloned()
                };
                if let Some(from) = from {
                    cmd(
                        self.client.switch_to_window(from).await,
                        "switch to the session's first window",
                    )?;
                }
                // MiniBrowser (WebKitGTK) puts a WebDriver "tab" behind the current one: its page
                // is hidden, and the popup blocker refuses a window.open even on a click there
                // (scripts/repro/webkit-popup-hang.py, docs/webkit-hang.md). A window is shown,
                // as a tab the user opened would be.
                let as_tab = self.engine != Engine::Webkit;
                cmd(self.client.new_window(as_tab).await, "open a new tab")?.handle
            }
        };
        cmd(
            self.client.switch_to_window(handle.clone()).await,
            "switch to the new tab",
        )?;
        self.tabs.insert(tab, handle);
        Ok(())
    }

    async fn wait_css(&self, css: &str) -> Result<fantoccini::elements::Element, StepError> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|_| {
                StepError::Timeout(format!("{css} did not appear within {STEP_TIMEOUT:?}"))
            })
    }

    async fn goto_ready(&self, path: &str) -> Result<(), StepError> {
        let url = contract::platform_url(&self.target.platform, path);
        cmd(self.client.goto(url.as_str()).await, &format!("open {url}"))?;
        self.wait_css("body[data-ready=true]").await.map(|_| ())
    }

    async fn count(&self, css: &str) -> Result<usize, StepError> {
        let value = cmd(
            self.client
                .execute(
                    "return document.querySelectorAll(arguments[0]).length",
                    vec![json!(css)],
                )
                .await,
            "count elements",
        )?;
        Ok(value.as_u64().unwrap_or(0) as usize)
    }

    async fn poll_until<F, Fut>(&self, what: &str, mut ready: F) -> Result<(), StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, StepError>>,
    {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if ready().await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StepError::Timeout(format!(
                    "{what} within {STEP_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn windows(&self) -> Result<Vec<WindowHandle>, StepError> {
        cmd(self.client.windows().await, "list windows")
    }

    /// Names the tab a click opened `opens`: from BiDi, or from the window list.
    async fn await_new_tab(
        &mut self,
        events_before: usize,
        windows_before: &[WindowHandle],
        opens: &str,
        what: &str,
    ) -> Result<(), StepError> {
        // The new tab: from BiDi, seen even if it closes itself before a poll would;
        // without BiDi, a new window handle, or a new document with an opener.
        let deadline = Instant::now() + STEP_TIMEOUT;
        let handle = loop {
            let events = self.recorder.events();
            let created = events.iter().skip(events_before).find(|e| {
                e.method == "browsingContext.contextCreated" && e.params["parent"].is_null()
            });
            if let Some(event) = created {
                let context = event.params["context"].as_str().unwrap_or("").to_owned();
                break Some(
                    WindowHandle::try_from(context)
                        .map_err(|e| StepError::Failed(format!("bad context id: {e}")))?,
                );
            }
            if let Recorder::Proxy(_) = self.recorder {
                let now = self.windows().await?;
                if let Some(new) = now.into_iter().find(|w| !windows_before.contains(w)) {
                    break Some(new);
                }
                // A callback page that closes itself can be gone before a window list
                // shows its tab (WebKit's click may return only after the round trip).
                // Any other page waits for the user: its tab must show up.
                let callback_loaded = events.iter().skip(events_before).any(|e| {
                    e.params["text"].as_str().is_some_and(|t| {
                        t.contains("\"e\":\"document\"") && t.contains(contract::CALLBACK_PATH)
                    })
                });
                let open = self.windows().await?;
                if callback_loaded
                    && open.len() == windows_before.len()
                    && Instant::now() + STEP_TIMEOUT - deadline > Duration::from_secs(2)
                {
                    break None;
                }
            }
            if Instant::now() > deadline {
                return Err(StepError::Failed(format!(
                    "no new tab opened within {STEP_TIMEOUT:?} after clicking {what}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let Some(handle) = handle else {
            self.gone.push(opens.to_owned());
            return Ok(());
        };
        self.tabs.insert(opens, handle);
        Ok(())
    }

    fn note_callback_urls(&mut self) {
        for event in self.recorder.events() {
            let text = event.params["text"].as_str().unwrap_or("");
            if let Some(json) = text.strip_prefix(MARKER)
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(json)
                && value["e"] == "document"
                && let Some(url) = value["url"].as_str()
                && url::Url::parse(url).is_ok_and(|u| contract::is_callback(&u))
            {
                self.last_callback_url = Some(url.to_owned());
            }
        }
    }

    /// The tab a step navigates in or opens: unattributed documents arriving from now on
    /// belong to it (used without BiDi only).
    fn note_owner(&mut self, step: &Step) {
        let tab = match step {
            Step::Connect { opens, .. } => opens,
            // The hostile page is not the platform's: what it opens is.
            Step::OpenHostilePage { popup, .. } => popup,
            Step::ProbeAnotherOrg { callback_tab, .. } => callback_tab,
            Step::Consent { tab, .. }
            | Step::RedirectFromAnotherSession { tab, .. }
            | Step::ReplayRedirect { tab }
            | Step::Reload { tab, .. }
            | Step::Leave { tab }
            | Step::GoBack { tab }
            | Step::RevisitCallback { tab }
            | Step::OpenChat { tab, .. }
            | Step::OpenConnectors { tab } => tab,
            _ => return,
        };
        self.owners.push((wall_clock_ms(), tab.clone()));
    }
}

/// Runs the steps of `file` and gathers the observation.
pub async fn run_steps(
    session: &Session,
    target: &Target,
    file: &ScenarioFile,
    identity: &Identity,
) -> anyhow::Result<RawRun> {
    let client = &session.client;
    let recorder = match (&session.bidi, &session.proxy) {
        (Some(bidi), _) => Recorder::Bidi(bidi),
        (None, Some(proxy)) => Recorder::Proxy(proxy),
        (None, None) => anyhow::bail!("the browser session has neither BiDi nor a recording proxy"),
    };
    target
        .provider
        .set_faults(&file.scenario.provider)
        .await
        .context("setting the provider's faults")?;
    let first_request = target.provider.requests().await?.len();
    let first_violation = target.provider.violations().await?.len();

    let (first_window, connect_urls, installed) =
        tokio::time::timeout(STEP_TIMEOUT * 2, prepare(client, &recorder, target, file, identity))
            .await
            .map_err(|_| {
                anyhow!(
                    "signing in and installing the recorder did not finish within {:?} (the browser stopped answering WebDriver)",
                    STEP_TIMEOUT * 2
                )
            })??;
    recorder.clear();

    let mut run = Run {
        client,
        engine: session.engine,
        recorder,
        documents: BTreeMap::new(),
        owners: Vec::new(),
        gone: Vec::new(),
        target,
        identity,
        tabs: Tabs {
            by_name: BTreeMap::new(),
            ever: BTreeMap::new(),
            spare: Some(first_window.clone()),
            home: first_window,
            framed: Default::default(),
        },
        said: BTreeMap::new(),
        answers_seen: BTreeMap::new(),
        consent_at: None,
        observation: Observation {
            org: identity.org.clone(),
            ..Observation::default()
        },
        last_callback_url: None,
        hostile: None,
        other: None,
        connect_urls,
        unanswered: std::sync::Mutex::new(Vec::new()),
        step_note: None,
        notes: Vec::new(),
    };
    let mut step_error = None;
    for (index, step) in file.scenario.steps.iter().enumerate() {
        run.note_callback_urls();
        run.note_owner(step);
        let started = Instant::now();
        run.observation
            .step_started_ms
            .push(crate::check::timeline::wall_clock_ms());
        // A WebDriver command has no timeout of its own: a step that hangs fails instead.
        let budget = step_budget(step);
        let result = match tokio::time::timeout(budget, run.step(step)).await {
            Ok(result) => result,
            Err(_) => Err(StepError::Timeout(format!(
                "the step did not finish within {budget:?} (a WebDriver command hung; the driver log is among the artifacts)"
            ))),
        };
        run.look_at_tabs().await;
        let mut line = format!("{:>2}. {}", index + 1, describe_step(step));
        if let Some(note) = run.step_note.take() {
            line = format!("{line}  {SKIPPED_MARK}{note})");
        }
        match result {
            Ok(()) => run.observation.steps.push(line),
            Err(error) => {
                run.observation.steps.push(format!(
                    "{line}  <- stopped here after {} ms",
                    started.elapsed().as_millis()
                ));
                step_error = Some(error);
                break;
            }
        }
    }

    run.gather_tabs().await;
    let events: Vec<serde_json::Value> = recorder
        .events()
        .iter()
        .map(|e| json!({ "method": e.method, "params": e.params }))
        .collect();

    if tokio::time::timeout(ANSWER, recorder.uninstall(installed))
        .await
        .is_err()
    {
        run.unanswered
            .lock()
            .expect("not poisoned")
            .push(format!("remove the recorder (no answer within {ANSWER:?})"));
    }
    let unanswered = std::mem::take(&mut *run.unanswered.lock().expect("not poisoned"));
    if step_error.is_none() && !unanswered.is_empty() {
        step_error = Some(StepError::Timeout(format!(
            "the browser stopped answering WebDriver: {}",
            unanswered.join("; ")
        )));
    }
    let requests = target.provider.requests().await?;
    run.observation.provider_requests = requests.into_iter().skip(first_request).collect();
    run.observation.grants = target
        .provider
        .grants()
        .await?
        .into_iter()
        .filter(|grant| grant.issued_seq > first_request as u64)
        .collect();
    run.observation.provider_violations = target
        .provider
        .violations()
        .await?
        .into_iter()
        .skip(first_violation)
        .collect();
    run.observation.secrets = target.provider.secrets().await?;
    if let Some(profile) = target.provider.profile() {
        // A real provider: the codes the browser carried are the secrets the harness knows.
        let platform_origin = target.platform.origin().ascii_serialization();
        run.observation.real_provider = Some(profile.path.display().to_string());
        run.observation.secrets = fake_provider::SecretLedger::from_secrets(
            run.observation
                .codes_in_redirects(&platform_origin)
                .into_iter()
                .map(|value| fake_provider::Secret {
                    kind: fake_provider::SecretKind::AuthorizationCode,
                    value,
                }),
        );
    }
    Ok(RawRun {
        events,
        observation: run.observation,
        step_error,
        identity: identity.clone(),
        open_tabs: run
            .tabs
            .by_name
            .iter()
            .map(|(name, handle)| (name.clone(), handle.clone()))
            .collect(),
        notes: run.notes,
    })
}

/// Before the steps: a single window, the test user signed in, the storage of an earlier
/// scenario cleared, the connect URLs the hostile steps need learnt, the recorder installed.
async fn prepare(
    client: &Client,
    recorder: &Recorder<'_>,
    target: &Target,
    file: &ScenarioFile,
    identity: &Identity,
) -> anyhow::Result<(
    WindowHandle,
    BTreeMap<String, String>,
    crate::browser::recording::Installed,
)> {
    // One window left from an earlier scenario in a reused session, at most.
    let first_window = reset_windows(client).await?;
    // No cookie of an earlier scenario's server (cookies are per host, not per port).
    recorder.forget_cookies().await?;
    // Sign in before the recorder starts: the trace begins with the scenario's first step.
    let connectors_page =
        contract::platform_url(&target.platform, &contract::connectors_path(&identity.org));
    let login = target.login_url(&identity.user, &identity.org, connectors_page.path());
    client.goto(login.as_str()).await?;
    client
        .wait()
        .at_most(STEP_TIMEOUT)
        .for_element(Locator::Css("body[data-ready=true]"))
        .await
        .with_context(|| {
            format!(
                "signing in at {login} did not reach a ready page (see docs/target-contract.md)"
            )
        })?;
    // Nothing of an earlier scenario on this origin: its storage starts empty.
    client
        .execute(
            "try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}",
            vec![],
        )
        .await?;
    // What hostile steps need of the platform's own routes, learnt from its connectors page.
    let mut connect_urls = BTreeMap::new();
    for connector in connectors_to_learn(&file.scenario.steps) {
        let template = contract::learn_connect_url(client, &identity.org, &connector)
            .await
            .with_context(|| format!("learning the connect URL of {connector}"))?;
        connect_urls.insert(connector, template);
    }
    let latency = file.scenario.browser.latency.as_ref().map(|latency| {
        let origin = match latency.origin {
            SlowOrigin::Platform => target.platform.clone(),
            SlowOrigin::Provider => target.provider.public_url(),
        };
        (origin, std::time::Duration::from_millis(latency.ms))
    });
    let installed = recorder
        .install(
            &recorder_call(file, recorder),
            latency.as_ref().map(|(origin, by)| (origin, *by)),
        )
        .await?;
    Ok((first_window, connect_urls, installed))
}

/// Milliseconds since the Unix epoch, as the recorder's `Date.now()` gives them.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The connectors whose connect URL the scenario's steps need: a hostile page starts the
/// flow, or another session starts it.
fn connectors_to_learn(steps: &[Step]) -> Vec<String> {
    let mut connectors: Vec<String> = Vec::new();
    for step in steps {
        let connector = match step {
            Step::OpenHostilePage {
                opens: HostileOpens::Connect,
                connector,
                ..
            }
            | Step::RedirectFromAnotherSession { connector, .. }
            | Step::ProbeAnotherOrg { connector, .. } => connector,
            _ => continue,
        };
        if !connectors.contains(connector) {
            connectors.push(connector.clone());
        }
    }
    connectors
}

/// How long a step may take in all: its own waits, and a margin for the commands around them.
fn step_budget(step: &Step) -> Duration {
    let pause = match step {
        Step::Pause { ms, .. }
        | Step::Consent {
            after_ms: Some(ms), ..
        } => Duration::from_millis(*ms),
        _ => Duration::ZERO,
    };
    STEP_TIMEOUT * 3 + pause
}

/// Closes every window but one and returns it: a reused session starts each scenario with a
/// single tab.
pub async fn reset_windows(client: &Client) -> anyhow::Result<WindowHandle> {
    let windows = client.windows().await?;
    let keep = windows
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the browser has no window"))?;
    for extra in windows.iter().skip(1) {
        client.switch_to_window(extra.clone()).await?;
        client.close_window().await?;
    }
    client.switch_to_window(keep.clone()).await?;
    Ok(keep)
}
