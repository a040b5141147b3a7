//! Runs one scenario in one browser session against one target: applies the browser
//! configuration, signs in, performs the steps, then gathers what was observed.

use crate::contract::{self, Identity};
use crate::hostile::{HostileOrigin, RECEIVED_HOOK};
use crate::observe::{
    CallbackTab, ChatCheck, ChatState, CrossSessionRedirect, HostilePage, HostileReceipt, MARKER,
    Observation, OtherOrgProbe, SKIPPED_MARK,
};
use crate::other_session::OtherSession;
use crate::recording::{DOC_HOOK, Recorder};
use crate::scenario::{
    Activation, Condition, Decision, ForgedPayload, HostileOpens, OpenerMode, ScenarioFile, Step,
    StorageMode,
};
use crate::target::Target;
use crate::webdriver::{Engine, Session};
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
        "storage": match browser.storage { StorageMode::Available => "available", StorageMode::Throws => "throws" },
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
        )
    }

    /// Returns a tab to navigate: the existing one, the spare first window, or a new tab.
    async fn tab_for(&mut self, tab: &str) -> Result<(), StepError> {
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

    async fn step(&mut self, step: &Step) -> Result<(), StepError> {
        let org = self.identity.org.clone();
        match step {
            Step::OpenChat { tab, chat } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::chat_path(&org, chat)).await
            }
            Step::OpenConnectors { tab } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::connectors_path(&org)).await
            }
            Step::Say { text, tab, wait } => {
                self.switch(tab).await?;
                let before = self.count("[data-testid=chat-message]").await?;
                let input = self.wait_css("[data-testid=chat-input]").await?;
                cmd(input.send_keys(text).await, "type the message")?;
                cmd(
                    self.client
                        .find(Locator::Css("[data-testid=chat-send]"))
                        .await,
                    "find [data-testid=chat-send]",
                )?
                .click()
                .await
                .map_err(|e| StepError::Failed(format!("click send: {e}")))?;
                *self.said.entry(tab.clone()).or_default() += 1;
                if !wait {
                    return Ok(());
                }
                self.poll_until("the chat to answer the message", || async {
                    Ok(self.count("[data-testid=chat-message]").await? >= before + 2)
                })
                .await
            }
            Step::Connect {
                tab,
                connector,
                opens,
                by,
                unless_answered,
            } => {
                self.switch(tab).await?;
                if *unless_answered && self.count("[data-testid=agent-answer]").await? > 0 {
                    self.step_note = Some("the chat has answered".into());
                    return Ok(());
                }
                let events_before = self.recorder.events().len();
                let windows_before = self.windows().await?;
                let css = match connector {
                    Some(name) => format!("[data-testid=connect-{name}]"),
                    None => "[data-testid=connect-card-button]".to_owned(),
                };
                self.wait_css(&css).await?;
                let buttons = cmd(
                    self.client.find_all(Locator::Css(&css)).await,
                    "find connect buttons",
                )?;
                let mut clicked = false;
                for button in buttons.iter().rev() {
                    if button.is_displayed().await.unwrap_or(false) {
                        match by {
                            Activation::Click => cmd(button.click().await, "click connect")?,
                            // Element Send Keys focuses the button, then presses Enter on it.
                            Activation::Keyboard => cmd(
                                button.send_keys(ENTER_KEY).await,
                                "press Enter on the connect button",
                            )?,
                        }
                        clicked = true;
                        break;
                    }
                }
                if !clicked {
                    return Err(StepError::Failed(format!("no visible {css} to click")));
                }
                self.await_new_tab(events_before, &windows_before, opens, &css)
                    .await
            }
            Step::Consent {
                decision,
                tab,
                after_ms,
            } => {
                self.switch(tab).await?;
                let css = match decision {
                    Decision::Allow => "[data-testid=consent-allow]",
                    Decision::Deny => "[data-testid=consent-deny]",
                };
                let button = self.wait_css(css).await?;
                if let Some(ms) = after_ms {
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                }
                self.consent_at = Some(Instant::now());
                cmd(button.click().await, "click the consent button")
            }
            Step::CloseTab { tab } => {
                self.switch(tab).await?;
                cmd(self.client.close_window().await, "close the tab")?;
                self.observation.closed_by_user.push(tab.clone());
                if let Recorder::Proxy(_) = self.recorder {
                    self.gone.push(tab.clone());
                }
                self.tabs.by_name.remove(tab);
                if let Some(other) = self.tabs.by_name.values().next().cloned() {
                    cmd(
                        self.client.switch_to_window(other).await,
                        "switch after closing",
                    )?;
                }
                Ok(())
            }
            Step::Reload { tab } => {
                self.switch(tab).await?;
                cmd(self.client.refresh().await, "reload")?;
                self.answers_seen.insert(tab.clone(), 0);
                self.wait_css("body[data-ready=true]").await.map(|_| ())
            }
            Step::Disconnect { connector, tab } => {
                self.switch(tab).await?;
                let button = self
                    .wait_css(&format!("[data-testid=disconnect-{connector}]"))
                    .await?;
                cmd(button.click().await, "click disconnect")?;
                let status = format!("[data-testid=connector-status-{connector}]");
                self.poll_until("the connector to show revoked", || async {
                    let element = self.wait_css(&status).await?;
                    Ok(element.text().await.unwrap_or_default().trim() == "revoked")
                })
                .await
            }
            Step::ProviderRevokes => self
                .target
                .provider
                .revoke_all_grants()
                .await
                .map_err(|e| StepError::Failed(format!("provider revocation: {e}"))),
            Step::RevisitCallback { tab } => {
                let url = self.last_callback_url.clone().ok_or_else(|| {
                    StepError::Failed("no callback page was loaded before".into())
                })?;
                self.tab_for(tab).await?;
                cmd(self.client.goto(&url).await, "open the callback again")
            }
            Step::WaitFor { condition, tab } => match condition {
                Condition::TabClosed => {
                    if self.gone.contains(tab) && !self.tabs.by_name.contains_key(tab) {
                        return Ok(());
                    }
                    let handle = self.tabs.handle(tab)?;
                    let deadline = Instant::now() + STEP_TIMEOUT;
                    while self.windows().await?.contains(&handle) {
                        if Instant::now() > deadline {
                            return Err(StepError::Timeout(format!(
                                "tab {tab} did not close within {STEP_TIMEOUT:?}"
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    if let Recorder::Proxy(_) = self.recorder
                        && !self.gone.contains(tab)
                    {
                        self.gone.push(tab.clone());
                    }
                    self.tabs.by_name.remove(tab);
                    Ok(())
                }
                Condition::Answer => {
                    self.switch(tab).await?;
                    let seen = self.answers_seen.get(tab).copied().unwrap_or(0);
                    self.poll_until(&format!("an agent answer in tab {tab}"), || async {
                        Ok(self.count("[data-testid=agent-answer]").await? > seen)
                    })
                    .await?;
                    let now = self.count("[data-testid=agent-answer]").await?;
                    self.answers_seen.insert(tab.clone(), now);
                    if let Some(at) = self.consent_at {
                        self.observation
                            .resume_latencies_ms
                            .push(at.elapsed().as_millis() as u64);
                    }
                    Ok(())
                }
                Condition::ConsentPage => {
                    self.switch(tab).await?;
                    self.wait_css("[data-testid=consent-page]")
                        .await
                        .map(|_| ())
                }
                Condition::CardError => {
                    self.switch(tab).await?;
                    self.poll_until(&format!("the card error in tab {tab}"), || async {
                        Ok(
                            visible_count(self.client, "[data-testid=connect-card-error]").await?
                                > 0,
                        )
                    })
                    .await
                }
                Condition::ReconnectPrompt => {
                    self.switch(tab).await?;
                    self.poll_until(
                        &format!("a tool error and a reconnect prompt in tab {tab}"),
                        || async {
                            Ok(self.count("[data-testid=tool-error]").await? > 0
                                && self.count("[data-testid=reconnect-prompt]").await? > 0)
                        },
                    )
                    .await
                }
            },
            Step::ForgeSuccess { tab, chat } => {
                let connection = self.card_connection(chat).await?;
                self.switch(tab).await?;
                let posted = cmd(
                    self.client
                        .execute(
                            "if (!window.opener) { return false; } \
                             window.opener.postMessage({ result: 'success', connectionId: arguments[0] }, '*'); \
                             return true;",
                            vec![json!(connection)],
                        )
                        .await,
                    "post the forged message",
                )?;
                if posted != json!(true) {
                    return Err(StepError::Failed(format!(
                        "tab {tab} has no opener to post to"
                    )));
                }
                Ok(())
            }
            Step::Pause { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(())
            }
            Step::OpenHostilePage {
                tab,
                opens,
                popup,
                connector,
            } => {
                let url = match opens {
                    HostileOpens::Callback => self.last_callback_url.clone().ok_or_else(|| {
                        StepError::Failed("no callback page was loaded before".into())
                    })?,
                    HostileOpens::Connect => {
                        contract::connect_url_for(self.connect_url_template(connector)?, &org)
                    }
                };
                let page = self.third_origin().await?.opener_page();
                self.tab_for(tab).await?;
                cmd(self.client.goto(&page).await, "open the hostile page")?;
                if !self.observation.hostile_pages.iter().any(|p| &p.tab == tab) {
                    self.observation.hostile_pages.push(HostilePage {
                        tab: tab.clone(),
                        received: None,
                    });
                }
                let button = self.wait_css("[data-testid=hostile-open]").await?;
                cmd(
                    self.client
                        .execute(
                            "document.body.setAttribute('data-open', arguments[0]);",
                            vec![json!(url)],
                        )
                        .await,
                    "tell the hostile page what to open",
                )?;
                let events_before = self.recorder.events().len();
                let windows_before = self.windows().await?;
                cmd(button.click().await, "click the hostile page's button")?;
                self.await_new_tab(
                    events_before,
                    &windows_before,
                    popup,
                    "the hostile page's button",
                )
                .await
            }
            Step::Leave { tab } => {
                self.switch(tab).await?;
                let page = self.third_origin().await?.elsewhere_page();
                cmd(self.client.goto(&page).await, "go to another site")?;
                self.wait_css("[data-testid=elsewhere]").await.map(|_| ())
            }
            Step::GoBack { tab } => {
                self.switch(tab).await?;
                cmd(self.client.back().await, "go back")?;
                // Restored from the back/forward cache or loaded again: either way its answers
                // are counted from here.
                self.answers_seen.insert(tab.clone(), 0);
                self.wait_css("body[data-ready=true]").await.map(|_| ())
            }
            Step::ForgeMessages {
                from,
                chat,
                payload,
            } => {
                let connection = self.card_connection(chat).await?;
                let payloads = forged_payloads(*payload, &connection);
                for data in &payloads {
                    self.observation.forged_payloads.push(data.clone());
                    self.observation
                        .forged_payloads
                        .push(json!(storage_text(data)));
                }
                self.switch(from).await?;
                cmd(
                    self.client
                        .execute(
                            "var name = arguments[1], key = arguments[2]; \
                             arguments[0].forEach(function (data) { \
                               try { var channel = new BroadcastChannel(name); channel.postMessage(data); channel.close(); } catch (e) {} \
                               try { localStorage.setItem(key, typeof data === 'string' ? data : JSON.stringify(data)); } catch (e) {} \
                             }); return true;",
                            vec![
                                json!(payloads),
                                json!(contract::CHANNEL_NAME),
                                json!(contract::STORAGE_KEY),
                            ],
                        )
                        .await,
                    "forge messages on BroadcastChannel and localStorage",
                )?;
                self.switch(chat).await?;
                cmd(
                    self.client
                        .execute(
                            "arguments[0].forEach(function (data) { window.postMessage(data, location.origin); }); return true;",
                            vec![json!(payloads)],
                        )
                        .await,
                    "forge messages with postMessage",
                )?;
                // Let every delivery and the card's confirmation with its server happen.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(())
            }
            Step::ExpectChat { tab, state } => {
                self.switch(tab).await?;
                let read = read_chat(self.client, self.said.get(tab).copied().unwrap_or(0))
                    .await
                    .ok_or_else(|| StepError::Failed(format!("tab {tab} shows no chat")))?;
                self.observation.chat_checks.push(ChatCheck {
                    step: format!(
                        "{}. {}",
                        self.observation.steps.len() + 1,
                        describe_step(step)
                    ),
                    tab: tab.clone(),
                    expected: *state,
                    state: read,
                });
                Ok(())
            }
            Step::RedirectFromAnotherSession { tab, connector } => {
                let template = self.connect_url_template(connector)?.to_owned();
                let other = self.other_session().await?;
                let authorize = other
                    .start_connect(&template)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let redirect = other
                    .consent(&authorize)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let before = self.provider_requests().await?.len();
                self.tab_for(tab).await?;
                cmd(
                    self.client.goto(redirect.as_str()).await,
                    "open the other session's redirect",
                )?;
                let tokens_issued = self
                    .provider_requests()
                    .await?
                    .iter()
                    .skip(before)
                    .filter(|r| r.path == "/token" && r.status == 200)
                    .count();
                let other = self.other_session().await?;
                let (status, _) = other
                    .connector_status(connector)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                self.observation
                    .cross_session_redirects
                    .push(CrossSessionRedirect {
                        tab: tab.clone(),
                        tokens_issued,
                        other_session_status: status,
                    });
                Ok(())
            }
            Step::ProbeAnotherOrg {
                tab,
                callback_tab,
                connector,
            } => {
                let template = self.connect_url_template(connector)?.to_owned();
                let other = self.other_session().await?;
                let failed = |e: anyhow::Error| StepError::Failed(format!("{e:#}"));
                other.start_connect(&template).await.map_err(failed)?;
                let (_, connection) = other.connector_status(connector).await.map_err(failed)?;
                let other_org = other.identity.org.clone();
                self.switch(tab).await?;
                for path in [
                    contract::connection_status_path(&org, &connection),
                    contract::connection_status_path(&other_org, &connection),
                    contract::connectors_api_path(&other_org),
                ] {
                    let url = contract::platform_url(&self.target.platform, &path);
                    let answer = cmd(
                        self.client
                            .execute_async(
                                "var done = arguments[arguments.length - 1]; \
                                 fetch(arguments[0], { credentials: 'same-origin', headers: { accept: 'application/json' } }) \
                                   .then(function (r) { return r.text().then(function (t) { done({ status: r.status, body: t }); }); }) \
                                   .catch(function (e) { done({ status: 0, body: String(e) }); });",
                                vec![json!(url.as_str())],
                            )
                            .await,
                        "ask the platform from the page",
                    )?;
                    self.observation.other_org_probes.push(OtherOrgProbe {
                        what: format!("GET {path}"),
                        by_its_member: false,
                        status: answer["status"].as_u64().unwrap_or(0) as u16,
                        body: answer["body"].as_str().unwrap_or("").to_owned(),
                        connection_id: connection.clone(),
                    });
                }
                let mut callback =
                    contract::platform_url(&self.target.platform, contract::CALLBACK_PATH);
                callback
                    .query_pairs_mut()
                    .append_pair("oauth_result", "success")
                    .append_pair("connection_id", &connection)
                    .append_pair("oauth_message", "Connected to Files.");
                self.tab_for(callback_tab).await?;
                cmd(
                    self.client.goto(callback.as_str()).await,
                    "open the callback naming the other org's connection",
                )?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let other = self.other_session().await?;
                let (status, body) = other.connection_status(&connection).await.map_err(failed)?;
                self.observation.other_org_probes.push(OtherOrgProbe {
                    what: format!(
                        "GET {}",
                        contract::connection_status_path(&other_org, &connection)
                    ),
                    by_its_member: true,
                    status,
                    body,
                    connection_id: connection,
                });
                Ok(())
            }
            Step::ReplayRedirect { tab } => {
                let requests = self.provider_requests().await?;
                let authorize = requests
                    .iter()
                    .rev()
                    .find(|r| r.path == "/authorize")
                    .ok_or_else(|| StepError::Failed("no sign-in reached the provider".into()))?;
                let pairs: BTreeMap<String, String> =
                    url::form_urlencoded::parse(authorize.query.as_bytes())
                        .into_owned()
                        .collect();
                let secrets = self
                    .target
                    .provider
                    .secrets()
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let code = secrets
                    .all()
                    .iter()
                    .rev()
                    .find(|s| s.kind == fake_provider::SecretKind::AuthorizationCode)
                    .map(|s| s.value.clone())
                    .ok_or_else(|| StepError::Failed("the provider issued no code".into()))?;
                let (Some(redirect_uri), Some(state)) =
                    (pairs.get("redirect_uri"), pairs.get("state"))
                else {
                    return Err(StepError::Failed(
                        "the last authorization request has no redirect_uri or state".into(),
                    ));
                };
                let mut url = url::Url::parse(redirect_uri)
                    .map_err(|e| StepError::Failed(format!("redirect_uri: {e}")))?;
                url.query_pairs_mut()
                    .append_pair("code", &code)
                    .append_pair("state", state);
                self.tab_for(tab).await?;
                cmd(
                    self.client.goto(url.as_str()).await,
                    "open the platform's redirect URL again",
                )
            }
        }
    }

    /// The connection of the connect card in the chat tab `chat`.
    async fn card_connection(&self, chat: &str) -> Result<String, StepError> {
        self.switch(chat).await?;
        let card = self.wait_css("[data-testid=connect-card]").await?;
        cmd(
            card.attr("data-connection-id").await,
            "read the card's connection",
        )?
        .ok_or_else(|| StepError::Failed("the card has no data-connection-id".into()))
    }

    async fn provider_requests(&self) -> Result<Vec<fake_provider::LoggedRequest>, StepError> {
        self.target
            .provider
            .requests()
            .await
            .map_err(|e| StepError::Failed(format!("read the provider's requests: {e:#}")))
    }

    /// The connect URL of `connector` learnt at sign-in (with `{org}` for the org).
    fn connect_url_template(&self, connector: &str) -> Result<&str, StepError> {
        self.connect_urls
            .get(connector)
            .map(String::as_str)
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "the connect URL of {connector} was not learnt at sign-in"
                ))
            })
    }

    /// The other browser session, signed in on first use as another user of another org.
    async fn other_session(&mut self) -> Result<&OtherSession, StepError> {
        if self.other.is_none() {
            let identity = Identity {
                org: format!("{}-other", self.identity.org),
                user: format!("{}-other", self.identity.user),
            };
            let login = self.target.login_url(&identity.user, &identity.org, "/");
            let session = OtherSession::sign_in(&self.target.platform, identity.clone(), login)
                .await
                .map_err(|e| StepError::Failed(format!("{e:#}")))?;
            self.observation.other_identity = Some(identity);
            self.other = Some(session);
        }
        Ok(self.other.as_ref().expect("just signed in"))
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
            | Step::Reload { tab }
            | Step::Leave { tab }
            | Step::GoBack { tab }
            | Step::RevisitCallback { tab }
            | Step::OpenChat { tab, .. }
            | Step::OpenConnectors { tab } => tab,
            _ => return,
        };
        self.owners.push((wall_clock_ms(), tab.clone()));
    }

    /// The harness's third origin (hostile pages, another site), started on first use.
    async fn third_origin(&mut self) -> Result<&HostileOrigin, StepError> {
        if self.hostile.is_none() {
            let hostile = HostileOrigin::start()
                .await
                .map_err(|e| StepError::Failed(format!("start the third origin: {e:#}")))?;
            self.observation.hostile_origin = Some(hostile.origin.clone());
            self.hostile = Some(hostile);
        }
        Ok(self.hostile.as_ref().expect("started above"))
    }

    /// Without BiDi: asks every open tab which document it shows, and notes the tabs gone.
    async fn look_at_tabs(&mut self) {
        let Recorder::Proxy(_) = self.recorder else {
            return;
        };
        let known: Vec<WindowHandle> = self.tabs.by_name.values().cloned().collect();
        // Not knowing which windows are open is not seeing them closed.
        let Some(open) = open_windows(self.client, &known).await else {
            return;
        };
        for (name, handle) in self.tabs.by_name.clone() {
            if !open.contains(&handle) {
                if !self.gone.contains(&name) && !self.observation.closed_by_user.contains(&name) {
                    self.gone.push(name);
                }
                continue;
            }
            let unanswered = &self.unanswered;
            if answered(
                unanswered,
                || format!("switch to tab {name}"),
                self.client.switch_to_window(handle),
            )
            .await
            .is_some()
                && let Some(doc) = answered(
                    unanswered,
                    || format!("ask tab {name} for its document"),
                    self.client
                        .execute(&format!("return window.{DOC_HOOK} || null"), vec![]),
                )
                .await
                && let Some(doc) = doc.as_str()
            {
                self.documents.insert(doc.to_owned(), name);
            }
        }
    }

    /// Context (BiDi) or document (proxy) to tab name.
    fn names(&self) -> BTreeMap<String, String> {
        match self.recorder {
            Recorder::Bidi(_) => self.tabs.names(),
            Recorder::Proxy(_) => {
                let mut names = self.documents.clone();
                names.insert(
                    crate::proxy::EXCHANGES.to_owned(),
                    "network (recording proxy)".to_owned(),
                );
                for event in self.recorder.events() {
                    let doc = event.params["source"]["context"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    if names.contains_key(&doc) {
                        continue;
                    }
                    // When the document's first report was sent, not when it arrived.
                    let sent = event.params["at"].as_u64().unwrap_or(u64::MAX);
                    if let Some((_, owner)) = self.owners.iter().rev().find(|(at, _)| *at <= sent) {
                        names.insert(doc, owner.clone());
                    }
                }
                names
            }
        }
    }

    /// Tabs that are gone: from BiDi events, or from the window list.
    fn absorb_into(&self, observation: &mut Observation) {
        observation.absorb(&self.recorder.events(), &self.names());
        if let Recorder::Proxy(_) = self.recorder {
            observation.destroyed_tabs = self.gone.clone();
        }
    }
}

