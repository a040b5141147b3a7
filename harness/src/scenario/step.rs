//! The steps of a scenario (`[[steps]]`): what the user, a hostile page or the provider does,
//! with the fields each takes (`docs/scenario-reference.md` is generated from these types).

use super::{Activation, ChatExpectation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the user allows or denies at the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Allow,
    Deny,
}

/// What a `wait-for` step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// An agent answer in the tab's chat.
    Answer,
    /// The connect card shows an error.
    CardError,
    /// A tool error and a reconnect prompt in the chat.
    ReconnectPrompt,
    /// A tool error in the chat.
    ToolError,
    /// The tab is gone (closed itself).
    TabClosed,
    /// The provider's consent page is shown in the tab.
    ConsentPage,
}

/// Whose time a `pause` lets pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PauseClock {
    /// Everyone's: the harness waits, and so do the browser's timers and both servers.
    #[default]
    Real,
    /// Only the servers': the harness moves the platform's clock (`POST /dev/clock`) and the
    /// fake provider's (`POST /_admin/clock`) ahead instead of waiting, for a pause that
    /// waits out a token's lifetime. The browser's time does not pass, so never for a pause
    /// whose subject is the browser (polling, a throttled tab, a page that closes itself).
    /// A target or provider without the endpoint gets the real wait, and the run says so.
    Servers,
}

/// One thing the user (or the world) does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "do", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Open a chat in a tab (a new tab unless it exists).
    OpenChat {
        #[serde(default = "default_chat_tab")]
        tab: String,
        #[serde(default = "default_chat_id")]
        chat: String,
        /// Open it inside a frame of another site's page (`127.0.0.2`, a site that embeds the
        /// chat): every later step in this tab acts in the frame. Needs `[platform]
        /// embeddable`: the frame signs in with a session of its own.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        embedded: bool,
    },
    /// Open the org's connectors page in a tab.
    OpenConnectors {
        #[serde(default = "default_connectors_tab")]
        tab: String,
    },
    /// Type a message in the tab's chat and send it.
    Say {
        text: String,
        #[serde(default = "default_chat_tab")]
        tab: String,
        /// Wait until the chat shows the agent's reply (default). `false`: go on at once, the
        /// agent's tool call still in flight.
        #[serde(default = "yes")]
        wait: bool,
    },
    /// Click connect: the chat card's button, or `connector`'s button on the connectors page.
    /// The tab it opens is named `opens`.
    Connect {
        #[serde(default = "default_chat_tab")]
        tab: String,
        connector: Option<String>,
        #[serde(default = "default_provider_tab")]
        opens: String,
        /// How the user presses the button (default: a click).
        #[serde(default, skip_serializing_if = "Activation::is_click")]
        by: Activation,
        /// Only if the chat in `tab` shows no answer yet, as a user retries only when nothing
        /// happened; otherwise the step is skipped (and says so in the trace).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unless_answered: bool,
    },
    /// Answer the provider's consent page.
    Consent {
        decision: Decision,
        #[serde(default = "default_provider_tab")]
        tab: String,
        /// Think time: the user reads the consent page this long before answering, as real
        /// users take seconds (a card that stops polling, or takes a tab handle that reads
        /// closed for a cancel, only shows then). At most 30 000.
        after_ms: Option<u64>,
    },
    /// The user closes a tab.
    CloseTab { tab: String },
    /// The user reloads a tab, as with the reload key (BiDi `browsingContext.reload`: Firefox
    /// restores the page's form fields, which a WebDriver refresh does not; WebKitGTK, without
    /// BiDi, is refreshed).
    Reload {
        tab: String,
        /// A hard reload (Ctrl+Shift+R): every script, stylesheet and API answer the page
        /// loads comes from the server, none from the browser's cache, and no form field is
        /// restored. Chromium: BiDi `browsingContext.reload` with `ignoreCache`; Firefox, which
        /// refuses `ignoreCache`: a WebDriver refresh, measured to bypass the cache
        /// (docs/browsers.md); WebKitGTK: `precondition-failed`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
    },
    /// The user goes to another site in a tab (a page of the harness's third origin, with no
    /// script); the page they leave may be kept in the back/forward cache or discarded.
    Leave { tab: String },
    /// The user presses Back in a tab: a page kept in the back/forward cache is restored with
    /// its scripts' state, a discarded one loads again.
    GoBack { tab: String },
    /// Disconnect a connector on the connectors page.
    Disconnect {
        connector: String,
        #[serde(default = "default_connectors_tab")]
        tab: String,
    },
    /// The provider revokes every grant (the user removed the app at the provider).
    ProviderRevokes,
    /// Open the last callback URL again, in a new tab.
    RevisitCallback {
        #[serde(default = "default_revisit_tab")]
        tab: String,
    },
    /// Wait until a condition holds in a tab.
    WaitFor {
        condition: Condition,
        #[serde(default = "default_chat_tab")]
        tab: String,
    },
    /// Let time pass.
    Pause {
        /// How long, in milliseconds (at most 30 000).
        ms: u64,
        /// Whose clocks the time passes on.
        #[serde(default)]
        clock: PauseClock,
    },
    /// A hostile page: the page in `tab` (another origin, such as the provider's) posts a
    /// well-formed success payload for the card's connection to its opener, the chat, with
    /// target origin `*`. The chat must confirm with its server, not trust the message.
    ForgeSuccess {
        #[serde(default = "default_provider_tab")]
        tab: String,
        /// The chat tab whose card's connection the forged payload names.
        #[serde(default = "default_chat_tab")]
        chat: String,
    },
    /// A hostile page on a third origin (served by the harness, neither the platform's nor
    /// the provider's) listens on every channel and, when its button is clicked, opens
    /// `opens` with `window.open` in a tab named `popup`. It must receive nothing.
    OpenHostilePage {
        #[serde(default = "default_hostile_tab")]
        tab: String,
        opens: HostileOpens,
        #[serde(default = "default_provider_tab")]
        popup: String,
        #[serde(default = "default_connector")]
        connector: String,
    },
    /// Same-origin forgeries: the platform page in `from` posts `payload` on BroadcastChannel
    /// and writes it to localStorage, and the chat page posts it to itself with `postMessage`.
    /// The chat must not resume on any of them: only its server's status counts.
    ForgeMessages {
        from: String,
        #[serde(default = "default_chat_tab")]
        chat: String,
        payload: ForgedPayload,
    },
    /// Reads the chat now and checks it is in `state` (checked with the invariants).
    ExpectChat {
        #[serde(default = "default_chat_tab")]
        tab: String,
        state: ChatExpectation,
    },
    /// Login CSRF: another browser session (the harness over HTTP, another user in another
    /// org) starts a connect and consents; the platform redirect URL it gets (code and state)
    /// is opened in `tab` of this browser. The platform must refuse it and resolve nothing.
    RedirectFromAnotherSession {
        #[serde(default = "default_forged_redirect_tab")]
        tab: String,
        #[serde(default = "default_connector")]
        connector: String,
    },
    /// Another org's pending connection: this session asks the status API about it (under
    /// its own org and under the other org) and opens the callback URL naming it in
    /// `callback_tab`. Nothing of it may be revealed, and it must stay pending.
    ProbeAnotherOrg {
        #[serde(default = "default_chat_tab")]
        tab: String,
        #[serde(default = "default_other_org_callback_tab")]
        callback_tab: String,
        #[serde(default = "default_connector")]
        connector: String,
    },
    /// Replay: the platform's redirect URL of the last sign-in (its code and state) is opened
    /// again in `tab`. No second code exchange, no second re-send.
    ReplayRedirect {
        #[serde(default = "default_replay_tab")]
        tab: String,
    },
}

