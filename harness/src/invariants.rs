//! The invariants checked after every scenario. Each returns violations naming itself; each
//! has a test in `harness/tests/invariants_catch_broken_platforms.rs` where a deliberately
//! broken platform makes it fire.

use crate::contract::{self, CALLBACK_PATH};
use crate::observe::{ChatState, Observation};
use crate::scenario::{ChatExpectation, Scenario};
use serde::Serialize;
use serde_json::Value;

/// The names of the invariants, as reports and scenario files spell them.
pub const NO_SECRET_VISIBLE: &str = "no-secret-visible";
pub const PAYLOAD_SHAPE: &str = "payload-shape";
pub const OPENED_AS_TAB: &str = "opened-as-tab";
pub const CHAT_RESUMED: &str = "chat-resumed";
pub const CALLBACK_CLOSED: &str = "callback-closed";
pub const PROVIDER_NEVER_GETS_PLATFORM_AUTH: &str = "provider-never-gets-platform-auth";
pub const REVOCATION: &str = "revocation";
pub const MESSAGE_AS_TEXT: &str = "message-as-text";
pub const HOSTILE_RECEIVES_NOTHING: &str = "hostile-receives-nothing";
pub const REDIRECT_BOUND_TO_SESSION: &str = "redirect-bound-to-session";
pub const ORG_ISOLATION: &str = "org-isolation";
pub const SINGLE_EXCHANGE: &str = "single-exchange";
/// Not an invariant of the flow: the provider saw a request it has no endpoint for.
pub const PROVIDER_CONTRACT: &str = "provider-contract";
/// Not an invariant: a step could not be performed.
pub const STEP: &str = "step";
/// Not an invariant: the normalized trace differs from its snapshot.
pub const SNAPSHOT: &str = "snapshot";

pub const INVARIANTS: [&str; 12] = [
    NO_SECRET_VISIBLE,
    PAYLOAD_SHAPE,
    OPENED_AS_TAB,
    CHAT_RESUMED,
    CALLBACK_CLOSED,
    PROVIDER_NEVER_GETS_PLATFORM_AUTH,
    REVOCATION,
    MESSAGE_AS_TEXT,
    HOSTILE_RECEIVES_NOTHING,
    REDIRECT_BOUND_TO_SESSION,
    ORG_ISOLATION,
    SINGLE_EXCHANGE,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
}

fn violation(invariant: &str, detail: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.to_owned(),
        detail: detail.into(),
    }
}

/// Every invariant, in order.
pub fn check(
    scenario: &Scenario,
    observation: &Observation,
    platform_origin: &str,
) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(no_secret_visible(observation));
    found.extend(payload_shape(observation, platform_origin));
    found.extend(opened_as_tab(observation));
    found.extend(chat_resumed(scenario, observation));
    found.extend(callback_closed(observation));
    found.extend(provider_never_gets_platform_auth(observation));
    found.extend(revocation(scenario, observation));
    found.extend(message_as_text(observation));
    found.extend(hostile_receives_nothing(observation));
    found.extend(redirect_bound_to_session(observation));
    found.extend(org_isolation(observation));
    found.extend(single_exchange(observation));
    for stray in &observation.provider_violations {
        found.push(violation(
            PROVIDER_CONTRACT,
            format!("{} {}: {}", stray.method, stray.path, stray.detail),
        ));
    }
    found
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Invariant 1: no secret the provider issued or received on any browser-visible surface.
fn no_secret_visible(observation: &Observation) -> Vec<Violation> {
    let mut surfaces: Vec<(String, String)> = Vec::new();
    for record in &observation.recorded {
        let where_ = format!("tab {} ({})", record.tab, record.kind);
        match record.kind.as_str() {
            "document" => surfaces.push((format!("{where_} URL"), text_of(&record.event["url"]))),
            "window-open" => {
                surfaces.push((format!("{where_} URL"), text_of(&record.event["url"])))
            }
            "surfaces" => {
                for key in ["html", "text", "cookie", "local", "session", "name"] {
                    surfaces.push((format!("{where_} {key}"), text_of(&record.event[key])));
                }
            }
            _ => surfaces.push((where_, record.event.to_string())),
        }
    }
    for line in &observation.console {
        surfaces.push((format!("tab {} console", line.tab), line.text.clone()));
    }
    let mut found = Vec::new();
    for (surface, text) in surfaces {
        for finding in observation.secrets.find_in(&text) {
            found.push(violation(
                NO_SECRET_VISIBLE,
                format!("{:?} ({:?}) in {surface}", finding.kind, finding.encoding),
            ));
        }
    }
    found.dedup();
    found
}

