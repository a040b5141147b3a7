//! What the callback sends: the payload's shape on every channel, its message shown as text,
//! and every channel the browser gives it used.

use super::{Check, Finding, Mark, Rule, Run, Tier, none_in_this_run, unless};
use crate::check::observation::Observation;
use crate::check::recorded::Event;
use crate::contract;
use crate::scenario::{Feature, Scenario, Step};
use serde_json::Value;
use std::collections::BTreeMap;

pub const PAYLOAD_SHAPE: &str = "payload-shape";
pub const MESSAGE_AS_TEXT: &str = "message-as-text";
pub const CHANNELS_COMPLETE: &str = "channels-complete";

pub struct PayloadShape;

impl Check for PayloadShape {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: PAYLOAD_SHAPE,
            summary: "channel payloads carry result, connectionId and an optional message only, agree with the callback URL, and postMessage names the platform's exact origin",
            enforces: "oauth-flow.md, What never happens: \"It carries result, connectionId, and an optional human-readable message only.\" target-contract.md §4: \"window.opener.postMessage(payload, <the platform's exact origin>)\"",
            tier: Tier::Browser,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        let sent = run.observation.recorded.iter().any(|r| r.event.is_sent());
        unless(sent, "result payload on any channel")
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        payload_shape(run.observation, run.platform_origin)
    }
}

pub struct MessageAsText;

impl Check for MessageAsText {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: MESSAGE_AS_TEXT,
            summary: "a callback message carrying markup is shown verbatim as text",
            enforces: "oauth-flow.md, How resumption is delivered: \"an optional human-readable message\"; target-contract.md §5.8",
            tier: Tier::Browser,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        let callbacks = callback_documents(run.observation);
        if callbacks.is_empty() {
            return none_in_this_run("callback page");
        }
        let with_markup = callbacks_with_markup(run.observation);
        if with_markup.is_empty() {
            return Some("no callback message carried markup".into());
        }
        // Never a pass on nothing: a page that closed before the recorder saw its text.
        with_markup
            .iter()
            .all(|(_, _, texts)| texts.is_empty())
            .then(|| "the callback page with markup closed before the recorder saw what it showed (nothing to judge)".into())
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        message_as_text(run.observation)
    }
}

pub struct ChannelsComplete;

impl Check for ChannelsComplete {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: CHANNELS_COMPLETE,
            summary: "the callback posts on BroadcastChannel whenever the browser has it, writes storage whenever storage works (each write firing a storage event in the other open platform pages), and posts to its platform opener whenever it has one",
            enforces: "oauth-flow.md, How resumption is delivered: \"emits the result through three independent channels so it works across browser configurations\"; target-contract.md §4: \"each write distinct, so a repeat still fires a storage event ... Each channel is guarded.\"",
            tier: Tier::Browser,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !callback_documents(run.observation).is_empty(),
            "callback page",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        self.findings(run).into_iter().map(|f| f.detail).collect()
    }

    fn findings(&self, run: &Run) -> Vec<Finding> {
        channels_complete(run.scenario, run.observation)
    }
}

/// A channel payload as the object it carries: an object as sent, or the object a JSON text
/// encodes (storage carries text; BroadcastChannel and `postMessage` may carry either,
/// target-contract.md §4, the callback).
pub fn payload_object(data: &Value) -> Value {
    match data {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => data.clone(),
        },
        _ => data.clone(),
    }
}

/// The shape a result payload must have: result, connectionId and an optional message. A
/// `connectionId` is a string; where the callback names no connection it may also be `null`
/// or absent.
pub fn payload_problem(data: &Value) -> Option<String> {
    let Value::Object(fields) = payload_object(data) else {
        return Some(format!("not an object or the JSON text of one: {data}"));
    };
    for key in fields.keys() {
        if !["result", "connectionId", "message"].contains(&key.as_str()) {
            return Some(format!("unexpected field {key:?}"));
        }
    }
    if !matches!(
        fields.get("result").and_then(Value::as_str),
        Some("success" | "error")
    ) {
        return Some("result is not \"success\" or \"error\"".into());
    }
    if !fields
        .get("connectionId")
        .is_none_or(|id| id.is_string() || id.is_null())
    {
        return Some("connectionId is not a string".into());
    }
    if fields.get("message").is_some_and(|m| !m.is_string()) {
        return Some("message is not a string".into());
    }
    None
}

