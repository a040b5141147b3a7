//! The chat page and its API: messages, and the one-time re-send of a queued message.

use super::session::{api_member, page_member, require_json};
use crate::agent::Conversation;
use crate::db::{ConnectionStatus, MessageRecord, NewMessage};
use crate::pages;
use crate::state::{AppResult, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

pub async fn chat_page(
    State(state): State<AppState>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let session = match page_member(&state, &headers, &org, &format!("/{org}/chat/{chat}"))? {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    if !super::session::is_slug(&chat) {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(pages::error_page("Not found", "No such chat.")),
        )
            .into_response());
    }
    Ok(Html(pages::chat_page(&org, &chat, &session.user)).into_response())
}

/// Messages as the page renders them: cards carry their queued message's state and the URL
/// the connect button opens.
fn views(
    state: &AppState,
    org: &str,
    chat: &str,
    messages: &[MessageRecord],
) -> AppResult<serde_json::Value> {
    let queued = state.db().queued(org, chat)?;
    let views: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let queued_state = m
                .queued_id
                .as_ref()
                .and_then(|id| queued.iter().find(|q| &q.id == id))
                .map(|q| q.state.clone());
            let start_url = match (&m.connector, &m.connection_id, &m.queued_id) {
                (Some(connector), Some(connection), Some(_)) => Some(format!(
                    "{}?connection={connection}",
                    state.choices().connect_path(org, connector)
                )),
                _ => None,
            };
            json!({
                "id": m.id,
                "role": m.role,
                "kind": m.kind,
                "text": m.text,
                "connector": m.connector,
                "connectionId": m.connection_id,
                "queuedId": m.queued_id,
                "queuedState": queued_state,
                "startUrl": start_url,
            })
        })
        .collect();
    Ok(json!(views))
}

fn chat_exists_check(chat: &str) -> Result<(), Response> {
    if super::session::is_slug(chat) {
        Ok(())
    } else {
        Err((StatusCode::NOT_FOUND, Json(json!({ "error": "not-found" }))).into_response())
    }
}

pub async fn messages(
    State(state): State<AppState>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Err(response) =
        api_member(&state, &headers, &org)?.and_then(|_| chat_exists_check(&chat))
    {
        return Ok(response);
    }
    let messages = state.db().messages(&org, &chat)?;
    Ok(Json(json!({ "messages": views(&state, &org, &chat, &messages)? })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SendBody {
    text: String,
}

pub async fn send(
    State(state): State<AppState>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let session = match api_member(&state, &headers, &org)?
        .and_then(|s| chat_exists_check(&chat).map(|_| s))
    {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    if let Err(response) = require_json(&headers) {
        return Ok(response);
    }
    let text = match serde_json::from_slice::<SendBody>(&body) {
        Ok(body) if !body.text.trim().is_empty() && body.text.len() <= 2000 => body.text,
        _ => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "the body must be {\"text\": \"...\"} with 1 to 2000 characters" })),
            )
                .into_response());
        }
    };
    let mut added = vec![state.db().add_message(
        &org,
        &chat,
        &NewMessage {
            role: "user",
            kind: "text",
            text: &text,
            ..Default::default()
        },
    )?];
    let conversation = Conversation {
        state: &state,
        org: &org,
        chat: &chat,
        user: &session.user,
    };
    added.extend(conversation.answer(&text).await?);
    Ok(Json(json!({ "messages": views(&state, &org, &chat, &added)? })).into_response())
}

/// Re-sends a queued message once its connection is live. Exactly once: a second call answers
/// `resent: false` and adds nothing.
pub async fn resend(
    State(state): State<AppState>,
    Path((org, chat, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let session = match api_member(&state, &headers, &org)?
        .and_then(|s| chat_exists_check(&chat).map(|_| s))
    {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    if let Err(response) = require_json(&headers) {
        return Ok(response);
    }
    let Some(queued) = state.db().queued_message(&org, &chat, &id)? else {
        return Ok((StatusCode::NOT_FOUND, Json(json!({ "error": "not-found" }))).into_response());
    };
    let status = state
        .db()
        .connection(&org, &queued.connection_id)?
        .map(|c| c.status);
    if status != Some(ConnectionStatus::Connected) && !crate::hooks::resends_unconnected(&state) {
        return Ok((
            StatusCode::CONFLICT,
            Json(
                json!({ "error": "not-connected", "status": status.map(ConnectionStatus::as_str) }),
            ),
        )
            .into_response());
    }
    let first_resend = state.db().mark_resent(&queued.id)?;
    if !crate::hooks::resends(&state, first_resend) {
        return Ok(Json(json!({ "resent": false, "messages": [] })).into_response());
    }
    tracing::info!(queued = %queued.id, "re-sending a queued message");
    let mut added = vec![state.db().add_message(
        &org,
        &chat,
        &NewMessage {
            role: "user",
            kind: "resent",
            text: &queued.text,
            queued_id: Some(&queued.id),
            ..Default::default()
        },
    )?];
    let conversation = Conversation {
        state: &state,
        org: &org,
        chat: &chat,
        user: &session.user,
    };
    added.extend(conversation.answer(&queued.text).await?);
    Ok(
        Json(json!({ "resent": true, "messages": views(&state, &org, &chat, &added)? }))
            .into_response(),
    )
}
