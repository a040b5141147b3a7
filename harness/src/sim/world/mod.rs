//! The simulated world of one flow: the real reference server (its router called in-process,
//! an in-memory database, a virtual clock), the real fake-provider rules (called in-process by
//! the platform's outgoing HTTP), the real card decision module (QuickJS), and a browser
//! written in Rust: tabs and their openers, BroadcastChannel, storage events, postMessage,
//! COOP severing the opener, popup blocking, `window.close`, timers and fetch, all in virtual
//! time, every delay drawn from the case's seed.
//!
//! By job: `servers` (the two servers, in-process), `browser` (tabs, navigation, channels, the
//! event loop), `chat_page` (the mirror of `chat.js` around the real card module), `user` (what
//! the person does), `checks` (the invariants at the end of a flow). Broken clients are in
//! `sim::broken`.

mod browser;
mod chat_page;
mod checks;
mod servers;
mod user;

pub use servers::{Shared, faults_for, mcp_faults};

use checks::data_connection;
use serde::Serialize;
use servers::header;

use super::broken::BrokenClient;
use super::card::CardModule;
use super::case::{Action, Case, Connector, CoopHop, McpServer, ProviderBehaviour};
use crate::check::invariants::{
    BOUNDED_RETRIES, CALLBACK_CLOSED, CHAT_RESUMED, FOREIGN_ORIGIN_IGNORED,
    NO_DUPLICATE_CONNECTION, NO_SECRET_VISIBLE, REGISTRATION_REUSED, RESEND_AT_MOST_ONCE,
    RESEND_ONLY_WHEN_CONNECTED, RESOURCE_CONSISTENT, REVOCATION, REVOKED_AT_PROVIDER,
    UNUSED_AFTER_DISCONNECT, registrations_beyond_one, resource_inconsistencies,
    retries_beyond_bound,
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
/// The scope the MCP server's tools need beyond `mcp.tools` in a step-up case.
pub const STEP_UP_SCOPE: &str = "mcp.admin";

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
    /// The platform's clock, set to the simulated time before each of its requests.
    platform_clock: reference_server::Clock,
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
    /// The disconnects made, placed in the provider's log.
    disconnects: Vec<crate::check::credentials::Disconnected>,
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
        provider.set_document_fetcher(servers::document_fetcher(
            shared.platform.router.clone(),
            shared.runtime.handle().clone(),
        ));
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
            platform_clock: shared.platform.clock().clone(),
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
            disconnects: Vec::new(),
        })
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Where the provider's log stands now.
    fn provider_seq(&self) -> u64 {
        self.provider.request_log().last().map_or(0, |r| r.seq)
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

    // ---- tabs and navigation ----------------------------------------------------------------

    // ---- the chat page (chat.js) ------------------------------------------------------------

    // ---- the user ---------------------------------------------------------------------------
}
