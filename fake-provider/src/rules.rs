//! The provider's rules in plain Rust: authorization requests, consent, codes, PKCE, tokens,
//! revocation and the protected API. No sockets here: the wiremock front door (`server.rs`)
//! and an in-process simulator both call [`Provider::handle`].

use crate::consent_page;
use crate::faults::{
    ApiAnswer, ConsentFault, Faults, IssInResponse, RefreshRotation, TokenFailure,
};
use crate::metadata_document::DocumentFetcher;
use crate::mint::Mint;
use crate::secrets::{SecretKind, SecretLedger};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use url::Url;

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
    pub const ROUTES: [(Endpoint, &'static str, &'static str); 18] = [
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

    fn is_admin(self) -> bool {
        matches!(
            self,
            Endpoint::AdminSecrets
                | Endpoint::AdminRequests
                | Endpoint::AdminViolations
                | Endpoint::AdminFaults
                | Endpoint::AdminRevokeGrants
                | Endpoint::AdminGrants
                | Endpoint::AdminClients
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
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_pairs(&self) -> BTreeMap<String, String> {
        pairs(self.query.as_bytes())
    }

    fn form_pairs(&self) -> BTreeMap<String, String> {
        pairs(&self.body)
    }
}

fn pairs(input: &[u8]) -> BTreeMap<String, String> {
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
    fn json(status: u16, body: serde_json::Value) -> Self {
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

    fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({ "error": error, "error_description": description }),
        )
    }

    fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("cache-control".into(), "no-store".into())],
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            delay_ms: 0,
        }
    }

    fn redirect(location: Url) -> Self {
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

    fn with_header(mut self, (name, value): (&str, &str)) -> Self {
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

/// One request the provider received, as recorded for traces and checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub at_ms: u64,
    pub endpoint: Endpoint,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Every header but `authorization`, whose presence only is kept.
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// What the rules decided, in a few words (`issued tokens`, `invalid_grant: code reused`).
    pub outcome: String,
    /// The grant the request concerned, where a token or code of one was presented or
    /// issued: a code exchange (the grant it created), a refresh, a revocation, an API or MCP
    /// call with a token the provider knows. Grants are numbered from 1 in issue order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<u64>,
    /// The JSON-RPC method of a request to the MCP server (`initialize`, `tools/call`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
}

/// One grant (an authorization and every token issued from it, refreshes included) as the
/// provider sees it now: no token values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantState {
    pub id: u64,
    pub client_id: String,
    pub scope: String,
    /// The `seq` of the logged request that created it (its code exchange).
    pub issued_seq: u64,
    /// Its access tokens the API would still accept.
    pub live_access_tokens: usize,
    /// Whether its current refresh token still refreshes (never, when the token responses
    /// withheld it: the platform never held one).
    pub live_refresh_token: bool,
}

impl GrantState {
    /// Whether any credential of the grant still works at the provider.
    pub fn is_live(&self) -> bool {
        self.live_access_tokens > 0 || self.live_refresh_token
    }
}

/// A request no endpoint accepts: the platform did something a provider would not expect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
struct AuthorizationRequest {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    scope: String,
    /// The `resource` asked for (RFC 8707), if any.
    resource: Option<String>,
    decided: bool,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    scope: String,
    resource: Option<String>,
    issued_at_ms: u64,
    presented: bool,
    issued_tokens: Vec<String>,
}

#[derive(Debug, Clone)]
struct AccessGrant {
    client_id: String,
    scope: String,
    /// The resource the token is bound to (RFC 8707): its audience; none without `resource`.
    resource: Option<String>,
    expires_at_ms: u64,
    revoked: bool,
    /// The grant it belongs to.
    grant: u64,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    client_id: String,
    scope: String,
    /// The resource of the authorization it came from.
    resource: Option<String>,
    revoked: bool,
    access_tokens: Vec<String>,
    /// The first refresh token of its authorization: every token rotated from it shares it.
    family: String,
    /// Answered once already and replaced by a new one (rotation).
    rotated: bool,
    /// The grant it belongs to.
    grant: u64,
    /// Whether a token response carried it (not withheld).
    given: bool,
}

/// What is known of a grant beyond its tokens.
#[derive(Debug, Clone)]
struct GrantOrigin {
    client_id: String,
    scope: String,
    issued_seq: u64,
}

/// Everything that configures one provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The URL browsers and the platform use to reach the provider.
    pub public_url: Url,
    pub clients: Vec<ClientRegistration>,
    pub seed: u64,
    pub faults: Faults,
}

