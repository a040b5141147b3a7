//! The named points where a handler asks the platform's [`Behaviour`](crate::deviation::Behaviour)
//! (the reference's, or a defect's chosen at start-up) what to do. Each takes what a handler
//! computed and gives back what it serves, doing the work a deviation needs (a database write,
//! another answer), so the handlers read as the reference implementation.

use crate::db::{ConnectionRecord, ConnectionStatus};
use crate::state::AppState;
use axum::response::Response;

/// Edits to the served page scripts: `(file, from, to)`.
pub fn script_edits(state: &AppState) -> &'static [crate::deviation::ScriptEdit] {
    state.behaviour().script_edits()
}

/// Whether a queued message is re-sent for a connection that is not connected; the reference
/// refuses.
pub fn resends_unconnected(state: &AppState) -> bool {
    state.behaviour().resends_unconnected()
}

/// Whether a disconnect revokes the refresh token at the provider.
pub fn revokes_refresh_token(state: &AppState) -> bool {
    state.behaviour().revokes_refresh_token()
}

/// Whether a queued message is re-sent: the first delivery only.
pub fn resends(state: &AppState, first_resend: bool) -> bool {
    state.behaviour().resends(first_resend)
}

/// The connection a connect click signs in to: the pending one it reuses.
pub fn connection_to_sign_in(
    state: &AppState,
    user: &str,
    connection: ConnectionRecord,
) -> anyhow::Result<ConnectionRecord> {
    if !state.behaviour().new_connection_per_click() {
        return Ok(connection);
    }
    let id = state.entropy().token("conn_", 16);
    state
        .db()
        .create_connection(&id, &connection.org, &connection.connector, user)?;
    Ok(state
        .db()
        .connection(&connection.org, &id)?
        .expect("just created"))
}

/// The authorization request sent to the provider.
pub fn authorization_url(state: &AppState, session_id: &str, url: url::Url) -> url::Url {
    state.behaviour().authorization_url(session_id, url)
}

/// Whether a redirect whose state was used already is refused, and one for a connection no
/// longer pending.
pub fn refuses_replays(state: &AppState) -> bool {
    state.behaviour().refuses_replays()
}

/// Whether the redirect must come from the browser session that started the sign-in.
pub fn binds_state_to_session(state: &AppState) -> bool {
    state.behaviour().binds_state_to_session()
}

/// The message stored when the provider refused.
pub fn provider_error_message(
    state: &AppState,
    message: String,
    description: Option<&str>,
) -> String {
    state
        .behaviour()
        .provider_error_message(message, description)
}

/// The callback URL after a successful exchange.
pub fn success_location(
    state: &AppState,
    location: String,
    access_token: &str,
    code: &str,
) -> String {
    state
        .behaviour()
        .success_location(location, access_token, code)
}

/// The callback page as served.
pub fn callback_page(
    state: &AppState,
    page: String,
    message: &str,
    connection_id: Option<&str>,
) -> String {
    state
        .behaviour()
        .callback_page(page, message, connection_id, state.db())
}

/// The connection the status API answers about: the org's.
pub fn status_lookup(
    state: &AppState,
    found: Option<ConnectionRecord>,
    id: &str,
) -> anyhow::Result<Option<ConnectionRecord>> {
    state.behaviour().status_lookup(found, id, state.db())
}

/// The status API's answer.
pub fn status_answer(
    state: &AppState,
    answer: serde_json::Value,
    connection_id: &str,
) -> anyhow::Result<serde_json::Value> {
    state
        .behaviour()
        .status_answer(answer, connection_id, state.db())
}

/// What disconnect answers instead of deleting and revoking; `None`: disconnect as the
/// reference does.
pub fn disconnect_instead(
    state: &AppState,
    connection: &ConnectionRecord,
) -> anyhow::Result<Option<Response>> {
    if !state.behaviour().disconnect_keeps_token() {
        return Ok(None);
    }
    use axum::response::IntoResponse as _;
    state
        .db()
        .set_connection_status(&connection.id, ConnectionStatus::Revoked, None)?;
    Ok(Some(
        axum::Json(serde_json::json!({ "connectionId": connection.id, "status": "revoked", "providerRevocation": "skipped" }))
            .into_response(),
    ))
}

/// Whether a connection's tokens are refreshed one request at a time, the stored tokens read
/// again when a request's turn comes.
pub fn refreshes_one_at_a_time(state: &AppState) -> bool {
    state.behaviour().refreshes_one_at_a_time()
}

/// How many refreshes one tool call may make before it gives up.
pub fn refreshes_per_tool_call(state: &AppState) -> u32 {
    state.behaviour().refreshes_per_tool_call()
}

/// The `resource` an MCP connector asks for: its server's.
pub fn mcp_resource(state: &AppState, found: String) -> String {
    state.behaviour().mcp_resource(found)
}

/// Whether a refresh names the connector's `resource` again.
pub fn resource_on_refresh(state: &AppState) -> bool {
    state.behaviour().resource_on_refresh()
}

/// Whether an authorization response naming another issuer is refused.
pub fn checks_issuer(state: &AppState) -> bool {
    state.behaviour().checks_issuer()
}

/// Whether an API answer of a shape the connector does not read is a tool error.
pub fn refuses_unreadable_answers(state: &AppState) -> bool {
    state.behaviour().refuses_unreadable_answers()
}

/// Whether a failed revocation at the provider keeps the credentials, stored again; the
/// reference has deleted them already and keeps nothing.
pub fn keeps_credentials_after_failed_revocation(
    state: &AppState,
    connection_id: &str,
    credentials: &crate::db::Credentials,
    scope: &str,
) -> anyhow::Result<bool> {
    if !state
        .behaviour()
        .keeps_credentials_after_failed_revocation()
    {
        return Ok(false);
    }
    state
        .db()
        .store_credentials(connection_id, credentials, scope)?;
    Ok(true)
}

/// The connection a tool call uses: the latest, as it is.
pub fn connection_for_tool(
    state: &AppState,
    latest: Option<ConnectionRecord>,
) -> Option<ConnectionRecord> {
    latest.map(|mut c| {
        if c.status == ConnectionStatus::Revoked
            && state.behaviour().uses_revoked_connection(&c.id, state.db())
        {
            c.status = ConnectionStatus::Connected;
        }
        c
    })
}

/// Whether an MCP connector's connect reuses the client the org registered.
pub fn reuses_registration(state: &AppState) -> bool {
    state.behaviour().reuses_registration()
}

/// Whether an MCP connector uses a client ID metadata document where the authorization server
/// takes one.
pub fn uses_metadata_documents(state: &AppState) -> bool {
    state.behaviour().uses_metadata_documents()
}

/// Where an authorization server refuses the `resource` (`invalid_target`), the reference
/// shows the error; a deviation signs in again without it (a token with no audience, which
/// the MCP server refuses). `begin` starts that attempt.
pub fn retry_without_resource(
    state: &AppState,
    error: &str,
    client: &crate::oauth::ConnectorClient,
    begin: impl FnOnce() -> crate::state::AppResult<url::Url>,
) -> crate::state::AppResult<Option<url::Url>> {
    if !(state.behaviour().retries_without_resource()
        && error == "invalid_target"
        && client.settings.resource.is_some())
    {
        return Ok(None);
    }
    Ok(Some(crate::deviation::without_parameters(begin()?, |k| {
        k == "resource"
    })))
}
