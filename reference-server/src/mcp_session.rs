//! Speaking MCP to a server over Streamable HTTP. The platform asks in the newest revision it
//! speaks first: the stateless one (2026-07-28, SEP-2575), where every request carries the
//! protocol version, the client's capabilities and name in `_meta` and in the
//! `MCP-Protocol-Version` header, and `server/discover` says what the server speaks. A server
//! that does not take it (a 2025 server answers `400`) is spoken to in revision 2025-11-25: the
//! `initialize` request with the client's protocol version, capabilities and name, the
//! `notifications/initialized` notification, and every later request names the session
//! (`Mcp-Session-Id`, when the server gave one) and the negotiated `MCP-Protocol-Version`.
//! Either way `tools/list` finds the tool and `tools/call` calls it; every POST names its method
//! (`Mcp-Method`) and, for a tool call, the tool (`Mcp-Name`, SEP-2243). The server answers
//! each POST with JSON or with server-sent events; both are read, an event stream only as far
//! as the answer, and one that closes before the answer is resumed by a GET with
//! `Last-Event-ID` after the retry interval the server asked for (SEP-1699).
//!
//! ```
//! use reference_server::mcp_session::{arguments_for, read_answer};
//! let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
//! assert_eq!(read_answer("text/event-stream", sse, 3).unwrap()["result"], serde_json::json!({}));
//! let schema = serde_json::json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "number"}}});
//! assert_eq!(arguments_for(&schema), serde_json::json!({"a": 2}));
//! ```

use crate::http::Http;
use crate::oauth::{ApiOutcome, bearer_parameter};
use oauth2::http::{HeaderValue, Request, header};
use serde_json::{Value, json};
use std::time::Duration;

/// The revision this client speaks with servers that open sessions.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// The stateless revision this client asks in first (SEP-2575).
pub const STATELESS_VERSION: &str = "2026-07-28";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// SEP-2243: every POST names its JSON-RPC method, and a tool call its tool.
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
/// JSON-RPC error of a server that does not speak the version asked (SEP-2575).
const UNSUPPORTED_VERSION: i64 = -32022;
/// How often a stream that closed before its answer is resumed (SEP-1699), and after how long
/// when the server named no retry interval.
const RESUMPTIONS: usize = 2;
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON-RPC message with `id` in an answer: the JSON body, or the `data` of the server-sent
/// event that carries it.
pub fn read_answer(content_type: &str, body: &[u8], id: u64) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    if !content_type.starts_with("text/event-stream") {
        return serde_json::from_str(text).ok();
    }
    // Events are separated by blank lines; an event's data lines join with newlines.
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
        .find(|message| message["id"] == id)
}

/// Where a stream of server-sent events stopped: the last event id it gave and the retry
/// interval it asked for (the `id:` and `retry:` fields), to resume it (SEP-1699).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamCursor {
    pub last_event_id: Option<String>,
    pub retry_ms: Option<u64>,
}

/// The cursor of an event stream's text: its last `id:` and `retry:` fields.
pub fn stream_cursor(body: &[u8]) -> StreamCursor {
    let mut cursor = StreamCursor::default();
    for line in String::from_utf8_lossy(body).lines() {
        if let Some(id) = line.strip_prefix("id:") {
            cursor.last_event_id = Some(id.trim_start().to_owned());
        } else if let Some(retry) = line.strip_prefix("retry:") {
            cursor.retry_ms = retry.trim().parse().ok().or(cursor.retry_ms);
        }
    }
    cursor
}

/// What the agent says of a `tools/call` answer: its text content, or `None` for an error or
/// an answer with no text (never an empty answer).
pub fn answer_text(display_name: &str, body: &Value) -> Option<String> {
    let texts: Vec<&str> = body["result"]["content"]
        .as_array()?
        .iter()
        .filter(|c| c["type"] == "text")
        .filter_map(|c| c["text"].as_str())
        .collect();
    (!texts.is_empty())
        .then(|| format!("Your {}: {}.", display_name.to_lowercase(), texts.join(" ")))
}