/// What a callback URL says a payload must say: its result and the connection it names (`""`
/// for none).
pub(super) fn callback_says(url: &url::Url) -> (String, String) {
    let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    (
        pairs.get("oauth_result").cloned().unwrap_or_default(),
        pairs.get("connection_id").cloned().unwrap_or_default(),
    )
}

/// Where a payload sent by a callback page disagrees with that page's own URL: another
/// result (no `success` posted on an error), or another connection (none named where the
/// URL names one, or one named where it names none).
fn disagreement(payload: &Value, url: &url::Url) -> Option<String> {
    let (result, connection) = callback_says(url);
    let said_result = payload["result"].as_str().unwrap_or("");
    let said_connection = match &payload["connectionId"] {
        Value::String(id) => id.as_str(),
        _ => "",
    };
    if said_result != result {
        return Some(format!(
            "result {said_result:?} while its callback URL says {result:?}"
        ));
    }
    (said_connection != connection).then(|| {
        format!("connectionId {said_connection:?} while its callback URL names {connection:?}")
    })
}

/// Invariant 2: payloads on the three channels carry only result, connectionId and an
/// optional message, each as its own callback URL says; `postMessage` names the platform's
/// exact origin. Each payload a callback sends is held to that callback's URL, so a later
/// callback for the same connection (a refused replay, a retry) is judged on its own.
fn payload_shape(observation: &Observation, platform_origin: &str) -> Vec<String> {
    let mut found = Vec::new();
    let callbacks = callback_documents(observation);
    for record in &observation.recorded {
        let where_ = format!("tab {} {}", record.tab, record.kind());
        let data = match &record.event {
            Event::BcSend { data } | Event::BcReceive { data, .. } => data.clone(),
            Event::StorageWrite { key, value } if key == contract::STORAGE_KEY => {
                Value::String(value.clone())
            }
            Event::StorageEvent {
                key: Some(key),
                new_value: Some(value),
                ..
            } if key == contract::STORAGE_KEY => Value::String(value.clone()),
            Event::Message {
                origin: Some(origin),
                data,
            } if origin == platform_origin => data.clone(),
            Event::PostMessage {
                target_origin,
                data,
            } => {
                let target = target_origin.as_deref().unwrap_or("");
                if target != platform_origin {
                    found.push(format!(
                        "{where_}: target origin {target:?}, not the platform's exact origin"
                    ));
                }
                data.clone()
            }
            _ => continue,
        };
        // What the harness forged is not the platform's payload.
        if observation.forged_payloads.contains(&data) {
            continue;
        }
        if let Some(problem) = payload_problem(&data) {
            found.push(format!("{where_}: {problem}"));
            continue;
        }
        let sent = record.event.is_sent();
        if let Some(callback) = callbacks.iter().find(|c| sent && *c.doc == record.doc)
            && let Some(problem) = disagreement(&payload_object(&data), &callback.url)
        {
            found.push(format!(
                "{where_} (from {}): {problem}",
                callback.url.path()
            ));
        }
    }
    found
}

/// The callback URLs seen: `(tab, url)` for every document at the callback path.
fn callback_urls(observation: &Observation) -> Vec<(String, url::Url)> {
    callback_documents(observation)
        .into_iter()
        .map(|d| (d.tab.to_owned(), d.url))
        .collect()
}

/// Each callback page whose `oauth_message` carries markup: its tab, the message, and every
/// text the recorder saw it show.
fn callbacks_with_markup(observation: &Observation) -> Vec<(String, String, Vec<&str>)> {
    let mut found = Vec::new();
    for (tab, url) in callback_urls(observation) {
        let Some(message) = url
            .query_pairs()
            .find(|(k, _)| k == "oauth_message")
            .map(|(_, v)| v.into_owned())
        else {
            continue;
        };
        if !message.contains('<') {
            continue;
        }
        let texts: Vec<&str> = observation
            .recorded
            .iter()
            .filter(|r| r.tab == tab)
            .filter_map(|r| match &r.event {
                Event::Surfaces {
                    url: Some(shown),
                    text: Some(text),
                    ..
                } if shown == url.as_str() => Some(text.as_str()),
                _ => None,
            })
            .collect();
        found.push((tab, message, texts));
    }
    found
}

