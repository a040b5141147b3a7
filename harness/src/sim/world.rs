//! The simulated world of one flow: the real reference server (its router called in-process,
//! an in-memory database, a virtual clock), the real fake-provider rules (called in-process by
//! the platform's outgoing HTTP), the real card decision module (QuickJS), and a browser
//! written in Rust: tabs and their openers, BroadcastChannel, storage events, postMessage,
//! COOP severing the opener, popup blocking, `window.close`, timers and fetch, all in virtual
//! time, every delay drawn from the case's seed.

use super::card::CardModule;
use super::case::{Action, Case, CoopHop, ProviderBehaviour};
use crate::check::invariants::{
    CALLBACK_CLOSED, CHAT_RESUMED, FOREIGN_ORIGIN_IGNORED, NO_DUPLICATE_CONNECTION,
    NO_SECRET_VISIBLE, RESEND_AT_MOST_ONCE, RESEND_ONLY_WHEN_CONNECTED, REVOCATION,
};
use crate::check::trace::Placeholders;
use crate::contract;
use crate::scenario::{Activation, Decision, Step};
use axum::body::Body;
use fake_provider::{
    ClientRegistration, ConsentFault, Endpoint, Faults, Provider, ProviderConfig, ProviderRequest,
    ProviderResponse, TokenFailure,
};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reference_server::defects::edits::{
    Edit, NO_ORIGIN_CHECK, NO_POLLING, RESEND_ON_ERROR, RESEND_ON_EVERY_DELIVERY,
};
use reference_server::paths;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use url::Url;

pub const PLATFORM: &str = "http://platform.test/";
pub const PROVIDER: &str = "http://provider.test/";
/// Virtual time starts here (ms since the Unix epoch), for the platform and the provider.
const EPOCH_MS: u64 = 1_800_000_000_000;
const ORG: &str = "sim";
const USER: &str = "simuser";
const CHAT: &str = "main";
/// How long the world runs after each action, and at the end (virtual ms).
const AFTER_ACTION_MS: u64 = 1_500;
const SETTLE_MS: u64 = 7_000;

/// A deliberately broken chat client: what the browser tier's known-bad platforms do, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BrokenClient {
    /// Listens to `window.opener` messages only, and never polls.
    OpenerOnly,
    /// Never polls the server.
    NeverPolls,
    /// Re-sends on every delivery.
    ResendOnEveryDelivery,
    /// Acts on messages from any origin (no origin check).
    AcceptsAnyOrigin,
    /// Re-sends when the server says the connection failed.
    ResendsOnError,
}

use serde::Serialize;

impl BrokenClient {
    pub const ALL: [BrokenClient; 5] = [
        BrokenClient::OpenerOnly,
        BrokenClient::NeverPolls,
        BrokenClient::ResendOnEveryDelivery,
        BrokenClient::AcceptsAnyOrigin,
        BrokenClient::ResendsOnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BrokenClient::OpenerOnly => "opener-only",
            BrokenClient::NeverPolls => "never-polls",
            BrokenClient::ResendOnEveryDelivery => "resend-on-every-delivery",
            BrokenClient::AcceptsAnyOrigin => "accepts-any-origin",
            BrokenClient::ResendsOnError => "resends-on-error",
        }
    }

    /// Its edits to `card-decisions.js`, from the reference server's one copy of each.
    pub fn edits(self) -> &'static [Edit] {
        match self {
            BrokenClient::OpenerOnly | BrokenClient::NeverPolls => &NO_POLLING,
            BrokenClient::ResendOnEveryDelivery => &[RESEND_ON_EVERY_DELIVERY],
            BrokenClient::AcceptsAnyOrigin => &[NO_ORIGIN_CHECK],
            BrokenClient::ResendsOnError => &[RESEND_ON_ERROR],
        }
    }

    /// The module's text with this client's edits.
    pub fn module_source(self) -> String {
        let mut source = reference_server::CARD_DECISIONS_JS.to_owned();
        for (_, from, to) in self.edits() {
            assert!(
                source.contains(from),
                "card-decisions.js no longer contains {from:?}: update BrokenClient::edits"
            );
            source = source.replace(from, to);
        }
        source
    }

    /// Whether the page listens on BroadcastChannel and storage events (not only the opener).
    fn listens_beyond_opener(self) -> bool {
        self != BrokenClient::OpenerOnly
    }
}

/// A violated invariant of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimViolation {
    pub invariant: &'static str,
    pub detail: String,
}

/// What one flow did: its trace, the invariants it broke, and the steps of the scenario file
/// that replays it in a browser.
#[derive(Debug, Clone)]
pub struct FlowOutcome {
    pub trace: Vec<String>,
    pub violations: Vec<SimViolation>,
    /// Each step that happened (actions that were no-ops are left out).
    pub steps: Vec<Step>,
    /// How the chat ended: `resumed`, `error-shown`, `waiting` or `tool-error-and-reconnect`.
    pub chat_ended: &'static str,
    /// `METHOD /path -> status (outcome)` for every provider request, in order.
    pub provider_lines: Vec<String>,
    /// The chat's summary line, as the browser tier's trace writes it.
    pub chat_line: String,
}

