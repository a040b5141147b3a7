//! The OAuth hops: start (pending connection, state + PKCE, redirect to the provider), the
//! server-side redirect URI (state check, code exchange, credentials stored) and the callback
//! page that tells the originating page and closes itself.

use super::session::{page_member, session};
use crate::agent::pending_connection;
use crate::choices::Choices;
use crate::db::{AttemptLookup, ConnectionStatus, Credentials};
use crate::hooks;
use crate::pages;
use crate::paths;
use crate::state::{AppResult, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

fn found(location: &str) -> AppResult<Response> {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(location)?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    (status, Html(pages::error_page(title, detail))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    connection: Option<String>,
}

/// `GET /{org}/connectors/{connector}/connect[?connection=ID]`: the URL the connect button
/// opens in a new tab. Re-opening it for the same pending or failed connection starts a new
/// attempt on that connection: no duplicate connection on retry.
pub async fn start(
    State(state): State<AppState>,
    Path((org, connector)): Path<(String, String)>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let path = state.choices().connect_path(&org, &connector);
    let session = match page_member(&state, &headers, &org, &path)? {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    if !state.is_connector(&connector) {
        return Ok(error_page(
            StatusCode::NOT_FOUND,
            "Unknown connector",
            "This connector does not exist.",
        ));
    }
    let display = state.display_name(&connector);
    let connection = match query.connection {
        Some(id) => match state.db().connection(&org, &id)? {
            Some(connection) if connection.connector == connector => connection,
            _ => {
                return Ok(error_page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no such connection.",
                ));
            }
        },
        None => match state.db().latest_connection(&org, &connector)? {
            Some(latest) if latest.status == ConnectionStatus::Connected => latest,
            _ => pending_connection(&state, &org, &connector, &session.user)?,
        },
    };
    let connection = hooks::connection_to_sign_in(&state, &session.user, connection)?;
    match connection.status {
        ConnectionStatus::Connected => {
            return found(&callback_location(
                state.choices(),
                true,
                Some(&connection.id),
                &format!("{display} is already connected."),
            ));
        }
        ConnectionStatus::Revoked => {
            return Ok(error_page(
                StatusCode::CONFLICT,
                "Connection removed",
                "This connection was disconnected. Ask again in the chat to connect anew.",
            ));
        }
        ConnectionStatus::Failed => {
            state
                .db()
                .set_connection_status(&connection.id, ConnectionStatus::Pending, None)?;
        }
        ConnectionStatus::Pending => {}
    }
    // An MCP server's authorization is found, and a client registered, on the org's first
    // connect; what stops it is shown on the card, and nothing is asked of any provider.
    let client = match crate::clients::client_or_register(&state, &org, &connector).await? {
        Some(Ok(client)) => client,
        Some(Err(why)) => {
            tracing::warn!(connection = %connection.id, connector = %connector, %why, "MCP discovery stopped");
            return fail_connection(
                &state,
                &connection.id,
                &format!("{display} could not be connected: {why}."),
            );
        }
        None => {
            return Ok(error_page(
                StatusCode::NOT_FOUND,
                "Unknown connector",
                "This connector does not exist.",
            ));
        }
    };
    tracing::info!(connection = %connection.id, connector = %connector, "sign-in started");
    let authorization = begin_attempt(&state, &connection, &session.id, &client)?;
    found(authorization.as_str())
}

/// A new sign-in attempt for `connection` in the browser session `session_id`: its state and
/// PKCE verifier stored, and the provider's authorization URL that carries them.
fn begin_attempt(
    state: &AppState,
    connection: &crate::db::ConnectionRecord,
    session_id: &str,
    client: &crate::oauth::ConnectorClient,
) -> AppResult<url::Url> {
    let attempt_state = state.entropy().token("st_", 32);
    let verifier = state.entropy().token("", 64);
    state
        .db()
        .create_attempt(&attempt_state, &connection.id, session_id, &verifier)?;
    Ok(hooks::authorization_url(
        state,
        session_id,
        client.authorization_url(
            &attempt_state,
            &verifier,
            &state
                .db()
                .wanted_scopes(&connection.org, &connection.connector)?,
        ),
    ))
}

/// The platform's client ID metadata document: a public client, its redirect URI, its name.
pub async fn client_metadata(State(state): State<AppState>) -> Response {
    axum::Json(crate::clients::client_metadata_document(&state)).into_response()
}

/// The callback URL the browser is sent to, with the message as the platform words it.
fn callback_location(
    choices: &Choices,
    success: bool,
    connection_id: Option<&str>,
    message: &str,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("oauth_result", if success { "success" } else { "error" });
    if let Some(id) = connection_id {
        query.append_pair("connection_id", id);
    }
    if let Some(message) = choices.callback_message(success, message) {
        query.append_pair("oauth_message", &message);
    }
    format!("{}?{}", paths::CALLBACK, query.finish())
}

/// An error code from the provider, kept only if it looks like one (`access_denied`).
fn safe_error_code(code: &str) -> &str {
    if !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        code
    } else {
        "unknown_error"
    }
}

#[derive(Debug, Deserialize)]
pub struct RedirectQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The provider that answers (RFC 9207), when it says so.
    iss: Option<String>,
}

