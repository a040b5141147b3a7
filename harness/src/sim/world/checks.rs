//! The checks at the end of a flow: the invariants of the catalogue the simulator judges.

use super::*;
use crate::check::credentials;

pub(super) fn data_connection(data: &Value) -> String {
    let value = match data {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    value["connectionId"].as_str().unwrap_or("").to_owned()
}

impl World<'_> {
    pub(super) fn finish(mut self) -> FlowOutcome {
        // What the chat shows, from the server (the page renders what it sends).
        let answer = self.platform_request("GET", &self.messages_path(), None);
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let count = |f: &dyn Fn(&Value) -> bool| messages.iter().filter(|m| f(m)).count();
        let users = count(&|m| m["role"] == "user");
        let answers = count(&|m| m["kind"] == "answer");
        let tool_errors = count(&|m| m["kind"] == "tool-error");
        let reconnects = count(&|m| m["kind"] == "reconnect-card");
        let cards = count(&|m| m["kind"] == "connect-card" || m["kind"] == "reconnect-card");
        let card_errors = match &self.tabs[self.chat_tab()].page {
            Page::Chat { cards } => cards.iter().filter(|c| c.view == "error").count(),
            _ => 0,
        };
        let resent = users as isize - self.said as isize;
        let chat_line = format!(
            "[chat] said {}, re-sent {resent}, cards {cards}, answers {answers}, tool errors {tool_errors}, reconnect prompts {reconnects}, card errors shown {card_errors}",
            self.said
        );
        self.note(chat_line.clone());

        // Liveness: a connected card's message was re-sent; a failed one shows the error.
        let mut card_connections = Vec::new();
        let mut failed_connections = 0;
        for message in &messages {
            let kind = message["kind"].as_str().unwrap_or("");
            if kind != "connect-card" && kind != "reconnect-card" {
                continue;
            }
            let connection = message["connectionId"].as_str().unwrap_or("").to_owned();
            card_connections.push(connection.clone());
            let (_, status) = self.connection_status(&connection);
            failed_connections += usize::from(status["status"] == "failed");
            let queued = message["queuedId"].as_str().unwrap_or("").to_owned();
            let shown = self.id(&queued, "QUEUED");
            if status["status"] == "connected" && message["queuedState"] == "waiting" {
                self.violation(
                    CHAT_RESUMED,
                    format!("the server says connected, the chat tab is open, and {shown} was never re-sent"),
                );
            }
            if status["status"] == "failed"
                && let Page::Chat { cards } = &self.tabs[self.chat_tab()].page
                && let Some(card) = cards.iter().find(|c| c.queued_id == queued)
                && card.view != "error"
            {
                let view = card.view.clone();
                self.violation(
                    CHAT_RESUMED,
                    format!("the connection failed and the card for {shown} shows {view:?}, not the error"),
                );
            }
        }
        if resent > cards as isize {
            self.violation(
                RESEND_AT_MOST_ONCE,
                format!("{resent} messages re-sent for {cards} card(s)"),
            );
        }
        let log = self.provider.request_log();
        // Where discovery and registration must succeed, a connection that failed before any
        // authorization request is a connect the platform could not make.
        if let Connector::Notes(server) = self.case.connector
            && server.discovery_succeeds()
            && failed_connections > 0
            && !log.iter().any(|r| r.path == "/authorize")
        {
            self.violation(
                CHAT_RESUMED,
                format!(
                    "the connection failed before any authorization request, though the MCP server ({}) can be connected to",
                    server.name()
                ),
            );
        }
        for detail in resource_inconsistencies(&log) {
            self.violation(RESOURCE_CONSISTENT, detail);
        }
        if let Some(detail) = retries_beyond_bound(&log, users) {
            self.violation(BOUNDED_RETRIES, detail);
        }
        if let Some(detail) = registrations_beyond_one(&log) {
            self.violation(REGISTRATION_REUSED, detail);
        }
        let grants = self.provider.grants(self.now());
        for detail in credentials::left_alive(&grants, &log, &self.disconnects) {
            self.violation(REVOKED_AT_PROVIDER, detail);
        }
        for detail in credentials::used_after(&grants, &log, &self.disconnects) {
            self.violation(UNUSED_AFTER_DISCONNECT, detail);
        }
        let secrets = self.provider.secrets();
        for url in self.callback_urls.clone() {
            let id = url
                .query_pairs()
                .find(|(k, _)| k == "connection_id")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if !id.is_empty() && !card_connections.contains(&id) {
                let shown = self.id(&id, "CONNECTION");
                self.violation(
                    NO_DUPLICATE_CONNECTION,
                    format!("the callback resolved {shown}, a connection no card asked for"),
                );
            }
            for finding in secrets.find_in(url.as_str()) {
                self.violation(
                    NO_SECRET_VISIBLE,
                    format!("{:?} in the callback URL", finding.kind),
                );
            }
        }
        for tab in self.tabs.clone() {
            if matches!(tab.page, Page::Callback) && !tab.closed {
                self.violation(
                    CALLBACK_CLOSED,
                    format!("[{}] shows the callback and never closed", tab.name),
                );
            }
        }
        let provider_lines = log
            .iter()
            .map(|r| format!("{} {} -> {} ({})", r.method, r.path, r.status, r.outcome))
            .collect();
        let chat_ended = if tool_errors > 0 && reconnects > 0 && resent == cards as isize - 1 {
            "tool-error-and-reconnect"
        } else if resent == cards as isize && answers > 0 {
            "resumed"
        } else if card_errors > 0 {
            "error-shown"
        } else {
            "waiting"
        };
        FlowOutcome {
            trace: self.trace,
            violations: self.violations,
            steps: self.steps,
            chat_ended,
            provider_lines,
            chat_line,
        }
    }
}
