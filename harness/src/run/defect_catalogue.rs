//! The defect matrix's catalogue: the scenario and check that catch each defect of the
//! reference server, the engine a defect is shown in where Chromium cannot run its case, and
//! the scenarios where each conformant variant differs (`harness defects --list` prints it).

use crate::contract::Engine;

/// Defects shown in another engine than Chromium, and why: `status-check-times-out`'s
/// catching scenario is `precondition-failed` in Chromium (`CHROMIUM_CANNOT_DELAY`); for
/// `focus-taken-as-blocked`, Chromium 156 headless leaves the chat's `document.hasFocus()`
/// true and fires no `blur` when a plain click opens a foreground tab, so there the defect
/// also fails `provider/slow-token-endpoint` (measured with `harness defects --full`), where
/// Firefox ESR, whose focus moves to the new tab, fails only the background-tab case.
pub const CAUGHT_ONLY_IN: [(&str, Engine); 2] = [
    ("status-check-times-out", Engine::Firefox),
    ("focus-taken-as-blocked", Engine::Firefox),
];

/// The engine a defect's row runs in.
pub fn catching_engine(defect: &str) -> Engine {
    CAUGHT_ONLY_IN
        .iter()
        .find(|(name, _)| *name == defect)
        .map_or(Engine::Chromium, |(_, engine)| *engine)
}

/// For the test suite: the scenario that catches each defect, and the check that must fire
/// there (`harness defects --full` shows every catch).
pub const DEFECT_CATCHES: [(&str, &str, &str); 48] = [
    (
        "token-in-callback-url",
        "channels/baseline",
        "no-secret-visible",
    ),
    (
        "code-in-callback-url",
        "channels/baseline",
        "no-secret-visible",
    ),
    ("token-in-page", "channels/baseline", "no-secret-visible"),
    (
        "post-message-to-any-origin",
        "channels/baseline",
        "payload-shape",
    ),
    ("extra-payload-field", "channels/baseline", "payload-shape"),
    (
        "success-posted-on-error",
        "provider/consent-denied",
        "payload-shape",
    ),
    ("popup-with-features", "channels/baseline", "opened-as-tab"),
    ("no-resend", "channels/baseline", "chat-resumed"),
    (
        "resend-on-every-delivery",
        "channels/baseline",
        "chat-resumed",
    ),
    ("opener-only-no-polling", "opener/noopener", "chat-resumed"),
    (
        "callback-never-closes",
        "channels/baseline",
        "callback-closed",
    ),
    (
        "disconnect-keeps-token",
        "revocation/disconnect-mid-session",
        "revocation",
    ),
    (
        "session-cookie-to-provider",
        "channels/baseline",
        "provider-never-gets-platform-auth",
    ),
    (
        "duplicate-connection-on-retry",
        "user/closes-provider-tab-then-retries",
        "chat-resumed",
    ),
    ("no-pkce", "channels/baseline", "pkce-and-state"),
    (
        "message-as-html",
        "provider/error-description-with-markup",
        "message-as-text",
    ),
    (
        "state-not-bound-to-session",
        "hostile/login-csrf",
        "redirect-bound-to-session",
    ),
    (
        "status-ignores-org",
        "hostile/another-orgs-connection",
        "org-isolation",
    ),
    (
        "card-trusts-messages",
        "hostile/forged-success-from-another-origin",
        "chat-resumed",
    ),
    (
        "redirect-replayable",
        "hostile/redirect-replayed",
        "single-exchange",
    ),
    (
        "revoke-failure-keeps-token",
        "revocation/provider-revoke-fails",
        "revocation",
    ),
    (
        "storage-write-not-distinct",
        "callback/revisited",
        "channels-complete",
    ),
    (
        "channels-only-with-opener",
        "opener/noopener",
        "channels-complete",
    ),
    (
        "broadcast-and-storage-in-one-try",
        "channels/no-broadcast-channel",
        "channels-complete",
    ),
    (
        "cold-start-callback",
        "channels/baseline",
        "channels-complete",
    ),
    (
        "opens-after-await",
        "channels/baseline",
        "opened-in-gesture",
    ),
    ("opens-from-timer", "channels/baseline", "opened-in-gesture"),
    (
        "token-in-status-answer",
        "channels/baseline",
        "no-secret-visible",
    ),
    (
        "token-in-subresource-url",
        "channels/baseline",
        "no-secret-visible",
    ),
    (
        "stops-polling-after-first-pending",
        "channels/polling-only-slow-user",
        "chat-resumed",
    ),
    (
        "closed-handle-is-cancel",
        "opener/severed-by-coop-slow-user",
        "chat-resumed",
    ),
    (
        "refresh-not-single-flight",
        "refresh/two-tabs-at-once-after-expiry",
        "refresh-single-flight",
    ),
    (
        "ignores-iss",
        "provider/iss-of-another-provider",
        "chat-resumed",
    ),
    (
        "reads-any-answer",
        "provider/api-answer-of-unexpected-shape",
        "chat-resumed",
    ),
    (
        "drops-resource-on-refresh",
        "mcp/refresh-names-the-resource",
        "resource-consistent",
    ),
    (
        "resource-is-origin-root",
        "mcp/discover-consent-resume",
        "chat-resumed",
    ),
    (
        "retries-without-bound",
        "provider/tokens-expired-on-arrival",
        "bounded-retries",
    ),
    (
        "registers-on-every-connect",
        "mcp/step-up-mid-session",
        "registration-reused",
    ),
    (
        "ignores-client-metadata-documents",
        "mcp/client-metadata-document",
        "chat-resumed",
    ),
    (
        "retries-without-resource",
        "mcp/resource-refused",
        "resource-consistent",
    ),
    (
        "broadcast-and-storage-only",
        "embedded/chat-in-another-sites-frame",
        "chat-resumed",
    ),
    (
        "resends-on-error",
        "provider/consent-denied",
        "resend-only-when-connected",
    ),
    (
        "revokes-access-token-only",
        "revocation/disconnect-mid-session",
        "revoked-at-provider",
    ),
    (
        "storage-unguarded-in-frame",
        "embedded/storage-blocked-in-the-frame",
        "chat-resumed",
    ),
    (
        "storage-write-unguarded",
        "channels/storage-full",
        "channels-complete",
    ),
    (
        "status-check-times-out",
        "network/slow-platform",
        "chat-resumed",
    ),
    (
        "focus-taken-as-blocked",
        "user/connects-in-a-background-tab",
        "chat-resumed",
    ),
    (
        "trusts-its-service-worker",
        "tabs/chat-hard-reloaded-during-consent",
        "chat-resumed",
    ),
];

