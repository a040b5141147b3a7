//! The requests the provider receives and the answers it gives, and its endpoints.

use super::*;

/// How long an authorization code stays exchangeable.
pub const CODE_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// An OAuth client the provider knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
    /// Registered redirect URIs; a request must match one exactly.
    pub redirect_uris: Vec<String>,
    /// The name the consent page shows.
    pub name: String,
    /// A public client (`token_endpoint_auth_method` `none`): it names itself by `client_id`
    /// and proves nothing but its PKCE verifier (a client known by its metadata document).
    pub public: bool,
}

impl ClientRegistration {
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            name: client_id.to_owned(),
            public: false,
        }
    }
}

/// The endpoints of the provider. The front door picks one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    Authorize,
    Consent,
    Token,
    Revoke,
    ApiFiles,
    ApiCalendar,
    AdminSecrets,
    AdminRequests,
    AdminViolations,
    AdminFaults,
    AdminRevokeGrants,
    /// Every grant the provider issued and whether any of its tokens is still live (no token
    /// values): what a disconnect left alive.
    AdminGrants,
    /// Registers a client (form: client_id, client_secret, redirect_uri), for a platform
    /// whose redirect URI is known only once it listens.
    AdminClients,
    /// Moves the provider's clock ahead (JSON `{"advance_ms": N}`): token lifetimes and code
    /// expiry pass without waiting. The request log keeps the time that really passed.
    AdminClock,
    /// Browsers ask every origin for its icon on their own: answered, not a violation.
    Favicon,
    /// Authorization server metadata (RFC 8414).
    Metadata,
    /// The MCP server: JSON-RPC over HTTP, for tokens bound to it (RFC 8707).
    Mcp,
    /// The MCP server's protected resource metadata (RFC 9728).
    ResourceMetadata,
    /// Dynamic client registration (RFC 7591).
    Register,
    Unmatched,
}

impl Endpoint {
    /// Every endpoint with its method and path (all but `Unmatched`).
    pub const ROUTES: [(Endpoint, &'static str, &'static str); 19] = [
        (Endpoint::Authorize, "GET", "/authorize"),
        (Endpoint::Consent, "POST", "/consent"),
        (Endpoint::Token, "POST", "/token"),
        (Endpoint::Revoke, "POST", "/revoke"),
        (Endpoint::ApiFiles, "GET", "/api/files"),
        (Endpoint::ApiCalendar, "GET", "/api/calendar"),
        (Endpoint::AdminSecrets, "GET", "/_admin/secrets"),
        (Endpoint::AdminRequests, "GET", "/_admin/requests"),
        (Endpoint::AdminViolations, "GET", "/_admin/violations"),
        (Endpoint::AdminFaults, "PUT", "/_admin/faults"),
        (Endpoint::AdminRevokeGrants, "POST", "/_admin/revoke-grants"),
        (Endpoint::AdminGrants, "GET", "/_admin/grants"),
        (Endpoint::AdminClients, "POST", "/_admin/clients"),
        (Endpoint::AdminClock, "POST", "/_admin/clock"),
        (Endpoint::Favicon, "GET", "/favicon.ico"),
        (
            Endpoint::Metadata,
            "GET",
            "/.well-known/oauth-authorization-server",
        ),
        (Endpoint::Mcp, "POST", crate::mcp::MCP_PATH),
        (
            Endpoint::ResourceMetadata,
            "GET",
            crate::mcp::RESOURCE_METADATA_PATH,
        ),
        (Endpoint::Register, "POST", crate::mcp::REGISTRATION_PATH),
    ];

    /// The endpoint for a method and path, as the wiremock matchers choose it.
    pub fn route(method: &str, path: &str) -> Endpoint {
        Self::ROUTES
            .iter()
            .find(|(_, m, p)| m.eq_ignore_ascii_case(method) && *p == path)
            .map(|(endpoint, _, _)| *endpoint)
            .unwrap_or(Endpoint::Unmatched)
    }

    pub(super) fn is_admin(self) -> bool {
        matches!(
            self,
            Endpoint::AdminSecrets
                | Endpoint::AdminRequests
                | Endpoint::AdminViolations
                | Endpoint::AdminFaults
                | Endpoint::AdminRevokeGrants
                | Endpoint::AdminGrants
                | Endpoint::AdminClients
                | Endpoint::AdminClock
                | Endpoint::Favicon
        )
    }
}

/// A request as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct ProviderRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProviderRequest {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn query_pairs(&self) -> BTreeMap<String, String> {
        pairs(self.query.as_bytes())
    }

    pub(super) fn form_pairs(&self) -> BTreeMap<String, String> {
        pairs(&self.body)
    }
}

pub(super) fn pairs(input: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(input).into_owned().collect()
}

/// A response as the rules produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// How long the front door waits before answering.
    pub delay_ms: u64,
}

impl ProviderResponse {
    pub(super) fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("cache-control".into(), "no-store".into()),
                ("pragma".into(), "no-cache".into()),
            ],
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            delay_ms: 0,
        }
    }

    pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({ "error": error, "error_description": description }),
        )
    }

    pub(super) fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("cache-control".into(), "no-store".into())],
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            delay_ms: 0,
        }
    }

    pub(super) fn redirect(location: Url) -> Self {
        Self {
            status: 302,
            headers: vec![
                ("location".into(), location.to_string()),
                ("cache-control".into(), "no-store".into()),
            ],
            content_type: "text/plain",
            body: Vec::new(),
            delay_ms: 0,
        }
    }

    pub(super) fn with_header(mut self, (name, value): (&str, &str)) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The value of a header the response carries.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
