//! The connectors page and the connections API: list, status, disconnect.

use super::session::{api_member, page_member, require_json};
use crate::db::ConnectionStatus;
use crate::pages::{self, ConnectorRow};
use crate::paths;
use crate::state::{AppResult, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

pub async fn connectors_page(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let session = match page_member(&state, &headers, &org, &format!("/{org}/connectors"))? {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let mut latest = Vec::new();
    for (name, display_name) in state.connector_names() {
        let connection = state.db().latest_connection(&org, &name)?;
        latest.push((name, display_name, connection));
    }
    let rows: Vec<ConnectorRow<'_>> = latest
        .iter()
        .map(|(name, display_name, connection)| ConnectorRow {
            name,
            display_name,
            status: connection.as_ref().map(|c| c.status),
            connection_id: connection.as_ref().map(|c| c.id.as_str()),
            connect_path: state.choices().connect_path(&org, name),
        })
        .collect();
    Ok(Html(pages::connectors_page(&org, &session.user, &rows)).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Err(response) = api_member(&state, &headers, &org)? {
        return Ok(response);
    }
    let mut connectors = Vec::new();
    for (name, display_name) in state.connector_names() {
        let latest = state.db().latest_connection(&org, &name)?;
        let mut entry = json!({
            "name": name,
            "displayName": display_name,
            "status": latest.as_ref().map(|c| c.status.as_str()).unwrap_or("not-connected"),
            "connectionId": latest.as_ref().map(|c| c.id.clone()),
        });
        if state.choices().status_extra_fields
            && let Some(connector) = crate::clients::client(&state, &org, &name)?
        {
            entry["scopes"] = json!(connector.settings.scopes);
            entry["authorizeHost"] = json!(
                url::Url::parse(&connector.settings.authorize_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
            );
        }
        connectors.push(entry);
    }
    Ok(Json(json!({ "connectors": connectors })).into_response())
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not-found" }))).into_response()
}

/// `GET /api/orgs/{org}/connections/{id}`: status and message, never a secret.
pub async fn status(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Err(response) = api_member(&state, &headers, &org)? {
        return Ok(response);
    }
    let found = state.db().connection(&org, &id)?;
    let Some(connection) = crate::hooks::status_lookup(&state, found, &id)? else {
        return Ok(not_found());
    };
    let answer = json!({
        "connectionId": connection.id,
        "connector": connection.connector,
        "status": connection.status.as_str(),
        "message": connection.message,
    });
    let mut answer = crate::hooks::status_answer(&state, answer, &connection.id)?;
    if state.choices().status_extra_fields {
        answer["checkedAt"] = json!(state.clock().now_ms());
        answer["links"] =
            json!({ "connectors": paths::fill(paths::CONNECTORS_PAGE, &[("org", &org)]) });
    }
    Ok(Json(answer).into_response())
}

/// Deletes the stored credentials at once, then revokes them at the provider, best-effort and
/// with a timeout: a failing provider never keeps the credentials alive here.
pub async fn disconnect(
    State(state): State<AppState>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Err(response) = api_member(&state, &headers, &org)? {
        return Ok(response);
    }
    if let Err(response) = require_json(&headers) {
        return Ok(response);
    }
    let Some(connection) = state.db().connection(&org, &id)? else {
        return Ok(not_found());
    };
    if let Some(answer) = crate::hooks::disconnect_instead(&state, &connection)? {
        return Ok(answer);
    }
    let deleted = state
        .db()
        .revoke_connection(&connection.id, "Disconnected by a member of the org.")?;
    let provider_revocation = match (
        deleted,
        crate::clients::client(&state, &org, &connection.connector)?,
    ) {
        (Some(credentials), Some(client)) => {
            let timeout = state.settings().revoke_timeout;
            let mut outcomes = Vec::new();
            if let Some(refresh) = credentials
                .refresh_token
                .as_ref()
                .filter(|_| crate::hooks::revokes_refresh_token(&state))
            {
                outcomes.push(
                    client
                        .revoke(state.http(), refresh, "refresh_token", timeout)
                        .await,
                );
            }
            outcomes.push(
                client
                    .revoke(
                        state.http(),
                        &credentials.access_token,
                        "access_token",
                        timeout,
                    )
                    .await,
            );
            match outcomes.into_iter().find_map(Result::err) {
                None => "revoked".to_owned(),
                Some(why)
                    if crate::hooks::keeps_credentials_after_failed_revocation(
                        &state,
                        &connection.id,
                        &credentials,
                        &client.settings.scopes.join(" "),
                    )? =>
                {
                    format!("failed, credentials kept to retry: {why}")
                }
                Some(why) => {
                    tracing::warn!(connection = %connection.id, %why, "provider revocation failed; credentials already deleted");
                    format!("failed: {why}")
                }
            }
        }
        _ => "nothing to revoke".to_owned(),
    };
    tracing::info!(connection = %connection.id, %provider_revocation, "disconnected");
    Ok(Json(json!({
        "connectionId": connection.id,
        "status": ConnectionStatus::Revoked.as_str(),
        "providerRevocation": provider_revocation,
    }))
    .into_response())
}