#[derive(Debug, Clone)]
struct Card {
    queued_id: String,
    connection_id: String,
    /// The card's key in the decision module (its state stays in the engine).
    key: u32,
    view: String,
    timer: u64,
}

#[derive(Debug, Clone)]
enum Page {
    Blank,
    Chat { cards: Vec<Card> },
    Consent { request: String },
    Callback,
    Other,
}

#[derive(Debug, Clone)]
struct Tab {
    name: String,
    page: Page,
    opener: Option<usize>,
    severed: bool,
    closed: bool,
    generation: u64,
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        tab: usize,
        generation: u64,
        channel: &'static str,
        origin: String,
        data: Value,
    },
    Timer {
        tab: usize,
        generation: u64,
        card: usize,
        timer: u64,
    },
    FetchStatus {
        tab: usize,
        generation: u64,
        card: usize,
    },
    Resend {
        tab: usize,
        generation: u64,
        card: usize,
    },
    ReloadMessages {
        tab: usize,
        generation: u64,
    },
    Navigate {
        tab: usize,
        url: Url,
    },
    Close {
        tab: usize,
    },
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One flow's world.
pub struct World<'a> {
    module: &'a CardModule,
    runtime: &'a tokio::runtime::Runtime,
    broken: Option<BrokenClient>,
    case: &'a Case,
    platform: axum::Router,
    provider: Provider,
    platform_url: Url,
    provider_url: Url,
    now: Arc<AtomicU64>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    rng: StdRng,
    cookie: Option<String>,
    tabs: Vec<Tab>,
    trace: Vec<String>,
    violations: Vec<SimViolation>,
    steps: Vec<Step>,
    said: usize,
    revoked_since_allow: bool,
    /// Re-send requests by (tab, queued message): each card asks at most once.
    resend_requests: BTreeMap<(usize, String), usize>,
    callback_urls: Vec<Url>,
    connectors_open: bool,
    ids: Placeholders,
    next_card: u32,
}

fn faults_for(case: &Case) -> Faults {
    let mut faults = Faults::none();
    match case.provider {
        ProviderBehaviour::Behaves => {}
        ProviderBehaviour::ErrorRedirect => {
            faults.consent = ConsentFault::ErrorRedirect {
                error: "server_error".into(),
                description: case.error_description.clone(),
            }
        }
        ProviderBehaviour::TokenUnavailable => {
            faults.token_failure = Some(TokenFailure::ServerError)
        }
        ProviderBehaviour::TokenInvalidGrant => {
            faults.token_failure = Some(TokenFailure::InvalidGrant)
        }
        ProviderBehaviour::SlowToken => faults.token_delay_ms = 4_000,
    }
    match case.coop {
        Some(CoopHop::ConsentPage) => {
            faults.coop_on_consent_page = Some(fake_provider::Coop::SameOrigin)
        }
        Some(CoopHop::Redirect) => faults.coop_on_redirect = Some(fake_provider::Coop::SameOrigin),
        None => {}
    }
    faults
}

