//! Known-bad variants of the platform, each breaking one promise of the flow, chosen with
//! `reference-server --defect NAME`. The harness's detection matrix (`harness defects`) shows
//! that each is caught. A defect is a [`Behaviour`] (`deviation.rs`): where it departs from the
//! reference, and only there, its method says so; the handlers ask through `hooks.rs`.

use crate::db::{ConnectionRecord, Database};
use crate::deviation::{Behaviour, ScriptEdit, TOKEN_STYLESHEET_PATH, without_parameters};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// Edits to the served page scripts, `(file, from, to)`: the one copy of each, used by the
/// defects below and by the harness's simulator (its broken chat clients).
pub mod edits {
    pub type Edit = (&'static str, &'static str, &'static str);

    /// The card never polls its server.
    pub const NO_POLLING: [Edit; 2] = [
        (
            "card-decisions.js",
            "commands: [{ type: \"poll\", afterMs: state.pollDelayMs }]",
            "commands: []",
        ),
        (
            "card-decisions.js",
            "{ type: \"poll\", afterMs: POLL_FIRST_MS }",
            "{ type: \"ignored\", reason: \"no polling\" }",
        ),
    ];
    /// The card re-sends on every delivery.
    pub const RESEND_ON_EVERY_DELIVERY: Edit = (
        "card-decisions.js",
        "return state.phase === \"resending\" || state.phase === \"done\";",
        "return false;",
    );
    /// The card acts on messages from any origin.
    pub const NO_ORIGIN_CHECK: Edit = (
        "card-decisions.js",
        "if (event.origin !== state.origin) {",
        "if (false) {",
    );
    /// A card that gave up (`controller.gaveUp`, set by a defect's own edit) acts on nothing
    /// more: no channel, no poll answer, no click.
    pub const GAVE_UP_IS_FINAL: Edit = (
        "chat.js",
        "  function dispatch(controller, event) {\n",
        "  function dispatch(controller, event) {\n    if (controller.gaveUp) { return; }\n",
    );
    /// The card re-sends when its server says the connection failed.
    pub const RESEND_ON_ERROR: Edit = (
        "card-decisions.js",
        "failed.commands.unshift({ type: \"show\", view: \"error\", message: event.message || \"The connection failed.\" });",
        "failed.commands.unshift({ type: \"show\", view: \"error\", message: event.message || \"The connection failed.\" }, { type: \"resend\" });",
    );
}

use edits::{
    Edit, GAVE_UP_IS_FINAL, NO_ORIGIN_CHECK, NO_POLLING, RESEND_ON_ERROR, RESEND_ON_EVERY_DELIVERY,
};

/// One deliberate defect; what each breaks is [`Defect::what_it_breaks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Defect {
    TokenInCallbackUrl,
    CodeInCallbackUrl,
    TokenInPage,
    PostMessageToAnyOrigin,
    ExtraPayloadField,
    SuccessPostedOnError,
    PopupWithFeatures,
    NoResend,
    ResendOnEveryDelivery,
    OpenerOnlyNoPolling,
    CallbackNeverCloses,
    DisconnectKeepsToken,
    SessionCookieToProvider,
    DuplicateConnectionOnRetry,
    NoPkce,
    MessageAsHtml,
    StateNotBoundToSession,
    StatusIgnoresOrg,
    CardTrustsMessages,
    RedirectReplayable,
    RevokeFailureKeepsToken,
    StorageWriteNotDistinct,
    ChannelsOnlyWithOpener,
    BroadcastAndStorageInOneTry,
    ColdStartCallback,
    OpensAfterAwait,
    OpensFromTimer,
    TokenInStatusAnswer,
    TokenInSubresourceUrl,
    StopsPollingAfterFirstPending,
    ClosedHandleIsCancel,
    RefreshNotSingleFlight,
    IgnoresIss,
    ReadsAnyAnswer,
    DropsResourceOnRefresh,
    ResourceIsOriginRoot,
    RetriesWithoutBound,
    RegistersOnEveryConnect,
    IgnoresClientMetadataDocuments,
    RetriesWithoutResource,
    BroadcastAndStorageOnly,
    ResendsOnError,
    RevokesAccessTokenOnly,
    StorageUnguardedInFrame,
    StorageWriteUnguarded,
    StatusCheckTimesOut,
    FocusTakenAsBlocked,
    TrustsItsServiceWorker,
}

