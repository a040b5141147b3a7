//! The two-sided matrix. Sensitivity: the harness against each known-bad reference server (a
//! separate process started with `--defect NAME`) must fail a scenario naming a check.
//! Specificity: against each conformant variant (`--variant NAME`, differing from the
//! reference only where the target contract leaves it open) every scenario must pass. Each
//! server runs as its own process on port 0 and says where it listens and which redirect URI
//! to register; the harness drives it through `--target`, as a team drives its deployment.

use crate::check::verdict::ScenarioResult;
use crate::contract::Engine;
use crate::run::suite::{RunOptions, run};
use crate::scenario::{PlatformConfig, discover};
use crate::target::process::KillOnDrop;
use fake_provider::{ClientRegistration, FakeProvider};
use reference_server::{DEFAULT_CLIENTS, OpenerPolicy};
use std::fmt::Write as _;
use std::io::BufRead;
use std::process::Child;
use std::time::Duration;

/// Which side of the matrix a platform is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Breaks one promise: some scenario must fail, naming a check.
    Defect,
    /// Conformant, differing from the reference: every scenario must pass.
    Variant,
}

/// One platform of the matrix and the scenarios it runs.
#[derive(Debug, Clone)]
pub struct Subject {
    pub side: Side,
    /// What the server is started with: one defect, or one or more variants at once.
    pub names: Vec<String>,
    /// The scenarios (`--scenario` globs, comma-separated).
    pub scenarios: String,
}

impl Subject {
    pub fn defect(name: &str, scenarios: &str) -> Self {
        Self {
            side: Side::Defect,
            names: vec![name.to_owned()],
            scenarios: scenarios.to_owned(),
        }
    }

    pub fn variants(names: &[&str], scenarios: &str) -> Self {
        Self {
            side: Side::Variant,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            scenarios: scenarios.to_owned(),
        }
    }

    /// `defect x`, `variant y`, or `variants a+b+...`.
    pub fn label(&self) -> String {
        match (self.side, self.names.len()) {
            (Side::Defect, _) => format!("defect {}", self.names.join("+")),
            (Side::Variant, 1) => format!("variant {}", self.names[0]),
            (Side::Variant, n) if n == VARIANT_SCENARIOS.len() => "all variants at once".into(),
            (Side::Variant, _) => format!("variants {}", self.names.join("+")),
        }
    }
}

/// How one platform fared.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub subject: Subject,
    /// Scenarios whose outcome was not the expected one, with the checks that fired.
    pub failed: Vec<(String, Vec<String>)>,
    /// Every scenario's outcome.
    pub outcomes: Vec<(String, crate::scenario::Outcome)>,
    pub scenarios: usize,
}

impl MatrixRow {
    /// A defect is caught by a named check; a variant passes every scenario.
    pub fn holds(&self) -> bool {
        match self.subject.side {
            Side::Defect => self.failed.iter().any(|(_, checks)| {
                checks
                    .iter()
                    .any(|c| crate::check::invariants::BROWSER_CHECKS.contains(&c.as_str()))
            }),
            Side::Variant => self.failed.is_empty() && self.scenarios > 0,
        }
    }
}

/// What a server of the matrix is started with.
pub struct ServerFlags<'a> {
    pub defect: Option<&'a str>,
    pub variants: &'a [String],
    /// The fake provider's URL.
    pub provider: &'a str,
    /// `--opener-policy NAME`, for the cases that need one.
    pub opener_policy: Option<&'a str>,
    /// `--embeddable`, for the cases that embed the chat in another site's frame.
    pub embeddable: bool,
}

