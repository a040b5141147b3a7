//! What tokens are for: the protected API, the MCP server; and client registration.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum ApiResource {
    Files,
    Calendar,
}

impl ApiResource {
    pub(super) fn scope(self) -> &'static str {
        match self {
            ApiResource::Files => "files.read",
            ApiResource::Calendar => "calendar.read",
        }
    }

    pub(super) fn items(self) -> serde_json::Value {
        match self {
            ApiResource::Files => serde_json::json!([
                { "name": "quarterly-report.pdf", "size": 48213 },
                { "name": "roadmap.md", "size": 3120 },
                { "name": "team-photo.png", "size": 918_204 },
            ]),
            ApiResource::Calendar => serde_json::json!([
                { "title": "Standup", "starts": "Monday 09:00" },
                { "title": "Design review", "starts": "Tuesday 14:00" },
            ]),
        }
    }
}

impl State {
    pub(super) fn api(
        &mut self,
        request: &ProviderRequest,
        now_ms: u64,
        resource: ApiResource,
    ) -> Decision {
        let delay_ms = self.faults.api_delay_ms;
        let mut decision = self.api_without_delay(request, now_ms, resource);
        decision.response.delay_ms = delay_ms;
        decision
    }

    pub(super) fn api_without_delay(
        &mut self,
        request: &ProviderRequest,
        now_ms: u64,
        resource: ApiResource,
    ) -> Decision {
        let Some(token) = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return decided(
                ProviderResponse::json(401, serde_json::json!({ "error": "invalid_request" }))
                    .with_header(("www-authenticate", "Bearer realm=\"fake-provider\"")),
                Outcome::NoBearerToken,
            );
        };
        let invalid = |why: &str| {
            decided(
                ProviderResponse::json(
                    401,
                    serde_json::json!({ "error": "invalid_token", "error_description": why }),
                )
                .with_header((
                    "www-authenticate",
                    "Bearer realm=\"fake-provider\", error=\"invalid_token\"",
                )),
                format!("invalid_token: {why}"),
            )
        };
        let Some(grant) = self.access_tokens.get(token) else {
            return invalid("unknown token");
        };
        if grant.revoked {
            return invalid("token revoked");
        }
        if now_ms >= grant.expires_at_ms + self.faults.access_token_grace_secs * 1000 {
            return invalid("token expired");
        }
        let needed: Vec<&str> = std::iter::once(resource.scope())
            .chain(self.faults.api_requires_scope.as_deref())
            .collect();
        if !needed
            .iter()
            .all(|scope| grant.scope.split(' ').any(|s| s == *scope))
        {
            let challenge = format!(
                "Bearer realm=\"fake-provider\", error=\"insufficient_scope\", scope=\"{}\"",
                needed.join(" ")
            );
            return decided(
                ProviderResponse::json(403, serde_json::json!({ "error": "insufficient_scope" }))
                    .with_header(("www-authenticate", challenge.as_str())),
                "insufficient_scope",
            );
        }
        let client_id = grant.client_id.clone();
        let body = match self.faults.api_answer {
            ApiAnswer::Items => {
                serde_json::json!({ "client": client_id, "items": resource.items() })
            }
            ApiAnswer::UnexpectedShape => serde_json::json!({
                "client": client_id,
                "data": { "entries": resource.items() }
            }),
        };
        decided(ProviderResponse::json(200, body), "served")
    }
}