impl Defect {
    pub const ALL: [Defect; 48] = [
        Defect::TokenInCallbackUrl,
        Defect::CodeInCallbackUrl,
        Defect::TokenInPage,
        Defect::PostMessageToAnyOrigin,
        Defect::ExtraPayloadField,
        Defect::SuccessPostedOnError,
        Defect::PopupWithFeatures,
        Defect::NoResend,
        Defect::ResendOnEveryDelivery,
        Defect::OpenerOnlyNoPolling,
        Defect::CallbackNeverCloses,
        Defect::DisconnectKeepsToken,
        Defect::SessionCookieToProvider,
        Defect::DuplicateConnectionOnRetry,
        Defect::NoPkce,
        Defect::MessageAsHtml,
        Defect::StateNotBoundToSession,
        Defect::StatusIgnoresOrg,
        Defect::CardTrustsMessages,
        Defect::RedirectReplayable,
        Defect::RevokeFailureKeepsToken,
        Defect::StorageWriteNotDistinct,
        Defect::ChannelsOnlyWithOpener,
        Defect::BroadcastAndStorageInOneTry,
        Defect::ColdStartCallback,
        Defect::OpensAfterAwait,
        Defect::OpensFromTimer,
        Defect::TokenInStatusAnswer,
        Defect::TokenInSubresourceUrl,
        Defect::StopsPollingAfterFirstPending,
        Defect::ClosedHandleIsCancel,
        Defect::RefreshNotSingleFlight,
        Defect::IgnoresIss,
        Defect::ReadsAnyAnswer,
        Defect::DropsResourceOnRefresh,
        Defect::ResourceIsOriginRoot,
        Defect::RetriesWithoutBound,
        Defect::RegistersOnEveryConnect,
        Defect::IgnoresClientMetadataDocuments,
        Defect::RetriesWithoutResource,
        Defect::BroadcastAndStorageOnly,
        Defect::ResendsOnError,
        Defect::RevokesAccessTokenOnly,
        Defect::StorageUnguardedInFrame,
        Defect::StorageWriteUnguarded,
        Defect::StatusCheckTimesOut,
        Defect::FocusTakenAsBlocked,
        Defect::TrustsItsServiceWorker,
    ];

