//! The checks of a verdict (`docs/verdicts.md`): each has a stable id, a one-line summary and
//! the sentence of the spec (`../shared/spec/oauth-flow.md`), of `docs/target-contract.md` or
//! of an RFC that it enforces, as the MCP and OpenID conformance suites give theirs. After
//! every scenario each browser check passes, fails with violations naming it, or is reported
//! not applicable with the reason (never a silent pass). Each has a test where a
//! deliberately broken platform makes it fire (`harness/tests/invariants_catch_broken_platforms.rs`,
//! the defect matrix in `harness/tests/defects.rs`).

use crate::check::credentials;
use crate::check::observation::{ChatState, Observation, SKIPPED_MARK};
use crate::contract::{self, CALLBACK_PATH};
use crate::scenario::{ChatExpectation, Feature, Scenario, Step, StorageMode};
use fake_provider::LoggedRequest;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The ids of the browser checks, as reports and scenario files spell them.
pub const NO_SECRET_VISIBLE: &str = "no-secret-visible";
pub const PAYLOAD_SHAPE: &str = "payload-shape";
pub const OPENED_AS_TAB: &str = "opened-as-tab";
pub const CHAT_RESUMED: &str = "chat-resumed";
pub const CALLBACK_CLOSED: &str = "callback-closed";
pub const PROVIDER_NEVER_GETS_PLATFORM_AUTH: &str = "provider-never-gets-platform-auth";
pub const REVOCATION: &str = "revocation";
pub const MESSAGE_AS_TEXT: &str = "message-as-text";
pub const HOSTILE_RECEIVES_NOTHING: &str = "hostile-receives-nothing";
pub const REDIRECT_BOUND_TO_SESSION: &str = "redirect-bound-to-session";
pub const ORG_ISOLATION: &str = "org-isolation";
pub const SINGLE_EXCHANGE: &str = "single-exchange";
pub const REFRESH_SINGLE_FLIGHT: &str = "refresh-single-flight";
pub const CHANNELS_COMPLETE: &str = "channels-complete";
pub const OPENED_IN_GESTURE: &str = "opened-in-gesture";
pub const RESOURCE_CONSISTENT: &str = "resource-consistent";
pub const BOUNDED_RETRIES: &str = "bounded-retries";
pub const REGISTRATION_REUSED: &str = "registration-reused";
pub const REVOKED_AT_PROVIDER: &str = "revoked-at-provider";
pub const UNUSED_AFTER_DISCONNECT: &str = "unused-after-disconnect";
pub const RESEND_AT_MOST_ONCE: &str = "resend-at-most-once";
pub const RESEND_ONLY_WHEN_CONNECTED: &str = "resend-only-when-connected";
pub const FOREIGN_ORIGIN_IGNORED: &str = "foreign-origin-ignored";
pub const NO_DUPLICATE_CONNECTION: &str = "no-duplicate-connection";
/// Not an invariant of the flow: the provider saw a request it has no endpoint for.
pub const PROVIDER_CONTRACT: &str = "provider-contract";
/// Not an invariant: a step could not be performed.
pub const STEP: &str = "step";
/// The normative trace differs from its snapshot (part of the verdict on every target).
pub const NORMATIVE_TRACE: &str = "normative-trace";
/// The reference transcript differs from its snapshot (embedded target only).
pub const REFERENCE_TRANSCRIPT: &str = "reference-transcript";

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// After every scenario in a real browser.
    Browser,
    /// In the deterministic simulator (`harness sim`).
    Simulator,
    /// Both.
    Both,
}

/// One check: its stable id, what it asks, and the text it enforces.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Invariant {
    pub id: &'static str,
    pub summary: &'static str,
    /// The sentence it enforces, with where it stands.
    pub enforces: &'static str,
    pub tier: Tier,
}