/// Arguments for a tool from its input schema: each required property given a plain value of
/// its type (the deterministic agent has no user words to put there).
pub fn arguments_for(schema: &Value) -> Value {
    let mut arguments = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let value = match schema["properties"][name]["type"].as_str() {
            Some("number") | Some("integer") => json!(2),
            Some("boolean") => json!(false),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("standup"),
        };
        arguments.insert(name.to_owned(), value);
    }
    Value::Object(arguments)
}

/// The client's `_meta` on every request of the stateless revision (SEP-2575).
fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": client_info(),
    })
}

/// How the platform names itself to MCP servers.
fn client_info() -> Value {
    json!({ "name": "alumia", "version": env!("CARGO_PKG_VERSION") })
}

/// Why a tool call ended when the server did not answer a request at all.
const UNREACHABLE: &str = "the MCP server could not be reached";

/// The headers of a server's `401` or `403`: its challenge (`WWW-Authenticate`).
pub type Challenge = oauth2::http::HeaderMap;

/// One session with an MCP server, as far as a tool call goes.
struct Session<'a> {
    http: &'a Http,
    url: &'a str,
    bearer: Option<&'a str>,
    id: Option<String>,
    version: Option<String>,
    /// Spoken in the stateless revision: `_meta` on every request.
    stateless: bool,
    next_id: u64,
    /// The first challenge the server answered with.
    challenge: Option<Challenge>,
    /// A request got no answer at all (the session ended there).
    unreachable: bool,
}

/// How a tool call went, with what a platform learns of the server's authorization from it.
pub struct Probe {
    pub outcome: ApiOutcome,
    /// The first challenge the server answered with.
    pub challenge: Option<Challenge>,
    /// The call ended on a request the server did not answer at all.
    pub unreachable: bool,
}

/// Whether an event stream read so far holds the answer to request `id` (read no further).
fn holds_answer(id: u64) -> impl Fn(&[u8]) -> bool {
    move |body| read_answer("text/event-stream", body, id).is_some()
}

/// Why a session step gave no usable answer: the outcome the tool call ends with.
type Stop = ApiOutcome;

/// A server's answer to one POST that was not a challenge.
struct Answer {
    status: u16,
    /// The JSON-RPC message answering the request (`Null` for a notification or an unreadable
    /// answer).
    message: Value,
}

