//! The reference Alumia platform: org connectors, OAuth 2.0 authorization code + PKCE against a
//! provider, server-side code exchange, the callback page that broadcasts the result on three
//! channels and closes, and a chat whose queued message is re-sent exactly once on connection.
//!
//! `Application::build(settings)` binds; `run_until_stopped()` serves; `router(state)` gives the
//! routes without a socket; `InMemoryPlatform` gives them with an in-memory database and the
//! outgoing requests handed to a function (the simulator's platform).

// Guards return `Result<_, axum::response::Response>` so a handler can answer early; the
// response is large, and boxing it would only add noise at every call site.
#![allow(clippy::result_large_err)]

mod agent;
mod choices;
mod clients;
mod clock;
mod db;
pub mod defects;
mod deviation;
mod entropy;
mod hooks;
mod http;
pub mod mcp;
pub mod mcp_session;
mod oauth;
mod pages;
pub mod paths;
mod routes;
mod settings;
mod startup;
mod state;
mod variants;

pub use agent::connector_for;
pub use choices::{Choices, OpenerPolicy, ProviderConversation, RefreshPolicy, Wording};
pub use clock::Clock;
pub use defects::Defect;
pub use http::{Http, HttpError, InMemoryTransport};
/// The `oauth2` crate the platform uses (its `HttpRequest`, `HttpResponse` and `http`).
pub use oauth2;
pub use routes::{SESSION_COOKIE, asset, router};
pub use settings::{ConnectorSettings, DEFAULT_CLIENTS, McpConnectorSettings, Settings};
pub use startup::{Application, InMemoryPlatform, LISTENING, REDIRECT_URI, RouterCustomizer};
pub use state::AppState;
pub use variants::Variant;

/// The chat card's decision module (pure JavaScript), as served at `/static/card-decisions.js`.
pub const CARD_DECISIONS_JS: &str = include_str!("../static/card-decisions.js");