/// Every check of the verdict, browser and simulator.
pub const CATALOGUE: [Invariant; 26] = [
    Invariant {
        id: NO_SECRET_VISIBLE,
        summary: "no secret the provider issued or received on any surface the browser shows",
        enforces: "oauth-flow.md, What never happens: \"The callback never sends tokens or secrets back through postMessage or localStorage.\" Notes: \"The authorization code must never reach the callback page.\"",
        tier: Tier::Both,
    },
    Invariant {
        id: PAYLOAD_SHAPE,
        summary: "channel payloads carry result, connectionId and an optional message only, agree with the callback URL, and postMessage names the platform's exact origin",
        enforces: "oauth-flow.md, What never happens: \"It carries result, connectionId, and an optional human-readable message only.\" target-contract.md §4: \"window.opener.postMessage(payload, <the platform's exact origin>)\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: OPENED_AS_TAB,
        summary: "every connect opened its tab with window.open and no features string",
        enforces: "oauth-flow.md, Flow 2: \"The platform opens the provider's authorization URL in a normal new tab, not a popup. No fixed width/height/popup=1 features.\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: CHAT_RESUMED,
        summary: "the queued message was re-sent exactly once and answered within the bound, or nothing was re-sent and the error is shown",
        enforces: "oauth-flow.md, Notes: \"'Resume' means: the chat message that was waiting on the connection is sent again exactly once, and the agent's answer that uses the connector appears.\"",
        tier: Tier::Both,
    },
    Invariant {
        id: CALLBACK_CLOSED,
        summary: "the callback tab closed itself, or shows how to close it where the browser refuses",
        enforces: "oauth-flow.md, Flow 5: \"The callback page broadcasts the result, then closes itself.\" target-contract.md §4: \"where the browser refuses, [data-testid=callback-close-hint] becomes visible\"",
        tier: Tier::Both,
    },
    Invariant {
        id: PROVIDER_NEVER_GETS_PLATFORM_AUTH,
        summary: "no platform cookie value in any request the provider received",
        enforces: "oauth-flow.md, What never happens: \"The provider window never inherits the chat's auth — only the platform's own callback resolves the connection.\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: REVOCATION,
        summary: "after a disconnect or a provider-side revocation, the next tool call shows a tool error and a reconnect prompt",
        enforces: "oauth-flow.md, Disconnecting: \"Removing a connection revokes the stored credentials immediately. Sessions that try to use the connector after that point receive a tool error and surface a reconnect prompt.\"",
        tier: Tier::Both,
    },
    Invariant {
        id: MESSAGE_AS_TEXT,
        summary: "a callback message carrying markup is shown verbatim as text",
        enforces: "oauth-flow.md, How resumption is delivered: \"an optional human-readable message\"; target-contract.md §5.8",
        tier: Tier::Browser,
    },
    Invariant {
        id: HOSTILE_RECEIVES_NOTHING,
        summary: "a page on a third origin that opened the callback or the connect URL receives nothing on any channel",
        enforces: "oauth-flow.md, How resumption is delivered: BroadcastChannel and localStorage reach \"same-origin tabs\"; target-contract.md §4: postMessage to \"the platform's exact origin\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: REDIRECT_BOUND_TO_SESSION,
        summary: "a platform redirect (code and state) obtained by another browser session is refused: no exchange, nothing resolved",
        enforces: "RFC 6749 §10.12: the state value binds the authorization request to \"the user-agent's authenticated state\"; oauth-flow.md, Notes: \"the platform checks state\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: ORG_ISOLATION,
        summary: "the status API answers 404 and echoes nothing of another org's connection, and a callback URL naming it leaves it pending",
        enforces: "target-contract.md §4, Status API: \"404 for a connection of another org ... echoing nothing of it\"; oauth-flow.md: each org has its own connectors page",
        tier: Tier::Browser,
    },
    Invariant {
        id: SINGLE_EXCHANGE,
        summary: "no code is presented twice at the provider's token endpoint",
        enforces: "RFC 6749 §4.1.2: \"The client MUST NOT use the authorization code more than once.\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: REFRESH_SINGLE_FLIGHT,
        summary: "no refresh token is presented again once the provider answered it with a new one: a connection's tokens are refreshed one request at a time",
        enforces: "RFC 9700 §4.14.2: with refresh token rotation, \"one of them will present an invalidated refresh token, which will inform the authorization server of the breach\" (the provider then revokes the grant); issue 15: two messages after expiry are both answered and the connection kept",
        tier: Tier::Browser,
    },
    Invariant {
        id: CHANNELS_COMPLETE,
        summary: "the callback posts on BroadcastChannel whenever the browser has it, writes storage whenever storage works (each write firing a storage event in the other open platform pages), and posts to its platform opener whenever it has one",
        enforces: "oauth-flow.md, How resumption is delivered: \"emits the result through three independent channels so it works across browser configurations\"; target-contract.md §4: \"each write distinct, so a repeat still fires a storage event ... Each channel is guarded.\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: OPENED_IN_GESTURE,
        summary: "every window.open of a platform page ran inside a trusted click or key press, not after an await, a timer or a promise (where popup blockers refuse it)",
        enforces: "target-contract.md §4: \"window.open(url) in the click handler itself, no await before it\"; oauth-flow.md, Flow 2: \"opens the provider's authorization URL in a normal new tab\"",
        tier: Tier::Browser,
    },
    Invariant {
        id: RESOURCE_CONSISTENT,
        summary: "an authorization for the MCP server names its resource, and a grant names that same resource on its token and refresh requests",
        enforces: "RFC 8707 §2; MCP authorization (2025-06-18, 2025-11-25), Resource Parameter Implementation: \"MUST include the resource parameter in both authorization requests and token requests\"",
        tier: Tier::Both,
    },
    Invariant {
        id: BOUNDED_RETRIES,
        summary: "a tool call refreshes at most once and asks the provider's API at most twice: a provider that refuses the fresh token too ends it with a tool error, not a loop",
        enforces: "issue 16: \"a bounded number of retries (no loop)\" (gbrain #5222: a token the server always rejects, asked for again and again); MCP authorization, Scope Challenge Handling: clients SHOULD bound their retries",
        tier: Tier::Both,
    },
    Invariant {
        id: REGISTRATION_REUSED,
        summary: "an org registers a client with an MCP server's authorization server at most once: its later connects, reconnects and step-ups reuse it",
        enforces: "issue 16: the registration is \"stored per org and connector\"; target-contract.md, MCP connectors: \"keeps it per org and connector\" (mcp-wordpress-remote #80: a client re-registered on every connect, orphaning each registration at the authorization server)",
        tier: Tier::Both,
    },
    Invariant {
        id: REVOKED_AT_PROVIDER,
        summary: "after a disconnect, every credential the platform held for the connection (its latest grant's access and refresh tokens) is dead at the provider, unless the provider refused the revocation the platform asked for",
        enforces: "oauth-flow.md, Disconnecting: \"Removing a connection at /[orgSlug]/connectors revokes the stored credentials immediately.\" target-contract.md §4: \"credentials deleted at once, revoked at the provider\"; RFC 7009 §2",
        tier: Tier::Both,
    },
    Invariant {
        id: UNUSED_AFTER_DISCONNECT,
        summary: "once the connection shows revoked, no token of its grant is presented to the provider again (no refresh, no API or MCP call)",
        enforces: "target-contract.md §4: \"disconnects: credentials deleted at once\"; oauth-flow.md, Disconnecting: \"Sessions that try to use the connector after that point receive a tool error\"",
        tier: Tier::Both,
    },
    Invariant {
        id: NORMATIVE_TRACE,
        summary: "the run's normative facts (who received what on which channel, provider requests with the parameters the contract names, chat states) equal the reference server's",
        enforces: "docs/verdicts.md: the normative layer holds only what oauth-flow.md and target-contract.md demand",
        tier: Tier::Browser,
    },
    Invariant {
        id: RESEND_AT_MOST_ONCE,
        summary: "no card re-sends its queued message twice, and the server re-sends it once in all",
        enforces: "oauth-flow.md, Notes: \"sent again exactly once\"",
        tier: Tier::Simulator,
    },
    Invariant {
        id: RESEND_ONLY_WHEN_CONNECTED,
        summary: "a re-send happens only once the connection is connected: in the browser, no chat shows more re-sent messages than connections that succeeded; in the simulator, no card asks for a re-send before its server says connected",
        enforces: "oauth-flow.md, Flow 6: \"resumes the chat session that was waiting on the connection\"; Notes: \"the chat message that was waiting on the connection is sent again exactly once\" (after the connection, never on a failure)",
        tier: Tier::Both,
    },
    Invariant {
        id: FOREIGN_ORIGIN_IGNORED,
        summary: "a message from another origin changes nothing",
        enforces: "target-contract.md §4: postMessage to \"the platform's exact origin\"",
        tier: Tier::Simulator,
    },
    Invariant {
        id: NO_DUPLICATE_CONNECTION,
        summary: "retries and second tabs reuse the pending connection",
        enforces: "oauth-flow.md, Flow 1-4: one connection per connect prompt",
        tier: Tier::Simulator,
    },
    Invariant {
        id: REFERENCE_TRANSCRIPT,
        summary: "the reference server's transcript is unchanged (embedded target only; informative elsewhere)",
        enforces: "docs/verdicts.md: a regression guard of the reference implementation, never a verdict on another target",
        tier: Tier::Browser,
    },
];

/// The checks the simulator runs, in the order its reports name them.
pub const SIM_CHECKS: [&str; 13] = [
    NO_SECRET_VISIBLE,
    RESEND_AT_MOST_ONCE,
    RESEND_ONLY_WHEN_CONNECTED,
    FOREIGN_ORIGIN_IGNORED,
    CHAT_RESUMED,
    REVOCATION,
    NO_DUPLICATE_CONNECTION,
    CALLBACK_CLOSED,
    RESOURCE_CONSISTENT,
    BOUNDED_RETRIES,
    REGISTRATION_REUSED,
    REVOKED_AT_PROVIDER,
    UNUSED_AFTER_DISCONNECT,
];

/// The checks run after every browser scenario, in order.
pub const BROWSER_CHECKS: [&str; 21] = [
    NO_SECRET_VISIBLE,
    PAYLOAD_SHAPE,
    OPENED_AS_TAB,
    CHAT_RESUMED,
    CALLBACK_CLOSED,
    PROVIDER_NEVER_GETS_PLATFORM_AUTH,
    REVOCATION,
    MESSAGE_AS_TEXT,
    HOSTILE_RECEIVES_NOTHING,
    REDIRECT_BOUND_TO_SESSION,
    ORG_ISOLATION,
    SINGLE_EXCHANGE,
    REFRESH_SINGLE_FLIGHT,
    CHANNELS_COMPLETE,
    OPENED_IN_GESTURE,
    RESOURCE_CONSISTENT,
    BOUNDED_RETRIES,
    REGISTRATION_REUSED,
    REVOKED_AT_PROVIDER,
    UNUSED_AFTER_DISCONNECT,
    RESEND_ONLY_WHEN_CONNECTED,
];

/// The catalogue entry of `id`.
pub fn invariant(id: &str) -> Option<&'static Invariant> {
    CATALOGUE.iter().find(|i| i.id == id)
}

