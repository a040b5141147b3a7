//! The provider's MCP server (`POST /mcp`, a minimal JSON-RPC endpoint over HTTP) and what a
//! client reads to get a token for it: protected resource metadata (RFC 9728) and dynamic
//! client registration (RFC 7591). The rules that use them, and `resource` (RFC 8707) on every
//! grant, are in `rules/`; the faults in [`crate::McpFaults`].

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

/// The protocol revisions the server speaks, newest first (MCP lifecycle, version negotiation).
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The server's tools: `(name, description, required string arguments)`.
pub const TOOLS: [(&str, &str, &[&str]); 3] = [
    ("list_notes", "Lists the user's notes.", &[]),
    (
        "search_notes",
        "Finds the notes whose title contains a word.",
        &["query"],
    ),
    ("get_note", "Reads one note by its name.", &["name"]),
];

/// The JSON-RPC method a request body carries (`None` for a body that is not one).
pub fn rpc_method(body: &[u8]) -> Option<String> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    request["method"].as_str().map(str::to_owned)
}

/// What an MCP request is, read from its body: a request (with an id), a notification, or
/// something else.
pub enum Rpc {
    Request {
        id: serde_json::Value,
        method: String,
        params: serde_json::Value,
    },
    Notification {
        method: String,
    },
    Unreadable,
}

pub fn read(body: &[u8]) -> Rpc {
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Rpc::Unreadable;
    };
    let Some(method) = message["method"].as_str().map(str::to_owned) else {
        return Rpc::Unreadable;
    };
    match message.get("id") {
        Some(id) if !id.is_null() => Rpc::Request {
            id: id.clone(),
            method,
            params: message["params"].clone(),
        },
        _ => Rpc::Notification { method },
    }
}

/// Why `initialize` parameters are refused, if they are: a client must say its protocol
/// version, its capabilities and who it is (MCP lifecycle, initialization).
pub fn initialize_problem(params: &serde_json::Value) -> Option<&'static str> {
    if !params["protocolVersion"].is_string() {
        return Some("initialize without protocolVersion");
    }
    if !params["capabilities"].is_object() {
        return Some("initialize without capabilities");
    }
    if !params["clientInfo"]["name"].is_string() {
        return Some("initialize without clientInfo.name");
    }
    None
}

/// The version the server answers a client that asked for `asked`: the same if it speaks it,
/// else its newest.
pub fn negotiated(asked: &str) -> &'static str {
    PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(PROTOCOL_VERSIONS[0])
}

/// The result of `initialize` in `version`.
pub fn initialize_result(version: &str) -> serde_json::Value {
    serde_json::json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": "fake-provider-mcp", "version": "1" },
    })
}

/// The JSON-RPC answer of an initialized session's request.
pub fn answer(
    id: serde_json::Value,
    method: &str,
    params: &serde_json::Value,
) -> serde_json::Value {
    let result = match method {
        "ping" => serde_json::json!({}),
        "tools/list" => serde_json::json!({
            "tools": TOOLS.iter().map(|(name, description, required)| {
                let properties: serde_json::Map<String, serde_json::Value> = required
                    .iter()
                    .map(|p| ((*p).to_owned(), serde_json::json!({ "type": "string" })))
                    .collect();
                serde_json::json!({
                    "name": name,
                    "description": description,
                    "inputSchema": { "type": "object", "properties": properties, "required": required },
                })
            }).collect::<Vec<_>>(),
        }),
        "tools/call" => {
            let name = params["name"].as_str().unwrap_or("");
            let text = match name {
                "list_notes" => "standup.md, design-review.md".to_owned(),
                "search_notes" | "get_note" => {
                    let argument = if name == "search_notes" {
                        "query"
                    } else {
                        "name"
                    };
                    match params["arguments"][argument].as_str() {
                        Some(value) if name == "search_notes" => {
                            format!("notes matching {value:?}: standup.md")
                        }
                        Some(value) => format!("{value}: the team meets at nine."),
                        None => return rpc_error(id, -32602, "a required argument is missing"),
                    }
                }
                _ => return rpc_error(id, -32602, "unknown tool"),
            };
            serde_json::json!({ "content": [{ "type": "text", "text": text }] })
        }
        _ => return rpc_error(id, -32601, "method not found"),
    };
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A JSON-RPC message as one server-sent event (Streamable HTTP answers a POST so when the
/// client accepts `text/event-stream`).
pub fn sse_event(message: &serde_json::Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

pub fn rpc_error(id: serde_json::Value, code: i64, message: &str) -> serde_json::Value {
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
