//! The deterministic agent: a message that needs a connector either uses the live connection
//! (tool call to the provider's API with the stored token) or gets a connect card, and the
//! message waits, queued server-side, until the connection resolves.

use crate::db::{
    ConnectionRecord, ConnectionStatus, Credentials, MessageRecord, NewMessage, QueuedRecord,
};
use crate::oauth::{ApiOutcome, ConnectorClient, TokenError};
use crate::state::{AppResult, AppState};

/// The connector a message needs, if any.
pub fn connector_for(text: &str) -> Option<&'static str> {
    let text = text.to_lowercase();
    if text.contains("file") {
        Some("files")
    } else if text.contains("calendar") || text.contains("meeting") {
        Some("calendar")
    } else if text.contains("note") {
        Some("notes")
    } else {
        None
    }
}

/// Why a tool call did not produce an answer.
enum ToolFailure {
    /// The credentials are gone or the provider no longer accepts them.
    Revoked,
    /// The access token expired and the provider gave no refresh token to renew it: the
    /// provider was not asked, and reconnecting is the only way on.
    Expired,
    Unavailable(String),
    /// The provider answered in a shape the connector does not read.
    UnexpectedAnswer,
    /// The token lacks scopes the resource needs (403 `insufficient_scope`): only connecting
    /// again, asking for them, helps.
    InsufficientScope(Vec<String>),
}

pub struct Conversation<'a> {
    pub state: &'a AppState,
    pub org: &'a str,
    pub chat: &'a str,
    pub user: &'a str,
}