/// Whether `id` names a check of the catalogue (an invariant or a snapshot layer), as
/// opposed to a failed step or a provider contract violation.
pub fn is_check(id: &str) -> bool {
    invariant(id).is_some()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
}

fn violation(invariant: &str, detail: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.to_owned(),
        detail: detail.into(),
    }
}

/// What became of one check in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Pass,
    Fail,
    NotApplicable,
}

/// One check's result: its id, status, and why it did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The invariants' verdict on one run: every violation, and every check's status.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub checks: Vec<CheckResult>,
}

/// Every browser check, in order.
pub fn check(scenario: &Scenario, observation: &Observation, platform_origin: &str) -> Verdict {
    let mut verdict = Verdict::default();
    for id in BROWSER_CHECKS {
        let found = match id {
            NO_SECRET_VISIBLE => no_secret_visible(observation, platform_origin),
            PAYLOAD_SHAPE => payload_shape(observation, platform_origin),
            OPENED_AS_TAB => opened_as_tab(observation),
            CHAT_RESUMED => chat_resumed(scenario, observation),
            CALLBACK_CLOSED => callback_closed(observation),
            PROVIDER_NEVER_GETS_PLATFORM_AUTH => provider_never_gets_platform_auth(observation),
            REVOCATION => revocation(scenario, observation),
            MESSAGE_AS_TEXT => message_as_text(observation),
            HOSTILE_RECEIVES_NOTHING => hostile_receives_nothing(observation),
            REDIRECT_BOUND_TO_SESSION => redirect_bound_to_session(observation),
            ORG_ISOLATION => org_isolation(observation),
            SINGLE_EXCHANGE => single_exchange(observation),
            REFRESH_SINGLE_FLIGHT => refresh_single_flight(observation),
            CHANNELS_COMPLETE => channels_complete(scenario, observation),
            OPENED_IN_GESTURE => opened_in_gesture(observation, platform_origin),
            RESOURCE_CONSISTENT => resource_consistent(observation),
            BOUNDED_RETRIES => bounded_retries(observation),
            REGISTRATION_REUSED => registrations_beyond_one(&observation.provider_requests)
                .into_iter()
                .map(|detail| violation(REGISTRATION_REUSED, detail))
                .collect(),
            RESEND_ONLY_WHEN_CONNECTED => resent_without_connection(observation),
            REVOKED_AT_PROVIDER => credentials::left_alive(
                &observation.grants,
                &observation.provider_requests,
                &disconnects(observation),
            )
            .into_iter()
            .map(|detail| violation(REVOKED_AT_PROVIDER, detail))
            .collect(),
            UNUSED_AFTER_DISCONNECT => credentials::used_after(
                &observation.grants,
                &observation.provider_requests,
                &disconnects(observation),
            )
            .into_iter()
            .map(|detail| violation(UNUSED_AFTER_DISCONNECT, detail))
            .collect(),
            _ => unreachable!("every browser check has a function"),
        };
        let not_applicable = not_applicable(id, scenario, observation, platform_origin);
        let (status, reason) = match (found.is_empty(), not_applicable) {
            (false, _) => (CheckStatus::Fail, None),
            (true, Some(reason)) => (CheckStatus::NotApplicable, Some(reason)),
            (true, None) => (CheckStatus::Pass, partly_seen(id, observation)),
        };
        verdict.checks.push(CheckResult {
            id: id.to_owned(),
            status,
            reason,
        });
        verdict.violations.extend(found);
    }
    for stray in &observation.provider_violations {
        verdict.violations.push(violation(
            PROVIDER_CONTRACT,
            format!("{} {}: {}", stray.method, stray.path, stray.detail),
        ));
    }
    verdict
}

/// What a passing check could not look at, if anything: against a real provider, only the
/// codes the browser carried are known secrets.
fn partly_seen(id: &str, observation: &Observation) -> Option<String> {
    match (id, &observation.real_provider) {
        (NO_SECRET_VISIBLE, Some(profile)) => Some(format!(
            "looked for the authorization codes the browser carried only: the tokens a real provider (profile {profile}) issued are not known to the harness"
        )),
        _ => None,
    }
}

/// Why check `id` could not be exercised in this run, if it could not: nothing it looks at
/// happened, or it reads the fake provider's request log and the provider is a real one. A
/// check that is not applicable is reported so, never as a pass.
fn not_applicable(
    id: &str,
    scenario: &Scenario,
    observation: &Observation,
    platform_origin: &str,
) -> Option<String> {
    let none = |what: &str| Some(format!("no {what} in this run"));
    match id {
        PROVIDER_NEVER_GETS_PLATFORM_AUTH
        | SINGLE_EXCHANGE
        | REFRESH_SINGLE_FLIGHT
        | RESOURCE_CONSISTENT
        | BOUNDED_RETRIES
        | REGISTRATION_REUSED
        | REVOKED_AT_PROVIDER
        | UNUSED_AFTER_DISCONNECT
            if observation.real_provider.is_some() =>
        {
            Some(format!(
                "reads the fake provider's request log; a real provider (profile {}) keeps its own",
                observation.real_provider.as_deref().unwrap_or_default()
            ))
        }
        PAYLOAD_SHAPE
            if !observation.recorded.iter().any(|r| {
                matches!(
                    r.kind.as_str(),
                    "bc-send" | "storage-write" | "post-message"
                )
            }) =>
        {
            none("result payload on any channel")
        }
        OPENED_AS_TAB
            if observation.of_kind("window-open").next().is_none()
                && !scenario
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::Connect { .. })) =>
        {
            none("connect click")
        }
        CHAT_RESUMED if scenario.expect.chat.is_empty() && observation.chat_checks.is_empty() => {
            Some("the scenario expects no chat state".into())
        }
        CALLBACK_CLOSED | MESSAGE_AS_TEXT | CHANNELS_COMPLETE
            if callback_documents(observation).is_empty() =>
        {
            none("callback page")
        }
        MESSAGE_AS_TEXT
            if !callback_documents(observation).iter().any(|d| {
                d.url
                    .query_pairs()
                    .any(|(k, v)| k == "oauth_message" && v.contains('<'))
            }) =>
        {
            Some("no callback message carried markup".into())
        }
        PROVIDER_NEVER_GETS_PLATFORM_AUTH if observation.provider_requests.is_empty() => {
            none("request to the provider")
        }
        PROVIDER_NEVER_GETS_PLATFORM_AUTH if observation.platform_cookies.is_empty() => {
            Some("no platform cookie could be read".into())
        }
        REVOCATION if revoked_then_asked(scenario).is_empty() => {
            Some("no tool call after a disconnect or a provider-side revocation".into())
        }
        HOSTILE_RECEIVES_NOTHING if observation.hostile_pages.is_empty() => {
            none("page of a third origin")
        }
        REDIRECT_BOUND_TO_SESSION if observation.cross_session_redirects.is_empty() => {
            none("redirect from another browser session")
        }
        ORG_ISOLATION if observation.other_org_probes.is_empty() => {
            none("probe of another org's connection")
        }
        OPENED_IN_GESTURE if platform_opens(observation, platform_origin).is_empty() => {
            none("window.open by a platform page")
        }
        SINGLE_EXCHANGE
            if !observation
                .provider_requests
                .iter()
                .any(|r| r.path == "/token") =>
        {
            none("code exchange")
        }
        BOUNDED_RETRIES if api_calls(observation) == 0 => none("call of the provider's API"),
        REGISTRATION_REUSED if registrations(&observation.provider_requests) == 0 => {
            none("client registration")
        }
        RESOURCE_CONSISTENT
            if !observation.provider_requests.iter().any(|r| {
                r.path == "/authorize" && (names_resource(r) || is_mcp_authorization(r))
            }) =>
        {
            none("authorization request with a resource or for the MCP server")
        }
        REFRESH_SINGLE_FLIGHT
            if scenario.provider.refresh_rotation == fake_provider::RefreshRotation::Off =>
        {
            Some(
                "the provider does not rotate refresh tokens here ([provider] refresh_rotation)"
                    .into(),
            )
        }
        REFRESH_SINGLE_FLIGHT
            if !observation
                .provider_requests
                .iter()
                .any(|r| r.path == "/token" && r.outcome.contains("refresh token")) =>
        {
            none("refresh")
        }
        RESEND_ONLY_WHEN_CONNECTED if observation.chats.is_empty() => none("chat read at the end"),
        REVOKED_AT_PROVIDER | UNUSED_AFTER_DISCONNECT if observation.disconnects.is_empty() => {
            none("disconnect")
        }
        REVOKED_AT_PROVIDER | UNUSED_AFTER_DISCONNECT
            if !credentials::any_held(&observation.grants, &disconnects(observation)) =>
        {
            Some("no disconnect found a grant held (the sign-in was still pending)".into())
        }
        _ => None,
    }
}

