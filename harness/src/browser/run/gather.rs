//! After the steps: what every tab shows, the platform's cookies, how the callback tabs
//! settled, and the recorder's events sorted by tab into the observation.

use super::*;
use crate::browser::bidi::BidiEvent;
use crate::check::observation::{ConsoleLine, Event, Recorded, UNNAMED_TAB};
use serde_json::Value;

impl Run<'_> {
    /// What every open tab shows at the end (chat, hostile page receipts), the platform's
    /// cookies, and how each callback tab settled (closed by itself, or showing how to close
    /// it; one about to close itself gets a grace period; tabs the user closed are the user's
    /// doing). Then every event sorted into the observation.
    pub(super) async fn gather_tabs(&mut self) {
        // Give a callback tab that is about to close itself the time to do so.
        let callback_grace = Instant::now() + Duration::from_secs(3);
        // Final state of every open tab.
        let client = self.client;
        let known: Vec<WindowHandle> = self.tabs.by_name.values().cloned().collect();
        let open = open_windows(client, &known).await.unwrap_or_default();
        let unanswered = &self.unanswered;
        for (name, handle) in self.tabs.by_name.clone() {
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
            if self.tabs.framed.contains(&name)
                && answered(
                    unanswered,
                    || format!("enter the chat frame of {}", tab()),
                    client.enter_frame(0),
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
            let said = self.said.get(&name).copied().unwrap_or(0);
            let chat = answered(
                unanswered,
                || format!("read the chat in {}", tab()),
                async { Ok::<_, ()>(read_chat(client, said).await) },
            )
            .await
            .flatten();
            if let Some(chat) = chat {
                self.observation.chats.insert(name.clone(), chat);
            }
            if let Some(page) = self
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
        if let Some(platform_tab) = self
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
            self.observation.platform_cookies = cookies
                .iter()
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect();
        }

        // Callback tabs: closed by themselves, or showing how to close them. One that is about to
        // close itself gets a grace period. Tabs the user closed are the user's doing.
        let closed_by_user = self.observation.closed_by_user.clone();
        let mut settled: Vec<CallbackTab> = Vec::new();
        loop {
            self.look_at_tabs().await;
            let mut observation = Observation::default();
            self.absorb_into(&mut observation);
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
                    && let Some(handle) = self.tabs.by_name.get(&tab)
                    && open.contains(handle)
                    && answered(
                        &self.unanswered,
                        || format!("switch to the callback tab {tab}"),
                        client.switch_to_window(handle.clone()),
                    )
                    .await
                    .is_some()
                {
                    close_hint_visible = answered(
                        &self.unanswered,
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
        let mut observation = std::mem::take(&mut self.observation);
        self.absorb_into(&mut observation);
        self.observation = observation;
        self.observation.callback_tabs = settled;
    }

    /// Without BiDi: asks every open tab which document it shows, and notes the tabs gone.
    pub(super) async fn look_at_tabs(&mut self) {
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
    pub(super) fn names(&self) -> BTreeMap<String, String> {
        match self.recorder {
            Recorder::Bidi(_) => self.tabs.names(),
            Recorder::Proxy(_) => {
                let mut names = self.documents.clone();
                names.insert(
                    crate::browser::proxy::EXCHANGES.to_owned(),
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
    pub(super) fn absorb_into(&self, observation: &mut Observation) {
        absorb(observation, &self.recorder.events(), &self.names());
        if let Recorder::Proxy(_) = self.recorder {
            observation.destroyed_tabs = self.gone.clone();
        }
    }
}

/// What the chat in the current tab shows, through the target contract's selectors; `None`
/// when the tab shows no chat.
pub(super) async fn read_chat(client: &Client, said: usize) -> Option<ChatState> {
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

pub(super) async fn visible_count(client: &Client, css: &str) -> Result<usize, StepError> {
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

/// The open windows. A driver may fail to list them while the window it was on closes itself
/// (WebKitWebDriver does, now and then): the harness moves to another window it knows and asks
/// again. `None` when it still cannot tell.
pub(super) async fn open_windows(
    client: &Client,
    known: &[WindowHandle],
) -> Option<Vec<WindowHandle>> {
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

/// Tabs that loaded the callback page, in order of first load.
pub(super) fn callback_tab_names(observation: &Observation) -> Vec<String> {
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

/// Sorts the BiDi events into recorder reports and console lines, naming tabs by handle.
fn absorb(
    observation: &mut Observation,
    events: &[BidiEvent],
    tab_names: &BTreeMap<String, String>,
) {
    // A tab no step named (a browser's own new-tab page beside the one a click opened) is
    // named by its order of appearance, so that a trace names it the same in every run.
    let mut unnamed: Vec<String> = Vec::new();
    let mut name_of = |context: &str| {
        tab_names.get(context).cloned().unwrap_or_else(|| {
            let position = match unnamed.iter().position(|c| c == context) {
                Some(position) => position,
                None => {
                    unnamed.push(context.to_owned());
                    unnamed.len() - 1
                }
            };
            format!("{UNNAMED_TAB}{}", position + 1)
        })
    };
    // A tab that is gone observes nothing more: Firefox may still deliver to the document of
    // a tab that closed itself, which no person can see.
    let mut gone: Vec<&str> = Vec::new();
    for event in events {
        match event.method.as_str() {
            "log.entryAdded" => {
                let context = event.params["source"]["context"].as_str().unwrap_or("");
                if gone.contains(&context) {
                    continue;
                }
                let tab = name_of(context);
                let text = event.params["text"].as_str().unwrap_or("").to_owned();
                let at_ms = time_of(&event.params);
                if let Some(json) = text.strip_prefix(MARKER) {
                    // Read once: the document's id, then the typed report.
                    let value = serde_json::from_str::<Value>(json).unwrap_or(Value::Null);
                    let doc = value["doc"].as_str().map(str::to_owned);
                    match serde_json::from_value::<Event>(value) {
                        Ok(event) => {
                            // A document announces itself twice; keep the first that arrived.
                            let repeated = matches!(event, Event::Document { .. })
                                && observation.recorded.iter().any(|r| {
                                    matches!(r.event, Event::Document { .. })
                                        && r.doc == doc
                                        && r.event.url() == event.url()
                                });
                            if !repeated {
                                observation.recorded.push(Recorded {
                                    tab,
                                    doc,
                                    at_ms,
                                    event,
                                });
                            }
                        }
                        // A report this harness does not read (another recorder's): kept as
                        // the console line it was, where every check still sees it.
                        Err(_) => observation.console.push(ConsoleLine {
                            tab,
                            level: "recorder".into(),
                            text,
                        }),
                    }
                } else {
                    observation.console.push(ConsoleLine {
                        tab,
                        level: event.params["level"].as_str().unwrap_or("").to_owned(),
                        text,
                    });
                }
            }
            // Every request a tab makes (documents, scripts, images, fetches): its URL and
            // Referer, for the no-secret-visible check.
            "network.beforeRequestSent" => {
                let context = event.params["context"].as_str().unwrap_or("");
                let request = &event.params["request"];
                let referer = request["headers"].as_array().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| {
                            h["name"]
                                .as_str()
                                .is_some_and(|n| n.eq_ignore_ascii_case("referer"))
                        })
                        .and_then(|h| h["value"]["value"].as_str())
                });
                observation.recorded.push(Recorded {
                    tab: name_of(context),
                    doc: None,
                    at_ms: time_of(&event.params),
                    event: Event::Request {
                        method: request["method"].as_str().map(str::to_owned),
                        url: request["url"].as_str().map(str::to_owned),
                        referer: referer.map(str::to_owned),
                    },
                });
            }
            "browsingContext.contextDestroyed" => {
                let context = event.params["context"].as_str().unwrap_or("");
                gone.push(context);
                observation.destroyed_tabs.push(name_of(context));
            }
            _ => {}
        }
    }
}

/// When a BiDi event (its `timestamp`) or a beacon of the recording proxy (its `at`) was sent,
/// in ms since the Unix epoch.
fn time_of(params: &Value) -> Option<u64> {
    params["timestamp"]
        .as_f64()
        .or_else(|| params["at"].as_f64())
        .map(|ms| ms as u64)
}