/// `GET /oauth/redirect`: the redirect URI registered at the provider. The code is exchanged
/// here; the browser only ever sees the callback URL, without the code.
pub async fn redirect(
    State(state): State<AppState>,
    Query(query): Query<RedirectQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let fail = |id: Option<&str>, message: &str| {
        to_callback(
            &state,
            &callback_location(state.choices(), false, id, message),
        )
    };
    let Some(attempt_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return fail(None, "The sign-in response carried no state.");
    };
    let attempt = match state.db().take_attempt(attempt_state)? {
        AttemptLookup::Unknown => {
            tracing::warn!("redirect with an unknown state");
            return fail(None, "This sign-in response is unknown.");
        }
        AttemptLookup::AlreadyUsed(attempt) if !hooks::refuses_replays(&state) => attempt,
        AttemptLookup::AlreadyUsed(attempt) => {
            tracing::warn!("redirect with a state already used");
            let named = state
                .choices()
                .replay_refusal_names_connection
                .then_some(attempt.connection_id.as_str());
            return fail(named, "This sign-in response was already used.");
        }
        AttemptLookup::Fresh(attempt) => attempt,
    };
    let current = session(&state, &headers)?;
    if hooks::binds_state_to_session(&state)
        && current.as_ref().map(|s| s.id.as_str()) != Some(attempt.session_id.as_str())
    {
        tracing::warn!(connection = %attempt.connection_id, "redirect in another browser session than the one that started it");
        return fail(None, "This sign-in was started in another browser session.");
    }
    let Some(connection) = state.db().connection_by_id(&attempt.connection_id)? else {
        return fail(None, "This connection no longer exists.");
    };
    if hooks::refuses_replays(&state) && connection.status != ConnectionStatus::Pending {
        return fail(
            Some(&connection.id),
            "This connection is no longer waiting for a sign-in.",
        );
    }
    let Some(client) = crate::clients::client(&state, &connection.org, &connection.connector)?
    else {
        return fail(Some(&connection.id), "This connector is not configured.");
    };
    let display = client.settings.display_name.clone();
    // Mix-up defence (RFC 9207 §2.4, RFC 9700 §4.4): a response that names a provider names
    // this connector's, or it is refused before anything is exchanged.
    if let (Some(iss), Some(issuer)) = (&query.iss, &client.settings.issuer)
        && iss != issuer
        && hooks::checks_issuer(&state)
    {
        tracing::warn!(connection = %connection.id, %iss, "authorization response from another issuer");
        return fail_connection(
            &state,
            &connection.id,
            &format!(
                "The sign-in response came from another provider than {display}: nothing was connected."
            ),
        );
    }
    // A provider known to send `iss` (RFC 9207 §2.4: its metadata says so, or the connector's
    // settings do) that sent none: the response may come from another provider.
    if query.iss.is_none() && client.settings.requires_iss && hooks::checks_issuer(&state) {
        tracing::warn!(connection = %connection.id, "authorization response without iss");
        return fail_connection(
            &state,
            &connection.id,
            &format!(
                "The sign-in response did not say it came from {display}: nothing was connected."
            ),
        );
    }
    if let Some(error) = &query.error {
        if let Some(retry) = hooks::retry_without_resource(&state, error, &client, || {
            begin_attempt(&state, &connection, &attempt.session_id, &client)
        })? {
            return found(retry.as_str());
        }
        let message = format!(
            "{display} did not grant access ({}).",
            safe_error_code(error)
        );
        let message =
            hooks::provider_error_message(&state, message, query.error_description.as_deref());
        return fail_connection(&state, &connection.id, &message);
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail_connection(
            &state,
            &connection.id,
            &format!("{display} sent neither a code nor an error."),
        );
    };
    match client
        .exchange_code(state.http(), code, &attempt.pkce_verifier)
        .await
    {
        Ok(tokens) => {
            let credentials = Credentials {
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                expires_at_ms: tokens
                    .expires_in
                    .map(|d| state.clock().now_ms() + d.as_millis() as i64),
            };
            if state
                .db()
                .connection_by_id(&connection.id)?
                .map(|c| c.status)
                != Some(ConnectionStatus::Pending)
            {
                return fail(
                    Some(&connection.id),
                    "This connection was cancelled during the sign-in.",
                );
            }
            state
                .db()
                .store_credentials(&connection.id, &credentials, &tokens.scope)?;
            state
                .db()
                .set_connection_status(&connection.id, ConnectionStatus::Connected, None)?;
            tracing::info!(connection = %connection.id, "connected");
            if state.choices().provider_conversation.tests_new_connection {
                // One call to see that the new connection works; what it answers changes
                // nothing here.
                let _ = client
                    .call_api(state.http(), &credentials.access_token)
                    .await;
            }
            let location = hooks::success_location(
                &state,
                callback_location(
                    state.choices(),
                    true,
                    Some(&connection.id),
                    &format!("Connected to {display}."),
                ),
                &credentials.access_token,
                code,
            );
            to_callback(&state, &location)
        }
        Err(error) => {
            tracing::warn!(connection = %connection.id, %error, "code exchange failed");
            fail_connection(
                &state,
                &connection.id,
                &format!("Connecting {display} failed: {error}."),
            )
        }
    }
}

/// Marks the connection failed with `message`, and sends the browser to the callback page
/// saying so.
fn fail_connection(state: &AppState, connection_id: &str, message: &str) -> AppResult<Response> {
    state
        .db()
        .set_connection_status(connection_id, ConnectionStatus::Failed, Some(message))?;
    to_callback(
        state,
        &callback_location(state.choices(), false, Some(connection_id), message),
    )
}

/// How the redirect URI sends the browser on to the callback: a `302`, or, where the
/// platform's choices say so, a page that forwards there.
fn to_callback(state: &AppState, location: &str) -> AppResult<Response> {
    if state.choices().redirect_through_page {
        let mut response = Html(pages::forwarding_page(location)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    found(location)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    oauth_result: Option<String>,
    oauth_message: Option<String>,
    connection_id: Option<String>,
}

/// `GET /auth/connector-callback`: shows the result as text; its script broadcasts it and
/// closes the tab.
pub async fn callback_page(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let success = query.oauth_result.as_deref() == Some("success");
    let message = query.oauth_message.as_deref().unwrap_or("");
    let page = hooks::callback_page(
        &state,
        pages::callback_page(success, message, state.choices().callback_markup),
        message,
        query.connection_id.as_deref(),
    );
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