/// The shape a result payload must have: result, connectionId and an optional message.
pub fn payload_problem(data: &Value) -> Option<String> {
    let Value::Object(fields) = data else {
        return Some(format!("not an object: {data}"));
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
    if !fields.get("connectionId").is_some_and(Value::is_string) {
        return Some("connectionId is not a string".into());
    }
    if fields.get("message").is_some_and(|m| !m.is_string()) {
        return Some("message is not a string".into());
    }
    None
}

/// Invariant 2: payloads on the three channels carry only result, connectionId and an
/// optional message; `postMessage` names the platform's exact origin.
fn payload_shape(observation: &Observation, platform_origin: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    // What each connection's callback URL says; its payloads must say the same.
    let results: std::collections::BTreeMap<String, String> = callback_urls(observation)
        .into_iter()
        .filter_map(|(_, url)| {
            let pairs: std::collections::BTreeMap<String, String> =
                url.query_pairs().into_owned().collect();
            // An error for no connection (an unknown or refused redirect) names none.
            Some((
                pairs.get("connection_id").cloned().unwrap_or_default(),
                pairs.get("oauth_result")?.clone(),
            ))
        })
        .collect();
    let check = |found: &mut Vec<Violation>, where_: String, data: &Value| {
        // What the harness forged is not the platform's payload.
        if observation.forged_payloads.contains(data) {
            return;
        }
        if let Some(problem) = payload_problem(data) {
            found.push(violation(PAYLOAD_SHAPE, format!("{where_}: {problem}")));
        } else if let (Some(id), Some(result)) =
            (data["connectionId"].as_str(), data["result"].as_str())
            && let Some(said) = results.get(id)
            && said != result
        {
            found.push(violation(
                PAYLOAD_SHAPE,
                format!("{where_}: result {result:?} while the callback URL says {said:?}"),
            ));
        }
    };
    for record in &observation.recorded {
        let where_ = format!("tab {} {}", record.tab, record.kind);
        match record.kind.as_str() {
            "bc-send" | "bc-receive" => check(&mut found, where_, &record.event["data"]),
            "storage-write" | "storage-event" => {
                let key = record.event["key"].as_str().unwrap_or("");
                let value = record.event["value"]
                    .as_str()
                    .or(record.event["newValue"].as_str());
                if key == contract::STORAGE_KEY
                    && let Some(value) = value
                {
                    match serde_json::from_str::<Value>(value) {
                        Ok(data) => check(&mut found, where_, &data),
                        Err(_) => check(&mut found, where_, &Value::String(value.to_owned())),
                    }
                }
            }
            "message" if record.event["origin"] == platform_origin => {
                check(&mut found, where_, &record.event["data"])
            }
            "post-message" => {
                let target = record.event["targetOrigin"].as_str().unwrap_or("");
                if target != platform_origin {
                    found.push(violation(
                        PAYLOAD_SHAPE,
                        format!(
                            "{where_}: target origin {target:?}, not the platform's exact origin"
                        ),
                    ));
                }
                check(&mut found, where_, &record.event["data"]);
            }
            _ => {}
        }
    }
    found
}

/// The callback URLs seen: `(tab, url)` for every document at the callback path.
fn callback_urls(observation: &Observation) -> Vec<(String, url::Url)> {
    observation
        .documents()
        .filter_map(|(tab, url)| Some((tab.to_owned(), url::Url::parse(url).ok()?)))
        .filter(|(_, url)| contract::is_callback(url))
        .collect()
}

/// Invariant 8: `oauth_message` is shown as text: a message with markup appears verbatim in
/// the callback page's text, never as elements.
fn message_as_text(observation: &Observation) -> Vec<Violation> {
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
            .of_kind("surfaces")
            .filter(|r| r.tab == tab && r.event["url"] == url.as_str())
            .filter_map(|r| r.event["text"].as_str())
            .collect();
        if texts.iter().any(|text| !text.contains(&message)) {
            found.push(violation(
                MESSAGE_AS_TEXT,
                format!("tab {tab}: the callback message {message:?} was not shown as text (markup rendered)"),
            ));
        }
    }
    found
}