impl Conversation<'_> {
    fn say(&self, message: NewMessage<'_>) -> AppResult<MessageRecord> {
        Ok(self.state.db().add_message(self.org, self.chat, &message)?)
    }

    /// Answers a message; returns the messages it added (after the user's own).
    pub async fn answer(&self, text: &str) -> AppResult<Vec<MessageRecord>> {
        let Some(connector) = connector_for(text).filter(|c| self.state.is_connector(c)) else {
            return Ok(vec![self.say(NewMessage {
                role: "agent",
                kind: "text",
                text: "I can list your files or your calendar. Try \u{201c}list my files\u{201d}.",
                ..Default::default()
            })?]);
        };
        let latest = self.state.db().latest_connection(self.org, connector)?;
        let latest = crate::hooks::connection_for_tool(self.state, latest);
        match latest {
            Some(connection) if connection.status == ConnectionStatus::Connected => {
                match self.call_tool(&connection).await? {
                    Ok(answer) => Ok(vec![self.say(NewMessage {
                        role: "agent",
                        kind: "answer",
                        text: &answer,
                        connector: Some(connector),
                        connection_id: Some(&connection.id),
                        ..Default::default()
                    })?]),
                    Err(ToolFailure::Revoked) => {
                        crate::clients::forget_client_if_moved(self.state, self.org, connector)
                            .await?;
                        self.reconnect_after(
                            &connection,
                            text,
                            "The provider no longer accepts this connection.",
                            "was revoked",
                        )
                    }
                    Err(ToolFailure::Expired) => self.reconnect_after(
                        &connection,
                        text,
                        "The connection expired: the provider gave no refresh token to renew it.",
                        "expired",
                    ),
                    Err(ToolFailure::InsufficientScope(scopes)) => {
                        if self
                            .state
                            .choices()
                            .provider_conversation
                            .revokes_replaced_grant
                        {
                            self.revoke_at_provider(&connection).await?;
                        }
                        let wanted = self
                            .state
                            .db()
                            .add_wanted_scopes(self.org, connector, &scopes)?;
                        let needed = if wanted.is_empty() {
                            "more access".to_owned()
                        } else {
                            format!("more access ({})", wanted.join(", "))
                        };
                        self.reconnect_after(
                            &connection,
                            text,
                            &format!("The provider needs {needed} for this request."),
                            &format!("needs {needed}"),
                        )
                    }
                    Err(ToolFailure::Unavailable(why)) => Ok(vec![self.say(NewMessage {
                        role: "agent",
                        kind: "tool-error",
                        text: &format!("Tool error: {why}. Try again in a moment."),
                        connector: Some(connector),
                        ..Default::default()
                    })?]),
                    Err(ToolFailure::UnexpectedAnswer) => Ok(vec![self.say(NewMessage {
                        role: "agent",
                        kind: "tool-error",
                        text: "Tool error: the provider answered in a form this connector does not read, so nothing is shown.",
                        connector: Some(connector),
                        ..Default::default()
                    })?]),
                }
            }
            Some(connection) if connection.status == ConnectionStatus::Revoked => {
                self.reconnect_prompt(connector, text, "was revoked")
            }
            _ => {
                // An MCP server may need no authorization at all: it is asked first, and a
                // card is shown only when it asks for a token.
                if let Some(server_url) = self.state.mcp_server_url(connector)
                    && let Some(answered) =
                        self.without_a_connection(connector, &server_url).await?
                {
                    return Ok(vec![answered]);
                }
                Ok(vec![self.connect_card(connector, text, "connect-card")?])
            }
        }
    }

    /// Calls an MCP server's tool without a token: the answer or tool error when the server
    /// needs no authorization; `None` when it asks for a token (a connect card is due).
    async fn without_a_connection(
        &self,
        connector: &str,
        server_url: &str,
    ) -> AppResult<Option<MessageRecord>> {
        let (kind, text) =
            match crate::mcp_session::call_tool(self.state.http(), server_url, None, None).await {
                ApiOutcome::Unauthorized | ApiOutcome::InsufficientScope(_) => return Ok(None),
                ApiOutcome::Served(body) => match crate::mcp_session::answer_text(
                    &self.display_name(connector),
                    &body,
                ) {
                    Some(answer) => ("answer", answer),
                    None => (
                        "tool-error",
                        "Tool error: the server answered in a form this connector does not read, so nothing is shown.".to_owned(),
                    ),
                },
                ApiOutcome::Failed(why) => ("tool-error", format!("Tool error: {why}. Try again in a moment.")),
            };
        Ok(Some(self.say(NewMessage {
            role: "agent",
            kind,
            text: &text,
            connector: Some(connector),
            ..Default::default()
        })?))
    }

    /// Ends a connection the tool can no longer use (`why` is kept with it), then asks to
    /// connect again, saying `what_happened`.
    fn reconnect_after(
        &self,
        connection: &ConnectionRecord,
        text: &str,
        why: &str,
        what_happened: &str,
    ) -> AppResult<Vec<MessageRecord>> {
        self.state.db().revoke_connection(&connection.id, why)?;
        self.reconnect_prompt(&connection.connector, text, what_happened)
    }

    /// A tool error saying what became of the connection (`was revoked`, `expired`), and a
    /// card to connect again.
    fn reconnect_prompt(
        &self,
        connector: &str,
        text: &str,
        what_happened: &str,
    ) -> AppResult<Vec<MessageRecord>> {
        let display = self.display_name(connector);
        let error = self.say(NewMessage {
            role: "agent",
            kind: "tool-error",
            text: &format!(
                "Tool error: the {display} connection {what_happened}. Reconnect to continue."
            ),
            connector: Some(connector),
            ..Default::default()
        })?;
        Ok(vec![
            error,
            self.connect_card(connector, text, "reconnect-card")?,
        ])
    }

    fn display_name(&self, connector: &str) -> String {
        self.state.display_name(connector)
    }

    /// Queues the message on a pending connection (reused if one is pending or failed).
    fn connect_card(&self, connector: &str, text: &str, kind: &str) -> AppResult<MessageRecord> {
        let connection = pending_connection(self.state, self.org, connector, self.user)?;
        let queued = QueuedRecord {
            id: self.state.entropy().token("q_", 16),
            text: text.to_owned(),
            connector: connector.to_owned(),
            connection_id: connection.id.clone(),
            state: "waiting".to_owned(),
        };
        self.state
            .db()
            .queue_message(&queued, self.org, self.chat)?;
        let display = self.display_name(connector);
        self.say(NewMessage {
            role: "agent",
            kind,
            text: &format!(
                "I need access to your {display} to answer this. Connect it and I will continue."
            ),
            connector: Some(connector),
            connection_id: Some(&connection.id),
            queued_id: Some(&queued.id),
        })
    }

    /// Calls the connector's API with the stored token, refreshing it once when needed.
    async fn call_tool(
        &self,
        connection: &ConnectionRecord,
    ) -> AppResult<Result<String, ToolFailure>> {
        let Some(client) = crate::clients::client(self.state, self.org, &connection.connector)?
        else {
            return Ok(Err(ToolFailure::Unavailable(
                "this connector is not configured".into(),
            )));
        };
        let Some(mut credentials) = self.state.db().credentials(&connection.id)? else {
            return Ok(Err(ToolFailure::Revoked));
        };
        let conversation = self.state.choices().provider_conversation;
        // Without a refresh token there is nothing to renew early: the token serves until
        // it expires (or, on a platform that keeps no clock, until the API refuses it).
        let expired = match credentials.refresh_token {
            Some(_) => conversation
                .refreshes_before_calling(credentials.expires_at_ms, self.state.clock().now_ms()),
            None => conversation.expired(credentials.expires_at_ms, self.state.clock().now_ms()),
        };
        if expired && credentials.refresh_token.is_none() {
            return Ok(Err(ToolFailure::Expired));
        }
        // One refresh per tool call: a provider that refuses the fresh token too is not asked
        // again (no loop; `retries-without-bound` keeps refreshing).
        let refreshes_allowed = crate::hooks::refreshes_per_tool_call(self.state);
        let mut refreshes = 0;
        if expired {
            match self.refresh(&client, connection, &credentials).await? {
                Ok(fresh) => {
                    credentials = fresh;
                    refreshes += 1;
                }
                Err(failure) => return Ok(Err(failure)),
            }
        }
        loop {
            // A fresh token that is expired already is not worth a call (a choice).
            if refreshes > 0
                && conversation.skips_expired_fresh_token
                && credentials
                    .expires_at_ms
                    .is_some_and(|at| at <= self.state.clock().now_ms())
            {
                return Ok(Err(ToolFailure::Revoked));
            }
            match client
                .call_api(self.state.http(), &credentials.access_token)
                .await
            {
                ApiOutcome::Served(body) => {
                    return Ok(match format_answer(&client.settings, &body) {
                        Some(answer) => Ok(answer),
                        None if !crate::hooks::refuses_unreadable_answers(self.state) => {
                            Ok(format_any_answer(&connection.connector, &body))
                        }
                        None => Err(ToolFailure::UnexpectedAnswer),
                    });
                }
                ApiOutcome::Failed(why) => return Ok(Err(ToolFailure::Unavailable(why))),
                ApiOutcome::InsufficientScope(scopes) => {
                    return Ok(Err(ToolFailure::InsufficientScope(scopes)));
                }
                ApiOutcome::Unauthorized if refreshes >= refreshes_allowed => {
                    return Ok(Err(ToolFailure::Revoked));
                }
                ApiOutcome::Unauthorized => {
                    match self.refresh(&client, connection, &credentials).await? {
                        Ok(fresh) => {
                            credentials = fresh;
                            refreshes += 1;
                        }
                        Err(failure) => return Ok(Err(failure)),
                    }
                }
            }
        }
    }

    /// Revokes a connection's stored tokens at the provider (best-effort: a failure changes
    /// nothing here).
    async fn revoke_at_provider(&self, connection: &ConnectionRecord) -> AppResult<()> {
        let (Some(client), Some(credentials)) = (
            crate::clients::client(self.state, self.org, &connection.connector)?,
            self.state.db().credentials(&connection.id)?,
        ) else {
            return Ok(());
        };
        let timeout = self.state.settings().revoke_timeout;
        if let Some(refresh) = &credentials.refresh_token {
            let _ = client
                .revoke(self.state.http(), refresh, "refresh_token", timeout)
                .await;
        }
        let _ = client
            .revoke(
                self.state.http(),
                &credentials.access_token,
                "access_token",
                timeout,
            )
            .await;
        Ok(())
    }

    async fn refresh(
        &self,
        client: &ConnectorClient,
        connection: &ConnectionRecord,
        credentials: &Credentials,
    ) -> AppResult<Result<Credentials, ToolFailure>> {
        let one_at_a_time = crate::hooks::refreshes_one_at_a_time(self.state);
        let _turn = match one_at_a_time {
            true => Some(self.state.refresh_turn(&connection.id).await),
            false => None,
        };
        // Its turn come, the stored tokens again: another request may have refreshed them
        // meanwhile (then they serve as they are), or a disconnect removed them.
        let Some(stored) = self.state.db().credentials(&connection.id)? else {
            return Ok(Err(ToolFailure::Revoked));
        };
        if one_at_a_time && stored.access_token != credentials.access_token {
            return Ok(Ok(stored));
        }
        let Some(refresh_token) = credentials.refresh_token.as_deref() else {
            return Ok(Err(ToolFailure::Revoked));
        };
        let name_resource = crate::hooks::resource_on_refresh(self.state);
        match client
            .refresh(self.state.http(), refresh_token, name_resource)
            .await
        {
            Ok(tokens) => {
                let fresh = Credentials {
                    access_token: tokens.access_token,
                    refresh_token: tokens
                        .refresh_token
                        .or_else(|| credentials.refresh_token.clone()),
                    expires_at_ms: tokens
                        .expires_in
                        .map(|d| self.state.clock().now_ms() + d.as_millis() as i64),
                };
                if self.state.db().credentials(&connection.id)?.is_none() {
                    // Disconnected while refreshing: do not bring the credentials back.
                    return Ok(Err(ToolFailure::Revoked));
                }
                self.state
                    .db()
                    .store_credentials(&connection.id, &fresh, &tokens.scope)?;
                Ok(Ok(fresh))
            }
            Err(TokenError::Refused(_)) => Ok(Err(ToolFailure::Revoked)),
            Err(TokenError::Unavailable(why)) => Ok(Err(ToolFailure::Unavailable(why))),
        }
    }
}