impl Session<'_> {
    /// `request` with what every request of the session carries: the token, the session id
    /// and the protocol version, where there are.
    fn with_session(
        &self,
        mut request: oauth2::http::request::Builder,
    ) -> oauth2::http::request::Builder {
        if let Some(token) = self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(id) = &self.id {
            request = request.header(SESSION_HEADER, id);
        }
        if let Some(version) = &self.version {
            request = request.header(VERSION_HEADER, version);
        }
        request
    }

    fn request(&self, body: &Value) -> Result<oauth2::HttpRequest, Stop> {
        let mut request = Request::post(self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        if let Some(method) = body["method"].as_str() {
            request = request.header(METHOD_HEADER, method);
        }
        if body["method"] == "tools/call"
            && let Some(name) = body["params"]["name"].as_str()
        {
            request = request.header(NAME_HEADER, name);
        }
        self.with_session(request)
            .body(body.to_string().into_bytes())
            .map_err(|_| ApiOutcome::Failed("the MCP server's URL is not usable".into()))
    }

    /// Posts one message and reads the answer; a challenge (`401`, or `403` for scope) stops.
    async fn exchange(
        &mut self,
        method: &str,
        mut params: Value,
        notification: bool,
    ) -> Result<Answer, Stop> {
        let id = self.next_id;
        self.next_id += 1;
        if self.stateless && !notification {
            params["_meta"] = stateless_meta();
        }
        let mut message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        if !notification {
            message["id"] = json!(id);
        }
        let request = self.request(&message)?;
        let Ok(response) = self
            .http
            .send_until(request, Some(TIMEOUT), holds_answer(id))
            .await
        else {
            self.unreachable = true;
            return Err(ApiOutcome::Failed(UNREACHABLE.into()));
        };
        let status = response.status().as_u16();
        if status == 401 {
            self.challenge
                .get_or_insert_with(|| response.headers().clone());
            return Err(ApiOutcome::Unauthorized);
        }
        if status == 403
            && bearer_parameter(response.headers(), "error") == Some("insufficient_scope")
        {
            self.challenge
                .get_or_insert_with(|| response.headers().clone());
            let scopes = bearer_parameter(response.headers(), "scope")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            return Err(ApiOutcome::InsufficientScope(scopes));
        }
        if let Some(session) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.id = Some(session.to_owned());
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("application/json");
        let mut message = if notification {
            None
        } else {
            read_answer(content_type, response.body(), id)
        };
        if message.is_none()
            && !notification
            && (200..300).contains(&status)
            && content_type.starts_with("text/event-stream")
        {
            message = self.resume(stream_cursor(response.body()), id).await;
        }
        Ok(Answer {
            status,
            message: message.unwrap_or(Value::Null),
        })
    }

    /// The answer to request `id` from a stream that closed before it (SEP-1699, "Resumability
    /// and Redelivery"): after the retry interval the server asked for, a GET with
    /// `Last-Event-ID` resumes the stream, at most [`RESUMPTIONS`] times.
    async fn resume(&self, mut cursor: StreamCursor, id: u64) -> Option<Value> {
        for _ in 0..RESUMPTIONS {
            let last_event_id = cursor.last_event_id.clone()?;
            let wait = cursor
                .retry_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_RETRY);
            tokio::time::sleep(wait).await;
            let request = self
                .with_session(
                    Request::get(self.url)
                        .header(header::ACCEPT, "text/event-stream")
                        .header("last-event-id", last_event_id),
                )
                .body(Vec::new())
                .ok()?;
            let response = self
                .http
                .send_until(request, Some(TIMEOUT), holds_answer(id))
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            if let Some(answer) = read_answer("text/event-stream", response.body(), id) {
                return Some(answer);
            }
            let next = stream_cursor(response.body());
            cursor = StreamCursor {
                last_event_id: next.last_event_id.or(cursor.last_event_id),
                retry_ms: next.retry_ms.or(cursor.retry_ms),
            };
        }
        None
    }

    /// Posts one message; for a request, its answer (a refusal or an unreadable answer stops).
    async fn post(
        &mut self,
        method: &str,
        params: Value,
        notification: bool,
    ) -> Result<Value, Stop> {
        let answer = self.exchange(method, params, notification).await?;
        if !(200..300).contains(&answer.status) {
            return Err(ApiOutcome::Failed(format!(
                "the MCP server answered {} to {method}",
                answer.status
            )));
        }
        if !notification && answer.message.is_null() {
            return Err(ApiOutcome::Failed(format!(
                "the MCP server's answer to {method} could not be read"
            )));
        }
        Ok(answer.message)
    }

    /// Agrees on a revision: the stateless one when the server discovers itself in it (asked
    /// once more when it names that version among those it supports), else a 2025-11-25
    /// session opened with `initialize`.
    async fn open(&mut self) -> Result<(), Stop> {
        self.stateless = true;
        self.version = Some(STATELESS_VERSION.to_owned());
        for _ in 0..2 {
            let answer = self.exchange("server/discover", json!({}), false).await?;
            let speaks = |versions: &Value| {
                versions
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v == STATELESS_VERSION))
            };
            if (200..300).contains(&answer.status)
                && speaks(&answer.message["result"]["supportedVersions"])
            {
                return Ok(());
            }
            let error = &answer.message["error"];
            if !(error["code"] == UNSUPPORTED_VERSION && speaks(&error["data"]["supported"])) {
                break;
            }
        }
        self.stateless = false;
        self.version = None;
        self.id = None;
        let initialized = self
            .post(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": client_info(),
                }),
                false,
            )
            .await?;
        if initialized.get("error").is_some() {
            return Err(ApiOutcome::Failed(
                "the MCP server refused to initialize".into(),
            ));
        }
        let version = initialized["result"]["protocolVersion"]
            .as_str()
            .unwrap_or(PROTOCOL_VERSION)
            .to_owned();
        self.version = Some(version);
        self.post("notifications/initialized", json!({}), true)
            .await?;
        Ok(())
    }
}

