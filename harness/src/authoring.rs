//! For contributors: `harness new` writes a scenario file from a commented template or from a
//! close case, and `harness explain` says in words what a scenario does.

use crate::check::invariants::catalogue::browser_checks;
use crate::contract::Engine;
use crate::scenario::describe::describe_step;
use crate::scenario::{
    ChatExpectation, Feature, OpenerMode, Scenario, ScenarioFile, Step, StorageMode,
};
use anyhow::{Context, bail};
use fake_provider::{ConsentFault, Coop, TokenFailure};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The commented template `harness new` starts from.
pub const TEMPLATE: &str = include_str!("scenario/templates/scenario.toml");

/// Writes `scenarios/<id>.toml` from the template or from the scenario `from`; returns its path.
pub fn new_scenario(root: &Path, id: &str, from: Option<&str>) -> anyhow::Result<PathBuf> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 || !parts.iter().all(|p| valid_part(p)) {
        bail!(
            "{id:?} is not <group>/<name> of a-z, 0-9 and - (e.g. channels/no-broadcast-channel)"
        );
    }
    let path = root.join(format!("{id}.toml"));
    if path.exists() {
        bail!(
            "{} exists already (hint: pick another name, or edit that file)",
            path.display()
        );
    }
    let text = match from {
        None => TEMPLATE.to_owned(),
        Some(source) => {
            let source_path = root.join(format!("{source}.toml"));
            let text = std::fs::read_to_string(&source_path).with_context(|| {
                format!(
                    "cannot read {} (hint: `harness list` shows the ids)",
                    source_path.display()
                )
            })?;
            // The editor's `#:schema` line stays first.
            match text.split_once('\n') {
                Some((first, rest)) if first.starts_with("#:schema") => {
                    format!("{first}\n# Started from {source}.\n{rest}")
                }
                _ => format!("# Started from {source}.\n{text}"),
            }
        }
    };
    std::fs::create_dir_all(path.parent().expect("a group folder"))?;
    std::fs::write(&path, text)?;
    Ok(path)
}

fn browser_lines(scenario: &Scenario) -> Vec<String> {
    let browser = &scenario.browser;
    let mut lines = Vec::new();
    for feature in &browser.remove_features {
        match feature {
            Feature::BroadcastChannel => lines.push(
                "BroadcastChannel is removed before any page script, in every tab (as Safari before 15.4): \
                 chromium and firefox by a BiDi preload script, webkit by its --features=-BroadcastChannel switch"
                    .to_owned(),
            ),
        }
    }
    match browser.storage {
        StorageMode::Available => {}
        StorageMode::Throws => lines.push(
            "localStorage and sessionStorage throw SecurityError in every tab (as with cookies blocked): \
             a BiDi preload script in chromium and firefox; webkit has no switch for it"
                .to_owned(),
        ),
        StorageMode::Full => lines.push(
            "storage is full in every tab: reads work, every write throws QuotaExceededError (the origin's quota used up): \
             a BiDi preload script in chromium and firefox; webkit has no switch for it"
                .to_owned(),
        ),
        StorageMode::ThrowsInThirdPartyFrames => lines.push(
            "localStorage and sessionStorage throw SecurityError in a frame under another origin's page, \
             and only there (as Safari, Firefox's strict mode and Chromium with third-party cookies blocked): \
             a BiDi preload script in chromium and firefox; webkit has no switch for it"
                .to_owned(),
        ),
    }
    if let Some(latency) = &browser.latency {
        lines.push(format!(
            "every request to the {} waits {} ms before it leaves (a slow network there): BiDi network \
             interception in chromium and firefox; webkit has no switch for it",
            match latency.origin {
                crate::scenario::SlowOrigin::Platform => "platform's origin",
                crate::scenario::SlowOrigin::Provider => "provider's origin",
            },
            latency.ms
        ));
    }
    if browser.opener == OpenerMode::Noopener {
        lines.push(
            "every window.open is made noopener, so the provider tab has no opener: a BiDi preload script \
             in chromium and firefox; webkit has no switch for it"
                .to_owned(),
        );
    }
    if lines.is_empty() {
        lines.push(
            "a plain browser: every feature available, storage works, openers kept".to_owned(),
        );
    }
    lines
}