    /// What the defect breaks, in a sentence (`harness defects --list`).
    pub fn what_it_breaks(self) -> &'static str {
        match self {
            Defect::TokenInCallbackUrl => "The access token rides in the callback URL.",
            Defect::CodeInCallbackUrl => "The authorization code reaches the callback URL.",
            Defect::TokenInPage => "The callback page carries the access token in its markup.",
            Defect::PostMessageToAnyOrigin => {
                "`postMessage` to `*` instead of the platform's origin."
            }
            Defect::ExtraPayloadField => {
                "The payload carries a field beyond result, connectionId and message."
            }
            Defect::SuccessPostedOnError => "The callback posts `success` whatever the result.",
            Defect::PopupWithFeatures => {
                "The provider tab is a sized popup (`window.open` with features)."
            }
            Defect::NoResend => "The card never re-sends the queued message.",
            Defect::ResendOnEveryDelivery => {
                "The card re-sends on every delivery and the server does not deduplicate."
            }
            Defect::OpenerOnlyNoPolling => "The card listens to the opener only and never polls.",
            Defect::CallbackNeverCloses => {
                "The callback page neither closes nor says how to close it."
            }
            Defect::DisconnectKeepsToken => {
                "Disconnect shows \"revoked\" but keeps and uses the token."
            }
            Defect::SessionCookieToProvider => {
                "The platform's session cookie is sent to the provider."
            }
            Defect::DuplicateConnectionOnRetry => {
                "Every connect click creates a new connection (retries do not reuse the pending one)."
            }
            Defect::NoPkce => "The authorization request has no PKCE challenge.",
            Defect::MessageAsHtml => {
                "The callback renders `oauth_message` as HTML and includes the provider's description."
            }
            Defect::StateNotBoundToSession => {
                "The redirect URI accepts a state whatever browser session brings it (login CSRF)."
            }
            Defect::StatusIgnoresOrg => "The status API finds a connection by id in any org.",
            Defect::CardTrustsMessages => {
                "The card trusts a success message from any origin and re-sends without asking its server."
            }
            Defect::RedirectReplayable => {
                "The redirect URI does not remember used states: a replayed redirect exchanges its code again."
            }
            Defect::RevokeFailureKeepsToken => {
                "When the provider's revoke endpoint fails, the credentials are kept (to retry later) and still used."
            }
            Defect::StorageWriteNotDistinct => {
                "The callback writes its result to localStorage without removing the key first: writing the same result again (a revisited callback) fires no storage event."
            }
            Defect::ChannelsOnlyWithOpener => {
                "The callback delivers on its channels only when it has an opener; without one it just closes (polling still resumes the chat)."
            }
            Defect::BroadcastAndStorageInOneTry => {
                "The callback posts on BroadcastChannel and writes storage in one `try`: where BroadcastChannel is missing, the storage write is skipped too."
            }
            Defect::ColdStartCallback => {
                "The first callback page a freshly started server serves delivers on no channel (a warm-up race): timing-sensitive, the next run against the same server passes. What `harness run --retries 1` reports as `flaky`."
            }
            Defect::OpensAfterAwait => {
                "The card opens the provider tab after an awaited request, outside the click: popup blockers refuse it (Chromium lets it through for 5 s)."
            }
            Defect::OpensFromTimer => {
                "The card opens the provider tab from a timer, outside the click."
            }
            Defect::TokenInStatusAnswer => {
                "The status API's answer carries the access token in a field no script reads."
            }
            Defect::TokenInSubresourceUrl => {
                "The callback page's stylesheet makes the browser fetch an image whose URL carries the access token (a subresource URL, not in the page's markup)."
            }
            Defect::StopsPollingAfterFirstPending => {
                "The card stops polling after its first `pending` answer: only a user who consents before that poll resumes where no channel reaches the chat."
            }
            Defect::ClosedHandleIsCancel => {
                "The card watches the tab handle and gives up when it reads closed, which COOP makes it read while the user is still at the consent page."
            }
            Defect::RefreshNotSingleFlight => {
                "Two requests that find the access token expired both refresh it with the same refresh token (no single flight per connection): a provider that rotates refresh tokens with reuse detection then revokes the whole grant."
            }
            Defect::IgnoresIss => {
                "The redirect URI ignores `iss` (RFC 9207): a response naming another provider is exchanged as if it came from the connector's own (no mix-up defence)."
            }
            Defect::ReadsAnyAnswer => {
                "An API answer of a shape the connector does not read is shown as an empty answer (\"Your files: .\") instead of a tool error."
            }
            Defect::DropsResourceOnRefresh => {
                "A refresh leaves out the `resource` the authorization named (RFC 8707): a strict authorization server answers a token with no audience, which the MCP server refuses (mcp-remote #218, gbrain #5222)."
            }
            Defect::ResourceIsOriginRoot => {
                "An MCP connector asks for its server's origin root as the `resource` instead of the server's URL: every token it gets is one the server refuses (gbrain #5222)."
            }
            Defect::RetriesWithoutBound => {
                "A tool call whose fresh token is refused too refreshes and asks again, five times over (a client that loops, gbrain #5222), instead of giving up after one refresh."
            }
            Defect::RegistersOnEveryConnect => {
                "An MCP connector registers a new client on every connect instead of reusing the one it stored (mcp-wordpress-remote #80: each registration before it orphaned)."
            }
            Defect::IgnoresClientMetadataDocuments => {
                "An MCP connector knows only dynamic registration: with an authorization server that takes client ID metadata documents alone, it cannot connect (\"does not support dynamic client registration\", cloudflare-os #1296)."
            }
            Defect::RetriesWithoutResource => {
                "An authorization server that refuses the `resource` (`invalid_target`, sentry-for-ai #59) is asked again without it, a fallback that gets a token with no audience instead of showing the error."
            }
            Defect::BroadcastAndStorageOnly => {
                "The card listens on BroadcastChannel and storage only: no opener message, no polling. A tab of the platform's own site gets the result; a chat embedded in another site's frame, whose storage is partitioned from the callback's, never does."
            }
            Defect::ResendsOnError => {
                "The card re-sends its queued message when its server says the connection failed, and the server re-issues it whatever the connection's status: the chat shows a re-send for a connection that never connected."
            }
            Defect::RevokesAccessTokenOnly => {
                "A disconnect revokes the access token only: the refresh token stays alive at the provider, where anyone holding it can mint new access tokens."
            }
            Defect::StatusCheckTimesOut => {
                "The card gives its server 800 ms to answer a status check and counts a slower answer as a failed check: on a network where each request to the platform takes 1.5 s, no check ever succeeds and the chat never resumes."
            }
            Defect::FocusTakenAsBlocked => {
                "The card takes a sign-in tab that is still open a second after the click, while the chat has neither lost the focus nor been hidden, for a blocked one (a popup-blocker heuristic): it gives up and asks the user to allow pop-ups. A user who opens the connect in a background tab (Ctrl+click) and reads on in the chat keeps the focus there, so the card gives up on a tab that is open and working, and the chat never resumes."
            }
            Defect::TrustsItsServiceWorker => {
                "The chat registers a service worker that relays each callback's result to the chat tabs it controls, and once the worker is active the card listens on it alone: it ignores the three channels and stops polling. A hard reload (Ctrl+Shift+R) loads the page without its worker in control (measured in Chromium and Firefox, docs/browsers.md), so the relay never reaches that chat and it never resumes; after a normal reload the worker is in control again."
            }
            Defect::StorageWriteUnguarded => {
                "The callback guards reading localStorage but not writing it: where storage is full (setItem throws QuotaExceededError) the page stops at the write, so its opener never gets the message and the tab never closes. Storage that throws on reading is skipped, and so passes."
            }
            Defect::StorageUnguardedInFrame => {
                "The chat in another site's frame notes each re-send in localStorage without a guard: where the browser blocks a third-party frame's storage (Safari, Firefox's strict mode, Chromium with third-party cookies blocked) the card throws before it re-sends, and the embedded chat never resumes. A top-level chat, whose storage works or throws everywhere alike, never runs that line."
            }
        }
    }

    pub fn name(self) -> String {
        crate::choices::kebab_name(&self)
    }

    pub fn parse(name: &str) -> anyhow::Result<Self> {
        crate::choices::parse_named(name, &Self::ALL, "defect")
    }

    /// Edits to a page script under this defect: `(file, from, to)`.
    pub fn script_edits(self) -> &'static [Edit] {
        match self {
            Defect::PostMessageToAnyOrigin => &[(
                "callback.js",
                "window.opener.postMessage(payload, location.origin);",
                "window.opener.postMessage(payload, \"*\");",
            )],
            Defect::ExtraPayloadField => &[(
                "callback.js",
                "connectionId: params.get(\"connection_id\") || \"\"",
                "connectionId: params.get(\"connection_id\") || \"\", page: location.href",
            )],
            Defect::SuccessPostedOnError => &[(
                "callback.js",
                "result: params.get(\"oauth_result\") === \"success\" ? \"success\" : \"error\",",
                "result: \"success\",",
            )],
            Defect::PopupWithFeatures => &[(
                "chat.js",
                "window.open(command.url, \"_blank\");",
                "window.open(command.url, \"_blank\", \"popup,width=480,height=640\");",
            )],
            Defect::NoResend => &[("chat.js", "case \"resend\":", "case \"resend-never\":")],
            Defect::StatusCheckTimesOut => &[(
                "chat.js",
                "jsonRequest(\"GET\", apiBase + \"/connections/\" + encodeURIComponent(controller.connectionId)).then(",
                "Promise.race([jsonRequest(\"GET\", apiBase + \"/connections/\" + encodeURIComponent(controller.connectionId)), new Promise(function (_, reject) { setTimeout(function () { reject(new Error(\"timed out\")); }, 800); })]).then(",
            )],
            Defect::FocusTakenAsBlocked => &[
                (
                    "chat.js",
                    "window.open(command.url, \"_blank\");",
                    "var left = false; var leave = function () { left = true; }; window.addEventListener(\"blur\", leave, { once: true }); document.addEventListener(\"visibilitychange\", leave, { once: true }); var popup = window.open(command.url, \"_blank\"); setTimeout(function () { if (!left && popup && !popup.closed && document.hasFocus()) { clearTimeout(controller.timer); controller.gaveUp = true; show(controller, \"error\", \"Your browser blocked the sign-in tab: allow pop-ups and try again.\"); } }, 1000);",
                ),
                GAVE_UP_IS_FINAL,
            ],
            Defect::TrustsItsServiceWorker => &[
                (
                    "sw.js",
                    "// worker in control. The defect `trusts-its-service-worker` registers this file, edited.\n",
                    "// worker in control. The defect `trusts-its-service-worker` registers this file, edited.\nself.addEventListener(\"install\", function () { self.skipWaiting(); });\nself.addEventListener(\"activate\", function (event) { event.waitUntil(self.clients.claim()); });\nself.addEventListener(\"fetch\", function (event) {\n  var url = new URL(event.request.url);\n  if (event.request.mode !== \"navigate\" || url.pathname !== \"/auth/connector-callback\") { return; }\n  var payload = { result: url.searchParams.get(\"oauth_result\"), connectionId: url.searchParams.get(\"connection_id\") || \"\" };\n  event.waitUntil(self.clients.matchAll({ type: \"window\" }).then(function (clients) { clients.forEach(function (client) { client.postMessage(payload); }); }));\n});\n",
                ),
                (
                    "chat.js",
                    "  function deliver(channel, origin, data) {\n",
                    "  var relay = window.top === window && navigator.serviceWorker ? \"registering\" : null;\n  if (relay) {\n    navigator.serviceWorker.register(\"/static/sw.js\", { scope: \"/\" }).then(function () { return navigator.serviceWorker.ready; }).then(function (registration) { relay = registration.active; }, function (e) { relay = null; });\n    navigator.serviceWorker.addEventListener(\"message\", function (event) { Object.keys(cards).forEach(function (queuedId) { dispatch(cards[queuedId], { type: \"channel\", channel: \"service-worker\", origin: location.origin, data: event.data }); }); });\n  }\n  function deliver(channel, origin, data) {\n    if (relay) { return; }\n",
                ),
                (
                    "chat.js",
                    "      case \"poll\":\n",
                    "      case \"poll\":\n        if (relay) { break; }\n",
                ),
            ],
            Defect::StorageWriteUnguarded => &[(
                "callback.js",
                "  try {\n    // Remove first, so that writing the same result again still fires a storage event.\n    window.localStorage.removeItem(STORAGE_KEY);\n    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(payload));\n    delivered.push(\"storage\");\n  } catch (e) { /* storage blocked or missing */ }\n",
                "  var storage = null;\n  try { storage = window.localStorage; } catch (e) { /* storage blocked */ }\n  if (storage) {\n    storage.removeItem(STORAGE_KEY);\n    storage.setItem(STORAGE_KEY, JSON.stringify(payload));\n    delivered.push(\"storage\");\n  }\n",
            )],
            Defect::StorageUnguardedInFrame => &[(
                "chat.js",
                "case \"resend\":",
                "case \"resend\": if (window.top !== window) { window.localStorage.setItem(\"alumia-resent\", controller.queuedId); }",
            )],
            Defect::ResendOnEveryDelivery => &[RESEND_ON_EVERY_DELIVERY],
            Defect::ResendsOnError => &[RESEND_ON_ERROR],
            Defect::BroadcastAndStorageOnly => &[
                NO_POLLING[0],
                NO_POLLING[1],
                (
                    "chat.js",
                    "window.addEventListener(\"message\", function (event) {",
                    "window.addEventListener(\"no-message\", function (event) {",
                ),
            ],
            Defect::OpenerOnlyNoPolling => &[
                NO_POLLING[0],
                NO_POLLING[1],
                (
                    "chat.js",
                    "var broadcast = new BroadcastChannel(CHANNEL_NAME);",
                    "var broadcast = {};",
                ),
                (
                    "chat.js",
                    "if (event.key !== STORAGE_KEY || event.newValue === null) { return; }",
                    "return;",
                ),
            ],
            Defect::CardTrustsMessages => &[
                NO_ORIGIN_CHECK,
                (
                    "card-decisions.js",
                    "// A message is a hint: the server's status decides.",
                    "if (payload.result === \"success\") { return { state: copy(state, { phase: \"resending\" }), commands: [{ type: \"show\", view: \"connected\" }, { type: \"resend\" }] }; }",
                ),
            ],
            Defect::CallbackNeverCloses => &[
                ("callback.js", "window.close();", "/* stays */"),
                ("callback.js", "hint.hidden = false;", "/* no hint */"),
            ],
            Defect::StorageWriteNotDistinct => &[(
                "callback.js",
                "window.localStorage.removeItem(STORAGE_KEY);",
                "/* the key is left as it is */",
            )],
            Defect::ChannelsOnlyWithOpener => &[(
                "callback.js",
                "var delivered = [];",
                "var delivered = []; if (!window.opener) { setTimeout(function () { window.close(); var hint = document.querySelector(\"[data-testid=callback-close-hint]\"); if (hint) { hint.hidden = false; } }, 100); return; }",
            )],
            Defect::BroadcastAndStorageInOneTry => &[(
                "callback.js",
                "delivered.push(\"broadcast\");\n  } catch (e) { /* BroadcastChannel missing or blocked */ }\n\n  try {\n",
                "delivered.push(\"broadcast\");\n",
            )],
            Defect::ColdStartCallback => &[(
                "callback.js",
                "var delivered = [];",
                "var delivered = []; if (document.body.hasAttribute(\"data-cold-start\")) { setTimeout(function () { window.close(); }, 100); return; }",
            )],
            Defect::OpensAfterAwait => &[(
                "chat.js",
                "window.open(command.url, \"_blank\");",
                "fetch(location.href, { method: \"HEAD\" }).then(function () { window.open(command.url, \"_blank\"); });",
            )],
            Defect::OpensFromTimer => &[(
                "chat.js",
                "window.open(command.url, \"_blank\");",
                "setTimeout(function () { window.open(command.url, \"_blank\"); }, 0);",
            )],
            Defect::StopsPollingAfterFirstPending => &[(
                "card-decisions.js",
                "        return nextPoll(state);\n\n      case \"poll-failed\":",
                "        return { state: state, commands: [] };\n\n      case \"poll-failed\":",
            )],
            Defect::ClosedHandleIsCancel => &[
                (
                    "chat.js",
                    "window.open(command.url, \"_blank\");",
                    "var popup = window.open(command.url, \"_blank\"); var watch = setInterval(function () { if (!popup || popup.closed) { clearInterval(watch); clearTimeout(controller.timer); controller.gaveUp = true; show(controller, \"error\", \"The sign-in window was closed.\"); } }, 1000);",
                ),
                GAVE_UP_IS_FINAL,
            ],
            _ => &[],
        }
    }
}

