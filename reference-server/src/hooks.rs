//! The named points where a defect of the catalogue (feature `catalogue`, `--defect NAME`)
//! changes what the reference server does. Each hook takes what a handler computed and gives
//! back what it serves; without the feature each gives it back unchanged, so the handlers read
//! as the reference implementation and carry no `#[cfg]`. The defects themselves are listed,
//! with the script edits, in `defects.rs`.

use crate::db::ConnectionRecord;
#[cfg(feature = "catalogue")]
use crate::db::ConnectionStatus;
use crate::state::AppState;
use axum::Router;
use axum::response::Response;

#[cfg(feature = "catalogue")]
use crate::Defect;

/// Routes a defect adds (`token-in-subresource-url`'s stylesheet).
pub fn routes(state: &AppState, routes: Router<AppState>) -> Router<AppState> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::TokenInSubresourceUrl) {
        return crate::defects::debug_routes(routes);
    }
    let _ = state;
    routes
}

/// Edits a defect makes to the served page scripts: `(file, from, to)`.
pub fn script_edits(state: &AppState) -> &'static [(&'static str, &'static str, &'static str)] {
    #[cfg(feature = "catalogue")]
    if let Some(defect) = state.settings().defect {
        return defect.script_edits();
    }
    let _ = state;
    &[]
}

/// Whether a queued message is re-sent for a connection that is not connected (`resends-on-error`
/// does); the reference refuses.
pub fn resends_unconnected(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::ResendsOnError) {
        return true;
    }
    let _ = state;
    false
}

/// Whether a disconnect revokes the refresh token at the provider (`revokes-access-token-only`
/// does not).
pub fn revokes_refresh_token(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RevokesAccessTokenOnly) {
        return false;
    }
    let _ = state;
    true
}

/// Whether a queued message is re-sent: the first delivery only, unless a defect re-sends on
/// every one.
pub fn resends(state: &AppState, first_resend: bool) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::ResendOnEveryDelivery) {
        return true;
    }
    let _ = state;
    first_resend
}

/// The connection a connect click signs in to: the pending one it reuses, or a new one each
/// click (`duplicate-connection-on-retry`).
pub fn connection_to_sign_in(
    state: &AppState,
    user: &str,
    connection: ConnectionRecord,
) -> anyhow::Result<ConnectionRecord> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::DuplicateConnectionOnRetry) {
        let id = state.entropy().token("conn_", 16);
        state
            .db()
            .create_connection(&id, &connection.org, &connection.connector, user)?;
        return Ok(state
            .db()
            .connection(&connection.org, &id)?
            .expect("just created"));
    }
    let _ = (state, user);
    Ok(connection)
}

/// The authorization request sent to the provider (`session-cookie-to-provider` adds the
/// session, `no-pkce` drops the challenge).
pub fn authorization_url(state: &AppState, session_id: &str, url: url::Url) -> url::Url {
    #[cfg(feature = "catalogue")]
    {
        let mut url = url;
        if state.has_defect(Defect::SessionCookieToProvider) {
            url.query_pairs_mut().append_pair("login_hint", session_id);
        }
        if state.has_defect(Defect::NoPkce) {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| !k.starts_with("code_challenge"))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url
    }
    #[cfg(not(feature = "catalogue"))]
    {
        let _ = (state, session_id);
        url
    }
}

/// Whether a redirect whose state was used already is refused, and one for a connection no
/// longer pending (`redirect-replayable` accepts both).
pub fn refuses_replays(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RedirectReplayable) {
        return false;
    }
    let _ = state;
    true
}

/// Whether the redirect must come from the browser session that started the sign-in
/// (`state-not-bound-to-session` accepts any).
pub fn binds_state_to_session(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::StateNotBoundToSession) {
        return false;
    }
    let _ = state;
    true
}

/// The message stored when the provider refused (`message-as-html` appends the provider's
/// own description).
pub fn provider_error_message(
    state: &AppState,
    message: String,
    description: Option<&str>,
) -> String {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::MessageAsHtml)
        && let Some(description) = description
    {
        return format!("{message} {description}");
    }
    let _ = (state, description);
    message
}