/// The run's disconnects, placed in the provider's log.
fn disconnects(observation: &Observation) -> Vec<credentials::Disconnected> {
    observation
        .disconnects
        .iter()
        .map(|d| credentials::Disconnected {
            connector: d.connector.clone(),
            was_connected: d.status_before == "connected",
            before_seq: d.before_seq,
            after_seq: d.after_seq,
        })
        .collect()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Invariant 1: no secret the provider issued or received on any browser-visible surface.
fn no_secret_visible(observation: &Observation, platform_origin: &str) -> Vec<Violation> {
    // The one place a secret crosses the browser by design: the provider sends the code to
    // the platform's redirect URI (RFC 6749 §4.1.2). That request may carry it, and so may
    // the URL of a page the platform serves there (an error page, a page that forwards to the
    // callback) and the Referer its requests to the platform's own origin carry: the code
    // goes back to where the provider sent it. Nothing else. The redirect URI is read from
    // the authorization requests, as the provider logged them and as the browser loaded them
    // (all a real provider lets the harness see).
    let browser_authorizations = observation
        .recorded
        .iter()
        .filter(|r| matches!(r.kind.as_str(), "document" | "window-open" | "request"))
        .filter_map(|r| url::Url::parse(r.event["url"].as_str()?).ok())
        .map(|url| url.query().unwrap_or_default().to_owned());
    let redirect_uris: Vec<String> = observation
        .provider_requests
        .iter()
        .filter(|r| r.path == "/authorize")
        .map(|r| r.query.clone())
        .chain(browser_authorizations)
        .flat_map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .filter(|(key, _)| key == "redirect_uri")
        .map(|(_, value)| value)
        .collect();
    let without_the_code = |url: &str| -> String {
        let Ok(mut parsed) = url::Url::parse(url) else {
            return url.to_owned();
        };
        let base = format!("{}{}", parsed.origin().ascii_serialization(), parsed.path());
        // "The authorization code must never reach the callback page", even one that is the
        // redirect URI too.
        if !redirect_uris.contains(&base) || contract::is_callback(&parsed) {
            return url.to_owned();
        }
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .into_owned()
            .filter(|(key, _)| key != "code")
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(kept);
        parsed.to_string()
    };
    let to_the_platform = |url: &str| {
        url::Url::parse(url).is_ok_and(|u| u.origin().ascii_serialization() == platform_origin)
    };
    let mut surfaces: Vec<(String, String)> = Vec::new();
    for record in &observation.recorded {
        let where_ = format!("tab {} ({})", record.tab, record.kind);
        match record.kind.as_str() {
            "request" => {
                let mut exchange = record.event.clone();
                if let Some(url) = record.event["url"].as_str() {
                    exchange["url"] = Value::String(without_the_code(url));
                    if to_the_platform(url)
                        && let Some(referer) = record.event["referer"].as_str()
                    {
                        exchange["referer"] = Value::String(without_the_code(referer));
                    }
                }
                surfaces.push((where_, exchange.to_string()))
            }
            "document" => surfaces.push((
                format!("{where_} URL"),
                without_the_code(&text_of(&record.event["url"])),
            )),
            "window-open" => {
                surfaces.push((format!("{where_} URL"), text_of(&record.event["url"])))
            }
            "surfaces" => {
                for key in ["html", "text", "cookie", "local", "session", "name"] {
                    surfaces.push((format!("{where_} {key}"), text_of(&record.event[key])));
                }
            }
            _ => surfaces.push((where_, record.event.to_string())),
        }
    }
    for line in &observation.console {
        surfaces.push((format!("tab {} console", line.tab), line.text.clone()));
    }
    let mut found = Vec::new();
    for (surface, text) in surfaces {
        for finding in observation.secrets.find_in(&text) {
            found.push(violation(
                NO_SECRET_VISIBLE,
                format!("{:?} ({:?}) in {surface}", finding.kind, finding.encoding),
            ));
        }
    }
    found.dedup();
    found
}

/// A channel payload as the object it carries: an object as sent, or the object a JSON text
/// encodes (storage carries text; BroadcastChannel and `postMessage` may carry either,
/// target-contract.md §4, the callback).
pub fn payload_object(data: &Value) -> Value {
    match data {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => data.clone(),
        },
        _ => data.clone(),
    }
}

/// The shape a result payload must have: result, connectionId and an optional message. A
/// `connectionId` is a string; where the callback names no connection it may also be `null`
/// or absent.
pub fn payload_problem(data: &Value) -> Option<String> {
    let Value::Object(fields) = payload_object(data) else {
        return Some(format!("not an object or the JSON text of one: {data}"));
    };
    for key in fields.keys() {
        if !["result", "connectionId", "message"].contains(&key.as_str()) {
            return Some(format!("unexpected field {key:?}"));
        }
    }
    if !matches!(
        fields.get("result").and_then(Value::as_str),
        Some("success" | "error")
    ) {
        return Some("result is not \"success\" or \"error\"".into());
    }
    if !fields
        .get("connectionId")
        .is_none_or(|id| id.is_string() || id.is_null())
    {
        return Some("connectionId is not a string".into());
    }
    if fields.get("message").is_some_and(|m| !m.is_string()) {
        return Some("message is not a string".into());
    }
    None
}

/// What a callback URL says a payload must say: its result and the connection it names (`""`
/// for none).
fn callback_says(url: &url::Url) -> (String, String) {
    let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    (
        pairs.get("oauth_result").cloned().unwrap_or_default(),
        pairs.get("connection_id").cloned().unwrap_or_default(),
    )
}

/// Where a payload sent by a callback page disagrees with that page's own URL: another
/// result (no `success` posted on an error), or another connection (none named where the
/// URL names one, or one named where it names none).
fn disagreement(payload: &Value, url: &url::Url) -> Option<String> {
    let (result, connection) = callback_says(url);
    let said_result = payload["result"].as_str().unwrap_or("");
    let said_connection = match &payload["connectionId"] {
        Value::String(id) => id.as_str(),
        _ => "",
    };
    if said_result != result {
        return Some(format!(
            "result {said_result:?} while its callback URL says {result:?}"
        ));
    }
    (said_connection != connection).then(|| {
        format!("connectionId {said_connection:?} while its callback URL names {connection:?}")
    })
}