fn provider_request(
    method: &str,
    url: &Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> ProviderRequest {
    ProviderRequest {
        method: method.to_owned(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or("").to_owned(),
        headers,
        body,
    }
}

fn header<'r>(response: &'r ProviderResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What every flow shares: the engine, the runtime and the platform (reset per flow), and
/// the slot the platform's outgoing requests find the flow's provider in.
pub struct Shared {
    pub module: CardModule,
    pub runtime: tokio::runtime::Runtime,
    pub platform: reference_server::InMemoryPlatform,
    provider: Arc<Mutex<Option<Provider>>>,
    now: Arc<AtomicU64>,
    pub broken: Option<BrokenClient>,
}

impl Shared {
    pub fn new(module: CardModule, broken: Option<BrokenClient>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let slot: Arc<Mutex<Option<Provider>>> = Arc::new(Mutex::new(None));
        let now = Arc::new(AtomicU64::new(0));
        let transport = {
            let slot = slot.clone();
            let now = now.clone();
            Arc::new(move |request: reference_server::oauth2::HttpRequest| {
                let (parts, body) = request.into_parts();
                let url = Url::parse(&parts.uri.to_string())
                    .unwrap_or_else(|_| Url::parse(PROVIDER).expect("a URL"));
                let headers = parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_ascii_lowercase(),
                            v.to_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect();
                let request = provider_request(parts.method.as_str(), &url, headers, body);
                let provider = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .expect("a flow's provider");
                let answer = provider.handle(
                    Endpoint::route(parts.method.as_str(), url.path()),
                    &request,
                    EPOCH_MS + now.load(Ordering::SeqCst),
                );
                let mut builder = reference_server::oauth2::http::Response::builder()
                    .status(answer.status)
                    .header("content-type", answer.content_type);
                for (name, value) in &answer.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.body(answer.body).expect("a response")
            }) as reference_server::InMemoryTransport
        };
        let platform = reference_server::InMemoryPlatform::new(
            reference_server::Settings::for_provider(PROVIDER),
            Url::parse(PLATFORM)?,
            reference_server::Http::InMemory(transport),
        )?;
        Ok(Self {
            module,
            runtime,
            platform,
            provider: slot,
            now,
            broken,
        })
    }
}

impl<'a> World<'a> {
    pub fn new(case: &'a Case, shared: &'a Shared) -> anyhow::Result<Self> {
        let platform_url = Url::parse(PLATFORM)?;
        let provider_url = Url::parse(PROVIDER)?;
        let redirect = platform_url.join("oauth/redirect")?.to_string();
        let provider = Provider::new(ProviderConfig {
            public_url: provider_url.clone(),
            clients: reference_server::DEFAULT_CLIENTS
                .iter()
                .map(|(_, _, id, secret)| ClientRegistration::new(id, secret, &redirect))
                .collect(),
            seed: case.seed,
            faults: faults_for(case),
        });
        *shared.provider.lock().unwrap_or_else(|p| p.into_inner()) = Some(provider.clone());
        shared.now.store(0, Ordering::SeqCst);
        shared.platform.reset(case.seed)?;
        shared.module.forget()?;
        Ok(Self {
            module: &shared.module,
            runtime: &shared.runtime,
            broken: shared.broken,
            case,
            platform: shared.platform.router.clone(),
            provider,
            platform_url,
            provider_url,
            now: shared.now.clone(),
            queue: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(case.seed),
            cookie: None,
            tabs: Vec::new(),
            trace: Vec::new(),
            violations: Vec::new(),
            steps: Vec::new(),
            said: 0,
            revoked_since_allow: false,
            resend_requests: BTreeMap::new(),
            callback_urls: Vec::new(),
            connectors_open: false,
            ids: Placeholders::default(),
            next_card: 0,
        })
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// A stable name for a volatile id (`[CONNECTION#1]`).
    fn id(&mut self, value: &str, kind: &str) -> String {
        self.ids.name(value, kind)
    }

    fn note(&mut self, line: String) {
        let at = self.now();
        self.trace.push(format!("{at:>6} {line}"));
    }

    fn violation(&mut self, invariant: &'static str, detail: String) {
        self.note(format!("VIOLATION {invariant}: {detail}"));
        self.violations.push(SimViolation { invariant, detail });
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.seq += 1;
        let at = self.now() + after_ms;
        self.queue.insert((at, self.seq), event);
    }

    fn latency(&mut self) -> u64 {
        self.rng.gen_range(1..=40)
    }

    // ---- the platform, through its router -------------------------------------------------

    fn platform_request(&mut self, method: &str, path: &str, body: Option<Value>) -> Answer {
        reference_server::set_virtual_now(Some((EPOCH_MS + self.now()) as i64));
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "platform.test")
            .header("accept", "application/json");
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie.as_str());
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("a request");
        let router = self.platform.clone();
        let (status, location, set_cookie, body) = self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("the router answers");
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let location = header("location");
            let set_cookie = header("set-cookie");
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (
                status,
                location,
                set_cookie,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        });
        if let Some(cookie) = set_cookie
            && let Some(pair) = cookie.split(';').next()
        {
            self.cookie = Some(pair.to_owned());
        }
        Answer {
            status,
            location,
            body,
        }
    }

    fn provider_call(&mut self, method: &str, url: &Url, body: Vec<u8>) -> ProviderResponse {
        let headers = if body.is_empty() {
            Vec::new()
        } else {
            vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )]
        };
        let request = provider_request(method, url, headers, body);
        self.provider.handle(
            Endpoint::route(method, url.path()),
            &request,
            EPOCH_MS + self.now(),
        )
    }

    fn path_of(url: &Url) -> String {
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    // ---- tabs and navigation ----------------------------------------------------------------

    fn new_tab(&mut self, name: String, opener: Option<usize>) -> usize {
        self.tabs.push(Tab {
            name,
            page: Page::Blank,
            opener,
            severed: false,
            closed: false,
            generation: 0,
        });
        self.tabs.len() - 1
    }

    fn sever_if_coop(&mut self, tab: usize, response: &ProviderResponse) {
        if header(response, "cross-origin-opener-policy")
            .is_some_and(|v| v.starts_with("same-origin"))
            && self.tabs[tab].opener.is_some()
            && !self.tabs[tab].severed
        {
            self.tabs[tab].severed = true;
            let name = self.tabs[tab].name.clone();
            self.note(format!("[{name}] COOP severs the opener"));
        }
    }

    fn navigate(&mut self, tab: usize, mut url: Url, delayed: bool) {
        for _ in 0..10 {
            if self.tabs[tab].closed {
                return;
            }
            if url.origin() == self.platform_url.origin() {
                if url.path() == paths::REDIRECT
                    && !delayed
                    && self.case.provider == ProviderBehaviour::SlowToken
                {
                    // The exchange inside this request takes the token endpoint's delay.
                    self.seq += 1;
                    let at = self.now() + 4_000;
                    self.queue
                        .insert((at, self.seq), Event::Navigate { tab, url });
                    return;
                }
                let answer = self.platform_request("GET", &Self::path_of(&url), None);
                if (300..400).contains(&answer.status)
                    && let Some(location) = answer.location
                    && let Ok(next) = url.join(&location)
                {
                    url = next;
                    continue;
                }
                if contract::is_callback(&url) {
                    self.callback_loaded(tab, url);
                } else {
                    self.tabs[tab].page = Page::Other;
                    let name = self.tabs[tab].name.clone();
                    self.note(format!(
                        "[{name}] shows a platform page ({})",
                        answer.status
                    ));
                }
                return;
            }
            let response = self.provider_call("GET", &url, Vec::new());
            self.sever_if_coop(tab, &response);
            if (300..400).contains(&response.status)
                && let Some(location) = header(&response, "location")
                && let Ok(next) = url.join(location)
            {
                url = next;
                continue;
            }
            let name = self.tabs[tab].name.clone();
            let body = String::from_utf8_lossy(&response.body).into_owned();
            match fake_provider::consent_request_id(&body) {
                Some(request) => {
                    self.tabs[tab].page = Page::Consent {
                        request: request.to_owned(),
                    };
                    self.note(format!("[{name}] shows the consent page"));
                }
                None => {
                    self.tabs[tab].page = Page::Other;
                    self.note(format!(
                        "[{name}] shows a provider page ({})",
                        response.status
                    ));
                }
            }
            return;
        }
    }

    /// The callback page (callback.js): the result on three guarded channels, then close.
    fn callback_loaded(&mut self, tab: usize, url: Url) {
        self.tabs[tab].page = Page::Callback;
        let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let mut payload = json!({
            "result": if pairs.get("oauth_result").map(String::as_str) == Some("success") { "success" } else { "error" },
            "connectionId": pairs.get("connection_id").cloned().unwrap_or_default(),
        });
        if let Some(message) = pairs.get("oauth_message").filter(|m| !m.is_empty()) {
            payload["message"] = json!(message);
        }
        let name = self.tabs[tab].name.clone();
        let shown = self.id(
            pairs.get("connection_id").map(String::as_str).unwrap_or(""),
            "CONNECTION",
        );
        self.note(format!(
            "[{name}] callback {} for {shown}",
            payload["result"].as_str().unwrap_or("")
        ));
        self.callback_urls.push(url);
        let copies = if self.case.duplicate_deliveries { 2 } else { 1 };
        let origin = self.platform_url.origin().ascii_serialization();
        // BroadcastChannel carries the object, a storage event its text.
        let channels = [
            (self.case.broadcast_channel, "broadcast", payload.clone()),
            (self.case.storage, "storage", json!(payload.to_string())),
        ];
        for other in 0..self.tabs.len() {
            if other == tab || self.tabs[other].closed {
                continue;
            }
            for _ in 0..copies {
                let generation = self.tabs[other].generation;
                for (live, channel, data) in &channels {
                    if !live {
                        continue;
                    }
                    let delay = self.latency();
                    self.schedule(
                        delay,
                        Event::Deliver {
                            tab: other,
                            generation,
                            channel,
                            origin: origin.clone(),
                            data: data.clone(),
                        },
                    );
                }
            }
        }
        if let Some(opener) = self.tabs[tab].opener
            && !self.tabs[tab].severed
            && !self.tabs[opener].closed
        {
            for _ in 0..copies {
                let delay = self.latency();
                let generation = self.tabs[opener].generation;
                self.schedule(
                    delay,
                    Event::Deliver {
                        tab: opener,
                        generation,
                        channel: "opener",
                        origin: origin.clone(),
                        data: payload.clone(),
                    },
                );
            }
        }
        // Opened by window.open, so script may close it.
        self.schedule(100, Event::Close { tab });
    }

    // ---- the chat page (chat.js) ------------------------------------------------------------

    fn messages_path(&self) -> String {
        paths::fill(paths::MESSAGES, &[("org", ORG), ("chat", CHAT)])
    }

    fn render(&mut self, tab: usize, messages: &Value) {
        let Some(list) = messages.as_array() else {
            return;
        };
        let mut created = Vec::new();
        for message in list {
            let kind = message["kind"].as_str().unwrap_or("");
            if kind == "tool-error" {
                // The revocation is surfaced (by a re-send's tool call, say).
                self.revoked_since_allow = false;
            }
            if (kind == "connect-card" || kind == "reconnect-card")
                && message["queuedState"] == "waiting"
            {
                let queued_id = message["queuedId"].as_str().unwrap_or("").to_owned();
                let Page::Chat { cards } = &self.tabs[tab].page else {
                    return;
                };
                if cards.iter().any(|c| c.queued_id == queued_id) {
                    continue;
                }
                let connection_id = message["connectionId"].as_str().unwrap_or("").to_owned();
                let options = json!({
                    "connectionId": connection_id,
                    "startUrl": message["startUrl"],
                    "origin": self.platform_url.origin().ascii_serialization(),
                });
                self.next_card += 1;
                let key = self.next_card;
                if let Err(error) = self.module.initial(key, &options) {
                    self.violation(CHAT_RESUMED, format!("{error:#}"));
                    continue;
                }
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards.push(Card {
                        queued_id,
                        connection_id,
                        key,
                        view: "idle".into(),
                        timer: 0,
                    });
                    created.push(cards.len() - 1);
                }
            }
        }
        for card in created {
            self.dispatch(tab, card, json!({"type": "start"}), false);
        }
    }

    fn open_chat(&mut self, tab: usize) {
        self.tabs[tab].page = Page::Chat { cards: Vec::new() };
        let answer = self.platform_request("GET", &self.messages_path(), None);
        let messages: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        self.render(tab, &messages["messages"]);
    }

    fn chat_tab(&self) -> usize {
        0
    }

    fn dispatch(&mut self, tab: usize, card: usize, event: Value, gesture: bool) {
        let Page::Chat { cards } = &self.tabs[tab].page else {
            return;
        };
        let Some(current) = cards.get(card).cloned() else {
            return;
        };
        let commands = match self.module.decide(current.key, &event) {
            Ok(commands) => commands,
            Err(error) => {
                self.violation(CHAT_RESUMED, format!("{error:#}"));
                return;
            }
        };
        let foreign = event["type"] == "channel"
            && event["origin"] != json!(self.platform_url.origin().ascii_serialization());
        if foreign && commands.iter().any(|c| c["type"] != "ignored") {
            self.violation(
                FOREIGN_ORIGIN_IGNORED,
                format!(
                    "a {} message from {} made the card do {}",
                    event["channel"].as_str().unwrap_or(""),
                    event["origin"].as_str().unwrap_or(""),
                    Value::Array(commands.clone())
                ),
            );
        }
        let server_said_connected =
            event["type"] == "poll-answer" && event["status"] == "connected";
        if !server_said_connected && commands.iter().any(|c| c["type"] == "resend") {
            let queued = self.id(&current.queued_id, "QUEUED");
            self.violation(
                RESEND_ONLY_WHEN_CONNECTED,
                format!("the card asked to re-send {queued} on {event}, not on its server saying connected"),
            );
        }
        for command in commands {
            self.run_command(tab, card, &command, gesture);
        }
    }

    fn run_command(&mut self, tab: usize, card: usize, command: &Value, gesture: bool) {
        let generation = self.tabs[tab].generation;
        match command["type"].as_str().unwrap_or("") {
            "open" => {
                if !gesture {
                    self.note("[chat] window.open outside a click: the popup is blocked".into());
                    return;
                }
                let count = self
                    .tabs
                    .iter()
                    .filter(|t| t.name.starts_with("provider"))
                    .count();
                let name = if count == 0 {
                    "provider".to_owned()
                } else {
                    format!("provider-{}", count + 1)
                };
                let opener = if self.case.noopener { None } else { Some(tab) };
                let new = self.new_tab(name.clone(), opener);
                let url = command["url"].as_str().unwrap_or("");
                self.note(format!(
                    "[chat] window.open, tab [{name}] ({})",
                    if opener.is_some() {
                        "with opener"
                    } else {
                        "no opener"
                    }
                ));
                if let Ok(url) = self.platform_url.join(url) {
                    self.navigate(new, url, false);
                }
            }
            "show" => {
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].view = command["view"].as_str().unwrap_or("").to_owned();
                }
            }
            "poll" => {
                let after = command["afterMs"].as_u64().unwrap_or(500);
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].timer += 1;
                    let timer = cards[card].timer;
                    self.schedule(
                        after,
                        Event::Timer {
                            tab,
                            generation,
                            card,
                            timer,
                        },
                    );
                }
            }
            "fetch-status" => {
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].timer += 1;
                }
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::FetchStatus {
                        tab,
                        generation,
                        card,
                    },
                );
            }
            "resend" => {
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::Resend {
                        tab,
                        generation,
                        card,
                    },
                );
            }
            "reload-messages" => {
                let delay = self.latency();
                self.schedule(delay, Event::ReloadMessages { tab, generation });
            }
            _ => {}
        }
    }

    fn card(&self, tab: usize, card: usize) -> Option<Card> {
        match &self.tabs[tab].page {
            Page::Chat { cards } => cards.get(card).cloned(),
            _ => None,
        }
    }

    /// The card, if its tab is still open and has not been reloaded since `generation`.
    fn live_card(&self, tab: usize, generation: u64, card: usize) -> Option<Card> {
        let page = &self.tabs[tab];
        if page.closed || page.generation != generation {
            return None;
        }
        self.card(tab, card)
    }

    fn connection_status(&mut self, connection: &str) -> (u16, Value) {
        let answer = self.platform_request(
            "GET",
            &contract::connection_status_path(ORG, connection),
            None,
        );
        (
            answer.status,
            serde_json::from_str(&answer.body).unwrap_or(Value::Null),
        )
    }

    fn fire(&mut self, event: Event) {
        let live = |tabs: &[Tab], tab: usize, generation: u64| {
            !tabs[tab].closed && tabs[tab].generation == generation
        };
        match event {
            Event::Deliver {
                tab,
                generation,
                channel,
                origin,
                data,
            } => {
                if !live(&self.tabs, tab, generation) {
                    return;
                }
                let listens = channel == "opener"
                    || self.broken.is_none_or(BrokenClient::listens_beyond_opener);
                let Page::Chat { cards } = &self.tabs[tab].page else {
                    return;
                };
                if !listens {
                    return;
                }
                let count = cards.len();
                let name = self.tabs[tab].name.clone();
                let shown = self.id(data_connection(&data).as_str(), "CONNECTION");
                self.note(format!(
                    "[{name}] receives on {channel} from {origin}: {shown}"
                ));
                for card in 0..count {
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "channel", "channel": channel, "origin": origin, "data": data}),
                        false,
                    );
                }
            }
            Event::Timer {
                tab,
                generation,
                card,
                timer,
            } => {
                if live(&self.tabs, tab, generation)
                    && self.card(tab, card).is_some_and(|c| c.timer == timer)
                {
                    self.dispatch(tab, card, json!({"type": "timer", "name": "poll"}), false);
                }
            }
            Event::FetchStatus {
                tab,
                generation,
                card,
            } => {
                let Some(current) = self.live_card(tab, generation, card) else {
                    return;
                };
                let (status, body) = self.connection_status(&current.connection_id);
                let event = if status == 200 {
                    json!({"type": "poll-answer", "status": body["status"], "message": body["message"]})
                } else {
                    json!({"type": "poll-failed"})
                };
                self.dispatch(tab, card, event, false);
            }
            Event::Resend {
                tab,
                generation,
                card,
            } => {
                let Some(current) = self.live_card(tab, generation, card) else {
                    return;
                };
                let count = self
                    .resend_requests
                    .entry((tab, current.queued_id.clone()))
                    .or_default();
                *count += 1;
                let count = *count;
                let queued = self.id(&current.queued_id, "QUEUED");
                let name = self.tabs[tab].name.clone();
                if count > 1 {
                    self.violation(
                        RESEND_AT_MOST_ONCE,
                        format!("the card in [{name}] asked to re-send {queued} {count} times"),
                    );
                }
                let answer = self.platform_request(
                    "POST",
                    &paths::fill(
                        paths::RESEND,
                        &[("org", ORG), ("chat", CHAT), ("id", &current.queued_id)],
                    ),
                    Some(json!({})),
                );
                self.note(format!("[{name}] re-sends {queued} -> {}", answer.status));
                let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                if answer.status == 200 {
                    self.render(tab, &body["messages"]);
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "resend-answer", "ok": true, "resent": body["resent"]}),
                        false,
                    );
                } else {
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "resend-answer", "ok": false}),
                        false,
                    );
                }
            }
            Event::ReloadMessages { tab, generation } => {
                if live(&self.tabs, tab, generation) {
                    let answer = self.platform_request("GET", &self.messages_path(), None);
                    let messages: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                    self.render(tab, &messages["messages"]);
                }
            }
            Event::Navigate { tab, url } => self.navigate(tab, url, true),
            Event::Close { tab } => {
                if !self.tabs[tab].closed {
                    self.tabs[tab].closed = true;
                    let name = self.tabs[tab].name.clone();
                    self.note(format!("[{name}] closed itself"));
                }
            }
        }
    }

    fn run_until(&mut self, until: u64) {
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > until {
                break;
            }
            let event = self.queue.remove(&(at, seq)).expect("the first event");
            self.now.store(at, Ordering::SeqCst);
            self.fire(event);
        }
        self.now.store(until.max(self.now()), Ordering::SeqCst);
    }

    // ---- the user ---------------------------------------------------------------------------

    fn say(&mut self) {
        let answer = self.platform_request(
            "POST",
            &self.messages_path(),
            Some(json!({"text": "list my files"})),
        );
        self.said += 1;
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let kinds: Vec<&str> = body["messages"]
            .as_array()
            .map(|list| list.iter().filter_map(|m| m["kind"].as_str()).collect())
            .unwrap_or_default();
        self.note(format!(
            "[chat] says \"list my files\" -> {}",
            kinds.join(", ")
        ));
        if self.revoked_since_allow
            && !(kinds.contains(&"tool-error") && kinds.contains(&"reconnect-card"))
        {
            self.violation(
                REVOCATION,
                format!(
                    "after the revocation the tool call gave {}",
                    kinds.join(", ")
                ),
            );
        }
        // The first tool call after a revocation surfaces it (as the browser tier checks).
        self.revoked_since_allow = false;
        let tab = self.chat_tab();
        self.render(tab, &body["messages"]);
        self.steps.push(Step::Say {
            text: "list my files".into(),
            tab: "chat".into(),
            wait: true,
        });
    }

    /// The latest card of the chat that is not settled, and its phase.
    fn open_card(&self) -> Option<(usize, String)> {
        let Page::Chat { cards } = &self.tabs[self.chat_tab()].page else {
            return None;
        };
        cards.iter().enumerate().rev().find_map(|(index, card)| {
            let phase = self.module.phase(card.key).ok()?;
            (phase != "done" && phase != "resending").then_some((index, phase))
        })
    }

    fn click_connect(&mut self) -> bool {
        let Some((card, phase)) = self.open_card() else {
            return false;
        };
        let opened_before = self.tabs.len();
        let action = if phase == "failed" {
            "retry"
        } else {
            "connect"
        };
        let tab = self.chat_tab();
        self.dispatch(tab, card, json!({"type": "user", "action": action}), true);
        if self.tabs.len() > opened_before {
            let name = self.tabs[self.tabs.len() - 1].name.clone();
            self.steps.push(Step::Connect {
                tab: "chat".into(),
                connector: None,
                opens: name,
                by: Activation::Click,
                unless_answered: false,
            });
        }
        true
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Consent { allow } => {
                let Some(tab) = (0..self.tabs.len()).rev().find(|&t| {
                    !self.tabs[t].closed && matches!(self.tabs[t].page, Page::Consent { .. })
                }) else {
                    return;
                };
                let Page::Consent { request } = self.tabs[tab].page.clone() else {
                    return;
                };
                let decision = if allow { "allow" } else { "deny" };
                let name = self.tabs[tab].name.clone();
                self.note(format!("[{name}] the user clicks {decision}"));
                self.steps.push(Step::Consent {
                    decision: if allow {
                        Decision::Allow
                    } else {
                        Decision::Deny
                    },
                    tab: name,
                    after_ms: None,
                });
                if allow {
                    self.revoked_since_allow = false;
                }
                // The page is gone once the form is sent (the next one may take a while).
                self.tabs[tab].page = Page::Other;
                let url = self.provider_url.join("consent").expect("a URL");
                let body = format!("request={request}&decision={decision}").into_bytes();
                let response = self.provider_call("POST", &url, body);
                self.sever_if_coop(tab, &response);
                if let Some(location) = header(&response, "location")
                    && let Ok(next) = url.join(location)
                {
                    self.navigate(tab, next, false);
                }
            }
            Action::CloseProviderTab => {
                let Some(tab) = (0..self.tabs.len())
                    .rev()
                    .find(|&t| !self.tabs[t].closed && self.tabs[t].name.starts_with("provider"))
                else {
                    return;
                };
                self.tabs[tab].closed = true;
                let name = self.tabs[tab].name.clone();
                self.note(format!("[{name}] closed by the user"));
                self.steps.push(Step::CloseTab { tab: name });
            }
            Action::ReloadChat => {
                let tab = self.chat_tab();
                self.tabs[tab].generation += 1;
                self.note("[chat] reloaded".into());
                self.open_chat(tab);
                self.steps.push(Step::Reload { tab: "chat".into() });
            }
            Action::Retry => {
                self.click_connect();
            }
            Action::Wait { ms } => {
                self.steps.push(Step::Pause { ms: u64::from(ms) });
                let until = self.now() + u64::from(ms);
                self.run_until(until);
            }
            Action::Disconnect => {
                let answer =
                    self.platform_request("GET", &contract::connectors_api_path(ORG), None);
                let list: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                let Some(files) = list["connectors"]
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["name"] == "files"))
                    .cloned()
                else {
                    return;
                };
                if files["status"] != "connected" && files["status"] != "pending" {
                    return;
                }
                let id = files["connectionId"].as_str().unwrap_or("").to_owned();
                let answer = self.platform_request(
                    "POST",
                    &paths::fill(paths::DISCONNECT, &[("org", ORG), ("id", &id)]),
                    Some(json!({})),
                );
                let shown = self.id(&id, "CONNECTION");
                self.note(format!(
                    "[connectors] disconnects {shown} -> {}",
                    answer.status
                ));
                if files["status"] == "connected" {
                    self.revoked_since_allow = true;
                }
                if !self.connectors_open {
                    self.connectors_open = true;
                    self.steps.push(Step::OpenConnectors {
                        tab: "connectors".into(),
                    });
                }
                self.steps.push(Step::Disconnect {
                    connector: "files".into(),
                    tab: "connectors".into(),
                });
            }
            Action::ProviderRevokes => {
                let count = self.provider.revoke_all_grants(None);
                self.note(format!("[provider] revokes {count} grant(s)"));
                if count > 0 {
                    self.revoked_since_allow = true;
                }
                self.steps.push(Step::ProviderRevokes);
            }
            Action::Say => self.say(),
            Action::SecondChatTab => {
                if self.tabs.iter().any(|t| t.name == "chat-2") {
                    return;
                }
                let tab = self.new_tab("chat-2".into(), None);
                self.note("[chat-2] opens the same chat".into());
                self.open_chat(tab);
                self.steps.push(Step::OpenChat {
                    tab: "chat-2".into(),
                    chat: CHAT.into(),
                });
            }
            Action::ForgedSuccess => {
                // The provider's page (another origin) posts to its opener, the chat.
                let Some(from) = (0..self.tabs.len()).rev().find(|&t| {
                    let tab = &self.tabs[t];
                    !tab.closed
                        && !tab.severed
                        && tab.opener == Some(self.chat_tab())
                        && matches!(tab.page, Page::Consent { .. })
                }) else {
                    return;
                };
                let Some((card, _)) = self.open_card() else {
                    return;
                };
                let tab = self.chat_tab();
                let Some(current) = self.card(tab, card) else {
                    return;
                };
                let generation = self.tabs[tab].generation;
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::Deliver {
                        tab,
                        generation,
                        channel: "opener",
                        origin: self.provider_url.origin().ascii_serialization(),
                        data: json!({"result": "success", "connectionId": current.connection_id}),
                    },
                );
                let name = self.tabs[from].name.clone();
                self.note(format!("[{name}] posts a forged success to the chat"));
                self.steps.push(Step::ForgeSuccess {
                    tab: name,
                    chat: "chat".into(),
                });
            }
        }
    }

    /// Runs the whole flow: sign in, open the chat, say, connect, the case's actions, settle.
    pub fn run(mut self) -> FlowOutcome {
        let login = format!(
            "{}?user={USER}&org={ORG}&next={}",
            contract::LOGIN_PATH,
            contract::chat_path(ORG, CHAT)
        );
        self.platform_request("GET", &login, None);
        let chat = self.new_tab("chat".into(), None);
        self.open_chat(chat);
        self.steps.push(Step::OpenChat {
            tab: "chat".into(),
            chat: CHAT.into(),
        });
        self.say();
        self.click_connect();
        let after_connect = self.now() + AFTER_ACTION_MS;
        self.run_until(after_connect);
        for action in self.case.actions.clone() {
            self.act(action);
            let until = self.now() + AFTER_ACTION_MS;
            self.run_until(until);
        }
        let settle = self.now() + SETTLE_MS;
        self.run_until(settle);
        self.finish()
    }

    fn finish(mut self) -> FlowOutcome {
        // What the chat shows, from the server (the page renders what it sends).
        let answer = self.platform_request("GET", &self.messages_path(), None);
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let count = |f: &dyn Fn(&Value) -> bool| messages.iter().filter(|m| f(m)).count();
        let users = count(&|m| m["role"] == "user");
        let answers = count(&|m| m["kind"] == "answer");
        let tool_errors = count(&|m| m["kind"] == "tool-error");
        let reconnects = count(&|m| m["kind"] == "reconnect-card");
        let cards = count(&|m| m["kind"] == "connect-card" || m["kind"] == "reconnect-card");
        let card_errors = match &self.tabs[self.chat_tab()].page {
            Page::Chat { cards } => cards.iter().filter(|c| c.view == "error").count(),
            _ => 0,
        };
        let resent = users as isize - self.said as isize;
        let chat_line = format!(
            "[chat] said {}, re-sent {resent}, cards {cards}, answers {answers}, tool errors {tool_errors}, reconnect prompts {reconnects}, card errors shown {card_errors}",
            self.said
        );
        self.note(chat_line.clone());

        // Liveness: a connected card's message was re-sent; a failed one shows the error.
        let mut card_connections = Vec::new();
        for message in &messages {
            let kind = message["kind"].as_str().unwrap_or("");
            if kind != "connect-card" && kind != "reconnect-card" {
                continue;
            }
            let connection = message["connectionId"].as_str().unwrap_or("").to_owned();
            card_connections.push(connection.clone());
            let (_, status) = self.connection_status(&connection);
            let queued = message["queuedId"].as_str().unwrap_or("").to_owned();
            let shown = self.id(&queued, "QUEUED");
            if status["status"] == "connected" && message["queuedState"] == "waiting" {
                self.violation(
                    CHAT_RESUMED,
                    format!("the server says connected, the chat tab is open, and {shown} was never re-sent"),
                );
            }
            if status["status"] == "failed"
                && let Page::Chat { cards } = &self.tabs[self.chat_tab()].page
                && let Some(card) = cards.iter().find(|c| c.queued_id == queued)
                && card.view != "error"
            {
                let view = card.view.clone();
                self.violation(
                    CHAT_RESUMED,
                    format!("the connection failed and the card for {shown} shows {view:?}, not the error"),
                );
            }
        }
        if resent > cards as isize {
            self.violation(
                RESEND_AT_MOST_ONCE,
                format!("{resent} messages re-sent for {cards} card(s)"),
            );
        }
        let secrets = self.provider.secrets();
        for url in self.callback_urls.clone() {
            let id = url
                .query_pairs()
                .find(|(k, _)| k == "connection_id")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if !id.is_empty() && !card_connections.contains(&id) {
                let shown = self.id(&id, "CONNECTION");
                self.violation(
                    NO_DUPLICATE_CONNECTION,
                    format!("the callback resolved {shown}, a connection no card asked for"),
                );
            }
            for finding in secrets.find_in(url.as_str()) {
                self.violation(
                    NO_SECRET_VISIBLE,
                    format!("{:?} in the callback URL", finding.kind),
                );
            }
        }
        for tab in self.tabs.clone() {
            if matches!(tab.page, Page::Callback) && !tab.closed {
                self.violation(
                    CALLBACK_CLOSED,
                    format!("[{}] shows the callback and never closed", tab.name),
                );
            }
        }
        let provider_lines = self
            .provider
            .request_log()
            .iter()
            .map(|r| format!("{} {} -> {} ({})", r.method, r.path, r.status, r.outcome))
            .collect();
        let chat_ended = if tool_errors > 0 && reconnects > 0 && resent == cards as isize - 1 {
            "tool-error-and-reconnect"
        } else if resent == cards as isize && answers > 0 {
            "resumed"
        } else if card_errors > 0 {
            "error-shown"
        } else {
            "waiting"
        };
        reference_server::set_virtual_now(None);
        FlowOutcome {
            trace: self.trace,
            violations: self.violations,
            steps: self.steps,
            chat_ended,
            provider_lines,
            chat_line,
        }
    }
}

fn data_connection(data: &Value) -> String {
    let value = match data {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    value["connectionId"].as_str().unwrap_or("").to_owned()
}