/// For each chat or connectors tab the scenario opens, which of the callback's channels this
/// configuration leaves it: BroadcastChannel and the storage event unless the browser removes
/// or blocks them or the page is in another site's frame (another storage partition), the
/// opener's `postMessage` for the tab a connect opens from unless something severs the opener,
/// and polling always.
fn channel_lines(scenario: &Scenario) -> Vec<String> {
    let browser = &scenario.browser;
    let broadcast = !browser.remove_features.contains(&Feature::BroadcastChannel);
    let mut severed: Vec<&str> = Vec::new();
    if browser.opener == OpenerMode::Noopener {
        severed.push("the browser opens with noopener");
    }
    if scenario.platform.opener_policy != reference_server::OpenerPolicy::Unset {
        severed.push("the platform's Cross-Origin-Opener-Policy");
    }
    if matches!(
        scenario
            .provider
            .coop_on_redirect
            .or(scenario.provider.coop_on_consent_page),
        Some(Coop::SameOrigin | Coop::SameOriginAllowPopups)
    ) {
        severed.push("the provider's Cross-Origin-Opener-Policy");
    }
    let openers: Vec<&str> = scenario
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Connect { tab, .. } => Some(tab.as_str()),
            _ => None,
        })
        .collect();
    let mut lines = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for step in &scenario.steps {
        let (tab, framed) = match step {
            Step::OpenChat { tab, embedded, .. } => (tab.as_str(), *embedded),
            Step::OpenConnectors { tab } => (tab.as_str(), false),
            _ => continue,
        };
        if seen.contains(&tab) {
            continue;
        }
        seen.push(tab);
        let mut channels: Vec<String> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let partition = "it is in another site's frame, another storage partition";
        match (broadcast, framed) {
            (true, false) => channels.push("BroadcastChannel".into()),
            (false, _) => missing.push("BroadcastChannel (removed)".into()),
            (true, true) => missing.push(format!("BroadcastChannel ({partition})")),
        }
        match (browser.storage.fails(framed), framed) {
            (None, false) => channels.push("the storage event".into()),
            (Some(why), _) => missing.push(format!("the storage event ({why})")),
            (None, true) => missing.push(format!("the storage event ({partition})")),
        }
        if !openers.contains(&tab) {
            missing.push("postMessage to the opener (no connect opens from it)".into());
        } else if severed.is_empty() {
            channels.push("postMessage to the opener".into());
        } else {
            missing.push(format!(
                "postMessage to the opener (severed: {})",
                severed.join(", ")
            ));
        }
        channels.push("polling its server".into());
        lines.push(format!(
            "[{tab}]: {}{}",
            channels.join(", "),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; not {}", missing.join(", not "))
            }
        ));
    }
    lines
}

fn coop_words(coop: Coop) -> &'static str {
    match coop {
        Coop::SameOrigin => "Cross-Origin-Opener-Policy: same-origin (severs the opener)",
        Coop::SameOriginAllowPopups => {
            "Cross-Origin-Opener-Policy: same-origin-allow-popups (severs the opener of a page it did not open)"
        }
        Coop::ReportOnly => {
            "Cross-Origin-Opener-Policy-Report-Only: same-origin (reports, severs nothing)"
        }
    }
}

fn provider_lines(scenario: &Scenario) -> Vec<String> {
    let faults = &scenario.provider;
    let mut lines = Vec::new();
    match &faults.consent {
        ConsentFault::AskUser => {}
        ConsentFault::Denied => lines.push(
            "answers every authorization request with access_denied, without asking".to_owned(),
        ),
        ConsentFault::ErrorRedirect { error, description } => lines.push(format!(
            "answers every authorization request with the error {error} ({description})"
        )),
    }
    if let Some(coop) = faults.coop_on_consent_page {
        lines.push(format!("sends {} on the consent page", coop_words(coop)));
    }
    if let Some(coop) = faults.coop_on_redirect {
        lines.push(format!(
            "sends {} on the redirect back to the platform",
            coop_words(coop)
        ));
    }
    match faults.token_failure {
        Some(TokenFailure::ServerError) => {
            lines.push("the token endpoint answers 503 temporarily_unavailable".to_owned())
        }
        Some(TokenFailure::InvalidGrant) => {
            lines.push("the token endpoint refuses every grant with invalid_grant".to_owned())
        }
        None => {}
    }
    if faults.token_delay_ms > 0 {
        lines.push(format!(
            "the token endpoint answers after {} ms",
            faults.token_delay_ms
        ));
    }
    if faults.token_lifetime_secs != fake_provider::Faults::none().token_lifetime_secs {
        lines.push(format!(
            "access tokens live {} s",
            faults.token_lifetime_secs
        ));
    }
    if faults.revoke_endpoint_fails {
        lines.push("the revocation endpoint answers 503".to_owned());
    }
    if faults.api_delay_ms > 0 {
        lines.push(format!(
            "the protected API answers after {} ms (decided when the request arrives)",
            faults.api_delay_ms
        ));
    }
    if let Some(policy) = &faults.csp_on_consent_page {
        lines.push(format!(
            "the consent page sends Content-Security-Policy: {policy}"
        ));
    }
    if faults.remembers_consent {
        lines.push(
            "a scope the user allowed once is granted again at once, without the consent page"
                .to_owned(),
        );
    }
    if faults.api_answer == fake_provider::ApiAnswer::UnexpectedShape {
        lines.push(
            "the protected API answers in another shape (data.entries, not items)".to_owned(),
        );
    }
    match faults.iss_in_response {
        fake_provider::IssInResponse::Absent => {}
        fake_provider::IssInResponse::Correct => {
            lines.push("the authorization response names the provider (iss, RFC 9207)".to_owned())
        }
        fake_provider::IssInResponse::OfAnotherProvider => lines
            .push("the authorization response names another provider (iss): a mix-up".to_owned()),
    }
    match faults.refresh_rotation {
        fake_provider::RefreshRotation::Off => {}
        fake_provider::RefreshRotation::Rotate => lines
            .push("each refresh answers a new refresh token and refuses the one used".to_owned()),
        fake_provider::RefreshRotation::RotateWithReuseDetection => lines.push(
            "each refresh answers a new refresh token; one used twice revokes the whole grant"
                .to_owned(),
        ),
    }
    if lines.is_empty() {
        lines.push("a well-behaved provider".to_owned());
    }
    lines
}