/// The pending connection of an org to a connector: the newest one if it is pending or failed,
/// else a new one. Retrying never creates a second pending connection.
pub fn pending_connection(
    state: &AppState,
    org: &str,
    connector: &str,
    user: &str,
) -> AppResult<ConnectionRecord> {
    if let Some(latest) = state.db().latest_connection(org, connector)?
        && matches!(
            latest.status,
            ConnectionStatus::Pending | ConnectionStatus::Failed
        )
    {
        return Ok(latest);
    }
    let id = state.entropy().token("conn_", 16);
    state.db().create_connection(&id, org, connector, user)?;
    Ok(state
        .db()
        .connection(org, &id)?
        .expect("the connection was just created"))
}

/// The answer in words, or `None` when the body is not the shape the connector reads (a list of
/// `items`, each with its fields): an answer of another shape is no answer, never "no files".
fn format_answer(
    connector: &crate::settings::ConnectorSettings,
    body: &serde_json::Value,
) -> Option<String> {
    if connector.api_style == crate::settings::ApiStyle::Mcp {
        return crate::mcp_session::answer_text(&connector.display_name, body);
    }
    let connector = connector.name.as_str();
    let items = body["items"].as_array()?;
    let fields: &[&str] = match connector {
        "files" => &["name"],
        _ => &["title", "starts"],
    };
    if !items
        .iter()
        .all(|i| fields.iter().all(|f| i[*f].is_string()))
    {
        return None;
    }
    Some(format_any_answer(connector, body))
}