/// Invariant 2: payloads on the three channels carry only result, connectionId and an
/// optional message, each as its own callback URL says; `postMessage` names the platform's
/// exact origin. Each payload a callback sends is held to that callback's URL, so a later
/// callback for the same connection (a refused replay, a retry) is judged on its own.
fn payload_shape(observation: &Observation, platform_origin: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    let callbacks = callback_documents(observation);
    for record in &observation.recorded {
        let where_ = format!("tab {} {}", record.tab, record.kind);
        let data = match record.kind.as_str() {
            "bc-send" | "bc-receive" => record.event["data"].clone(),
            "storage-write" | "storage-event" => {
                let key = record.event["key"].as_str().unwrap_or("");
                let value = record.event["value"]
                    .as_str()
                    .or(record.event["newValue"].as_str());
                match value {
                    Some(value) if key == contract::STORAGE_KEY => Value::String(value.to_owned()),
                    _ => continue,
                }
            }
            "message" if record.event["origin"] == platform_origin => record.event["data"].clone(),
            "post-message" => {
                let target = record.event["targetOrigin"].as_str().unwrap_or("");
                if target != platform_origin {
                    found.push(violation(
                        PAYLOAD_SHAPE,
                        format!(
                            "{where_}: target origin {target:?}, not the platform's exact origin"
                        ),
                    ));
                }
                record.event["data"].clone()
            }
            _ => continue,
        };
        // What the harness forged is not the platform's payload.
        if observation.forged_payloads.contains(&data) {
            continue;
        }
        if let Some(problem) = payload_problem(&data) {
            found.push(violation(PAYLOAD_SHAPE, format!("{where_}: {problem}")));
            continue;
        }
        let sent = matches!(
            record.kind.as_str(),
            "bc-send" | "storage-write" | "post-message"
        );
        if let Some(callback) = callbacks
            .iter()
            .find(|c| sent && *c.doc == record.event["doc"])
            && let Some(problem) = disagreement(&payload_object(&data), &callback.url)
        {
            found.push(violation(
                PAYLOAD_SHAPE,
                format!("{where_} (from {}): {problem}", callback.url.path()),
            ));
        }
    }
    found
}

/// The callback URLs seen: `(tab, url)` for every document at the callback path.
fn callback_urls(observation: &Observation) -> Vec<(String, url::Url)> {
    callback_documents(observation)
        .into_iter()
        .map(|d| (d.tab.to_owned(), d.url))
        .collect()
}

/// Invariant 8: `oauth_message` is shown as text: a message with markup appears verbatim in
/// the callback page's text, never as elements.
fn message_as_text(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for (tab, url) in callback_urls(observation) {
        let Some(message) = url
            .query_pairs()
            .find(|(k, _)| k == "oauth_message")
            .map(|(_, v)| v.into_owned())
        else {
            continue;
        };
        if !message.contains('<') {
            continue;
        }
        let texts: Vec<&str> = observation
            .of_kind("surfaces")
            .filter(|r| r.tab == tab && r.event["url"] == url.as_str())
            .filter_map(|r| r.event["text"].as_str())
            .collect();
        if texts.iter().any(|text| !text.contains(&message)) {
            found.push(violation(
                MESSAGE_AS_TEXT,
                format!("tab {tab}: the callback message {message:?} was not shown as text (markup rendered)"),
            ));
        }
    }
    found
}

/// Invariant 3: the provider tab was opened with `window.open`, as a tab: no features string.
fn opened_as_tab(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    let opens: Vec<_> = observation.of_kind("window-open").collect();
    for open in &opens {
        let features = open.event["features"].as_str().unwrap_or("");
        if !features.is_empty() {
            found.push(violation(
                OPENED_AS_TAB,
                format!(
                    "tab {} called window.open with features {features:?}",
                    open.tab
                ),
            ));
        }
    }
    let connects = observation
        .steps
        .iter()
        .filter(|s| s.contains(". connect ") && !s.contains(SKIPPED_MARK))
        .count();
    if connects > opens.len() {
        found.push(violation(
            OPENED_AS_TAB,
            format!("{connects} connect click(s) but {} window.open call(s): a tab was opened another way", opens.len()),
        ));
    }
    found
}

fn describe(chat: &ChatState) -> String {
    format!(
        "{} card(s), {} re-sent, {} answer(s), {} tool error(s), {} reconnect prompt(s), {} card error(s) shown",
        chat.cards,
        chat.resent(),
        chat.answers,
        chat.tool_errors,
        chat.reconnect_prompts,
        chat.card_errors_visible
    )
}

/// Invariant 4: the chat resumed (each queued message re-sent exactly once and answered,
/// within the bound), or on denial and failure nothing was re-sent and the error is shown.
fn chat_resumed(scenario: &Scenario, observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for (tab, expected) in &scenario.expect.chat {
        let Some(chat) = observation.chats.get(tab) else {
            found.push(violation(
                CHAT_RESUMED,
                format!("tab {tab}: no chat to read at the end"),
            ));
            continue;
        };
        let cards = chat.cards as isize;
        let resent = chat.resent();
        if resent > cards {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "tab {tab}: a queued message was re-sent more than once ({})",
                    describe(chat)
                ),
            ));
            continue;
        }
        if !chat_is(chat, *expected) {
            found.push(violation(
                CHAT_RESUMED,
                format!("tab {tab}: expected {expected:?}, got {}", describe(chat)),
            ));
        }
    }
    for check in &observation.chat_checks {
        if !chat_is(&check.state, check.expected) {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "at step {}: tab {} was not {:?}: {}",
                    check.step,
                    check.tab,
                    check.expected,
                    describe(&check.state)
                ),
            ));
        }
    }
    let bound = scenario.expect.resume_within_ms.unwrap_or(15_000);
    for latency in &observation.resume_latencies_ms {
        if *latency > bound {
            found.push(violation(
                CHAT_RESUMED,
                format!(
                    "the answer came {latency} ms after the consent, over the {bound} ms bound"
                ),
            ));
        }
    }
    found
}

/// The connections that succeeded: the distinct connections of callback pages that said
/// `oauth_result=success`.
fn connections_that_succeeded(observation: &Observation) -> usize {
    let mut connections: Vec<String> = callback_documents(observation)
        .iter()
        .map(|d| callback_says(&d.url))
        .filter(|(result, _)| result == "success")
        .map(|(_, connection)| connection)
        .collect();
    connections.sort();
    connections.dedup();
    connections.len()
}

/// `resend-only-when-connected` in the browser: a chat re-sends a queued message once its
/// connection succeeded, so no chat shows more re-sent messages than connections that
/// succeeded in the run (none on a denial or a failure).
fn resent_without_connection(observation: &Observation) -> Vec<Violation> {
    let succeeded = connections_that_succeeded(observation);
    observation
        .chats
        .iter()
        .filter(|(_, chat)| chat.resent() > succeeded as isize)
        .map(|(tab, chat)| {
            violation(
                RESEND_ONLY_WHEN_CONNECTED,
                format!(
                    "tab {tab} re-sent {} message(s) while {succeeded} connection(s) succeeded in the run: a queued message was re-sent for a connection that never connected",
                    chat.resent()
                ),
            )
        })
        .collect()
}

