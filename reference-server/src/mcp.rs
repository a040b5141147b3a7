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
    /// The scopes the server asked for in its challenge, else those its metadata lists.
    pub scopes: Vec<String>,
}

/// Why discovery or registration stopped, in words safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the MCP server could not be reached ({0})")]
    Unreachable(String),
    #[error(
        "the MCP server did not answer 401 with a resource_metadata challenge (it answered {0})"
    )]
    NoChallenge(u16),
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

#[derive(Deserialize)]
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
}

/// A client the authorization server registered (RFC 7591 §3.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: String,
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

/// Asks the MCP server at `server_url` where its authorization is, and checks each answer.
pub async fn discover(http: &Http, server_url: &str) -> Result<McpAuthorization, DiscoveryError> {
    let probe = Request::post(server_url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#.to_vec())
        .map_err(|_| DiscoveryError::Unreachable("the server URL is not usable".into()))?;
    let answer = http
        .send(probe, Some(STEP_TIMEOUT))
        .await
        .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
    let metadata_url = match (
        answer.status().as_u16(),
        bearer_parameter(answer.headers(), "resource_metadata"),
    ) {
        (401, Some(url)) => url.to_owned(),
        (status, _) => return Err(DiscoveryError::NoChallenge(status)),
    };
    let challenged_scopes: Vec<String> = bearer_parameter(answer.headers(), "scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let resource: ResourceMetadata =
        get_json(http, &metadata_url, "protected resource metadata").await?;
    let expected = canonical_resource(server_url);
    if canonical_resource(&resource.resource) != expected {
        return Err(DiscoveryError::ResourceMismatch {
            named: resource.resource,
            expected,
        });
    }
    let issuer = resource
        .authorization_servers
        .first()
        .ok_or(DiscoveryError::Unreadable("protected resource metadata"))?
        .trim_end_matches('/')
        .to_owned();
    let server: ServerMetadata = get_json(
        http,
        &format!("{issuer}/.well-known/oauth-authorization-server"),
        "authorization server metadata",
    )
    .await?;
    if server.issuer.trim_end_matches('/') != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            named: server.issuer,
            expected: issuer,
        });
    }
    Ok(McpAuthorization {
        resource: expected,
        issuer,
        authorization_endpoint: server.authorization_endpoint,
        token_endpoint: server.token_endpoint,
        revocation_endpoint: server.revocation_endpoint,
        registration_endpoint: server.registration_endpoint,
        metadata_documents: server.client_id_metadata_document_supported,
        scopes: if challenged_scopes.is_empty() {
            resource.scopes_supported
        } else {
            challenged_scopes
        },
    })
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
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
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