#[derive(Debug)]
struct State {
    public_url: Url,
    clients: BTreeMap<String, ClientRegistration>,
    faults: Faults,
    mint: Mint,
    ledger: SecretLedger,
    authorization_requests: BTreeMap<String, AuthorizationRequest>,
    codes: BTreeMap<String, CodeGrant>,
    access_tokens: BTreeMap<String, AccessGrant>,
    refresh_tokens: BTreeMap<String, RefreshGrant>,
    /// Every grant issued, by id (from 1, in issue order).
    grants: BTreeMap<u64, GrantOrigin>,
    /// The MCP server's sessions: id, and the protocol version negotiated for it.
    mcp_sessions: BTreeMap<String, &'static str>,
    /// The `seq` the request being handled will have in the log.
    handling_seq: u64,
    /// (client_id, scope) the user allowed in this run (`Faults::remembers_consent`).
    remembered: BTreeSet<(String, String)>,
    /// How client ID metadata documents are fetched.
    fetcher: Fetcher,
    log: Vec<LoggedRequest>,
    violations: Vec<Violation>,
}

/// The provider: shared state behind a lock, cheap to clone.
#[derive(Debug, Clone)]
pub struct Provider {
    state: Arc<Mutex<State>>,
}

/// A rule's answer plus the words that go into the request log, and the grant it concerned.
struct Decision {
    response: ProviderResponse,
    outcome: String,
    grant: Option<u64>,
}

impl Decision {
    /// The same decision, logged as concerning `grant`.
    fn for_grant(mut self, grant: Option<u64>) -> Self {
        self.grant = grant;
        self
    }
}

fn decided(response: ProviderResponse, outcome: impl Into<String>) -> Decision {
    Decision {
        response,
        outcome: outcome.into(),
        grant: None,
    }
}