/// The answer in words, whatever the body's shape (missing parts left out).
fn format_any_answer(connector: &str, body: &serde_json::Value) -> String {
    let items = body["items"].as_array().cloned().unwrap_or_default();
    match connector {
        "files" => {
            let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
            format!("Your files: {}.", names.join(", "))
        }
        _ => {
            let events: Vec<String> = items
                .iter()
                .map(|i| {
                    format!(
                        "{} ({})",
                        i["title"].as_str().unwrap_or("?"),
                        i["starts"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            format!("Your calendar: {}.", events.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_answer;
    use crate::settings::{ApiStyle, Settings};
    use serde_json::json;

    fn connector(name: &str) -> crate::settings::ConnectorSettings {
        Settings::for_provider("http://p.example/")
            .connector(name)
            .unwrap()
            .clone()
    }

    #[test]
    fn an_answer_is_read_only_in_the_shape_the_connector_knows() {
        let (files, calendar) = (connector("files"), connector("calendar"));
        let listed = json!({ "items": [{ "name": "a.pdf" }, { "name": "b.md" }] });
        assert_eq!(
            format_answer(&files, &listed).as_deref(),
            Some("Your files: a.pdf, b.md.")
        );
        assert_eq!(
            format_answer(&files, &json!({ "items": [] })).as_deref(),
            Some("Your files: ."),
            "an empty list is an answer"
        );
        for unreadable in [
            json!({ "data": { "entries": [{ "name": "a.pdf" }] } }),
            json!({ "items": [{ "filename": "a.pdf" }] }),
            json!({ "items": "a.pdf" }),
        ] {
            assert_eq!(format_answer(&files, &unreadable), None, "{unreadable}");
        }
        let events = json!({ "items": [{ "title": "Standup", "starts": "Monday 09:00" }] });
        assert_eq!(
            format_answer(&calendar, &events).as_deref(),
            Some("Your calendar: Standup (Monday 09:00).")
        );
        assert_eq!(
            format_answer(&calendar, &json!({ "items": [{ "title": "Standup" }] })),
            None
        );
    }

    #[test]
    fn an_mcp_answer_is_its_text_content_and_an_error_is_none() {
        let mut notes = connector("files");
        notes.display_name = "Notes".into();
        notes.api_style = ApiStyle::Mcp;
        let result = json!({ "jsonrpc": "2.0", "id": 1, "result": { "content": [
            { "type": "text", "text": "standup.md, design-review.md" }
        ] } });
        assert_eq!(
            format_answer(&notes, &result).as_deref(),
            Some("Your notes: standup.md, design-review.md.")
        );
        let error =
            json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32601, "message": "no" } });
        assert_eq!(format_answer(&notes, &error), None);
    }
}