/// Invariant 8: `oauth_message` is shown as text: a message with markup appears verbatim in
/// the callback page's text, never as elements.
fn message_as_text(observation: &Observation) -> Vec<String> {
    callbacks_with_markup(observation)
        .into_iter()
        .filter(|(_, message, texts)| texts.iter().any(|text| !text.contains(message.as_str())))
        .map(|(tab, message, _)| {
            format!("tab {tab}: the callback message {message:?} was not shown as text (markup rendered)")
        })
        .collect()
}

/// One callback page that loaded: where it is in the record, its tab, document and URL.
pub(super) struct CallbackDocument<'a> {
    pub(super) index: usize,
    pub(super) tab: &'a str,
    pub(super) doc: &'a Option<String>,
    pub(super) url: url::Url,
    pub(super) has_opener: bool,
}

/// Every callback page that loaded, once each.
pub(super) fn callback_documents(observation: &Observation) -> Vec<CallbackDocument<'_>> {
    let mut documents: Vec<CallbackDocument<'_>> = Vec::new();
    for (index, record) in observation.recorded.iter().enumerate() {
        let Event::Document {
            url: Some(url),
            has_opener,
            ..
        } = &record.event
        else {
            continue;
        };
        let Ok(url) = url::Url::parse(url) else {
            continue;
        };
        if !contract::is_callback(&url) || documents.iter().any(|d| *d.doc == record.doc) {
            continue;
        }
        documents.push(CallbackDocument {
            index,
            tab: &record.tab,
            doc: &record.doc,
            url,
            has_opener: *has_opener == Some(true),
        });
    }
    documents
}