fn rejected(status: u16, error: &str, description: &str) -> Decision {
    decided(
        ProviderResponse::oauth_error(status, error, description),
        format!("{error}: {description}"),
    )
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Self {
        let mut ledger = SecretLedger::default();
        for client in &config.clients {
            ledger.record(SecretKind::ClientSecret, &client.client_secret);
        }
        let state = State {
            public_url: config.public_url,
            clients: config
                .clients
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            faults: config.faults,
            mint: Mint::new(config.seed),
            ledger,
            authorization_requests: BTreeMap::new(),
            codes: BTreeMap::new(),
            access_tokens: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            grants: BTreeMap::new(),
            mcp_sessions: BTreeMap::new(),
            handling_seq: 1,
            remembered: BTreeSet::new(),
            fetcher: Fetcher(Arc::new(crate::metadata_document::fetch_over_loopback)),
            log: Vec::new(),
            violations: Vec::new(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one request. `now_ms` is the provider's clock (milliseconds since it started);
    /// the front door passes wall time, a simulator passes virtual time.
    pub fn handle(
        &self,
        endpoint: Endpoint,
        request: &ProviderRequest,
        now_ms: u64,
    ) -> ProviderResponse {
        let mut state = self.lock();
        state.handling_seq = state.log.len() as u64 + 1;
        let decision = match endpoint {
            Endpoint::Authorize => state.authorize(request, now_ms),
            Endpoint::Consent => state.consent(request, now_ms),
            Endpoint::Token => state.token(request, now_ms),
            Endpoint::Revoke => state.revoke(request),
            Endpoint::ApiFiles => state.api(request, now_ms, ApiResource::Files),
            Endpoint::ApiCalendar => state.api(request, now_ms, ApiResource::Calendar),
            Endpoint::AdminSecrets => decided(
                ProviderResponse::json(200, serde_json::to_value(state.ledger.all()).unwrap()),
                "secrets listed",
            ),
            Endpoint::AdminRequests => decided(
                ProviderResponse::json(200, serde_json::to_value(&state.log).unwrap()),
                "requests listed",
            ),
            Endpoint::AdminViolations => decided(
                ProviderResponse::json(200, serde_json::to_value(&state.violations).unwrap()),
                "violations listed",
            ),
            Endpoint::AdminFaults => match serde_json::from_slice::<Faults>(&request.body) {
                Ok(faults) => {
                    state.set_faults(faults);
                    decided(
                        ProviderResponse::json(200, serde_json::json!({})),
                        "faults set",
                    )
                }
                Err(error) => rejected(400, "invalid_request", &format!("faults: {error}")),
            },
            Endpoint::AdminGrants => decided(
                ProviderResponse::json(200, serde_json::to_value(state.grants(now_ms)).unwrap()),
                "grants listed",
            ),
            Endpoint::AdminRevokeGrants => {
                let client_id = request.form_pairs().get("client_id").cloned();
                let count = state.revoke_all_grants(client_id.as_deref());
                decided(
                    ProviderResponse::json(200, serde_json::json!({ "revoked": count })),
                    "grants revoked",
                )
            }
            Endpoint::AdminClients => {
                let form = request.form_pairs();
                match (
                    form.get("client_id"),
                    form.get("client_secret"),
                    form.get("redirect_uri"),
                ) {
                    (Some(id), Some(secret), Some(redirect)) if !id.is_empty() => {
                        state.register_client(ClientRegistration::new(id, secret, redirect));
                        decided(
                            ProviderResponse::json(200, serde_json::json!({ "registered": id })),
                            "client registered",
                        )
                    }
                    _ => rejected(
                        400,
                        "invalid_request",
                        "a client needs client_id, client_secret and redirect_uri (form fields)",
                    ),
                }
            }
            Endpoint::Metadata => {
                decided(ProviderResponse::json(200, state.metadata()), "metadata")
            }
            Endpoint::ResourceMetadata => decided(
                ProviderResponse::json(
                    200,
                    crate::mcp::resource_metadata(&state.public_url, &state.faults.mcp),
                ),
                "resource metadata",
            ),
            Endpoint::Mcp => state.mcp(request, now_ms),
            Endpoint::Register => state.register(request),
            Endpoint::Favicon => decided(
                ProviderResponse {
                    status: 204,
                    headers: Vec::new(),
                    content_type: "image/x-icon",
                    body: Vec::new(),
                    delay_ms: 0,
                },
                "no icon",
            ),
            Endpoint::Unmatched => {
                let detail = "no endpoint of the provider matches this request".to_owned();
                state.violations.push(Violation {
                    method: request.method.clone(),
                    path: request.path.clone(),
                    detail: detail.clone(),
                });
                rejected(404, "not_found", &detail)
            }
        };
        // An API or MCP call concerns the grant of the token it carried.
        let grant = decision.grant.or_else(|| {
            matches!(
                endpoint,
                Endpoint::ApiFiles | Endpoint::ApiCalendar | Endpoint::Mcp
            )
            .then(|| {
                request
                    .header("authorization")
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .and_then(|token| state.grant_of(token))
            })
            .flatten()
        });
        if !endpoint.is_admin() {
            let seq = state.log.len() as u64 + 1;
            let headers = request
                .headers
                .iter()
                .map(|(name, value)| {
                    let shown = if name.eq_ignore_ascii_case("authorization") {
                        "[present]".to_owned()
                    } else {
                        value.clone()
                    };
                    (name.to_ascii_lowercase(), shown)
                })
                .collect();
            state.log.push(LoggedRequest {
                seq,
                at_ms: now_ms,
                endpoint,
                method: request.method.clone(),
                path: request.path.clone(),
                query: request.query.clone(),
                headers,
                status: decision.response.status,
                outcome: decision.outcome.clone(),
                grant,
                rpc: (endpoint == Endpoint::Mcp)
                    .then(|| crate::mcp::rpc_method(&request.body))
                    .flatten(),
            });
        }
        decision.response
    }

    /// How the provider fetches client ID metadata documents from now on (the server fetches
    /// over loopback; the simulator asks its in-process platform).
    pub fn set_document_fetcher(&self, fetcher: DocumentFetcher) {
        self.lock().fetcher = Fetcher(fetcher);
    }

    /// Registers one more client (for example once the platform knows its redirect URI).
    pub fn register_client(&self, client: ClientRegistration) {
        self.lock().register_client(client);
    }

    /// Every secret issued or received so far.
    pub fn secrets(&self) -> SecretLedger {
        self.lock().ledger.clone()
    }

    /// Every request received so far (admin requests excluded).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Requests that matched no endpoint.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().violations.clone()
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Changes the faults for the requests that follow.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().set_faults(faults);
    }

    /// Revokes every grant (of one client, or of all), as a user who removes the app at the
    /// provider would. Returns how many tokens were revoked.
    pub fn revoke_all_grants(&self, client_id: Option<&str>) -> usize {
        self.lock().revoke_all_grants(client_id)
    }

    /// Every grant issued, and what of it is still live at `now_ms`.
    pub fn grants(&self, now_ms: u64) -> Vec<GrantState> {
        self.lock().grants(now_ms)
    }

    /// Whether an access token would be accepted by the API at `now_ms`.
    pub fn access_token_is_live(&self, token: &str, now_ms: u64) -> bool {
        self.lock()
            .access_tokens
            .get(token)
            .is_some_and(|grant| !grant.revoked && now_ms < grant.expires_at_ms)
    }

    /// Whether a refresh token is still usable.
    pub fn refresh_token_is_live(&self, token: &str) -> bool {
        self.lock()
            .refresh_tokens
            .get(token)
            .is_some_and(|grant| !grant.revoked)
    }

    pub fn public_url(&self) -> Url {
        self.lock().public_url.clone()
    }
}

/// The document fetcher, in a `State` that prints.
struct Fetcher(DocumentFetcher);

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetcher")
    }
}

#[derive(Debug, Clone, Copy)]
enum ApiResource {
    Files,
    Calendar,
}

impl ApiResource {
    fn scope(self) -> &'static str {
        match self {
            ApiResource::Files => "files.read",
            ApiResource::Calendar => "calendar.read",
        }
    }

    fn items(self) -> serde_json::Value {
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

/// PKCE S256: BASE64URL(SHA256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn is_pkce_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn with_query(base: &str, params: &[(&str, &str)]) -> Url {
    let mut url = Url::parse(base).expect("registered redirect URIs are absolute URLs");
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            query.append_pair(key, value);
        }
    }
    url
}

impl State {
    /// A client the provider accepts from now on; its secret is one the ledger watches for.
    fn register_client(&mut self, client: ClientRegistration) {
        self.ledger
            .record(SecretKind::ClientSecret, &client.client_secret);
        self.clients.insert(client.client_id.clone(), client);
    }