fn chat_words(expectation: ChatExpectation) -> &'static str {
    match expectation {
        ChatExpectation::Resumed => {
            "resumed: every queued message re-sent exactly once and answered"
        }
        ChatExpectation::ErrorShown => "nothing re-sent, the card shows the error and a retry",
        ChatExpectation::Waiting => "nothing re-sent, the card still waits with its connect button",
        ChatExpectation::ToolErrorAndReconnect => {
            "the last tool call gave a tool error and a reconnect prompt"
        }
        ChatExpectation::ToolError => {
            "the queued message re-sent, its tool call a tool error without a reconnect prompt"
        }
        ChatExpectation::Answered => {
            "every message answered, no tool error or reconnect prompt: the connection held"
        }
    }
}

/// What a scenario does, in words.
pub fn explain(file: &ScenarioFile) -> String {
    let scenario = &file.scenario;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", file.id, scenario.description);
    if !scenario.mcp_conformance.is_empty() {
        let _ = writeln!(
            out,
            "\nAlso checks, of the MCP conformance suite: {}",
            scenario.mcp_conformance.join(", ")
        );
    }
    let _ = writeln!(out, "\nBrowser configuration:");
    for line in browser_lines(scenario) {
        let _ = writeln!(out, "  - {line}");
    }
    let _ = writeln!(out, "\nProvider behaviour:");
    for line in provider_lines(scenario) {
        let _ = writeln!(out, "  - {line}");
    }
    if let Some(needs) = scenario.platform.needs() {
        let _ = writeln!(out, "\nPlatform configuration:");
        let platform = &scenario.platform;
        if platform.opener_policy != reference_server::OpenerPolicy::Unset {
            let _ = writeln!(
                out,
                "  - Cross-Origin-Opener-Policy: {}",
                match platform.opener_policy {
                    reference_server::OpenerPolicy::SiteWide => "same-origin on every page",
                    reference_server::OpenerPolicy::CallbackNoopenerAllowPopups =>
                        "noopener-allow-popups on the callback page",
                    reference_server::OpenerPolicy::Unset => "unset",
                }
            );
        }
        if platform.mcp_connector {
            let _ = writeln!(
                out,
                "  - a connector `notes` that is the provider's MCP server, known by its URL"
            );
        }
        let _ = writeln!(out, "  - against --target: {needs}");
    }
    let _ = writeln!(
        out,
        "\nChannels the result can take to each tab that waits (target-contract.md §4):"
    );
    for line in channel_lines(scenario) {
        let _ = writeln!(out, "  - {line}");
    }
    let _ = writeln!(out, "\nSteps:");
    for (index, step) in scenario.steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", index + 1, describe_step(step));
    }
    let _ = writeln!(out, "\nExpected outcome:");
    for engine in Engine::ALL {
        let name = engine.name();
        let outcome = scenario.expect.outcome_for(name).as_str();
        match scenario.expect.engines.get(name) {
            Some(differs) => {
                let snapshot = if differs.own_snapshot {
                    format!(", own snapshot {}.{name}.snap", file.id)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  {name}: {outcome}{snapshot} ({})", differs.reason);
            }
            None => {
                let reason = scenario
                    .expect
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let _ = writeln!(out, "  {name}: {outcome}{reason}");
            }
        }
    }
    let bound = scenario.expect.resume_within_ms.unwrap_or(15_000);
    for (tab, expectation) in &scenario.expect.chat {
        let _ = writeln!(
            out,
            "  chat in [{tab}]: {} (within {bound} ms of the consent)",
            chat_words(*expectation)
        );
    }
    let _ = writeln!(
        out,
        "  normative trace: equal to snapshots/{id}.snap on every target; reference transcript: snapshots/{id}.reference.snap on the embedded target (docs/verdicts.md)",
        id = file.id
    );
    let (in_scope, out_of_scope): (Vec<_>, Vec<_>) = browser_checks()
        .map(|check| (check.rule(), check.out_of_scope(scenario)))
        .partition(|(_, why_not)| why_not.is_none());
    let _ = writeln!(
        out,
        "\nChecks that apply (id: what it asks; what it enforces); one that finds nothing of its kind in a run is reported not applicable, with why, never passed:"
    );
    for (rule, _) in in_scope {
        let _ = writeln!(
            out,
            "  - {}: {}\n      enforces {}",
            rule.id, rule.summary, rule.enforces
        );
    }
    if !out_of_scope.is_empty() {
        let _ = writeln!(
            out,
            "\nChecks this case leaves nothing to look at (id: why):"
        );
        for (rule, why_not) in out_of_scope {
            let _ = writeln!(out, "  - {}: {}", rule.id, why_not.unwrap_or_default());
        }
    }
    out
}
