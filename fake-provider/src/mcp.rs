//! The provider's MCP server (`POST /mcp`, a minimal JSON-RPC endpoint over HTTP) and what a
//! client reads to get a token for it: protected resource metadata (RFC 9728) and dynamic
//! client registration (RFC 7591). The rules that use them, and `resource` (RFC 8707) on every
//! grant, are in `rules.rs`; the faults in [`crate::McpFaults`].

use crate::faults::{McpFaults, ResourceInMetadata};
use serde::Deserialize;
use url::Url;

/// Where the MCP server answers.
pub const MCP_PATH: &str = "/mcp";
/// Its protected resource metadata: the well-known prefix inserted before the resource's path
/// (RFC 9728 §3.1).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// Dynamic client registration (RFC 7591).
pub const REGISTRATION_PATH: &str = "/register";
/// The scope the MCP server's tools need.
pub const SCOPE: &str = "mcp.tools";

/// The provider's issuer identifier (RFC 8414): its public URL without the final slash, the
/// base of every endpoint its metadata names.
pub(crate) fn issuer(public_url: &Url) -> &str {
    public_url.as_str().trim_end_matches('/')
}

/// The MCP server's resource identifier: its URL (RFC 9728 §1.2).
pub fn resource(public_url: &Url) -> String {
    format!("{}{MCP_PATH}", issuer(public_url))
}

/// Whether `value` can be a resource indicator: an absolute URI without a fragment (RFC 8707
/// §2).
pub fn is_resource_indicator(value: &str) -> bool {
    Url::parse(value).is_ok_and(|url| url.fragment().is_none())
}

/// What the MCP server answers a request without a token it accepts: where its metadata is.
pub fn challenge(public_url: &Url, error: Option<&str>, scopes: &[&str]) -> String {
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}{RESOURCE_METADATA_PATH}\", scope=\"{}\"",
        issuer(public_url),
        scopes.join(" ")
    );
    if let Some(error) = error {
        challenge.push_str(&format!(", error=\"{error}\""));
    }
    challenge
}

/// The protected resource metadata (RFC 9728 §2), naming the resource the faults say.
pub fn resource_metadata(public_url: &Url, faults: &McpFaults) -> serde_json::Value {
    let resource = match faults.resource_in_metadata {
        ResourceInMetadata::ThisServer => resource(public_url),
        ResourceInMetadata::AnotherServer => "https://another-mcp-server.example/mcp".to_owned(),
    };
    serde_json::json!({
        "resource": resource,
        "authorization_servers": [issuer(public_url)],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
    })
}

/// The JSON-RPC answer of the MCP server to an authorized request (HTTP status, body).
pub fn answer(body: &[u8]) -> (u16, serde_json::Value) {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (
            400,
            rpc_error(serde_json::Value::Null, -32700, "parse error"),
        );
    };
    let id = request["id"].clone();
    let result = match request["method"].as_str() {
        Some("initialize") => serde_json::json!({
            "protocolVersion": "2025-11-25",
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "fake-provider-mcp", "version": "1" },
        }),
        Some("tools/list") => serde_json::json!({
            "tools": [{
                "name": "list_notes",
                "description": "Lists the user's notes.",
                "inputSchema": { "type": "object", "properties": {} },
            }],
        }),
        Some("tools/call") if request["params"]["name"] == "list_notes" => serde_json::json!({
            "content": [{
                "type": "text",
                "text": "standup.md, design-review.md",
            }],
        }),
        Some("tools/call") => return (200, rpc_error(id, -32602, "unknown tool")),
        _ => return (200, rpc_error(id, -32601, "method not found")),
    };
    (
        200,
        serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result }),
    )
}

fn rpc_error(id: serde_json::Value, code: i64, message: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    })
}

/// The client metadata of a registration request (RFC 7591 §2), as far as the provider reads it.
#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

/// Reads a registration request; the error is the RFC 7591 §3.2.2 error code and description.
pub fn registration(body: &[u8]) -> Result<RegistrationRequest, (&'static str, String)> {
    let request: RegistrationRequest = serde_json::from_slice(body).map_err(|e| {
        (
            "invalid_client_metadata",
            format!("not client metadata: {e}"),
        )
    })?;
    if request.redirect_uris.is_empty() {
        return Err(("invalid_redirect_uri", "redirect_uris is empty".to_owned()));
    }
    if let Some(bad) = request
        .redirect_uris
        .iter()
        .find(|uri| !is_resource_indicator(uri))
    {
        return Err((
            "invalid_redirect_uri",
            format!("{bad:?} is not an absolute URI without a fragment"),
        ));
    }
    match request.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") | Some("client_secret_post") => Ok(request),
        Some(other) => Err((
            "invalid_client_metadata",
            format!(
                "token_endpoint_auth_method {other:?}: this server registers confidential clients (client_secret_basic, client_secret_post)"
            ),
        )),
    }
}