/// Whether a chat is in the state `expected` describes.
fn chat_is(chat: &ChatState, expected: ChatExpectation) -> bool {
    let cards = chat.cards as isize;
    let resent = chat.resent();
    if resent > cards {
        return false;
    }
    match expected {
        ChatExpectation::Resumed => resent == cards && cards > 0 && chat.answers > 0,
        ChatExpectation::ErrorShown => resent == cards - 1 && chat.card_errors_visible > 0,
        ChatExpectation::Waiting => resent == cards - 1 && chat.card_errors_visible == 0,
        ChatExpectation::ToolErrorAndReconnect => {
            resent == cards - 1 && chat.tool_errors > 0 && chat.reconnect_prompts > 0
        }
        ChatExpectation::ToolError => {
            resent == cards && chat.tool_errors > 0 && chat.reconnect_prompts == 0
        }
        ChatExpectation::Answered => {
            resent == cards
                && chat.tool_errors == 0
                && chat.reconnect_prompts == 0
                && chat.card_errors_visible == 0
                && chat.answers + chat.cards >= chat.user_messages
        }
    }
}

/// Invariant 5: the callback tab closed itself, or stayed open showing how to close it.
fn callback_closed(observation: &Observation) -> Vec<Violation> {
    observation
        .callback_tabs
        .iter()
        .filter(|tab| !tab.closed_by_itself && !tab.close_hint_visible)
        .map(|tab| {
            violation(
                CALLBACK_CLOSED,
                format!(
                    "tab {} loaded {CALLBACK_PATH}, stayed open and shows no close hint",
                    tab.tab
                ),
            )
        })
        .collect()
}

/// Invariant 6: the provider never received the platform's session cookie or anything of the chat's auth.
fn provider_never_gets_platform_auth(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for request in &observation.provider_requests {
        let mut seen = format!("{} {}?{}", request.method, request.path, request.query);
        for (name, value) in &request.headers {
            seen.push_str(&format!("\n{name}: {value}"));
        }
        for (name, value) in &observation.platform_cookies {
            if value.len() >= 8 && seen.contains(value.as_str()) {
                found.push(violation(
                    PROVIDER_NEVER_GETS_PLATFORM_AUTH,
                    format!(
                        "the provider received the platform cookie {name} in {} {}",
                        request.method, request.path
                    ),
                ));
            }
        }
    }
    found.dedup();
    found
}

/// The chat tabs that asked for a tool call after a disconnect or a provider-side revocation
/// (and before connecting anew).
fn revoked_then_asked(scenario: &Scenario) -> Vec<String> {
    let mut revoked = false;
    let mut asked_after: Vec<String> = Vec::new();
    for step in &scenario.steps {
        match step {
            Step::Disconnect { .. } | Step::ProviderRevokes => revoked = true,
            // Connected anew before asking: the next tool call may use the new connection.
            Step::Consent {
                decision: crate::scenario::Decision::Allow,
                ..
            } => revoked = false,
            Step::Say { tab, .. } if revoked => {
                asked_after.push(tab.clone());
                revoked = false;
            }
            _ => {}
        }
    }
    asked_after
}

/// Invariant 7: after a disconnect or a provider-side revocation, the next tool call gives a
/// tool error and a reconnect prompt.
fn revocation(scenario: &Scenario, observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for tab in revoked_then_asked(scenario) {
        let Some(chat) = observation.chats.get(&tab) else {
            continue;
        };
        if chat.tool_errors == 0 || chat.reconnect_prompts == 0 {
            found.push(violation(
                REVOCATION,
                format!("tab {tab}: after the revocation the tool call gave no tool error and reconnect prompt ({})", describe(chat)),
            ));
        }
    }
    found
}

/// The events that start a user activation, or are dispatched inside one (a click follows its
/// mouseup, a submit its click or Enter).
const ACTIVATIONS: [&str; 12] = [
    "click",
    "auxclick",
    "dblclick",
    "keydown",
    "keypress",
    "keyup",
    "mousedown",
    "mouseup",
    "pointerdown",
    "pointerup",
    "touchend",
    "submit",
];

/// The `window.open` calls made by the platform's own pages (not a hostile page's).
fn platform_opens<'a>(
    observation: &'a Observation,
    platform_origin: &str,
) -> Vec<&'a crate::check::observation::Recorded> {
    observation
        .of_kind("window-open")
        .filter(|open| {
            observation.of_kind("document").any(|doc| {
                doc.event["doc"] == open.event["doc"]
                    && doc.event["url"]
                        .as_str()
                        .and_then(|u| url::Url::parse(u).ok())
                        .is_some_and(|u| u.origin().ascii_serialization() == platform_origin)
            })
        })
        .collect()
}

/// Invariant 14: every `window.open` of a platform page ran synchronously inside a trusted
/// click or key press. After an await, a timer or a promise, Safari and popup blockers refuse
/// it (Chromium allows it for 5 s, which is why a green run in Chromium alone proves nothing).
fn opened_in_gesture(observation: &Observation, platform_origin: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    for open in platform_opens(observation, platform_origin) {
        let gesture = &open.event["gesture"];
        let kind = gesture["type"].as_str().unwrap_or("");
        let why = if gesture.is_null() {
            "outside any event (after an await, a timer or a promise)".to_owned()
        } else if gesture["trusted"] != true {
            format!("inside an untrusted {kind} event (dispatched by script)")
        } else if !ACTIVATIONS.contains(&kind) {
            format!("inside a {kind} event, which is not a user activation")
        } else {
            continue;
        };
        found.push(violation(
            OPENED_IN_GESTURE,
            format!(
                "tab {} called window.open {why}{}",
                open.tab,
                if open.event["blocked"] == true {
                    ", and the browser blocked the popup"
                } else {
                    ""
                }
            ),
        ));
    }
    found
}

/// One callback page that loaded: where it is in the record, its tab, document and URL.
struct CallbackDocument<'a> {
    index: usize,
    tab: &'a str,
    doc: &'a Value,
    url: url::Url,
    has_opener: bool,
}

/// Every callback page that loaded, once each.
fn callback_documents(observation: &Observation) -> Vec<CallbackDocument<'_>> {
    let mut documents: Vec<CallbackDocument<'_>> = Vec::new();
    for (index, record) in observation.recorded.iter().enumerate() {
        if record.kind != "document" {
            continue;
        }
        let Some(url) = record.event["url"]
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
        else {
            continue;
        };
        if !contract::is_callback(&url) || documents.iter().any(|d| *d.doc == record.event["doc"]) {
            continue;
        }
        documents.push(CallbackDocument {
            index,
            tab: &record.tab,
            doc: &record.event["doc"],
            url,
            has_opener: record.event["hasOpener"] == true,
        });
    }
    documents
}