/// A defect as the platform's behaviour: the defect, and what it remembers (whether a callback
/// page was served yet, for `cold-start-callback`).
pub struct Deviant {
    defect: Defect,
    callback_served: AtomicBool,
}

impl Deviant {
    pub fn new(defect: Defect) -> Self {
        Self {
            defect,
            callback_served: AtomicBool::new(false),
        }
    }

    fn is(&self, defect: Defect) -> bool {
        self.defect == defect
    }
}

impl Behaviour for Deviant {
    fn name(&self) -> Option<String> {
        Some(self.defect.name())
    }

    fn script_edits(&self) -> &'static [ScriptEdit] {
        self.defect.script_edits()
    }

    fn serves_token_stylesheet(&self) -> bool {
        self.is(Defect::TokenInSubresourceUrl)
    }

    fn resends_unconnected(&self) -> bool {
        self.is(Defect::ResendsOnError)
    }

    fn revokes_refresh_token(&self) -> bool {
        !self.is(Defect::RevokesAccessTokenOnly)
    }

    fn resends(&self, first_resend: bool) -> bool {
        first_resend || self.is(Defect::ResendOnEveryDelivery)
    }

    fn new_connection_per_click(&self) -> bool {
        self.is(Defect::DuplicateConnectionOnRetry)
    }

    fn authorization_url(&self, session_id: &str, mut url: url::Url) -> url::Url {
        if self.is(Defect::SessionCookieToProvider) {
            url.query_pairs_mut().append_pair("login_hint", session_id);
        }
        if self.is(Defect::NoPkce) {
            url = without_parameters(url, |k| k.starts_with("code_challenge"));
        }
        url
    }

    fn refuses_replays(&self) -> bool {
        !self.is(Defect::RedirectReplayable)
    }

    fn binds_state_to_session(&self) -> bool {
        !self.is(Defect::StateNotBoundToSession)
    }

    fn provider_error_message(&self, message: String, description: Option<&str>) -> String {
        match description {
            Some(description) if self.is(Defect::MessageAsHtml) => {
                format!("{message} {description}")
            }
            _ => message,
        }
    }

    fn success_location(&self, mut location: String, access_token: &str, code: &str) -> String {
        if self.is(Defect::TokenInCallbackUrl) {
            location.push_str(&format!("&access_token={access_token}"));
        }
        if self.is(Defect::CodeInCallbackUrl) {
            location.push_str(&format!("&code={code}"));
        }
        location
    }

    fn callback_page(
        &self,
        mut page: String,
        message: &str,
        connection_id: Option<&str>,
        db: &Database,
    ) -> String {
        if self.is(Defect::ColdStartCallback) && !self.callback_served.swap(true, Ordering::SeqCst)
        {
            page = page.replacen("<body ", "<body data-cold-start ", 1);
        }
        if self.is(Defect::TokenInSubresourceUrl)
            && let Some(id) = connection_id
        {
            page = page.replace(
                "</head>",
                &format!(
                    "<link rel=\"stylesheet\" href=\"{TOKEN_STYLESHEET_PATH}?connection={}\"></head>",
                    crate::pages::escape(id)
                ),
            );
        }
        if self.is(Defect::MessageAsHtml) {
            page = page.replace(&crate::pages::escape(message), message);
        }
        if self.is(Defect::TokenInPage)
            && let Some(id) = connection_id
            && let Ok(Some(credentials)) = db.credentials(id)
        {
            page = page.replace(
                "</main>",
                &format!(
                    "<p data-debug-token=\"{}\" hidden></p></main>",
                    credentials.access_token
                ),
            );
        }
        page
    }

    fn status_lookup(
        &self,
        found: Option<ConnectionRecord>,
        id: &str,
        db: &Database,
    ) -> anyhow::Result<Option<ConnectionRecord>> {
        if self.is(Defect::StatusIgnoresOrg) {
            return Ok(db.connection_by_id(id)?);
        }
        Ok(found)
    }

    fn status_answer(
        &self,
        mut answer: serde_json::Value,
        connection_id: &str,
        db: &Database,
    ) -> anyhow::Result<serde_json::Value> {
        if self.is(Defect::TokenInStatusAnswer)
            && let Some(credentials) = db.credentials(connection_id)?
        {
            answer["debug"] = serde_json::json!({ "accessToken": credentials.access_token });
        }
        Ok(answer)
    }

    fn disconnect_keeps_token(&self) -> bool {
        self.is(Defect::DisconnectKeepsToken)
    }

    fn refreshes_one_at_a_time(&self) -> bool {
        !self.is(Defect::RefreshNotSingleFlight)
    }

    fn refreshes_per_tool_call(&self) -> u32 {
        if self.is(Defect::RetriesWithoutBound) {
            5
        } else {
            1
        }
    }

    fn mcp_resource(&self, found: String) -> String {
        match url::Url::parse(&found) {
            Ok(url) if self.is(Defect::ResourceIsOriginRoot) => {
                format!("{}/", url.origin().ascii_serialization())
            }
            _ => found,
        }
    }

    fn resource_on_refresh(&self) -> bool {
        !self.is(Defect::DropsResourceOnRefresh)
    }

    fn checks_issuer(&self) -> bool {
        !self.is(Defect::IgnoresIss)
    }

    fn refuses_unreadable_answers(&self) -> bool {
        !self.is(Defect::ReadsAnyAnswer)
    }

    fn keeps_credentials_after_failed_revocation(&self) -> bool {
        self.is(Defect::RevokeFailureKeepsToken)
    }

    fn uses_revoked_connection(&self, id: &str, db: &Database) -> bool {
        self.is(Defect::DisconnectKeepsToken)
            || (self.is(Defect::RevokeFailureKeepsToken)
                && matches!(db.credentials(id), Ok(Some(_))))
    }

    fn reuses_registration(&self) -> bool {
        !self.is(Defect::RegistersOnEveryConnect)
    }

    fn uses_metadata_documents(&self) -> bool {
        !self.is(Defect::IgnoresClientMetadataDocuments)
    }

    fn retries_without_resource(&self) -> bool {
        self.is(Defect::RetriesWithoutResource)
    }
}
