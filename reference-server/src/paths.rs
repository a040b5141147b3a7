//! The reference server's routes, as axum path templates, and a way to fill them in. The
//! harness's simulator drives the router through these; the browser harness knows only the
//! target contract's paths (`harness/src/contract.rs`).
//!
//! ```
//! use reference_server::paths::{self, fill};
//! assert_eq!(fill(paths::MESSAGES, &[("org", "acme"), ("chat", "main")]), "/api/orgs/acme/chats/main/messages");
//! ```

pub const LOGIN: &str = "/dev/login";
/// Moves the platform's clock ahead (`{"advance_ms": N}`), instead of waiting out a lifetime.
pub const CLOCK: &str = "/dev/clock";
pub const CONNECTORS_PAGE: &str = "/{org}/connectors";
pub const CONNECT: &str = "/{org}/connectors/{connector}/connect";
pub const CHAT_PAGE: &str = "/{org}/chat/{chat}";
/// The redirect URI registered at the provider.
pub const REDIRECT: &str = "/oauth/redirect";
pub const CALLBACK: &str = "/auth/connector-callback";
/// The platform's client ID metadata document: its `client_id` with an MCP server's
/// authorization server that takes those (the document names this URL).
pub const CLIENT_METADATA: &str = "/oauth/client-metadata.json";
pub const CONNECTORS: &str = "/api/orgs/{org}/connectors";
pub const CONNECTION: &str = "/api/orgs/{org}/connections/{id}";
pub const DISCONNECT: &str = "/api/orgs/{org}/connections/{id}/disconnect";
pub const MESSAGES: &str = "/api/orgs/{org}/chats/{chat}/messages";
pub const RESEND: &str = "/api/orgs/{org}/chats/{chat}/queued/{id}/resend";

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut path = template.to_owned();
    for (name, value) in values {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}