/// Starts a server of the matrix on `127.0.0.1:0` with its stdout piped: it must print
/// [`reference_server::LISTENING`] and [`reference_server::REDIRECT_URI`] lines.
pub type Spawn<'a> = &'a dyn Fn(&ServerFlags<'_>) -> anyhow::Result<Child>;

/// For the test suite: the scenario that catches each defect, and the check that must fire
/// there (`harness defects --full` shows every catch).
pub const DEFECT_CATCHES: [(&str, &str, &str); 43] = [
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
    ("no-pkce", "channels/baseline", "chat-resumed"),
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
];

/// For the test suite: the scenarios where each variant's difference shows (every variant
/// also runs every scenario, all variants at once; `harness defects --full` runs each alone
/// on every scenario).
pub const VARIANT_SCENARIOS: [(&str, &str); 26] = [
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
];

/// Runs each subject's scenarios against its own server and provider, in Chromium. Cases
/// that need the platform configured (`[platform]`) run against a server of the subject
/// started so, and are told the target is (`RunOptions::target_platform`).
pub async fn matrix(
    subjects: &[Subject],
    spawn: Spawn<'_>,
    base: &RunOptions,
) -> anyhow::Result<Vec<MatrixRow>> {
    let mut rows = Vec::new();
    for subject in subjects {
        println!("--- {}", subject.label());
        let mut groups: Vec<(PlatformConfig, Vec<String>)> = Vec::new();
        for file in discover(&base.scenarios_root, &subject.scenarios)? {
            let platform = file.scenario.platform.clone();
            match groups.iter_mut().find(|(p, _)| *p == platform) {
                Some((_, ids)) => ids.push(file.id.0),
                None => groups.push((platform, vec![file.id.0])),
            }
        }
        let mut results = Vec::new();
        for (platform, ids) in &groups {
            results.extend(run_subject(subject, platform, &ids.join(","), spawn, base).await?);
        }
        let failed = results
            .iter()
            .filter(|r| !r.as_expected())
            .map(|r| {
                // A flaky run's checks are those its failed attempts fired.
                let mut checks: Vec<String> = r
                    .attempts
                    .iter()
                    .flat_map(|a| &a.violations)
                    .chain(&r.violations)
                    .map(|v| v.invariant.clone())
                    .collect();
                checks.dedup();
                (r.scenario.clone(), checks)
            })
            .collect();
        rows.push(MatrixRow {
            subject: subject.clone(),
            failed,
            outcomes: results
                .iter()
                .map(|r| (r.scenario.clone(), r.outcome))
                .collect(),
            scenarios: results.len(),
        });
    }
    Ok(rows)
}

/// One subject's server, configured as `platform`, and its run of `pattern`.
async fn run_subject(
    subject: &Subject,
    platform: &PlatformConfig,
    pattern: &str,
    spawn: Spawn<'_>,
    base: &RunOptions,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let provider = FakeProvider::builder().seed(base.seed).start().await?;
    let provider_url = provider.public_url().to_string();
    let flags = ServerFlags {
        defect: (subject.side == Side::Defect).then(|| subject.names[0].as_str()),
        variants: match subject.side {
            Side::Defect => &[],
            Side::Variant => &subject.names,
        },
        provider: &provider_url,
        opener_policy: (platform.opener_policy != OpenerPolicy::Unset)
            .then(|| platform.opener_policy.name()),
        embeddable: platform.embeddable,
    };
    let mut child = KillOnDrop(spawn(&flags)?);
    let (platform_url, redirect_uri) = read_announcement(&mut child.0, &subject.label()).await?;
    for (_, _, id, secret) in DEFAULT_CLIENTS {
        provider
            .rules()
            .register_client(ClientRegistration::new(id, secret, &redirect_uri));
    }
    // What the subject's server is configured as: the case's needs, and, where the case
    // leaves it open, the opener policy its variants choose (declared as a team declares its
    // deployment's, so a step that configuration cannot play is a precondition, not a failure).
    let mut declared = platform.clone();
    if subject.side == Side::Variant && declared.opener_policy == OpenerPolicy::Unset {
        let names: Vec<reference_server::Variant> = subject
            .names
            .iter()
            .map(|name| reference_server::Variant::parse(name))
            .collect::<anyhow::Result<_>>()?;
        declared.opener_policy = reference_server::Variant::combined(&names).opener_policy;
    }
    let options = RunOptions {
        target: Some(platform_url.parse()?),
        provider: Some(provider.public_url().clone()),
        target_platform: declared,
        engines: vec![Engine::Chromium],
        jobs: 1,
        pattern: pattern.to_owned(),
        // A variant must pass every scenario: never stop early.
        fail_fast: base.fail_fast && subject.side == Side::Defect,
        json: None,
        junit: None,
        html: None,
        accept: false,
        run_id: subject.label().replace(' ', "-"),
        ..base.clone()
    };
    run(&options).await
}

/// Reads the server's URL and redirect URI from its first lines of output (20 s at most),
/// then keeps reading the rest so its output never blocks it.
async fn read_announcement(child: &mut Child, label: &str) -> anyhow::Result<(String, String)> {
    let stdout = child.stdout.take().ok_or_else(|| {
        anyhow::anyhow!("the server of {label} was started without a piped stdout")
    })?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut url, mut redirect) = (None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(reference_server::LISTENING) {
                url = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix(reference_server::REDIRECT_URI) {
                redirect = Some(rest.trim().to_owned());
            }
            if url.is_some() && redirect.is_some() {
                break;
            }
        }
        let _ = sender.send(url.zip(redirect));
        for _ in lines {}
    });
    match tokio::time::timeout(Duration::from_secs(20), receiver).await {
        Ok(Ok(Some(announced))) => Ok(announced),
        Ok(_) => anyhow::bail!(
            "the server of {label} exited without saying where it listens (its `{}` line)",
            reference_server::LISTENING
        ),
        Err(_) => anyhow::bail!("the server of {label} said nothing within 20 s"),
    }
}

/// The matrix as a table: each platform, whether it holds, and what failed where.
pub fn table(rows: &[MatrixRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| platform | scenarios | verdict | failed (scenario: checks) |\n|---|---|---|---|"
    );
    for row in rows {
        let verdict = match (row.subject.side, row.holds()) {
            (Side::Defect, true) => "caught",
            (Side::Defect, false) => "**NOT CAUGHT**",
            (Side::Variant, true) => "passes",
            (Side::Variant, false) => "**FAILS**",
        };
        let failed = row
            .failed
            .iter()
            .map(|(scenario, checks)| format!("{scenario}: {}", checks.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            out,
            "| {} | {} | {verdict} | {failed} |",
            row.subject.label(),
            row.scenarios
        );
    }
    out
}