    /// The faults of a new run: nothing remembered from the last one.
    fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
        self.remembered.clear();
    }

    fn authorize(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let query = request.query_pairs();
        let get = |key: &str| query.get(key).map(String::as_str).unwrap_or("");
        if let Err(why) = self.learn_client_from_its_document(get("client_id")) {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page("Client metadata document refused", &why),
                ),
                format!("rejected: {why}"),
            );
        }
        let Some(client) = self.clients.get(get("client_id")).cloned() else {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page("Unknown client", "client_id is not registered."),
                ),
                "rejected: unknown client_id",
            );
        };
        let redirect_uri = get("redirect_uri");
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Redirect URI mismatch",
                        "redirect_uri does not exactly match a registered URI.",
                    ),
                ),
                "rejected: redirect_uri mismatch",
            );
        }
        let state = get("state");
        let iss = self.iss();
        let redirect_error = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if !state.is_empty() {
                params.push(("state", state));
            }
            if let Some(iss) = &iss {
                params.push(("iss", iss));
            }
            decided(
                ProviderResponse::redirect(with_query(redirect_uri, &params)),
                format!("redirected with {error}: {description}"),
            )
        };
        if get("response_type") != "code" {
            return redirect_error("unsupported_response_type", "response_type must be code");
        }
        if state.is_empty() {
            return redirect_error("invalid_request", "state is required");
        }
        let challenge = get("code_challenge");
        if challenge.is_empty() {
            return redirect_error("invalid_request", "PKCE code_challenge is required");
        }
        if get("code_challenge_method") != "S256" {
            return redirect_error("invalid_request", "code_challenge_method must be S256");
        }
        if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
            return redirect_error("invalid_request", "code_challenge is not a S256 challenge");
        }
        let resource = query.get("resource").cloned();
        if let Some(resource) = &resource {
            if self.faults.mcp.refuses_resource {
                return redirect_error("invalid_target", "this server does not take resource");
            }
            if !crate::mcp::is_resource_indicator(resource) {
                return redirect_error(
                    "invalid_target",
                    "resource must be an absolute URI without a fragment",
                );
            }
        }
        match self.faults.consent.clone() {
            ConsentFault::AskUser => {}
            ConsentFault::Denied => {
                return decided(
                    ProviderResponse::redirect(self.authorization_response(
                        redirect_uri,
                        &[("error", "access_denied"), ("state", state)],
                    )),
                    "consent denied (fault)",
                );
            }
            ConsentFault::ErrorRedirect { error, description } => {
                return redirect_error(&error, &description);
            }
        }
        let scope = get("scope").to_owned();
        let request = AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            code_challenge: challenge.to_owned(),
            scope: scope.clone(),
            resource,
            decided: false,
        };
        if self.faults.remembers_consent
            && self
                .remembered
                .contains(&(client.client_id.clone(), scope.clone()))
        {
            let location = self.issue_code(&request, now_ms);
            return decided(
                ProviderResponse::redirect(location),
                "consent remembered, code issued",
            );
        }
        let request_id = self.mint.next("req_");
        self.authorization_requests
            .insert(request_id.clone(), request);
        let page = consent_page::consent_page(&client.name, &scope, &request_id);
        let mut response = ProviderResponse::html(200, page);
        if let Some(coop) = self.faults.coop_on_consent_page {
            response = response.with_header(coop.header());
        }
        if let Some(policy) = &self.faults.csp_on_consent_page {
            response = response.with_header(("content-security-policy", policy));
        }
        decided(response, "consent page shown")
    }

    fn consent(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let form = request.form_pairs();
        let request_id = form.get("request").cloned().unwrap_or_default();
        let Some(pending) = self.authorization_requests.get_mut(&request_id) else {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Unknown request",
                        "This consent request does not exist.",
                    ),
                ),
                "rejected: unknown consent request",
            );
        };
        if pending.decided {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Already decided",
                        "This consent request was already answered.",
                    ),
                ),
                "rejected: consent request already decided",
            );
        }
        pending.decided = true;
        let pending = pending.clone();
        let (location, outcome) = match form.get("decision").map(String::as_str) {
            Some("allow") => {
                self.remembered
                    .insert((pending.client_id.clone(), pending.scope.clone()));
                (
                    self.issue_code(&pending, now_ms),
                    "consent given, code issued",
                )
            }
            _ => (
                self.authorization_response(
                    &pending.redirect_uri,
                    &[("error", "access_denied"), ("state", &pending.state)],
                ),
                "consent denied by the user",
            ),
        };
        let mut response = ProviderResponse::redirect(location);
        if let Some(coop) = self.faults.coop_on_redirect {
            response = response.with_header(coop.header());
        }
        decided(response, outcome)
    }

    /// Issues a code for an allowed request; returns the redirect URI that carries it.
    fn issue_code(&mut self, request: &AuthorizationRequest, now_ms: u64) -> Url {
        let code = self.mint.next("code_");
        self.ledger.record(SecretKind::AuthorizationCode, &code);
        self.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scope: request.scope.clone(),
                resource: request.resource.clone(),
                issued_at_ms: now_ms,
                presented: false,
                issued_tokens: Vec::new(),
            },
        );
        self.authorization_response(
            &request.redirect_uri,
            &[("code", &code), ("state", &request.state)],
        )
    }

    /// Its authorization server metadata (RFC 8414), with the endpoints it serves and whether
    /// its authorization responses carry `iss` (RFC 9207 §3), as the faults say.
    fn metadata(&self) -> serde_json::Value {
        let base = crate::mcp::issuer(&self.public_url);
        let issuer = match self.faults.mcp.metadata_names_another_issuer {
            true => "https://another-issuer.example",
            false => base,
        };
        let mut metadata = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "revocation_endpoint": format!("{base}/revoke"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["files.read", "calendar.read", crate::mcp::SCOPE],
            "authorization_response_iss_parameter_supported":
                self.faults.iss_in_response != IssInResponse::Absent,
        });
        let known_by = self.faults.mcp.clients_known_by;
        if known_by.registration() {
            metadata["registration_endpoint"] =
                format!("{base}{}", crate::mcp::REGISTRATION_PATH).into();
        }
        if known_by.metadata_documents() {
            metadata["client_id_metadata_document_supported"] = true.into();
            metadata["token_endpoint_auth_methods_supported"] =
                serde_json::json!(["client_secret_basic", "client_secret_post", "none"]);
        }
        metadata
    }

    /// The `iss` the authorization response carries, as the faults say (RFC 9207).
    fn iss(&self) -> Option<String> {
        match self.faults.iss_in_response {
            IssInResponse::Absent => None,
            IssInResponse::Correct => Some(crate::mcp::issuer(&self.public_url).to_owned()),
            IssInResponse::OfAnotherProvider => Some("https://another-provider.example".to_owned()),
        }
    }

    /// The redirect back to the client with `params`, and `iss` when the provider sends it.
    fn authorization_response(&self, redirect_uri: &str, params: &[(&str, &str)]) -> Url {
        let iss = self.iss();
        let mut all = params.to_vec();
        if let Some(iss) = &iss {
            all.push(("iss", iss));
        }
        with_query(redirect_uri, &all)
    }

    /// A client this server does not know yet whose `client_id` is the URL of its metadata
    /// document, when the faults take those: fetched, checked and kept as a public client.
    fn learn_client_from_its_document(&mut self, client_id: &str) -> Result<(), String> {
        if self.clients.contains_key(client_id)
            || !self.faults.mcp.clients_known_by.metadata_documents()
            || !crate::metadata_document::is_document_client_id(client_id)
        {
            return Ok(());
        }
        let url = Url::parse(client_id).map_err(|e| e.to_string())?;
        let fetched = (self.fetcher.0)(&url);
        let client = crate::metadata_document::client_from_document(client_id, fetched)?;
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    /// Client authentication by HTTP Basic or by form fields (RFC 6749 §2.3.1); a public client
    /// names itself with `client_id` alone.
    fn authenticate_client(
        &mut self,
        request: &ProviderRequest,
        form: &BTreeMap<String, String>,
    ) -> Result<ClientRegistration, Decision> {
        let basic = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Basic "))
            .map(|encoded| {
                let decoded = STANDARD.decode(encoded.trim()).unwrap_or_default();
                let text = String::from_utf8_lossy(&decoded).into_owned();
                let (id, secret) = text.split_once(':').unwrap_or((&text, ""));
                let unescape = |s: &str| {
                    url::form_urlencoded::parse(format!("v={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (unescape(id), unescape(secret))
            });
        let in_form = form.get("client_secret").is_some();
        let (client_id, secret) = match (basic, in_form) {
            (Some(_), true) => {
                return Err(rejected(
                    400,
                    "invalid_request",
                    "client authenticated by two methods at once",
                ));
            }
            (Some(pair), false) => pair,
            (None, true) => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
            (None, false) => match form.get("client_id").and_then(|id| self.clients.get(id)) {
                Some(client) if client.public => return Ok(client.clone()),
                _ => return Err(unauthenticated("client authentication is required")),
            },
        };
        self.ledger.record(SecretKind::ClientSecret, &secret);
        match self.clients.get(&client_id) {
            Some(client) if client.client_secret == secret => Ok(client.clone()),
            _ => Err(unauthenticated("unknown client or wrong client secret")),
        }
    }

    fn token(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let delay_ms = self.faults.token_delay_ms;
        let mut decision = self.token_without_delay(request, now_ms);
        decision.response.delay_ms = delay_ms;
        decision
    }

    fn token_without_delay(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let form = request.form_pairs();
        if let Some(code) = form.get("code") {
            self.ledger.record(SecretKind::AuthorizationCode, code);
        }
        if let Some(verifier) = form.get("code_verifier") {
            self.ledger.record(SecretKind::PkceVerifier, verifier);
        }
        if let Some(refresh) = form.get("refresh_token") {
            self.ledger.record(SecretKind::RefreshToken, refresh);
        }
        let client = match self.authenticate_client(request, &form) {
            Ok(client) => client,
            Err(decision) => return decision,
        };
        match self.faults.token_failure {
            Some(TokenFailure::ServerError) => {
                return rejected(
                    503,
                    "temporarily_unavailable",
                    "the token endpoint is failing (fault)",
                );
            }
            Some(TokenFailure::InvalidGrant) => {
                return rejected(400, "invalid_grant", "the grant is refused (fault)");
            }
            None => {}
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.exchange_code(&client, &form, now_ms),
            Some("refresh_token") => self.refresh(&client, &form, now_ms),
            Some(other) => rejected(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported"),
            ),
            None => rejected(400, "invalid_request", "grant_type is required"),
        }
    }

    fn exchange_code(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let Some(code) = form.get("code") else {
            return rejected(400, "invalid_request", "code is required");
        };
        let Some(grant) = self.codes.get_mut(code) else {
            return rejected(400, "invalid_grant", "unknown code");
        };
        if grant.client_id != client.client_id {
            return rejected(
                400,
                "invalid_grant",
                "the code was issued to another client",
            );
        }
        if grant.presented {
            // RFC 6749 §4.1.2: a reused code revokes what it issued.
            let issued = std::mem::take(&mut grant.issued_tokens);
            for token in &issued {
                self.revoke_token(token);
            }
            let grant = issued.first().and_then(|token| self.grant_of(token));
            return rejected(
                400,
                "invalid_grant",
                "code already used; the tokens it issued are revoked",
            )
            .for_grant(grant);
        }
        grant.presented = true;
        if now_ms.saturating_sub(grant.issued_at_ms) > CODE_LIFETIME_MS {
            return rejected(400, "invalid_grant", "code expired");
        }
        if form.get("redirect_uri") != Some(&grant.redirect_uri) {
            return rejected(
                400,
                "invalid_grant",
                "redirect_uri differs from the authorization request",
            );
        }
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        if !is_pkce_verifier(verifier) {
            return rejected(
                400,
                "invalid_grant",
                "code_verifier is missing or malformed",
            );
        }
        if pkce_challenge(verifier) != grant.code_challenge {
            return rejected(
                400,
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            );
        }
        // RFC 8707 §2.2: the token request's resource is the authorization's (mcp-remote #218).
        if let Some(asked) = form.get("resource") {
            if self.faults.mcp.refuses_resource {
                return rejected(400, "invalid_target", "this server does not take resource");
            }
            if grant.resource.as_ref() != Some(asked) {
                return rejected(
                    400,
                    "invalid_target",
                    "resource differs from the authorization request's",
                );
            }
        }
        let (scope, resource) = (grant.scope.clone(), grant.resource.clone());
        // Issued all the same, as lenient servers do; the log says what was left out.
        let outcome = match (&resource, form.get("resource")) {
            (Some(_), None) => "issued tokens for a code, without the authorization's resource",
            _ => "issued tokens for a code",
        };
        let (response, access, refresh) =
            self.issue_tokens(&client.client_id, &scope, resource, None, now_ms);
        let grant = self.grant_of(&access);
        if let Some(code_grant) = self.codes.get_mut(code) {
            code_grant.issued_tokens = vec![access, refresh];
        }
        decided(response, outcome).for_grant(grant)
    }

    fn refresh(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let grant = form
            .get("refresh_token")
            .and_then(|token| self.grant_of(token));
        self.refresh_unlogged(client, form, now_ms).for_grant(grant)
    }

    fn refresh_unlogged(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let Some(token) = form.get("refresh_token") else {
            return rejected(400, "invalid_request", "refresh_token is required");
        };
        let Some(grant) = self.refresh_tokens.get(token) else {
            return rejected(400, "invalid_grant", "unknown refresh token");
        };
        if grant.client_id != client.client_id {
            return rejected(
                400,
                "invalid_grant",
                "the refresh token was issued to another client",
            );
        }
        if grant.revoked {
            return rejected(400, "invalid_grant", "the refresh token is revoked");
        }
        let (scope, family) = (grant.scope.clone(), grant.family.clone());
        // A refresh names its resource again, or its access token has no audience (as strict
        // servers answer): a client that drops it gets a token the MCP server refuses.
        let resource = match form.get("resource") {
            None => None,
            Some(asked) if grant.resource.as_ref() == Some(asked) => Some(asked.clone()),
            Some(_) => {
                return rejected(
                    400,
                    "invalid_target",
                    "resource differs from the authorization's",
                );
            }
        };
        if grant.rotated {
            if self.faults.refresh_rotation == RefreshRotation::RotateWithReuseDetection {
                let revoked = self.revoke_family(&family);
                return rejected(
                    400,
                    "invalid_grant",
                    &format!(
                        "refresh token reused: it was rotated before, reuse detected, the grant is revoked ({revoked} tokens)"
                    ),
                );
            }
            return rejected(
                400,
                "invalid_grant",
                "refresh token reused: it was rotated, the one answered last serves",
            );
        }
        let kept = match self.faults.refresh_rotation {
            RefreshRotation::Off => Some(token.clone()),
            RefreshRotation::Rotate | RefreshRotation::RotateWithReuseDetection => {
                if let Some(grant) = self.refresh_tokens.get_mut(token) {
                    grant.rotated = true;
                }
                None
            }
        };
        let authorized = self
            .refresh_tokens
            .get(token)
            .and_then(|g| g.resource.clone());
        let (response, _, refresh) = self.issue_tokens_in(
            &client.client_id,
            &scope,
            resource,
            kept,
            Some(family),
            now_ms,
        );
        let outcome = match (&authorized, form.get("resource")) {
            (Some(_), None) => {
                "issued an access token for a refresh token, without the authorization's resource (no audience)"
            }
            _ => "issued an access token for a refresh token",
        };
        // A rotated refresh token keeps the authorization's resource, whatever this refresh named.
        if let Some(grant) = self.refresh_tokens.get_mut(&refresh) {
            grant.resource = authorized;
        }
        decided(response, outcome)
    }

    /// Mints an access token and a refresh token for a new authorization, and answers them.
    fn issue_tokens(
        &mut self,
        client_id: &str,
        scope: &str,
        resource: Option<String>,
        existing_refresh: Option<String>,
        now_ms: u64,
    ) -> (ProviderResponse, String, String) {
        self.issue_tokens_in(client_id, scope, resource, existing_refresh, None, now_ms)
    }

    /// Mints an access token (and a refresh token unless one is being kept, in `family` when
    /// it rotates from one) and answers them.
    fn issue_tokens_in(
        &mut self,
        client_id: &str,
        scope: &str,
        resource: Option<String>,
        existing_refresh: Option<String>,
        family: Option<String>,
        now_ms: u64,
    ) -> (ProviderResponse, String, String) {
        let access = self.mint.next("at_");
        self.ledger.record(SecretKind::AccessToken, &access);
        // The grant: the kept refresh token's, the family's it rotates from, or a new one.
        let known = existing_refresh
            .as_ref()
            .and_then(|token| self.refresh_tokens.get(token))
            .or_else(|| {
                family
                    .as_ref()
                    .and_then(|family| self.refresh_tokens.values().find(|g| g.family == *family))
            })
            .map(|g| g.grant);
        let grant = known.unwrap_or_else(|| {
            let id = self.grants.len() as u64 + 1;
            self.grants.insert(
                id,
                GrantOrigin {
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    issued_seq: self.handling_seq,
                },
            );
            id
        });
        let given = !self.faults.withholds_refresh_token;
        let refresh = existing_refresh.unwrap_or_else(|| {
            let refresh = self.mint.next("rt_");
            self.ledger.record(SecretKind::RefreshToken, &refresh);
            self.refresh_tokens.insert(
                refresh.clone(),
                RefreshGrant {
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    resource: resource.clone(),
                    revoked: false,
                    access_tokens: Vec::new(),
                    family: family.clone().unwrap_or_else(|| refresh.clone()),
                    rotated: false,
                    grant,
                    given,
                },
            );
            refresh
        });
        let lifetime = self.faults.token_lifetime_secs;
        self.access_tokens.insert(
            access.clone(),
            AccessGrant {
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                resource,
                expires_at_ms: now_ms + lifetime * 1000,
                revoked: false,
                grant,
            },
        );
        if let Some(grant) = self.refresh_tokens.get_mut(&refresh) {
            grant.access_tokens.push(access.clone());
        }
        let mut body = serde_json::json!({
            "access_token": access,
            "token_type": self.faults.token_type.as_str(),
            "expires_in": lifetime,
            "refresh_token": refresh,
            "scope": scope,
        });
        if self.faults.withholds_refresh_token {
            body.as_object_mut()
                .expect("an object")
                .remove("refresh_token");
        }
        (ProviderResponse::json(200, body), access, refresh)
    }

    /// Revokes an access or refresh token; a refresh token takes its access tokens with it.
    fn revoke_token(&mut self, token: &str) -> usize {
        if let Some(grant) = self.access_tokens.get_mut(token) {
            grant.revoked = true;
            return 1;
        }
        let Some(grant) = self.refresh_tokens.get_mut(token) else {
            return 0;
        };
        grant.revoked = true;
        let access_tokens = grant.access_tokens.clone();
        for access in &access_tokens {
            if let Some(access_grant) = self.access_tokens.get_mut(access) {
                access_grant.revoked = true;
            }
        }
        1 + access_tokens.len()
    }

    /// Revokes every refresh token of an authorization and every access token issued with
    /// them (reuse detection).
    fn revoke_family(&mut self, family: &str) -> usize {
        let tokens: Vec<String> = self
            .refresh_tokens
            .iter()
            .filter(|(_, g)| g.family == family && !g.revoked)
            .map(|(t, _)| t.clone())
            .collect();
        tokens.iter().map(|t| self.revoke_token(t)).sum()
    }

    /// The grant a token (access or refresh) belongs to, if the provider issued it.
    fn grant_of(&self, token: &str) -> Option<u64> {
        self.access_tokens
            .get(token)
            .map(|g| g.grant)
            .or_else(|| self.refresh_tokens.get(token).map(|g| g.grant))
    }

    /// Every grant, and what of it is still live at `now_ms`.
    fn grants(&self, now_ms: u64) -> Vec<GrantState> {
        let grace_ms = self.faults.access_token_grace_secs * 1000;
        self.grants
            .iter()
            .map(|(id, origin)| GrantState {
                id: *id,
                client_id: origin.client_id.clone(),
                scope: origin.scope.clone(),
                issued_seq: origin.issued_seq,
                live_access_tokens: self
                    .access_tokens
                    .values()
                    .filter(|g| g.grant == *id && !g.revoked && now_ms < g.expires_at_ms + grace_ms)
                    .count(),
                live_refresh_token: self
                    .refresh_tokens
                    .values()
                    .any(|g| g.grant == *id && g.given && !g.revoked && !g.rotated),
            })
            .collect()
    }

    fn revoke_all_grants(&mut self, client_id: Option<&str>) -> usize {
        let refresh: Vec<String> = self
            .refresh_tokens
            .iter()
            .filter(|(_, g)| !g.revoked && client_id.is_none_or(|id| g.client_id == id))
            .map(|(t, _)| t.clone())
            .collect();
        let access: Vec<String> = self
            .access_tokens
            .iter()
            .filter(|(_, g)| !g.revoked && client_id.is_none_or(|id| g.client_id == id))
            .map(|(t, _)| t.clone())
            .collect();
        for token in refresh.iter().chain(&access) {
            self.revoke_token(token);
        }
        refresh.len() + access.len()
    }

    fn revoke(&mut self, request: &ProviderRequest) -> Decision {
        let form = request.form_pairs();
        if let Some(token) = form.get("token") {
            let kind = if token.starts_with("rt_") {
                SecretKind::RefreshToken
            } else {
                SecretKind::AccessToken
            };
            self.ledger.record(kind, token);
        }
        let grant = form.get("token").and_then(|token| self.grant_of(token));
        self.revoke_unlogged(request, &form).for_grant(grant)
    }

    fn revoke_unlogged(
        &mut self,
        request: &ProviderRequest,
        form: &BTreeMap<String, String>,
    ) -> Decision {
        let client = match self.authenticate_client(request, form) {
            Ok(client) => client,
            Err(decision) => return decision,
        };
        if self.faults.revoke_endpoint_fails {
            return rejected(
                503,
                "temporarily_unavailable",
                "the revocation endpoint is failing (fault)",
            );
        }
        let Some(token) = form.get("token").cloned() else {
            return rejected(400, "invalid_request", "token is required");
        };
        let owner = self
            .access_tokens
            .get(&token)
            .map(|g| g.client_id.clone())
            .or_else(|| self.refresh_tokens.get(&token).map(|g| g.client_id.clone()));
        match owner {
            None => decided(
                ProviderResponse::json(200, serde_json::json!({})),
                "revoke of an unknown token (accepted, RFC 7009)",
            ),
            Some(owner) if owner != client.client_id => rejected(
                400,
                "unauthorized_client",
                "the token was issued to another client",
            ),
            Some(_) => {
                let count = self.revoke_token(&token);
                decided(
                    ProviderResponse::json(200, serde_json::json!({})),
                    format!("revoked {count} token(s)"),
                )
            }
        }
    }

    fn api(&mut self, request: &ProviderRequest, now_ms: u64, resource: ApiResource) -> Decision {
        let delay_ms = self.faults.api_delay_ms;
        let mut decision = self.api_without_delay(request, now_ms, resource);
        decision.response.delay_ms = delay_ms;
        decision
    }

    fn api_without_delay(
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
                "rejected: no bearer token",
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
    fn mcp(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let mut needed = vec![crate::mcp::SCOPE];
        if let Some(scope) = &self.faults.mcp.step_up_scope {
            needed.push(scope);
        }
        // A 401 names the scope any access needs; a 403 the ones this operation needs (the
        // step-up, MCP authorization "Scope Challenge Handling").
        let challenge = |status: u16, error: Option<&str>, outcome: String| {
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
            return challenge(401, None, "rejected: no bearer token".into());
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
            return challenge(401, Some("invalid_token"), format!("invalid_token: {why}"));
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
    fn mcp_session(&mut self, request: &ProviderRequest, rpc: crate::mcp::Rpc) -> Decision {
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
    fn register(&mut self, request: &ProviderRequest) -> Decision {
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

fn unauthenticated(description: &str) -> Decision {
    let mut decision = rejected(401, "invalid_client", description);
    decision.response = decision
        .response
        .with_header(("www-authenticate", "Basic realm=\"fake-provider\""));
    decision
}
