//! The provider's rules in plain Rust: authorization requests, consent, codes, PKCE, tokens,
//! revocation and the protected API. No sockets here: the wiremock front door (`server.rs`)
//! and an in-process simulator both call [`Provider::handle`].
//!
//! By job: `messages` (the requests and answers, the endpoints), `authorization` (the
//! authorization endpoint, consent, metadata), `tokens` (client authentication, the token
//! and revocation endpoints, grants), `resources` (the protected API, the MCP server, client
//! registration).

use crate::consent_page;
use crate::faults::{
    ApiAnswer, ConsentFault, Faults, IssInResponse, RefreshRotation, TokenFailure,
};
use crate::metadata_document::DocumentFetcher;
use crate::mint::Mint;
use crate::outcome::Outcome;
use crate::secrets::{SecretKind, SecretLedger};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use url::Url;

mod authorization;
mod messages;
mod resources;
mod tokens;

use authorization::is_pkce_verifier;
pub use authorization::pkce_challenge;
pub use messages::{
    CODE_LIFETIME_MS, ClientRegistration, Endpoint, ProviderRequest, ProviderResponse,
};
use resources::{ApiResource, unauthenticated};

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
    /// What the rules decided: typed where a check reads it; its `Display` is the log's words
    /// (`issued tokens for a code`, `invalid_grant: code already used; ...`).
    pub outcome: Outcome,
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
    /// How far the clock was moved ahead (`POST /_admin/clock`): added to the time the rules
    /// judge by, never to the time the log records.
    clock_ahead_ms: u64,
}

/// `POST /_admin/clock`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockAdvance {
    advance_ms: u64,
}

/// The provider: shared state behind a lock, cheap to clone.
#[derive(Debug, Clone)]
pub struct Provider {
    state: Arc<Mutex<State>>,
}

/// A rule's answer plus the words that go into the request log, and the grant it concerned.
struct Decision {
    response: ProviderResponse,
    outcome: Outcome,
    grant: Option<u64>,
}

impl Decision {
    /// The same decision, logged as concerning `grant`.
    fn for_grant(mut self, grant: Option<u64>) -> Self {
        self.grant = grant;
        self
    }

    /// The same answer, logged as `outcome`.
    fn logged_as(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

fn decided(response: ProviderResponse, outcome: impl Into<Outcome>) -> Decision {
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
            clock_ahead_ms: 0,
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
    /// the front door passes wall time, a simulator passes virtual time. The rules judge by
    /// that clock moved ahead as `/_admin/clock` asked; the log records `now_ms` itself.
    pub fn handle(
        &self,
        endpoint: Endpoint,
        request: &ProviderRequest,
        logged_at_ms: u64,
    ) -> ProviderResponse {
        let mut state = self.lock();
        let now_ms = logged_at_ms + state.clock_ahead_ms;
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
            Endpoint::AdminClock => match serde_json::from_slice::<ClockAdvance>(&request.body) {
                Ok(ClockAdvance { advance_ms }) => {
                    state.clock_ahead_ms += advance_ms;
                    decided(
                        ProviderResponse::json(
                            200,
                            serde_json::json!({ "ahead_ms": state.clock_ahead_ms }),
                        ),
                        "clock moved ahead",
                    )
                }
                Err(error) => rejected(
                    400,
                    "invalid_request",
                    &format!("clock: {error} (send {{\"advance_ms\": N}})"),
                ),
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
                at_ms: logged_at_ms,
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

    /// Moves the clock the rules judge by ahead (as `POST /_admin/clock` does).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.lock().clock_ahead_ms += by.as_millis() as u64;
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
}