/// Invariant 3: the provider tab was opened with `window.open`, as a tab: no features string.
fn opened_as_tab(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    let opens: Vec<_> = observation.of_kind("window-open").collect();
    for open in &opens {
        let features = open.event["features"].as_str().unwrap_or("");
        if !features.is_empty() {
            found.push(violation(
                OPENED_AS_TAB,
                format!(
                    "tab {} called window.open with features {features:?}",
                    open.tab
                ),
            ));
        }
    }
    let connects = observation
        .steps
        .iter()
        .filter(|s| s.contains(". connect "))
        .count();
    if connects > opens.len() {
        found.push(violation(
            OPENED_AS_TAB,
            format!("{connects} connect click(s) but {} window.open call(s): a tab was opened another way", opens.len()),
        ));
    }
    found
}

fn describe(chat: &ChatState) -> String {
    format!(
        "{} card(s), {} re-sent, {} answer(s), {} tool error(s), {} reconnect prompt(s), {} card error(s) shown",
        chat.cards,
        chat.resent(),
        chat.answers,
        chat.tool_errors,
        chat.reconnect_prompts,
        chat.card_errors_visible
    )
}

/// Invariant 4: the chat resumed (each queued message re-sent exactly once and answered,
/// within the bound), or on denial and failure nothing was re-sent and the error is shown.
fn chat_resumed(scenario: &Scenario, observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for (tab, expected) in &scenario.expect.chat {
        let Some(chat) = observation.chats.get(tab) else {
            found.push(violation(
                CHAT_RESUMED,
                format!("tab {tab}: no chat to read at the end"),
            ));
            continue;
        };
        let cards = chat.cards as isize;
        let resent = chat.resent();
        if resent > cards {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "tab {tab}: a queued message was re-sent more than once ({})",
                    describe(chat)
                ),
            ));
            continue;
        }
        if !chat_is(chat, *expected) {
            found.push(violation(
                CHAT_RESUMED,
                format!("tab {tab}: expected {expected:?}, got {}", describe(chat)),
            ));
        }
    }
    for check in &observation.chat_checks {
        if !chat_is(&check.state, check.expected) {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "at step {}: tab {} was not {:?}: {}",
                    check.step,
                    check.tab,
                    check.expected,
                    describe(&check.state)
                ),
            ));
        }
    }
    let bound = scenario.expect.resume_within_ms.unwrap_or(15_000);
    for latency in &observation.resume_latencies_ms {
        if *latency > bound {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "the answer came {latency} ms after the consent, over the {bound} ms bound"
                ),
            ));
        }
    }
    found
}

/// Whether a chat is in the state `expected` describes.
fn chat_is(chat: &ChatState, expected: ChatExpectation) -> bool {
    let cards = chat.cards as isize;
    let resent = chat.resent();
    if resent > cards {
        return false;
    }
    match expected {
        ChatExpectation::Resumed => resent == cards && cards > 0 && chat.answers > 0,
        ChatExpectation::ErrorShown => resent == cards - 1 && chat.card_errors_visible > 0,
        ChatExpectation::Waiting => resent == cards - 1 && chat.card_errors_visible == 0,
        ChatExpectation::ToolErrorAndReconnect => {
            resent == cards - 1 && chat.tool_errors > 0 && chat.reconnect_prompts > 0
        }
    }
}

/// Invariant 5: the callback tab closed itself, or stayed open showing how to close it.
fn callback_closed(observation: &Observation) -> Vec<Violation> {
    observation
        .callback_tabs
        .iter()
        .filter(|tab| !tab.closed_by_itself && !tab.close_hint_visible)
        .map(|tab| {
            violation(
                CALLBACK_CLOSED,
                format!(
                    "tab {} loaded {CALLBACK_PATH}, stayed open and shows no close hint",
                    tab.tab
                ),
            )
        })
        .collect()
}

/// Invariant 6: the provider never received the platform's session cookie or anything of the chat's auth.
fn provider_never_gets_platform_auth(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for request in &observation.provider_requests {
        let mut seen = format!("{} {}?{}", request.method, request.path, request.query);
        for (name, value) in &request.headers {
            seen.push_str(&format!("\n{name}: {value}"));
        }
        for (name, value) in &observation.platform_cookies {
            if value.len() >= 8 && seen.contains(value.as_str()) {
                found.push(violation(
                    PROVIDER_NEVER_GETS_PLATFORM_AUTH,
                    format!(
                        "the provider received the platform cookie {name} in {} {}",
                        request.method, request.path
                    ),
                ));
            }
        }
    }
    found.dedup();
    found
}

