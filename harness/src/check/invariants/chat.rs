//! What the chat shows: resumed once per connection, re-sent only once connected, and a tool
//! error with a reconnect prompt after a revocation.

use super::payload::{callback_documents, callback_says};
use super::{Check, Rule, Run, Tier, unless};
use crate::check::observation::{ChatState, Observation};
use crate::scenario::{ChatExpectation, Scenario, Step};

pub const CHAT_RESUMED: &str = "chat-resumed";
pub const RESEND_ONLY_WHEN_CONNECTED: &str = "resend-only-when-connected";
pub const REVOCATION: &str = "revocation";

pub struct ChatResumed;

impl Check for ChatResumed {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: CHAT_RESUMED,
            summary: "the queued message was re-sent exactly once and answered within the bound, or nothing was re-sent and the error is shown",
            enforces: "oauth-flow.md, Notes: \"'Resume' means: the chat message that was waiting on the connection is sent again exactly once, and the agent's answer that uses the connector appears.\"",
            tier: Tier::Both,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        (run.scenario.expect.chat.is_empty() && run.observation.chat_checks.is_empty())
            .then(|| "the scenario expects no chat state".into())
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        chat_resumed(run.scenario, run.observation)
    }
}

pub struct ResendOnlyWhenConnected;

impl Check for ResendOnlyWhenConnected {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: RESEND_ONLY_WHEN_CONNECTED,
            summary: "a re-send happens only once the connection is connected: in the browser, no chat shows more re-sent messages than connections that succeeded; in the simulator, no card asks for a re-send before its server says connected",
            enforces: "oauth-flow.md, Flow 6: \"resumes the chat session that was waiting on the connection\"; Notes: \"the chat message that was waiting on the connection is sent again exactly once\" (after the connection, never on a failure)",
            tier: Tier::Both,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(!run.observation.chats.is_empty(), "chat read at the end")
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        resent_without_connection(run.observation)
    }
}

pub struct Revocation;

impl Check for Revocation {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: REVOCATION,
            summary: "after a disconnect or a provider-side revocation, the next tool call shows a tool error and a reconnect prompt",
            enforces: "oauth-flow.md, Disconnecting: \"Removing a connection revokes the stored credentials immediately. Sessions that try to use the connector after that point receive a tool error and surface a reconnect prompt.\"",
            tier: Tier::Both,
        }
    }
    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        revoked_then_asked(scenario)
            .is_empty()
            .then(|| "no tool call after a disconnect or a provider-side revocation".into())
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        revocation(run.scenario, run.observation)
    }
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
fn chat_resumed(scenario: &Scenario, observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for (tab, expected) in &scenario.expect.chat {
        let Some(chat) = observation.chats.get(tab) else {
            found.push(format!("tab {tab}: no chat to read at the end"));
            continue;
        };
        let cards = chat.cards as isize;
        let resent = chat.resent();
        if resent > cards {
            found.push(format!(
                "tab {tab}: a queued message was re-sent more than once ({})",
                describe(chat)
            ));
            continue;
        }
        if !chat_is(chat, *expected) {
            found.push(format!(
                "tab {tab}: expected {expected:?}, got {}",
                describe(chat)
            ));
        }
    }
    for check in &observation.chat_checks {
        if !chat_is(&check.state, check.expected) {
            found.push(format!(
                "at step {}: tab {} was not {:?}: {}",
                check.step,
                check.tab,
                check.expected,
                describe(&check.state)
            ));
        }
    }
    let bound = scenario.expect.resume_within_ms.unwrap_or(15_000);
    for latency in &observation.resume_latencies_ms {
        if *latency > bound {
            found.push(format!(
                "the answer came {latency} ms after the consent, over the {bound} ms bound"
            ));
        }
    }
    found
}

/// The connections that succeeded: the distinct connections of callback pages that said
/// `oauth_result=success`.
fn connections_that_succeeded(observation: &Observation) -> usize {
    let mut connections: Vec<String> = callback_documents(observation)
        .iter()
        .map(|d| callback_says(&d.url))
        .filter(|(result, _)| result == "success")
        .map(|(_, connection)| connection)
        .collect();
    connections.sort();
    connections.dedup();
    connections.len()
}

/// `resend-only-when-connected` in the browser: a chat re-sends a queued message once its
/// connection succeeded, so no chat shows more re-sent messages than connections that
/// succeeded in the run (none on a denial or a failure).
fn resent_without_connection(observation: &Observation) -> Vec<String> {
    let succeeded = connections_that_succeeded(observation);
    observation
        .chats
        .iter()
        .filter(|(_, chat)| chat.resent() > succeeded as isize)
        .map(|(tab, chat)| {
            format!(
                    "tab {tab} re-sent {} message(s) while {succeeded} connection(s) succeeded in the run: a queued message was re-sent for a connection that never connected",
                    chat.resent()
                )
        })
        .collect()
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
        ChatExpectation::ToolError => {
            resent == cards && chat.tool_errors > 0 && chat.reconnect_prompts == 0
        }
        ChatExpectation::Answered => {
            resent == cards
                && chat.tool_errors == 0
                && chat.reconnect_prompts == 0
                && chat.card_errors_visible == 0
                && chat.answers + chat.cards >= chat.user_messages
        }
    }
}

/// The chat tabs that asked for a tool call after a disconnect or a provider-side revocation
/// (and before connecting anew).
fn revoked_then_asked(scenario: &Scenario) -> Vec<String> {
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
    asked_after
}

/// Invariant 7: after a disconnect or a provider-side revocation, the next tool call gives a
/// tool error and a reconnect prompt.
fn revocation(scenario: &Scenario, observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for tab in revoked_then_asked(scenario) {
        let Some(chat) = observation.chats.get(&tab) else {
            continue;
        };
        if chat.tool_errors == 0 || chat.reconnect_prompts == 0 {
            found.push(format!("tab {tab}: after the revocation the tool call gave no tool error and reconnect prompt ({})", describe(chat)));
        }
    }
    found
}
