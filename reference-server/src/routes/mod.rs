//! The platform's routes. `router(state)` builds them without binding a socket, so tests can
//! drive the app in-process.

mod assets;
mod chat;
mod connections;
mod oauth;
mod session;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};

pub use assets::asset;
pub use session::SESSION_COOKIE;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dev/login") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/dev/login", get(session::login))
        .route("/static/{file}", get(assets::static_file))
        .route("/{org}/connectors", get(connections::connectors_page))
        .route("/{org}/connectors/{connector}/connect", get(oauth::start))
        .route("/{org}/chat/{chat}", get(chat::chat_page))
        .route("/oauth/redirect", get(oauth::redirect))
        .route("/auth/connector-callback", get(oauth::callback_page))
        .route("/api/orgs/{org}/connectors", get(connections::list))
        .route("/api/orgs/{org}/connections/{id}", get(connections::status))
        .route(
            "/api/orgs/{org}/connections/{id}/disconnect",
            post(connections::disconnect),
        )
        .route(
            "/api/orgs/{org}/chats/{chat}/messages",
            get(chat::messages).post(chat::send),
        )
        .route(
            "/api/orgs/{org}/chats/{chat}/queued/{id}/resend",
            post(chat::resend),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Content security policy without inline scripts, no referrer, no framing, no sniffing.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    response
}