/// Calls a tool of the MCP server at `url`: `tool` if the connector names one, else the first
/// the server lists. Ends as the tool call's outcome: its JSON-RPC answer, or why there is none.
pub async fn call_tool(
    http: &Http,
    url: &str,
    bearer: Option<&str>,
    tool: Option<&str>,
) -> ApiOutcome {
    call_tool_challenged(http, url, bearer, tool).await.outcome
}

/// As [`call_tool`], with the first challenge the server answered with: the platform's
/// anonymous probe, whose challenge names the scope and the metadata (MCP authorization,
/// "Scope Selection Strategy").
pub async fn call_tool_challenged(
    http: &Http,
    url: &str,
    bearer: Option<&str>,
    tool: Option<&str>,
) -> Probe {
    let mut session = Session {
        http,
        url,
        bearer,
        id: None,
        version: None,
        stateless: false,
        next_id: 1,
        challenge: None,
        unreachable: false,
    };
    let outcome = match call_in(&mut session, tool).await {
        Ok(answer) | Err(answer) => answer,
    };
    Probe {
        outcome,
        challenge: session.challenge,
        unreachable: session.unreachable,
    }
}

async fn call_in(session: &mut Session<'_>, tool: Option<&str>) -> Result<ApiOutcome, Stop> {
    session.open().await?;
    let listed = session.post("tools/list", json!({}), false).await?;
    let tools = listed["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let chosen = match tool {
        Some(name) => tools.iter().find(|t| t["name"] == name),
        None => tools.first(),
    };
    let Some(chosen) = chosen else {
        return Err(ApiOutcome::Failed(
            "the MCP server offers no tool to call".into(),
        ));
    };
    let name = chosen["name"].as_str().unwrap_or_default().to_owned();
    let arguments = arguments_for(&chosen["inputSchema"]);
    let answer = session
        .post(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
            false,
        )
        .await?;
    Ok(ApiOutcome::Served(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_from_json_or_from_the_event_that_carries_its_id() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#;
        assert_eq!(
            read_answer("application/json", json, 1).unwrap()["result"]["ok"],
            true
        );
        let events = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"id\":2,\"result\":{\"n\":1}}\n\n";
        assert_eq!(
            read_answer("text/event-stream; charset=utf-8", events, 2).unwrap()["result"]["n"],
            1
        );
        assert!(read_answer("text/event-stream", events, 3).is_none());
    }

    #[test]
    fn a_stream_cursor_is_the_last_event_id_and_retry_interval() {
        let events =
            b"id: event-1\nretry: 500\ndata: \n\nevent: message\nid: event-2\ndata: {}\n\n";
        assert_eq!(
            stream_cursor(events),
            StreamCursor {
                last_event_id: Some("event-2".into()),
                retry_ms: Some(500)
            }
        );
        assert_eq!(stream_cursor(b"data: {}\n\n"), StreamCursor::default());
    }

    #[test]
    fn arguments_give_every_required_property_a_value_of_its_type() {
        let schema = json!({
            "type": "object",
            "properties": { "a": { "type": "number" }, "b": { "type": "integer" },
                            "q": { "type": "string" }, "extra": { "type": "string" } },
            "required": ["a", "b", "q"],
        });
        assert_eq!(
            arguments_for(&schema),
            json!({ "a": 2, "b": 2, "q": "standup" })
        );
        assert_eq!(arguments_for(&json!({ "type": "object" })), json!({}));
    }
}