/// Invariant 13: every callback page uses every channel the browser gives it: BroadcastChannel
/// whenever the browser has it, storage whenever it works (and each write fires a storage
/// event in every other open chat or connectors page, so a write must differ from what is
/// stored), and its opener whenever a platform page opened it and the opener survived.
/// Polling resumes the chat anyway, which is why only this check sees a missing channel.
fn channels_complete(scenario: &Scenario, observation: &Observation) -> Vec<Violation> {
    let has_broadcast = !scenario
        .browser
        .remove_features
        .contains(&Feature::BroadcastChannel);
    let storage_works = scenario.browser.storage == StorageMode::Available;
    // Which platform tab opened which tab (a connect click opens `opens` from `tab`).
    let mut opener_of: BTreeMap<&str, &str> = BTreeMap::new();
    for step in &scenario.steps {
        if let Step::Connect { tab, opens, .. } = step {
            opener_of.insert(opens, tab);
        }
    }
    let gone = |tab: &str| {
        observation.destroyed_tabs.iter().any(|t| t == tab)
            || observation.closed_by_user.iter().any(|t| t == tab)
    };
    // The contract page each tab shows, by record index.
    let mut found = Vec::new();
    let mut storage_expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut opener_expected: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for callback in callback_documents(observation) {
        let own: Vec<&crate::check::observation::Recorded> = observation
            .recorded
            .iter()
            .filter(|r| r.event["doc"] == *callback.doc && r.kind != "document")
            .collect();
        let what = format!("tab {} ({})", callback.tab, callback.url.path());
        if has_broadcast && !own.iter().any(|r| r.kind == "bc-send") {
            found.push(violation(
                CHANNELS_COMPLETE,
                format!(
                    "{what}: the callback did not post on BroadcastChannel, which this browser has"
                ),
            ));
        }
        let writes: Vec<&str> = own
            .iter()
            .filter(|r| r.kind == "storage-write" && r.event["key"] == contract::STORAGE_KEY)
            .filter_map(|r| r.event["value"].as_str())
            .collect();
        if storage_works && writes.is_empty() {
            found.push(violation(
                CHANNELS_COMPLETE,
                format!(
                    "{what}: the callback did not write {} to localStorage, which works in this browser",
                    contract::STORAGE_KEY
                ),
            ));
        }
        let listening = listening_tabs(observation, callback.index, callback.tab);
        // A write reaches the tabs of the callback's own storage partition.
        for value in &writes {
            for listener in listening
                .iter()
                .filter(|l| !l.in_another_sites_frame && !gone(&l.tab))
            {
                *storage_expected
                    .entry((listener.tab.clone(), (*value).to_owned()))
                    .or_default() += 1;
            }
        }
        // An opener that shows no platform page any more (the user went to another site)
        // gets nothing: the browser drops a message for another origin, as it must.
        if callback.has_opener
            && let Some(opener) = opener_of.get(callback.tab)
            && !gone(opener)
            && listening.iter().any(|l| l.tab == *opener)
        {
            let (result, connection) = callback_says(&callback.url);
            *opener_expected
                .entry(((*opener).to_owned(), connection, result))
                .or_default() += 1;
        }
    }
    for ((tab, value), expected) in storage_expected {
        let fired = observation
            .recorded
            .iter()
            .filter(|r| {
                r.tab == tab
                    && r.kind == "storage-event"
                    && r.event["key"] == contract::STORAGE_KEY
                    && r.event["newValue"].as_str() == Some(value.as_str())
            })
            .count();
        if fired < expected {
            found.push(violation(
                CHANNELS_COMPLETE,
                format!(
                    "tab {tab}: {expected} callback write(s) of {value} to localStorage fired {fired} storage event(s) there: a write that repeats the stored value fires none (each write must be distinct)"
                ),
            ));
        }
    }
    for ((tab, connection, result), expected) in opener_expected {
        let posted = observation
            .of_kind("post-message")
            .filter(|r| {
                let payload = payload_object(&r.event["data"]);
                r.tab == tab
                    && payload["connectionId"].as_str().unwrap_or("") == connection
                    && payload["result"].as_str().unwrap_or("") == result
            })
            .count();
        if posted < expected {
            found.push(violation(
                CHANNELS_COMPLETE,
                format!(
                    "tab {tab} opened {expected} callback(s) for {result} on connection {connection:?} that kept their opener, and was posted {posted} message(s) for it"
                ),
            ));
        }
    }
    found
}

/// A tab that shows a chat or the connectors page.
struct ListeningTab {
    tab: String,
    /// The page is in a frame of another site's page: its storage and BroadcastChannel are
    /// that site's partition, which a top-level callback's writes never reach (a message to
    /// it as the callback's opener does).
    in_another_sites_frame: bool,
}

/// The other tabs that show a chat or the connectors page at record `index`.
fn listening_tabs(observation: &Observation, index: usize, writer: &str) -> Vec<ListeningTab> {
    let mut current: BTreeMap<&str, Option<ListeningTab>> = BTreeMap::new();
    for record in observation.recorded.iter().take(index) {
        if record.kind != "document" || record.tab == writer {
            continue;
        }
        let listening = record.event["url"]
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|url| {
                matches!(
                    contract::contract_page(&url, &observation.org),
                    Some("chat" | "connectors")
                )
            });
        current.insert(
            &record.tab,
            listening.then(|| ListeningTab {
                tab: record.tab.clone(),
                in_another_sites_frame: record.event["thirdParty"] == true,
            }),
        );
    }
    current.into_values().flatten().collect()
}

/// Invariant 9: a page of another origin (`open-hostile-page`) receives nothing on any
/// channel, whether it opened the callback or started the connect flow itself.
fn hostile_receives_nothing(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for page in &observation.hostile_pages {
        match &page.received {
            None => found.push(violation(
                HOSTILE_RECEIVES_NOTHING,
                format!(
                    "tab {}: the hostile page could not be read at the end (closed or navigated away), so nothing shows it received nothing",
                    page.tab
                ),
            )),
            Some(received) => {
                for receipt in received {
                    found.push(violation(
                        HOSTILE_RECEIVES_NOTHING,
                        format!(
                            "tab {} (another site) received on {} from {:?}: {}",
                            page.tab, receipt.channel, receipt.origin, receipt.data
                        ),
                    ));
                }
            }
        }
    }
    found
}

/// Invariant 10: a platform redirect (code and state) started in another browser session is
/// refused: no code exchange, and the other session's connection is not resolved.
fn redirect_bound_to_session(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for redirect in &observation.cross_session_redirects {
        if redirect.tokens_issued > 0 {
            found.push(violation(
                REDIRECT_BOUND_TO_SESSION,
                format!(
                    "tab {}: the platform exchanged the code of a sign-in another browser session started ({} token response(s))",
                    redirect.tab, redirect.tokens_issued
                ),
            ));
        }
        if redirect.other_session_status == "connected" {
            found.push(violation(
                REDIRECT_BOUND_TO_SESSION,
                format!(
                    "tab {}: the other session's connection became connected through this browser",
                    redirect.tab
                ),
            ));
        }
    }
    found
}

/// Invariant 11: this session learns nothing of another org's connection (the status API
/// answers 404 and echoes nothing of it), and opening the callback URL naming it resolves
/// nothing: it stays pending.
fn org_isolation(observation: &Observation) -> Vec<Violation> {
    let mut found = Vec::new();
    for probe in &observation.other_org_probes {
        if probe.by_its_member {
            let status: Value = serde_json::from_str(&probe.body).unwrap_or(Value::Null);
            if status["status"] != "pending" {
                found.push(violation(
                    ORG_ISOLATION,
                    format!(
                        "another org's connection changed through this browser: its member now reads {} {}",
                        probe.status, probe.body
                    ),
                ));
            }
            continue;
        }
        let revealed = probe.body.contains(&probe.connection_id)
            || ["pending", "connected", "connectionId"]
                .iter()
                .any(|word| probe.body.contains(word));
        if (200..300).contains(&probe.status) || revealed {
            found.push(violation(
                ORG_ISOLATION,
                format!(
                    "{} about another org's connection answered {} {}",
                    probe.what, probe.status, probe.body
                ),
            ));
        }
    }
    found
}