/// For the test suite: the scenarios where each variant's difference shows (every variant
/// also runs every scenario, all variants at once; `harness defects --full` runs each alone
/// on every scenario).
pub const VARIANT_SCENARIOS: [(&str, &str); 27] = [
    ("message-wording", "provider/consent-denied"),
    (
        "no-callback-message",
        "channels/baseline,provider/consent-denied",
    ),
    (
        "connect-path",
        "hostile/third-origin-starts-the-connect,hostile/another-orgs-connection",
    ),
    ("redirect-path", "hostile/redirect-replayed"),
    ("extra-authorization-parameters", "hostile/login-csrf"),
    ("session-cookie", "hostile/login-csrf"),
    (
        "channel-order",
        "channels/no-broadcast-channel,opener/noopener",
    ),
    ("close-delay", "callback/revisited"),
    (
        "close-at-once",
        "provider/error-redirect,mcp/registration-refused,provider/csp-form-action-blocks-redirect",
    ),
    ("poll-schedule", "channels/polling-only"),
    ("status-extra-fields", "hostile/another-orgs-connection"),
    ("callback-markup", "provider/error-description-with-markup"),
    ("login-hop", "hostile/login-csrf"),
    ("open-without-target", "connectors/connect-without-chat"),
    ("client-metadata-path", "mcp/client-metadata-document"),
    ("mcp-discovery-every-connect", "mcp/step-up-mid-session"),
    (
        "site-wide-coop",
        "channels/baseline,hostile/forged-success-from-another-origin,opener/noopener",
    ),
    (
        "payloads-as-json-text",
        "channels/baseline,opener/noopener,callback/revisited,hostile/same-origin-forgeries",
    ),
    (
        "connection-id-null-when-none",
        "hostile/redirect-replayed,hostile/login-csrf",
    ),
    (
        "replay-refusal-names-its-connection",
        "hostile/redirect-replayed",
    ),
    (
        "redirect-through-a-page",
        "channels/baseline,hostile/redirect-replayed,provider/consent-denied",
    ),
    (
        "refresh-on-unauthorized-only",
        "refresh/*,provider/tokens-expired-on-arrival,mcp/refresh-names-the-resource",
    ),
    (
        "refresh-early",
        "refresh/*,provider/tokens-expired-on-arrival,mcp/refresh-names-the-resource",
    ),
    (
        "skips-expired-fresh-token",
        "provider/tokens-expired-on-arrival",
    ),
    (
        "tests-new-connection",
        "channels/baseline,provider/api-answer-of-unexpected-shape,mcp/discover-consent-resume",
    ),
    (
        "revokes-replaced-grant",
        "mcp/step-up-mid-session,provider/insufficient-scope-step-up",
    ),
    (
        "no-dev-clock",
        "refresh/*,mcp/client-metadata-document,mcp/refresh-names-the-resource",
    ),
];

/// Every defect of the catalogue, what it breaks, and the scenario and check that catch it
/// ([`DEFECT_CATCHES`]), as `harness defects --list` prints them.
pub fn catalogue_text() -> String {
    let mut out = String::new();
    for (name, scenario, check) in DEFECT_CATCHES {
        let what = reference_server::Defect::parse(name)
            .map(|d| d.what_it_breaks())
            .unwrap_or("(not in the reference server's catalogue)");
        out.push_str(&format!(
            "{name}\n  breaks: {what}\n  caught: {scenario} fails on the check {check}{engine} (docs/verdicts.md)\n",
            engine = match catching_engine(name) {
                Engine::Chromium => String::new(),
                other => format!(" in {}", other.name()),
            }
        ));
    }
    out.push_str(
        "\nShow that a case catches one: cargo build -p reference-server && cargo run -p harness -- defects --defect NAME --scenario 'GROUP/NAME'\n",
    );
    out
}