/// The callback URL after a successful exchange (`token-in-callback-url` and
/// `code-in-callback-url` append secrets).
pub fn success_location(
    state: &AppState,
    location: String,
    access_token: &str,
    code: &str,
) -> String {
    #[cfg(feature = "catalogue")]
    {
        let mut location = location;
        if state.has_defect(Defect::TokenInCallbackUrl) {
            location.push_str(&format!("&access_token={access_token}"));
        }
        if state.has_defect(Defect::CodeInCallbackUrl) {
            location.push_str(&format!("&code={code}"));
        }
        location
    }
    #[cfg(not(feature = "catalogue"))]
    {
        let _ = (state, access_token, code);
        location
    }
}

/// The callback page as served (`cold-start-callback`, `token-in-subresource-url`,
/// `message-as-html` and `token-in-page` change it).
pub fn callback_page(
    state: &AppState,
    page: String,
    message: &str,
    connection_id: Option<&str>,
) -> String {
    #[cfg(feature = "catalogue")]
    {
        let mut page = page;
        if state.has_defect(Defect::ColdStartCallback) && state.first_callback() {
            page = page.replacen("<body ", "<body data-cold-start ", 1);
        }
        if state.has_defect(Defect::TokenInSubresourceUrl)
            && let Some(id) = connection_id
        {
            page = page.replace(
                "</head>",
                &format!(
                    "<link rel=\"stylesheet\" href=\"{}?connection={}\"></head>",
                    crate::defects::STYLE_PATH,
                    crate::pages::escape(id)
                ),
            );
        }
        if state.has_defect(Defect::MessageAsHtml) {
            page = page.replace(&crate::pages::escape(message), message);
        }
        if state.has_defect(Defect::TokenInPage)
            && let Some(id) = connection_id
            && let Ok(Some(credentials)) = state.db().credentials(id)
        {
            page = page.replace(
                "</main>",
                &format!(
                    "<p data-debug-token=\"{}\" hidden></p></main>",
                    credentials.access_token
                ),
            );
        }
        page
    }
    #[cfg(not(feature = "catalogue"))]
    {
        let _ = (state, message, connection_id);
        page
    }
}

/// The connection the status API answers about: the org's (`status-ignores-org` finds it in
/// any org).
pub fn status_lookup(
    state: &AppState,
    found: Option<ConnectionRecord>,
    id: &str,
) -> anyhow::Result<Option<ConnectionRecord>> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::StatusIgnoresOrg) {
        return Ok(state.db().connection_by_id(id)?);
    }
    let _ = (state, id);
    Ok(found)
}

/// The status API's answer (`token-in-status-answer` adds the access token).
pub fn status_answer(
    state: &AppState,
    answer: serde_json::Value,
    connection_id: &str,
) -> anyhow::Result<serde_json::Value> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::TokenInStatusAnswer)
        && let Some(credentials) = state.db().credentials(connection_id)?
    {
        let mut answer = answer;
        answer["debug"] = serde_json::json!({ "accessToken": credentials.access_token });
        return Ok(answer);
    }
    let _ = (state, connection_id);
    Ok(answer)
}

/// What disconnect answers instead of deleting and revoking (`disconnect-keeps-token` marks
/// the connection revoked and keeps the token); `None`: disconnect as the reference does.
pub fn disconnect_instead(
    state: &AppState,
    connection: &ConnectionRecord,
) -> anyhow::Result<Option<Response>> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::DisconnectKeepsToken) {
        use axum::response::IntoResponse as _;
        state
            .db()
            .set_connection_status(&connection.id, ConnectionStatus::Revoked, None)?;
        return Ok(Some(
            axum::Json(serde_json::json!({ "connectionId": connection.id, "status": "revoked", "providerRevocation": "skipped" }))
                .into_response(),
        ));
    }
    let _ = (state, connection);
    Ok(None)
}

/// Whether a connection's tokens are refreshed one request at a time, the stored tokens read
/// again when a request's turn comes (`refresh-not-single-flight` lets every request refresh).
pub fn refreshes_one_at_a_time(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RefreshNotSingleFlight) {
        return false;
    }
    let _ = state;
    true
}