/// Invariant 13: every callback page uses every channel the browser gives it: BroadcastChannel
/// whenever the browser has it, storage whenever it works (and each write fires a storage
/// event in every other open chat or connectors page, so a write must differ from what is
/// stored), and its opener whenever a platform page opened it and the opener survived.
/// Polling resumes the chat anyway, which is why only this check sees a missing channel.
fn channels_complete(scenario: &Scenario, observation: &Observation) -> Vec<Finding> {
    let has_broadcast = !scenario
        .browser
        .remove_features
        .contains(&Feature::BroadcastChannel);
    // Callback pages are top-level tabs.
    let storage_works = scenario.browser.storage.writes_at_top_level();
    // Which platform tab opened which tab (a connect click opens `opens` from `tab`).
    let mut opener_of: BTreeMap<&str, &str> = BTreeMap::new();
    for step in &scenario.steps {
        if let Step::Connect { tab, opens, .. } = step {
            opener_of.insert(opens, tab);
        }
    }
    let gone = |tab: &str| {
        observation.destroyed_tabs.iter().any(|t| t == tab)
            || observation.closed_by_user.iter().any(|t| t == tab)
    };
    // The contract page each tab shows, by record index.
    let mut found = Vec::new();
    // What each listening tab should have got, counted, with the callback tab that owed it.
    let mut storage_expected: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    let mut opener_expected: BTreeMap<(String, String, String), (usize, String)> = BTreeMap::new();
    let missing = |from: &str, to: Option<&str>, what: &str| Mark {
        from: from.to_owned(),
        to: to.map(str::to_owned),
        what: what.to_owned(),
    };
    for callback in callback_documents(observation) {
        let own: Vec<&crate::check::observation::Recorded> = observation
            .recorded
            .iter()
            .filter(|r| r.doc == *callback.doc && !matches!(r.event, Event::Document { .. }))
            .collect();
        let what = format!("tab {} ({})", callback.tab, callback.url.path());
        let listening = listening_tabs(observation, callback.index, callback.tab);
        let first_listener = listening
            .iter()
            .find(|l| !l.in_another_sites_frame && !gone(&l.tab))
            .map(|l| l.tab.as_str());
        if has_broadcast && !own.iter().any(|r| matches!(r.event, Event::BcSend { .. })) {
            found.push(Finding {
                detail: format!(
                    "{what}: the callback did not post on BroadcastChannel, which this browser has"
                ),
                mark: Some(missing(
                    callback.tab,
                    first_listener,
                    "no BroadcastChannel post",
                )),
            });
        }
        let writes: Vec<&str> = own
            .iter()
            .filter_map(|r| match &r.event {
                Event::StorageWrite { key, value } if key == contract::STORAGE_KEY => {
                    Some(value.as_str())
                }
                _ => None,
            })
            .collect();
        if storage_works && writes.is_empty() {
            found.push(Finding {
                detail: format!(
                    "{what}: the callback did not write {} to localStorage, which works in this browser",
                    contract::STORAGE_KEY
                ),
                mark: Some(missing(callback.tab, first_listener, "no storage write")),
            });
        }
        // A write reaches the tabs of the callback's own storage partition.
        for value in &writes {
            for listener in listening
                .iter()
                .filter(|l| !l.in_another_sites_frame && !gone(&l.tab))
            {
                storage_expected
                    .entry((listener.tab.clone(), (*value).to_owned()))
                    .or_insert_with(|| (0, callback.tab.to_owned()))
                    .0 += 1;
            }
        }
        // An opener that shows no platform page any more (the user went to another site)
        // gets nothing: the browser drops a message for another origin, as it must.
        if callback.has_opener
            && let Some(opener) = opener_of.get(callback.tab)
            && !gone(opener)
            && listening.iter().any(|l| l.tab == *opener)
        {
            let (result, connection) = callback_says(&callback.url);
            opener_expected
                .entry(((*opener).to_owned(), connection, result))
                .or_insert_with(|| (0, callback.tab.to_owned()))
                .0 += 1;
        }
    }
    for ((tab, value), (expected, writer)) in storage_expected {
        let fired = observation
            .recorded
            .iter()
            .filter(|r| {
                r.tab == tab
                    && matches!(&r.event, Event::StorageEvent {
                        key: Some(key),
                        new_value: Some(new_value),
                        ..
                    } if key == contract::STORAGE_KEY && *new_value == value)
            })
            .count();
        if fired < expected {
            found.push(Finding {
                detail: format!(
                    "tab {tab}: {expected} callback write(s) of {value} to localStorage fired {fired} storage event(s) there: a write that repeats the stored value fires none (each write must be distinct)"
                ),
                mark: Some(missing(&writer, Some(&tab), "no storage event")),
            });
        }
    }
    for ((tab, connection, result), (expected, callback)) in opener_expected {
        let posted = observation
            .recorded
            .iter()
            .filter(|r| {
                let Event::PostMessage { data, .. } = &r.event else {
                    return false;
                };
                let payload = payload_object(data);
                r.tab == tab
                    && payload["connectionId"].as_str().unwrap_or("") == connection
                    && payload["result"].as_str().unwrap_or("") == result
            })
            .count();
        if posted < expected {
            found.push(Finding {
                detail: format!(
                    "tab {tab} opened {expected} callback(s) for {result} on connection {connection:?} that kept their opener, and was posted {posted} message(s) for it"
                ),
                mark: Some(missing(&callback, Some(&tab), "no postMessage to the opener")),
            });
        }
    }
    found
}

/// A tab that shows a chat or the connectors page.
struct ListeningTab {
    tab: String,
    /// The page is in a frame of another site's page: its storage and BroadcastChannel are
    /// that site's partition, which a top-level callback's writes never reach (a message to
    /// it as the callback's opener does).
    in_another_sites_frame: bool,
}

/// The other tabs that show a chat or the connectors page at record `index`.
fn listening_tabs(observation: &Observation, index: usize, writer: &str) -> Vec<ListeningTab> {
    let mut current: BTreeMap<&str, Option<ListeningTab>> = BTreeMap::new();
    for record in observation.recorded.iter().take(index) {
        if !matches!(record.event, Event::Document { .. }) || record.tab == writer {
            continue;
        }
        let listening = record
            .event
            .url()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|url| {
                matches!(
                    contract::contract_page(&url, &observation.org),
                    Some("chat" | "connectors")
                )
            });
        current.insert(
            &record.tab,
            listening.then(|| ListeningTab {
                tab: record.tab.clone(),
                in_another_sites_frame: record.event.in_third_party_frame(),
            }),
        );
    }
    current.into_values().flatten().collect()
}
