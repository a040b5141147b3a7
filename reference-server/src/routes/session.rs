//! Development sign-in, the session cookie, and the membership check every org route makes.

use crate::pages;
use crate::state::{AppResult, AppState};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The reference server's session cookie (a variant may name it otherwise).
pub const SESSION_COOKIE: &str = "alumia_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user: String,
}

/// Org slugs, user names and chat ids: 1 to 40 of `a-z`, `0-9` and `-`.
pub fn is_slug(text: &str) -> bool {
    (1..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

pub fn session(state: &AppState, headers: &HeaderMap) -> AppResult<Option<Session>> {
    let Some(id) = cookie_value(headers, state.choices().session_cookie) else {
        return Ok(None);
    };
    Ok(state
        .db()
        .session_user(&id)?
        .map(|user| Session { id, user }))
}

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::error_page("Not found", "There is nothing here.")),
    )
        .into_response()
}

fn not_found_json() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not-found" })),
    )
        .into_response()
}

/// The session of a member of `org`, for a page: no session redirects to sign-in,
/// another org's page is a 404.
pub fn page_member(
    state: &AppState,
    headers: &HeaderMap,
    org: &str,
    path: &str,
) -> AppResult<Result<Session, Response>> {
    if !is_slug(org) {
        return Ok(Err(not_found_page()));
    }
    let Some(session) = session(state, headers)? else {
        let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        return Ok(Err(Redirect::to(&format!(
            "/dev/login?org={org}&next={next}"
        ))
        .into_response()));
    };
    if !state.db().is_member(&session.user, org)? {
        return Ok(Err(not_found_page()));
    }
    Ok(Ok(session))
}

/// The session of a member of `org`, for the JSON API: 401 without a session,
/// 404 for another org.
pub fn api_member(
    state: &AppState,
    headers: &HeaderMap,
    org: &str,
) -> AppResult<Result<Session, Response>> {
    if !is_slug(org) {
        return Ok(Err(not_found_json()));
    }
    let Some(session) = session(state, headers)? else {
        return Ok(Err((
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "not-signed-in" })),
        )
            .into_response()));
    };
    if !state.db().is_member(&session.user, org)? {
        return Ok(Err(not_found_json()));
    }
    Ok(Ok(session))
}

/// State-changing API calls must be JSON: a cross-site form cannot send that without CORS.
pub fn require_json(headers: &HeaderMap) -> Result<(), Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        Ok(())
    } else {
        Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(serde_json::json!({ "error": "content-type must be application/json" })),
        )
            .into_response())
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    user: Option<String>,
    org: Option<String>,
    next: Option<String>,
}

/// `GET /dev/login?user=alice&org=acme&next=/acme/chat/general`: makes the user a member of
/// the org, starts a session (HttpOnly, SameSite=Lax cookie) and redirects to `next`.
pub async fn login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> AppResult<Response> {
    let (Some(user), Some(org)) = (query.user, query.org.clone()) else {
        return Ok(Html(pages::login_page()).into_response());
    };
    if !is_slug(&user) || !is_slug(&org) {
        return Ok((
            StatusCode::BAD_REQUEST,
            Html(pages::error_page(
                "Invalid sign-in",
                "user and org must be 1 to 40 of a-z, 0-9 and -.",
            )),
        )
            .into_response());
    }
    state.db().add_membership(&user, &org)?;
    let id = state.entropy().token("sess_", 32);
    state.db().create_session(&id, &user)?;
    let next = safe_next(query.next).unwrap_or_else(|| format!("/{org}/chat/general"));
    if state.choices().login_hop {
        // One more of the platform's own pages sets the cookie.
        let mut hop = url::form_urlencoded::Serializer::new(String::new());
        hop.append_pair("session", &id).append_pair("next", &next);
        return Ok(Redirect::to(&format!(
            "{}?{}",
            crate::choices::LOGIN_HOP_PATH,
            hop.finish()
        ))
        .into_response());
    }
    signed_in(&state, &id, &next)
}

/// A local path to land on after signing in, never another site.
fn safe_next(next: Option<String>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
}

/// The redirect to `next` that sets the session cookie.
fn signed_in(state: &AppState, session: &str, next: &str) -> AppResult<Response> {
    let mut response = Redirect::to(next).into_response();
    let cookie = state.choices().session_cookie_header(session);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie)?);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct HopQuery {
    session: String,
    next: Option<String>,
}

/// The extra sign-in hop of a variant (`login_hop`): sets the cookie of a session that
/// exists, then lands on `next`.
pub async fn login_hop(
    State(state): State<AppState>,
    Query(query): Query<HopQuery>,
) -> AppResult<Response> {
    if state.db().session_user(&query.session)?.is_none() {
        return Ok(not_found_page());
    }
    let next = safe_next(query.next).unwrap_or_else(|| "/".to_owned());
    signed_in(&state, &query.session, &next)
}