/// How many refreshes one tool call may make before it gives up: one
/// (`retries-without-bound` makes it five, as a client that loops would).
pub fn refreshes_per_tool_call(state: &AppState) -> u32 {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RetriesWithoutBound) {
        return 5;
    }
    let _ = state;
    1
}

/// The `resource` an MCP connector asks for: its server's (`resource-is-origin-root` asks for
/// the server's origin root).
pub fn mcp_resource(state: &AppState, found: String) -> String {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::ResourceIsOriginRoot)
        && let Ok(url) = url::Url::parse(&found)
    {
        return format!("{}/", url.origin().ascii_serialization());
    }
    let _ = state;
    found
}

/// Whether a refresh names the connector's `resource` again (`drops-resource-on-refresh`
/// leaves it out).
pub fn resource_on_refresh(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::DropsResourceOnRefresh) {
        return false;
    }
    let _ = state;
    true
}

/// Whether an authorization response naming another issuer is refused (`ignores-iss` takes
/// it).
pub fn checks_issuer(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::IgnoresIss) {
        return false;
    }
    let _ = state;
    true
}

/// Whether an API answer of a shape the connector does not read is a tool error
/// (`reads-any-answer` shows it as an empty list: "Your files: .").
pub fn refuses_unreadable_answers(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::ReadsAnyAnswer) {
        return false;
    }
    let _ = state;
    true
}

/// Whether a failed revocation at the provider keeps the credentials, stored again
/// (`revoke-failure-keeps-token`); the reference has deleted them already and keeps nothing.
pub fn keeps_credentials_after_failed_revocation(
    state: &AppState,
    connection_id: &str,
    credentials: &crate::db::Credentials,
    scope: &str,
) -> anyhow::Result<bool> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RevokeFailureKeepsToken) {
        state
            .db()
            .store_credentials(connection_id, credentials, scope)?;
        return Ok(true);
    }
    let _ = (state, connection_id, credentials, scope);
    Ok(false)
}

/// The connection a tool call uses (`disconnect-keeps-token` and `revoke-failure-keeps-token`
/// still use a revoked one whose token they kept).
pub fn connection_for_tool(
    state: &AppState,
    latest: Option<ConnectionRecord>,
) -> Option<ConnectionRecord> {
    #[cfg(feature = "catalogue")]
    {
        latest.map(|mut c| {
            let keeps_token = state.has_defect(Defect::DisconnectKeepsToken)
                || (state.has_defect(Defect::RevokeFailureKeepsToken)
                    && matches!(state.db().credentials(&c.id), Ok(Some(_))));
            if keeps_token && c.status == ConnectionStatus::Revoked {
                c.status = ConnectionStatus::Connected;
            }
            c
        })
    }
    #[cfg(not(feature = "catalogue"))]
    {
        let _ = state;
        latest
    }
}

/// Whether an MCP connector's connect reuses the client the org registered
/// (`registers-on-every-connect` registers again).
pub fn reuses_registration(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RegistersOnEveryConnect) {
        return false;
    }
    let _ = state;
    true
}

/// Whether an MCP connector uses a client ID metadata document where the authorization server
/// takes one (`ignores-client-metadata-documents` registers, or fails where it cannot).
pub fn uses_metadata_documents(state: &AppState) -> bool {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::IgnoresClientMetadataDocuments) {
        return false;
    }
    let _ = state;
    true
}

/// Where an authorization server refuses the `resource` (`invalid_target`), the reference
/// shows the error; `retries-without-resource` signs in again without it (a token with no
/// audience, which the MCP server refuses). `begin` starts that attempt.
pub fn retry_without_resource(
    state: &AppState,
    error: &str,
    client: &crate::oauth::ConnectorClient,
    begin: impl FnOnce() -> crate::state::AppResult<url::Url>,
) -> crate::state::AppResult<Option<url::Url>> {
    #[cfg(feature = "catalogue")]
    if state.has_defect(Defect::RetriesWithoutResource)
        && error == "invalid_target"
        && client.settings.resource.is_some()
    {
        let mut url = begin()?;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "resource")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        return Ok(Some(url));
    }
    let _ = (state, error, client, begin);
    Ok(None)
}