/// The messages a `forge-messages` step sends.
fn forged_payloads(payload: ForgedPayload, card: &str) -> Vec<serde_json::Value> {
    match payload {
        ForgedPayload::CardConnection => vec![json!({ "result": "success", "connectionId": card })],
        ForgedPayload::OtherConnection => {
            vec![json!({ "result": "success", "connectionId": "conn-of-someone-else" })]
        }
        ForgedPayload::Malformed => vec![
            json!("success"),
            json!("{\"result\": \"success\", \"connectionId\":"),
            json!([card]),
            json!({ "result": "success" }),
            json!({ "result": "success", "connectionId": card, "token": "forged" }),
            json!({ "result": "connected", "connectionId": card }),
            json!({ "result": "success", "connectionId": 42 }),
        ],
        ForgedPayload::Oversized => vec![json!({
            "result": "success",
            "connectionId": card,
            "message": "A".repeat(20_000),
        })],
    }
}

/// How a payload is written to localStorage: strings as they are, the rest as JSON.
fn storage_text(data: &serde_json::Value) -> String {
    match data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What the chat in the current tab shows, through the target contract's selectors; `None`
/// when the tab shows no chat.
async fn read_chat(client: &Client, said: usize) -> Option<ChatState> {
    let state = client
        .execute(
            "const q = s => Array.from(document.querySelectorAll(s)); \
             return { user: q('[data-testid=chat-message][data-role=user]').length, \
             answers: q('[data-testid=agent-answer]').length, toolErrors: q('[data-testid=tool-error]').length, \
             reconnect: q('[data-testid=reconnect-prompt]').length, cards: q('[data-testid=connect-card]').length, \
             cardErrors: q('[data-testid=connect-card-error]').filter(e => !e.hidden && e.offsetParent !== null).length, \
             isChat: document.querySelector('[data-testid=chat-input]') !== null };",
            vec![],
        )
        .await
        .ok()?;
    if state["isChat"] != true {
        return None;
    }
    let count = |key: &str| state[key].as_u64().unwrap_or(0) as usize;
    Some(ChatState {
        user_messages: count("user"),
        answers: count("answers"),
        tool_errors: count("toolErrors"),
        reconnect_prompts: count("reconnect"),
        cards: count("cards"),
        card_errors_visible: count("cardErrors"),
        said,
    })
}

async fn visible_count(client: &Client, css: &str) -> Result<usize, StepError> {
    let value = cmd(
        client
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0])).filter(e => !e.hidden && e.offsetParent !== null).length",
                vec![json!(css)],
            )
            .await,
        "count visible elements",
    )?;
    Ok(value.as_u64().unwrap_or(0) as usize)
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
    };
    let mut step_error = None;
    for (index, step) in file.scenario.steps.iter().enumerate() {
        run.note_callback_urls();
        run.note_owner(step);
        let started = Instant::now();
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

    // Give a callback tab that is about to close itself the time to do so.
    let callback_grace = Instant::now() + Duration::from_secs(3);
    // Final state of every open tab.
    let known: Vec<WindowHandle> = run.tabs.by_name.values().cloned().collect();
    let open = open_windows(client, &known).await.unwrap_or_default();
    let unanswered = &run.unanswered;
    for (name, handle) in run.tabs.by_name.clone() {
        if !open.contains(&handle) {
            continue;
        }
        let tab = || format!("tab {name}");
        if answered(
            unanswered,
            || format!("switch to {}", tab()),
            client.switch_to_window(handle.clone()),
        )
        .await
        .is_none()
        {
            continue;
        }
        answered(
            unanswered,
            || format!("ask {} for its surfaces", tab()),
            client.execute(
                &format!("if (window.{SURFACES_HOOK}) window.{SURFACES_HOOK}()"),
                vec![],
            ),
        )
        .await;
        let said = run.said.get(&name).copied().unwrap_or(0);
        let chat = answered(
            unanswered,
            || format!("read the chat in {}", tab()),
            async { Ok::<_, ()>(read_chat(client, said).await) },
        )
        .await
        .flatten();
        if let Some(chat) = chat {
            run.observation.chats.insert(name.clone(), chat);
        }
        if let Some(page) = run
            .observation
            .hostile_pages
            .iter_mut()
            .find(|p| p.tab == name)
            && let Some(received) = answered(
                unanswered,
                || format!("read what {} received", tab()),
                client.execute(&format!("return window.{RECEIVED_HOOK} || null"), vec![]),
            )
            .await
            && let Ok(received) = serde_json::from_value::<Vec<HostileReceipt>>(received)
        {
            page.received = Some(received);
        }
    }
    // Platform cookies (the session among them), read through WebDriver: HttpOnly included.
    if let Some(platform_tab) = run
        .tabs
        .by_name
        .iter()
        .find(|(_, h)| open.contains(h))
        .map(|(_, h)| h.clone())
        && answered(
            unanswered,
            || "switch to a platform tab for its cookies".into(),
            client.switch_to_window(platform_tab),
        )
        .await
        .is_some()
        && let Some(cookies) = answered(
            unanswered,
            || "read the platform's cookies".into(),
            client.get_all_cookies(),
        )
        .await
    {
        run.observation.platform_cookies = cookies
            .iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect();
    }

    // Callback tabs: closed by themselves, or showing how to close them. One that is about to
    // close itself gets a grace period. Tabs the user closed are the user's doing.
    let closed_by_user = run.observation.closed_by_user.clone();
    let mut settled: Vec<CallbackTab> = Vec::new();
    loop {
        run.look_at_tabs().await;
        let mut observation = Observation::default();
        run.absorb_into(&mut observation);
        let open = open_windows(client, &known).await.unwrap_or_default();
        settled.clear();
        let mut pending = false;
        for tab in callback_tab_names(&observation) {
            if closed_by_user.contains(&tab) {
                continue;
            }
            let closed_by_itself = observation.destroyed_tabs.contains(&tab);
            let mut close_hint_visible = false;
            if !closed_by_itself
                && let Some(handle) = run.tabs.by_name.get(&tab)
                && open.contains(handle)
                && answered(
                    &run.unanswered,
                    || format!("switch to the callback tab {tab}"),
                    client.switch_to_window(handle.clone()),
                )
                .await
                .is_some()
            {
                close_hint_visible = answered(
                    &run.unanswered,
                    || format!("look for the close hint in tab {tab}"),
                    visible_count(client, "[data-testid=callback-close-hint]"),
                )
                .await
                .unwrap_or(0)
                    > 0;
            }
            pending |= !closed_by_itself && !close_hint_visible;
            settled.push(CallbackTab {
                tab,
                closed_by_itself,
                close_hint_visible,
            });
        }
        if !pending || Instant::now() > callback_grace {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut observation = std::mem::take(&mut run.observation);
    run.absorb_into(&mut observation);
    run.observation = observation;
    run.observation.callback_tabs = settled;
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
    run.observation.provider_violations = target
        .provider
        .violations()
        .await?
        .into_iter()
        .skip(first_violation)
        .collect();
    run.observation.secrets = target.provider.secrets().await?;
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
    Option<serde_json::Value>,
)> {
    // One window left from an earlier scenario in a reused session, at most.
    let first_window = reset_windows(client).await?;
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
    let installed = recorder.install(&recorder_call(file, recorder)).await?;
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
        Step::Pause { ms }
        | Step::Consent {
            after_ms: Some(ms), ..
        } => Duration::from_millis(*ms),
        _ => Duration::ZERO,
    };
    STEP_TIMEOUT * 3 + pause
}

/// The open windows. A driver may fail to list them while the window it was on closes itself
/// (WebKitWebDriver does, now and then): the harness moves to another window it knows and asks
/// again. `None` when it still cannot tell.
async fn open_windows(client: &Client, known: &[WindowHandle]) -> Option<Vec<WindowHandle>> {
    const ASK: Duration = Duration::from_secs(10);
    for attempt in 1..=5u64 {
        if let Ok(Ok(list)) = tokio::time::timeout(ASK, client.windows()).await {
            return Some(list);
        }
        for handle in known {
            if let Ok(Ok(())) =
                tokio::time::timeout(ASK, client.switch_to_window(handle.clone())).await
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
    }
    None
}

/// A screenshot of every tab still open, by name.
pub async fn screenshots(
    client: &Client,
    tabs: &[(String, WindowHandle)],
) -> Vec<(String, Vec<u8>)> {
    let ignored = std::sync::Mutex::new(Vec::new());
    let open = answered(&ignored, String::new, client.windows())
        .await
        .unwrap_or_default();
    let mut shots = Vec::new();
    for (name, handle) in tabs {
        if open.contains(handle)
            && answered(
                &ignored,
                String::new,
                client.switch_to_window(handle.clone()),
            )
            .await
            .is_some()
            && let Some(png) = answered(&ignored, String::new, client.screenshot()).await
        {
            shots.push((name.clone(), png));
        }
    }
    shots
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

/// Tabs that loaded the callback page, in order of first load.
fn callback_tab_names(observation: &Observation) -> Vec<String> {
    let mut tabs: Vec<String> = Vec::new();
    for (tab, url) in observation.documents() {
        if url::Url::parse(url).is_ok_and(|u| contract::is_callback(&u))
            && !tabs.iter().any(|t| t == tab)
        {
            tabs.push(tab.to_owned());
        }
    }
    tabs
}

/// One line per step, for traces and failure reports.
pub fn describe_step(step: &Step) -> String {
    match step {
        Step::OpenChat { tab, chat } => format!("open-chat {chat} in [{tab}]"),
        Step::Leave { tab } => format!("leave [{tab}] for another site"),
        Step::GoBack { tab } => format!("go back in [{tab}]"),
        Step::OpenConnectors { tab } => format!("open-connectors in [{tab}]"),
        Step::Say { text, tab, wait } => {
            if *wait {
                format!("say {text:?} in [{tab}]")
            } else {
                format!("say {text:?} in [{tab}], not waiting for the reply")
            }
        }
        Step::Connect {
            tab,
            connector,
            opens,
            by,
            unless_answered,
        } => {
            let how = match by {
                Activation::Click => "",
                Activation::Keyboard => " by keyboard (Enter)",
            };
            let unless = if *unless_answered {
                ", unless the chat has answered"
            } else {
                ""
            };
            match connector {
                Some(c) => format!("connect {c} from [{tab}]{how}, opening [{opens}]{unless}"),
                None => {
                    format!("connect from the card in [{tab}]{how}, opening [{opens}]{unless}")
                }
            }
        }
        Step::Consent {
            decision,
            tab,
            after_ms,
        } => {
            let name = if *decision == Decision::Allow {
                "allow"
            } else {
                "deny"
            };
            match after_ms {
                Some(ms) => format!("consent {name} in [{tab}] after {ms} ms of thought"),
                None => format!("consent {name} in [{tab}]"),
            }
        }
        Step::CloseTab { tab } => format!("close-tab [{tab}]"),
        Step::Reload { tab } => format!("reload [{tab}]"),
        Step::Disconnect { connector, tab } => format!("disconnect {connector} in [{tab}]"),
        Step::ProviderRevokes => "provider-revokes".to_owned(),
        Step::RevisitCallback { tab } => format!("revisit-callback in [{tab}]"),
        Step::WaitFor { condition, tab } => {
            let name = serde_json::to_value(condition)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("wait-for {name} in [{tab}]")
        }
        Step::Pause { ms } => format!("pause {ms} ms"),
        Step::ForgeSuccess { tab, chat } => {
            format!("forge-success from [{tab}] to the opener, naming [{chat}]'s connection")
        }
        Step::OpenHostilePage {
            tab,
            opens,
            popup,
            connector,
        } => match opens {
            HostileOpens::Callback => format!(
                "open-hostile-page in [{tab}] (another site), which opens the last callback URL as [{popup}]"
            ),
            HostileOpens::Connect => format!(
                "open-hostile-page in [{tab}] (another site), which starts connecting {connector} as [{popup}]"
            ),
        },
        Step::ForgeMessages {
            from,
            chat,
            payload,
        } => {
            let what = match payload {
                ForgedPayload::CardConnection => "a success naming [chat]'s connection",
                ForgedPayload::OtherConnection => "a success naming another connection",
                ForgedPayload::Malformed => "7 malformed messages",
                ForgedPayload::Oversized => "an oversized success (20 000-character message)",
            };
            format!(
                "forge-messages: {} from [{from}] on BroadcastChannel and localStorage, and by postMessage in [{chat}]",
                what.replace("[chat]", &format!("[{chat}]"))
            )
        }
        Step::ExpectChat { tab, state } => {
            let name = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("expect-chat {name} in [{tab}]")
        }
        Step::RedirectFromAnotherSession { tab, connector } => format!(
            "redirect-from-another-session: another session signs in to {connector}, its redirect URL opens in [{tab}]"
        ),
        Step::ProbeAnotherOrg {
            tab,
            callback_tab,
            connector,
        } => format!(
            "probe-another-org: from [{tab}], ask about another org's pending {connector} connection; open the callback naming it in [{callback_tab}]"
        ),
        Step::ReplayRedirect { tab } => {
            format!("replay-redirect: the last redirect URL (code and state) again in [{tab}]")
        }
    }
}
