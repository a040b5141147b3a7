//! The platform's routes. `router(state)` builds them without binding a socket, so tests can
//! drive the app in-process.

mod assets;
mod chat;
mod clock;
mod connections;
mod debug;
mod oauth;
mod session;

use crate::OpenerPolicy;
use crate::paths;
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
    let choices = state.choices().clone();
    let mut routes = Router::new();
    if state.behaviour().serves_token_stylesheet() {
        routes = debug::routes(routes);
    }
    if choices.dev_clock {
        routes = routes.route(paths::CLOCK, post(clock::advance));
    }
    if choices.login_hop {
        routes = routes.route(crate::choices::LOGIN_HOP_PATH, get(session::login_hop));
    }
    routes
        .route("/", get(|| async { Redirect::to(paths::LOGIN) }))
        .route("/healthz", get(|| async { "ok" }))
        .route(paths::LOGIN, get(session::login))
        .route("/static/{file}", get(assets::static_file))
        .route(paths::CONNECTORS_PAGE, get(connections::connectors_page))
        .route(choices.connect_route, get(oauth::start))
        .route(paths::CHAT_PAGE, get(chat::chat_page))
        .route(choices.redirect_path, get(oauth::redirect))
        .route(paths::CALLBACK, get(oauth::callback_page))
        .route(choices.client_metadata_path, get(oauth::client_metadata))
        .route(paths::CONNECTORS, get(connections::list))
        .route(paths::CONNECTION, get(connections::status))
        .route(paths::DISCONNECT, post(connections::disconnect))
        .route(paths::MESSAGES, get(chat::messages).post(chat::send))
        .route(paths::RESEND, post(chat::resend))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            security_headers(choices.embeddable, request, next)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            opener_policy(choices.opener_policy, request, next)
        }))
        .with_state(state)
}

/// The platform's `Cross-Origin-Opener-Policy`, where its choices send one.
async fn opener_policy(policy: OpenerPolicy, request: Request, next: Next) -> Response {
    let value = policy.header_for(request.uri().path());
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// The platform's content security policy, framed by `$ancestors` (`frame-ancestors`).
macro_rules! content_security_policy {
    ($ancestors:literal) => {
        concat!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors ",
            $ancestors,
            "; form-action 'self'"
        )
    };
}

/// Content security policy without inline scripts, no referrer, no framing, no sniffing. An
/// embeddable platform lets other sites frame its chat page, and only that page.
async fn security_headers(embeddable: bool, request: Request, next: Next) -> Response {
    let framed = embeddable
        && request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .is_some_and(|path| path.as_str() == paths::CHAT_PAGE);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if framed {
            content_security_policy!("http: https:")
        } else {
            content_security_policy!("'none'")
        }),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !framed {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    response
}
