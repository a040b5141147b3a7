//! How the platform finds its way to a token for an MCP server it knows only by URL (MCP
//! authorization, revisions 2025-06-18 and 2025-11-25): the server's `401` names its protected
//! resource metadata (RFC 9728), which names the resource and its authorization server, whose
//! metadata (RFC 8414) names the endpoints and the registration endpoint (RFC 7591). Each step
//! is checked before the next: a resource that is not the server's, or an issuer that is not
//! the one named, stops it before any authorization request is made.
//!
//! Error texts are safe to show and log: no token, secret or code.

use crate::http::Http;
use crate::oauth::bearer_parameter;
use crate::settings::TokenAuthMethod;
use oauth2::http::{Request, header};
use serde::Deserialize;
use std::time::Duration;

/// How long each discovery request may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the platform learnt of an MCP server's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpAuthorization {
    /// The server's resource identifier: sent as `resource` on every grant (RFC 8707).
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    /// The authorization server takes client ID metadata documents (`client_id` a URL).
    pub metadata_documents: bool,
    /// How clients may authenticate at its token endpoint (RFC 8414 §2; empty: not said).
    pub token_auth_methods: Vec<String>,
    /// It sends `iss` in its authorization responses (RFC 9207 §3): one without it is refused.
    pub iss_supported: bool,
    /// The scopes the server asked for in its challenge, else those its metadata lists.
    pub scopes: Vec<String>,
}

/// Why discovery or registration stopped, in words safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the MCP server could not be reached ({0})")]
    Unreachable(String),
    #[error("the {0} could not be read")]
    Unreadable(&'static str),
    #[error(
        "the MCP server's metadata names the resource {named}, not {expected}: nothing was asked"
    )]
    ResourceMismatch { named: String, expected: String },
    #[error(
        "the authorization server's metadata names the issuer {named}, not {expected}: nothing was asked"
    )]
    IssuerMismatch { named: String, expected: String },
    #[error("the authorization server registers no clients (no registration_endpoint)")]
    NoRegistration,
    #[error("the authorization server refused the registration ({0})")]
    RegistrationRefused(String),
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: String,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    registration_endpoint: Option<String>,
    #[serde(default)]
    client_id_metadata_document_supported: bool,
    /// RFC 8414 §2: absent means `client_secret_basic` only.
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9207 §3: the server sends `iss` in every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// A client the authorization server registered (RFC 7591 §3.2.1): a public client has no
/// secret, and the server says how the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredClient {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

impl RegisteredClient {
    /// How it authenticates: as the server answered, else as it asked.
    pub fn auth_method(&self, asked: TokenAuthMethod) -> TokenAuthMethod {
        self.token_endpoint_auth_method
            .as_deref()
            .and_then(TokenAuthMethod::parse)
            .unwrap_or(asked)
    }
}

/// The way to authenticate at a token endpoint that lists `supported` (RFC 8414 §2: none listed
/// means `client_secret_basic`): Basic where it takes it, else form fields, else a public client.
pub fn auth_method_for(supported: &[String]) -> TokenAuthMethod {
    let takes = |method: TokenAuthMethod| supported.iter().any(|s| s == method.name());
    if supported.is_empty() || takes(TokenAuthMethod::ClientSecretBasic) {
        TokenAuthMethod::ClientSecretBasic
    } else if takes(TokenAuthMethod::ClientSecretPost) {
        TokenAuthMethod::ClientSecretPost
    } else if takes(TokenAuthMethod::None) {
        TokenAuthMethod::None
    } else {
        TokenAuthMethod::ClientSecretBasic
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &Http,
    url: &str,
    what: &'static str,
) -> Result<T, DiscoveryError> {
    let request = Request::get(url)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| DiscoveryError::Unreadable(what))?;
    let response = http
        .send(request, Some(STEP_TIMEOUT))
        .await
        .map_err(|e| DiscoveryError::Unreachable(format!("{what}: {e}")))?;
    if !response.status().is_success() {
        return Err(DiscoveryError::Unreadable(what));
    }
    serde_json::from_slice(response.body()).map_err(|_| DiscoveryError::Unreadable(what))
}

/// The resource identifier an MCP server URL stands for: the URL without a fragment, and
/// without a final slash unless it is the path (RFC 8707 §2, MCP "canonical server URI").
pub fn canonical_resource(server_url: &str) -> String {
    let without_fragment = server_url.split('#').next().unwrap_or(server_url);
    match url::Url::parse(without_fragment) {
        Ok(url) if url.path() != "/" => without_fragment.trim_end_matches('/').to_owned(),
        _ => without_fragment.to_owned(),
    }
}

/// Where an MCP server's protected resource metadata may be, without a challenge that says
/// (RFC 9728 §3.1, MCP authorization "Protected Resource Metadata Discovery"): the well-known
/// prefix inserted before the server's path, then at the origin's root.
/// Where an MCP server's protected resource metadata may be, without a challenge that says
/// (RFC 9728 §3.1, MCP authorization "Protected Resource Metadata Discovery"): the well-known
/// prefix inserted before the server's path, then at the origin's root.
pub fn resource_metadata_urls(server_url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(server_url) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    urls
}

/// Where an authorization server's metadata may be, in the order MCP authorization (2025-11-25,
/// "Authorization Server Metadata Discovery") lists: RFC 8414 with the well-known prefix
/// inserted before the issuer's path, OpenID Connect discovery the same way, then appended to
/// the issuer's path.
pub fn server_metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        return vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ];
    }
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ]
}