/// Invariant 7: after a disconnect or a provider-side revocation, the next tool call gives a
/// tool error and a reconnect prompt.
fn revocation(scenario: &Scenario, observation: &Observation) -> Vec<Violation> {
    use crate::scenario::Step;
    let mut found = Vec::new();
    let mut revoked = false;
    let mut asked_after: Vec<String> = Vec::new();
    for step in &scenario.steps {
        match step {
            Step::Disconnect { .. } | Step::ProviderRevokes => revoked = true,
            // Connected anew before asking: the next tool call may use the new connection.
            Step::Consent {
                decision: crate::scenario::Decision::Allow,
                ..
            } => revoked = false,
            Step::Say { tab, .. } if revoked => {
                asked_after.push(tab.clone());
                revoked = false;
            }
            _ => {}
        }
    }
    for tab in asked_after {
        let Some(chat) = observation.chats.get(&tab) else {
            continue;
        };
        if chat.tool_errors == 0 || chat.reconnect_prompts == 0 {
            found.push(violation(
                REVOCATION,
                format!("tab {tab}: after the revocation the tool call gave no tool error and reconnect prompt ({})", describe(chat)),
            ));
        }
    }
    found
}

/// Invariant 9: a page of another origin (`open-hostile-page`) receives nothing on any
/// channel, whether it opened the callback or started the connect flow itself.
fn hostile_receives_nothing(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for page in &observation.hostile_pages {
        match &page.received {
            None => found.push(violation(
                HOSTILE_RECEIVES_NOTHING,
                format!(
                    "tab {}: the hostile page could not be read at the end (closed or navigated away), so nothing shows it received nothing",
                    page.tab
                ),
            )),
            Some(received) => {
                for receipt in received {
                    found.push(violation(
                        HOSTILE_RECEIVES_NOTHING,
                        format!(
                            "tab {} (another site) received on {} from {:?}: {}",
                            page.tab, receipt.channel, receipt.origin, receipt.data
                        ),
                    ));
                }
            }
        }
    }
    found
}

/// Invariant 10: a platform redirect (code and state) started in another browser session is
/// refused: no code exchange, and the other session's connection is not resolved.
fn redirect_bound_to_session(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for redirect in &observation.cross_session_redirects {
        if redirect.tokens_issued > 0 {
            found.push(violation(
                REDIRECT_BOUND_TO_SESSION,
                format!(
                    "tab {}: the platform exchanged the code of a sign-in another browser session started ({} token response(s))",
                    redirect.tab, redirect.tokens_issued
                ),
            ));
        }
        if redirect.other_session_status == "connected" {
            found.push(violation(
                REDIRECT_BOUND_TO_SESSION,
                format!(
                    "tab {}: the other session's connection became connected through this browser",
                    redirect.tab
                ),
            ));
        }
    }
    found
}

/// Invariant 11: this session learns nothing of another org's connection (the status API
/// answers 404 and echoes nothing of it), and opening the callback URL naming it resolves
/// nothing: it stays pending.
fn org_isolation(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for probe in &observation.other_org_probes {
        if probe.by_its_member {
            let status: Value = serde_json::from_str(&probe.body).unwrap_or(Value::Null);
            if status["status"] != "pending" {
                found.push(violation(
                    ORG_ISOLATION,
                    format!(
                        "another org's connection changed through this browser: its member now reads {} {}",
                        probe.status, probe.body
                    ),
                ));
            }
            continue;
        }
        let revealed = probe.body.contains(&probe.connection_id)
            || ["pending", "connected", "connectionId"]
                .iter()
                .any(|word| probe.body.contains(word));
        if (200..300).contains(&probe.status) || revealed {
            found.push(violation(
                ORG_ISOLATION,
                format!(
                    "{} about another org's connection answered {} {}",
                    probe.what, probe.status, probe.body
                ),
            ));
        }
    }
    found
}

/// Invariant 12: every authorization code is exchanged once: the provider never saw a code
/// presented twice (which, by RFC 6749 §4.1.2, also revokes what it issued).
fn single_exchange(observation: &Observation) -> Vec<Violation> {
    observation
        .provider_requests
        .iter()
        .filter(|r| r.path == "/token" && r.outcome.contains("code already used"))
        .map(|r| {
            violation(
                SINGLE_EXCHANGE,
                format!(
                    "the platform presented a code twice at the provider's token endpoint ({} {})",
                    r.status, r.outcome
                ),
            )
        })
        .collect()
}