/// Invariant 12: every authorization code is exchanged once: the provider never saw a code
/// presented twice (which, by RFC 6749 §4.1.2, also revokes what it issued).
fn single_exchange(observation: &Observation) -> Vec<Violation> {
    observation
        .provider_requests
        .iter()
        .filter(|r| r.path == "/token" && r.outcome.contains("code already used"))
        .map(|r| {
            violation(
                SINGLE_EXCHANGE,
                format!(
                    "the platform presented a code twice at the provider's token endpoint ({} {})",
                    r.status, r.outcome
                ),
            )
        })
        .collect()
}

/// No refresh token presented again after the provider rotated it (the provider's log names
/// each such request `refresh token reused`).
fn refresh_single_flight(observation: &Observation) -> Vec<Violation> {
    observation
        .provider_requests
        .iter()
        .filter(|r| r.path == "/token" && r.outcome.contains("refresh token reused"))
        .map(|r| {
            violation(
                REFRESH_SINGLE_FLIGHT,
                format!(
                    "the platform presented a refresh token the provider had already rotated ({} {}): two refreshes of one connection ran at once",
                    r.status, r.outcome
                ),
            )
        })
        .collect()
}

/// The calls of the provider's API (its REST resources and the MCP server), not counting an
/// MCP discovery probe without a token.
fn api_calls(observation: &Observation) -> usize {
    api_calls_in(&observation.provider_requests)
}

/// The calls of the provider's API that carried a token: a REST resource, or a tool called on
/// the MCP server (its session's other requests, `initialize`, `tools/list`, are how a client
/// gets there, not calls).
fn api_calls_in(requests: &[LoggedRequest]) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.path.starts_with("/api/")
                || (r.endpoint == fake_provider::Endpoint::Mcp
                    && r.rpc.as_deref() == Some("tools/call"))
        })
        .filter(|r| !r.outcome.starts_with("rejected: no bearer token"))
        .count()
}

fn bounded_retries(observation: &Observation) -> Vec<Violation> {
    let messages: usize = observation
        .chats
        .values()
        .map(|chat| chat.user_messages.max(chat.said))
        .sum();
    retries_beyond_bound(&observation.provider_requests, messages)
        .into_iter()
        .map(|detail| violation(BOUNDED_RETRIES, detail))
        .collect()
}

/// Each message the chats sent or re-sent may cost one refresh and two API calls (a call, a
/// refresh after its 401, a call with the fresh token): more is a loop. Both tiers judge
/// [`BOUNDED_RETRIES`] so, from the provider's log.
pub fn retries_beyond_bound(requests: &[LoggedRequest], messages: usize) -> Option<String> {
    let refreshes = requests
        .iter()
        .filter(|r| r.path == "/token" && r.outcome.contains("refresh token"))
        .count();
    let calls = api_calls_in(requests);
    (refreshes > messages.max(1) || calls > 2 * messages.max(1)).then(|| {
        format!(
            "{refreshes} refresh(es) and {calls} API call(s) for {messages} message(s) sent or re-sent: a tool call retried without bound"
        )
    })
}

fn resource_consistent(observation: &Observation) -> Vec<Violation> {
    resource_inconsistencies(&observation.provider_requests)
        .into_iter()
        .map(|detail| violation(RESOURCE_CONSISTENT, detail))
        .collect()
}

/// An authorization for the MCP server (its scope) names a `resource`, and a grant that asked
/// for one names it again on its token and refresh requests: the provider's log says when one
/// left it out or named another. Both tiers judge [`RESOURCE_CONSISTENT`] so.
pub fn resource_inconsistencies(requests: &[LoggedRequest]) -> Vec<String> {
    let unnamed = requests
        .iter()
        .filter(|r| is_mcp_authorization(r) && !names_resource(r))
        .map(|r| {
            format!(
                "an authorization request for the MCP server named no resource ({} {})",
                r.status, r.outcome
            )
        });
    let changed = requests
        .iter()
        .filter(|r| {
            r.path == "/token"
                && (r.outcome.contains("without the authorization's resource")
                    || r.outcome.contains("resource differs"))
        })
        .map(|r| {
            format!(
                "a token request did not name the resource its authorization asked for ({} {})",
                r.status, r.outcome
            )
        });
    unnamed.chain(changed).collect()
}

/// An authorization request that asks for the fake provider's MCP server's scope.
fn is_mcp_authorization(request: &LoggedRequest) -> bool {
    request.path == "/authorize"
        && url::form_urlencoded::parse(request.query.as_bytes()).any(|(k, v)| {
            k == "scope" && v.split_whitespace().any(|s| s == fake_provider::MCP_SCOPE)
        })
}

fn names_resource(request: &LoggedRequest) -> bool {
    url::form_urlencoded::parse(request.query.as_bytes()).any(|(k, _)| k == "resource")
}

/// The clients the authorization server registered (RFC 7591 answers 201).
fn registrations(requests: &[LoggedRequest]) -> usize {
    requests
        .iter()
        .filter(|r| r.endpoint == fake_provider::Endpoint::Register && r.status == 201)
        .count()
}

/// A run is one org and one MCP server: a second registration is one that was not reused.
/// Both tiers judge [`REGISTRATION_REUSED`] so, from the provider's log.
pub fn registrations_beyond_one(requests: &[LoggedRequest]) -> Option<String> {
    let registered = registrations(requests);
    (registered > 1).then(|| {
        format!(
            "{registered} clients registered for one org and one MCP server: the platform registered again instead of reusing the client it had"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The ids of the catalogue's checks run in `tier` (or in both tiers).
    fn catalogue_ids(tier: Tier) -> BTreeSet<&'static str> {
        CATALOGUE
            .iter()
            .filter(|i| i.tier == tier || i.tier == Tier::Both)
            .map(|i| i.id)
            .collect()
    }

    #[test]
    fn each_tier_runs_the_checks_the_catalogue_gives_it_and_no_other() {
        let browser: BTreeSet<&str> = BROWSER_CHECKS.into_iter().collect();
        let sim: BTreeSet<&str> = SIM_CHECKS.into_iter().collect();
        assert_eq!(
            browser.len(),
            BROWSER_CHECKS.len(),
            "a browser check listed twice"
        );
        assert_eq!(
            sim.len(),
            SIM_CHECKS.len(),
            "a simulator check listed twice"
        );
        // The snapshot layers are browser checks of the verdict, judged by the snapshot module.
        let layers: BTreeSet<&str> = [NORMATIVE_TRACE, REFERENCE_TRANSCRIPT].into();
        assert_eq!(
            &catalogue_ids(Tier::Browser) - &layers,
            browser,
            "BROWSER_CHECKS and the catalogue's browser tier differ"
        );
        assert_eq!(
            catalogue_ids(Tier::Simulator),
            sim,
            "SIM_CHECKS and the catalogue's simulator tier differ"
        );
    }

    fn authorize(query: &str) -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            at_ms: 0,
            endpoint: fake_provider::Endpoint::Authorize,
            method: "GET".into(),
            path: "/authorize".into(),
            query: query.into(),
            headers: Vec::new(),
            status: 200,
            outcome: "consent page shown".into(),
            grant: None,
            rpc: None,
        }
    }

    #[test]
    fn an_authorization_for_the_mcp_server_without_a_resource_is_inconsistent() {
        let named = authorize("scope=mcp.tools&resource=http%3A%2F%2Fp.test%2Fmcp");
        let unnamed = authorize("scope=mcp.tools+mcp.admin");
        let files = authorize("scope=files.read");
        assert!(resource_inconsistencies(&[named.clone(), files]).is_empty());
        let found = resource_inconsistencies(&[named, unnamed]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("named no resource"), "{found:?}");
    }
}