/// What a hostile page opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostileOpens {
    /// The last callback URL this browser loaded.
    Callback,
    /// The platform's connect URL for the step's connector: the hostile page starts the flow.
    Connect,
}

/// What a `forge-messages` step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ForgedPayload {
    /// A well-formed success naming the card's own connection.
    CardConnection,
    /// A well-formed success naming a connection that is not the card's.
    OtherConnection,
    /// Not a result payload: text, arrays, missing or extra fields, unknown results.
    Malformed,
    /// A success for the card's connection with a message of 20 000 characters.
    Oversized,
}

fn yes() -> bool {
    true
}
fn default_hostile_tab() -> String {
    "hostile".into()
}
fn default_connector() -> String {
    "files".into()
}
fn default_forged_redirect_tab() -> String {
    "forged-redirect".into()
}
fn default_other_org_callback_tab() -> String {
    "other-org-callback".into()
}
fn default_replay_tab() -> String {
    "replay".into()
}

fn default_chat_tab() -> String {
    "chat".into()
}
fn default_chat_id() -> String {
    "main".into()
}
fn default_connectors_tab() -> String {
    "connectors".into()
}
fn default_provider_tab() -> String {
    "provider".into()
}
fn default_revisit_tab() -> String {
    "revisit".into()
}

impl Step {
    /// Whether the user holds a key while clicking connect (Ctrl or Shift): the tab opens in
    /// the background or in a new window.
    pub fn holds_a_modifier(&self) -> bool {
        matches!(
            self,
            Step::Connect {
                by: Activation::CtrlClick | Activation::ShiftClick,
                ..
            }
        )
    }

    /// Whether the step is a hard reload.
    pub fn reloads_hard(&self) -> bool {
        matches!(self, Step::Reload { hard: true, .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Step::OpenChat { .. } => "open-chat",
            Step::OpenConnectors { .. } => "open-connectors",
            Step::Say { .. } => "say",
            Step::Connect { .. } => "connect",
            Step::Consent { .. } => "consent",
            Step::CloseTab { .. } => "close-tab",
            Step::Reload { .. } => "reload",
            Step::Leave { .. } => "leave",
            Step::GoBack { .. } => "go-back",
            Step::Disconnect { .. } => "disconnect",
            Step::ProviderRevokes => "provider-revokes",
            Step::RevisitCallback { .. } => "revisit-callback",
            Step::WaitFor { .. } => "wait-for",
            Step::Pause { .. } => "pause",
            Step::ForgeSuccess { .. } => "forge-success",
            Step::OpenHostilePage { .. } => "open-hostile-page",
            Step::ForgeMessages { .. } => "forge-messages",
            Step::ExpectChat { .. } => "expect-chat",
            Step::RedirectFromAnotherSession { .. } => "redirect-from-another-session",
            Step::ProbeAnotherOrg { .. } => "probe-another-org",
            Step::ReplayRedirect { .. } => "replay-redirect",
        }
    }
}
