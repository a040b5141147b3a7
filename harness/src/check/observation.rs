//! What one scenario run observed: the recorder's events by tab (from BiDi `log.entryAdded`),
//! the console, tab lifetimes, the chats' final state and the provider's request log.

use fake_provider::{LoggedRequest, SecretLedger};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The console marker of the recorder's reports.
pub const MARKER: &str = "[alumia-harness] ";

pub use crate::check::recorded::{Event, Recorded};

/// A console line that is not the recorder's.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleLine {
    pub tab: String,
    pub level: String,
    pub text: String,
}

/// What a chat tab shows at the end, read through the target contract's selectors.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ChatState {
    pub user_messages: usize,
    pub answers: usize,
    pub tool_errors: usize,
    pub reconnect_prompts: usize,
    pub cards: usize,
    pub card_errors_visible: usize,
    /// How many messages the harness typed in this tab.
    pub said: usize,
}

impl ChatState {
    /// Messages the platform re-sent (user messages the harness did not type).
    pub fn resent(&self) -> isize {
        self.user_messages as isize - self.said as isize
    }
}

/// A tab that loaded the callback page.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackTab {
    pub tab: String,
    pub closed_by_itself: bool,
    pub close_hint_visible: bool,
}

/// A chat read by an `expect-chat` step.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCheck {
    /// The step's line (`5. expect-chat waiting in [chat]`).
    pub step: String,
    pub tab: String,
    pub expected: crate::scenario::ChatExpectation,
    pub state: ChatState,
}

/// One thing a hostile page received, on any channel.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HostileReceipt {
    pub channel: String,
    pub origin: String,
    pub data: String,
}

/// A page of another origin and what it received until the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct HostilePage {
    pub tab: String,
    /// `None` when the page could not be read at the end (closed or navigated away).
    pub received: Option<Vec<HostileReceipt>>,
}

/// A platform redirect (code and state) that another browser session obtained, opened here.
#[derive(Debug, Clone, Serialize)]
pub struct CrossSessionRedirect {
    pub tab: String,
    /// Tokens the provider issued between opening it here and its answer.
    pub tokens_issued: usize,
    /// The other session's connector status afterwards (`pending` if nothing resolved).
    pub other_session_status: String,
}

/// A request about another org's connection, made from this browser session, or that
/// connection's status afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct OtherOrgProbe {
    /// What was asked (`GET /api/orgs/[OTHER-ORG]/connections/ID`).
    pub what: String,
    /// Asked by a member of the other org (to see whether this session changed anything),
    /// rather than by this session.
    pub by_its_member: bool,
    pub status: u16,
    pub body: String,
    /// The other org's connection the probe is about.
    pub connection_id: String,
}

/// A disconnect a step made: of which connector, and where the provider's log stood when the
/// step began and when the connectors page showed the connection revoked.
#[derive(Debug, Clone, Serialize)]
pub struct DisconnectMark {
    pub tab: String,
    pub connector: String,
    /// The status API's status of the connector's latest connection when the step began.
    pub status_before: String,
    pub before_seq: u64,
    pub after_seq: u64,
}

/// How a tab no step named is called, before its number in order of appearance (a
/// browser's own new-tab page beside the tab a click opened).
pub const UNNAMED_TAB: &str = "unnamed-";

/// How a step line says the step was skipped (a `connect` with `unless_answered`, say).
pub const SKIPPED_MARK: &str = "(skipped: ";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Observation {
    /// The run's org: which platform pages are the contract's is read with it.
    pub org: String,
    pub recorded: Vec<Recorded>,
    pub console: Vec<ConsoleLine>,
    /// Tabs whose browsing context went away, in order.
    pub destroyed_tabs: Vec<String>,
    /// Tabs the harness closed itself (a user action).
    pub closed_by_user: Vec<String>,
    pub chats: BTreeMap<String, ChatState>,
    pub callback_tabs: Vec<CallbackTab>,
    pub provider_requests: Vec<LoggedRequest>,
    pub provider_violations: Vec<fake_provider::Violation>,
    /// The grants the provider issued in this run, with what of each is still live at the
    /// end (no token values).
    pub grants: Vec<fake_provider::GrantState>,
    /// The disconnects the steps made.
    pub disconnects: Vec<DisconnectMark>,
    /// Cookie values the platform set in the browser (its session among them).
    pub platform_cookies: Vec<(String, String)>,
    /// The steps as they ran, one line each.
    pub steps: Vec<String>,
    /// When each step began (ms since the Unix epoch), for the sequence chart.
    pub step_started_ms: Vec<u64>,
    /// How long each chat took to show an answer after the consent, in ms.
    pub resume_latencies_ms: Vec<u64>,
    /// Payloads the harness forged itself (hostile steps): not the platform's to answer for.
    pub forged_payloads: Vec<Value>,
    /// Chats read in the middle of a scenario (`expect-chat` steps).
    pub chat_checks: Vec<ChatCheck>,
    /// Pages of another origin the harness opened (`open-hostile-page`), with what they got.
    pub hostile_pages: Vec<HostilePage>,
    /// Redirects started in another browser session and opened in this one (login CSRF).
    pub cross_session_redirects: Vec<CrossSessionRedirect>,
    /// What this session could learn or change of another org's connection.
    pub other_org_probes: Vec<OtherOrgProbe>,
    /// The origin of the hostile pages, for the trace's `[HOSTILE]`.
    pub hostile_origin: Option<String>,
    /// The other browser session's identity (hostile steps), for the trace's placeholders.
    pub other_identity: Option<crate::contract::Identity>,
    /// A real provider driven through a profile (its file): the provider's requests and the
    /// secrets it issued are not visible, only the codes the browser saw in the redirects.
    pub real_provider: Option<String>,
    #[serde(skip)]
    pub secrets: SecretLedger,
}

impl Observation {
    /// Documents loaded, per tab, skipping `about:blank`.
    pub fn documents(&self) -> impl Iterator<Item = (&str, &str)> {
        self.recorded
            .iter()
            .filter(|r| matches!(r.event, Event::Document { .. }))
            .filter_map(|r| Some((r.tab.as_str(), r.event.url()?)))
            // Initial empty documents: Firefox reports them with an empty URL.
            .filter(|(_, url)| !url.is_empty() && *url != "about:blank")
    }

    /// The authorization codes the browser carried to the platform: the `code` of every
    /// request or document on `platform_origin` that also carries a `state`.
    pub fn codes_in_redirects(&self, platform_origin: &str) -> Vec<String> {
        let mut codes: Vec<String> = self
            .recorded
            .iter()
            .filter(|r| matches!(r.event, Event::Document { .. } | Event::Request { .. }))
            .filter_map(|r| url::Url::parse(r.event.url()?).ok())
            .filter(|url| url.origin().ascii_serialization() == platform_origin)
            .filter(|url| url.query_pairs().any(|(key, _)| key == "state"))
            .flat_map(|url| {
                url.query_pairs()
                    .filter(|(key, _)| key == "code")
                    .map(|(_, value)| value.into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        codes.sort();
        codes.dedup();
        codes
    }
}