impl State {
    /// The MCP server: a token bound to it (its `resource`), live, with `mcp.tools` and any
    /// step-up scope, gets a JSON-RPC answer; anything else a `WWW-Authenticate` challenge that
    /// says where its metadata is (RFC 9728 §5.1).
    pub(super) fn mcp(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let mut needed = vec![crate::mcp::SCOPE];
        if let Some(scope) = &self.faults.mcp.step_up_scope {
            needed.push(scope);
        }
        // A 401 names the scope any access needs; a 403 the ones this operation needs (the
        // step-up, MCP authorization "Scope Challenge Handling").
        let challenge = |status: u16, error: Option<&str>, outcome: Outcome| {
            let scopes = if status == 403 {
                &needed[..]
            } else {
                &needed[..1]
            };
            decided(
                ProviderResponse::json(
                    status,
                    serde_json::json!({ "error": error.unwrap_or("invalid_request") }),
                )
                .with_header((
                    "www-authenticate",
                    &crate::mcp::challenge(&self.public_url, error, scopes),
                )),
                outcome,
            )
        };
        let Some(token) = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return challenge(401, None, Outcome::NoBearerToken);
        };
        let Some(grant) = self.access_tokens.get(token) else {
            return challenge(
                401,
                Some("invalid_token"),
                "invalid_token: unknown token".into(),
            );
        };
        let why = if grant.revoked {
            Some("token revoked".to_owned())
        } else if now_ms >= grant.expires_at_ms + self.faults.access_token_grace_secs * 1000 {
            Some("token expired".to_owned())
        } else if grant.resource.as_deref() != Some(&crate::mcp::resource(&self.public_url)) {
            // gbrain #5222: a token for the origin root, or for no resource, is not for this server.
            Some(format!(
                "the token is for {}, not this server",
                grant.resource.as_deref().unwrap_or("no resource")
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return challenge(
                401,
                Some("invalid_token"),
                format!("invalid_token: {why}").into(),
            );
        }
        // Any access needs the server's scope; calling a tool needs the step-up scope too.
        let rpc = crate::mcp::read(&request.body);
        let calls_a_tool =
            matches!(&rpc, crate::mcp::Rpc::Request { method, .. } if method == "tools/call");
        let scopes = if calls_a_tool {
            &needed[..]
        } else {
            &needed[..1]
        };
        if !scopes
            .iter()
            .all(|scope| grant.scope.split(' ').any(|s| s == *scope))
        {
            return challenge(403, Some("insufficient_scope"), "insufficient_scope".into());
        }
        self.mcp_session(request, rpc)
    }

    /// The MCP server's lifecycle (MCP basic protocol, Streamable HTTP): `initialize` opens a
    /// session (`Mcp-Session-Id`), every later request names it and the negotiated
    /// `MCP-Protocol-Version`; answers are server-sent events when the client accepts them.
    pub(super) fn mcp_session(
        &mut self,
        request: &ProviderRequest,
        rpc: crate::mcp::Rpc,
    ) -> Decision {
        use crate::mcp::Rpc;
        let sse = request
            .header("accept")
            .is_some_and(|accept| accept.contains("text/event-stream"));
        let answer = |status: u16, message: serde_json::Value| {
            if sse && status == 200 {
                ProviderResponse {
                    status,
                    headers: vec![("cache-control".into(), "no-cache".into())],
                    content_type: "text/event-stream",
                    body: crate::mcp::sse_event(&message),
                    delay_ms: 0,
                }
            } else {
                ProviderResponse::json(status, message)
            }
        };
        let (id, method, params) = match rpc {
            Rpc::Unreadable => {
                return decided(
                    answer(
                        400,
                        crate::mcp::rpc_error(serde_json::Value::Null, -32700, "parse error"),
                    ),
                    "rejected: not a JSON-RPC message",
                );
            }
            Rpc::Request { id, method, params } if method == "initialize" => {
                if let Some(problem) = crate::mcp::initialize_problem(&params) {
                    return decided(
                        answer(400, crate::mcp::rpc_error(id, -32602, problem)),
                        format!("rejected: {problem}"),
                    );
                }
                let version =
                    crate::mcp::negotiated(params["protocolVersion"].as_str().unwrap_or(""));
                let session = self.mint.next("mcp-session-");
                self.mcp_sessions.insert(session.clone(), version);
                let result = serde_json::json!({
                    "jsonrpc": "2.0", "id": id, "result": crate::mcp::initialize_result(version),
                });
                return decided(
                    answer(200, result).with_header(("mcp-session-id", &session)),
                    format!("initialized a session ({version})"),
                );
            }
            Rpc::Request { id, method, params } => (Some(id), method, params),
            Rpc::Notification { method } => (None, method, serde_json::Value::Null),
        };
        // A request outside the session's rules: `400` with a JSON-RPC error saying why.
        let refused = |why: &str, outcome: String| {
            decided(
                answer(
                    400,
                    crate::mcp::rpc_error(id.clone().unwrap_or_default(), -32000, why),
                ),
                outcome,
            )
        };
        let version = request
            .header("mcp-session-id")
            .and_then(|session| self.mcp_sessions.get(session))
            .copied();
        let Some(version) = version else {
            return refused(
                "no valid Mcp-Session-Id: initialize first",
                format!("rejected: {method} without a session"),
            );
        };
        if request.header("mcp-protocol-version") != Some(version) {
            return refused(
                "MCP-Protocol-Version is missing or not the negotiated version",
                format!("rejected: {method} without MCP-Protocol-Version {version}"),
            );
        }
        let Some(id) = id else {
            return decided(
                ProviderResponse {
                    status: 202,
                    headers: Vec::new(),
                    content_type: "application/json",
                    body: Vec::new(),
                    delay_ms: 0,
                },
                format!("notification {method}"),
            );
        };
        decided(
            answer(200, crate::mcp::answer(id, &method, &params)),
            format!("answered {method}"),
        )
    }

    /// Dynamic client registration (RFC 7591): a confidential client with a minted id and
    /// secret, or an error as the faults or the metadata say.
    pub(super) fn register(&mut self, request: &ProviderRequest) -> Decision {
        if !self.faults.mcp.clients_known_by.registration() {
            return rejected(
                404,
                "not_found",
                "this server registers no clients (client ID metadata documents only)",
            );
        }
        if self.faults.mcp.registration_refused {
            return rejected(
                400,
                "invalid_client_metadata",
                "registration is closed here",
            );
        }
        let metadata = match crate::mcp::registration(&request.body) {
            Ok(metadata) => metadata,
            Err((error, description)) => return rejected(400, error, &description),
        };
        let client_id = self.mint.next("dcr_");
        let client_secret = self.mint.next("dcs_");
        self.ledger.record(SecretKind::ClientSecret, &client_secret);
        let method = metadata
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".to_owned());
        let mut client = ClientRegistration::new(&client_id, &client_secret, "");
        client.redirect_uris = metadata.redirect_uris.clone();
        if let Some(name) = metadata.client_name {
            client.name = name;
        }
        self.clients.insert(client_id.clone(), client);
        decided(
            ProviderResponse::json(
                201,
                serde_json::json!({
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "client_secret_expires_at": 0,
                    "redirect_uris": metadata.redirect_uris,
                    "token_endpoint_auth_method": method,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                }),
            ),
            "client registered",
        )
    }
}

pub(super) fn unauthenticated(description: &str) -> Decision {
    let mut decision = rejected(401, "invalid_client", description);
    decision.response = decision
        .response
        .with_header(("www-authenticate", "Basic realm=\"fake-provider\""));
    decision
}