/// The first of `urls` that answers JSON of the shape `T`.
async fn first_readable<T: serde::de::DeserializeOwned>(
    http: &Http,
    urls: impl IntoIterator<Item = String>,
    what: &'static str,
) -> Result<Option<T>, DiscoveryError> {
    for url in urls {
        match get_json::<T>(http, &url, what).await {
            Ok(found) => return Ok(Some(found)),
            Err(DiscoveryError::Unreachable(why)) => return Err(DiscoveryError::Unreachable(why)),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// Asks the MCP server at `server_url` where its authorization is, and checks each answer.
/// The server's `401` challenge names its protected resource metadata, or the well-known
/// locations hold it; without any (a server of the 2025-03-26 revision) the server's origin is
/// its authorization server, with its metadata or, lacking that, the default endpoints.
pub async fn discover(http: &Http, server_url: &str) -> Result<McpAuthorization, DiscoveryError> {
    // The session the agent would open, without a token, up to the server's first challenge:
    // it names the protected resource metadata and the scope wanted (a server may let
    // `initialize` or `server/discover` through and challenge only `tools/list`).
    let probe = crate::mcp_session::call_tool_challenged(http, server_url, None, None).await;
    let challenge = probe.challenge;
    if challenge.is_none() && probe.unreachable {
        return Err(DiscoveryError::Unreachable(
            "no answer to its first request".into(),
        ));
    }
    let challenge = challenge.unwrap_or_default();
    let challenge_url = bearer_parameter(&challenge, "resource_metadata").map(str::to_owned);
    let challenged_scopes: Vec<String> = bearer_parameter(&challenge, "scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let expected = canonical_resource(server_url);
    let mut named_resource = None;
    let resource: Option<ResourceMetadata> = first_readable(
        http,
        challenge_url
            .into_iter()
            .chain(resource_metadata_urls(server_url)),
        "protected resource metadata",
    )
    .await?;
    let (issuer, scopes_supported) = match resource {
        Some(resource) => {
            if !covers(&resource.resource, &expected) {
                return Err(DiscoveryError::ResourceMismatch {
                    named: resource.resource,
                    expected,
                });
            }
            named_resource = Some(resource.resource.clone());
            let issuer = resource
                .authorization_servers
                .first()
                .ok_or(DiscoveryError::Unreadable("protected resource metadata"))?
                .trim_end_matches('/')
                .to_owned();
            (issuer, Some(resource.scopes_supported))
        }
        // No protected resource metadata: the 2025-03-26 revision's server is its own
        // authorization server.
        None => (origin_of(server_url)?, None),
    };
    let server: Option<ServerMetadata> = first_readable(
        http,
        server_metadata_urls(&issuer),
        "authorization server metadata",
    )
    .await?;
    let server = match (server, &scopes_supported) {
        (Some(server), _) => {
            if server.issuer.trim_end_matches('/') != issuer {
                return Err(DiscoveryError::IssuerMismatch {
                    named: server.issuer,
                    expected: issuer,
                });
            }
            server
        }
        // Neither metadata: the 2025-03-26 revision's default endpoints at the origin.
        (None, None) => ServerMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            revocation_endpoint: None,
            registration_endpoint: Some(format!("{issuer}/register")),
            client_id_metadata_document_supported: false,
            ..ServerMetadata::default()
        },
        (None, Some(_)) => return Err(DiscoveryError::Unreadable("authorization server metadata")),
    };
    Ok(McpAuthorization {
        resource: named_resource.unwrap_or(expected),
        issuer,
        authorization_endpoint: server.authorization_endpoint,
        token_endpoint: server.token_endpoint,
        revocation_endpoint: server.revocation_endpoint,
        registration_endpoint: server.registration_endpoint,
        metadata_documents: server.client_id_metadata_document_supported,
        token_auth_methods: server.token_endpoint_auth_methods_supported,
        iss_supported: server.authorization_response_iss_parameter_supported,
        scopes: if challenged_scopes.is_empty() {
            scopes_supported.unwrap_or_default()
        } else {
            challenged_scopes
        },
    })
}

/// Whether the resource a server's metadata names stands for the server at `server` (its
/// canonical URL): the same URL, or one of its parents on the same origin, as a metadata
/// document at the origin's root names the origin (RFC 9728 §3.3, §7.3). The platform then asks
/// for tokens for the resource as named.
pub fn covers(named: &str, server: &str) -> bool {
    let named = canonical_resource(named);
    let named = named.trim_end_matches('/');
    match server.strip_prefix(named) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The origin of `url`, as an issuer identifier (no final slash).
fn origin_of(url: &str) -> Result<String, DiscoveryError> {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|_| DiscoveryError::Unreachable("the server URL is not usable".into()))
}

/// Registers the platform as a confidential client of the server `found` (RFC 7591).
pub async fn register(
    http: &Http,
    found: &McpAuthorization,
    redirect_uri: &str,
    client_name: &str,
) -> Result<RegisteredClient, DiscoveryError> {
    let endpoint = found
        .registration_endpoint
        .as_deref()
        .ok_or(DiscoveryError::NoRegistration)?;
    let body = serde_json::json!({
        "redirect_uris": [redirect_uri],
        "client_name": client_name,
        "token_endpoint_auth_method": auth_method_for(&found.token_auth_methods).name(),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        // SEP-837: a web application's redirect URIs.
        "application_type": "web",
    });
    let request = Request::post(endpoint)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|_| DiscoveryError::NoRegistration)?;
    let response = http
        .send(request, Some(STEP_TIMEOUT))
        .await
        .map_err(|e| DiscoveryError::Unreachable(format!("registration: {e}")))?;
    if response.status().as_u16() != 201 && !response.status().is_success() {
        let error = serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| response.status().to_string());
        return Err(DiscoveryError::RegistrationRefused(error));
    }
    serde_json::from_slice(response.body())
        .map_err(|_| DiscoveryError::Unreadable("registration answer"))
}
