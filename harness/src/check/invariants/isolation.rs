//! What another party gets: the provider none of the platform's auth, a page of another
//! origin nothing on any channel, another browser session's redirect refused, another org's
//! connection neither shown nor changed.

use super::{Check, Rule, Run, Tier, none_in_this_run, unless, unless_a_step};
use crate::check::observation::Observation;
use crate::scenario::Scenario;
use serde_json::Value;

pub const PROVIDER_NEVER_GETS_PLATFORM_AUTH: &str = "provider-never-gets-platform-auth";
pub const HOSTILE_RECEIVES_NOTHING: &str = "hostile-receives-nothing";
pub const REDIRECT_BOUND_TO_SESSION: &str = "redirect-bound-to-session";
pub const ORG_ISOLATION: &str = "org-isolation";

pub struct ProviderNeverGetsPlatformAuth;

impl Check for ProviderNeverGetsPlatformAuth {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: PROVIDER_NEVER_GETS_PLATFORM_AUTH,
            summary: "no platform cookie value in any request the provider received",
            enforces: "oauth-flow.md, What never happens: \"The provider window never inherits the chat's auth — only the platform's own callback resolves the connection.\"",
            tier: Tier::Browser,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        if run.observation.provider_requests.is_empty() {
            return none_in_this_run("request to the provider");
        }
        run.observation
            .platform_cookies
            .is_empty()
            .then(|| "no platform cookie could be read".into())
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        provider_never_gets_platform_auth(run.observation)
    }
}

pub struct HostileReceivesNothing;

impl Check for HostileReceivesNothing {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: HOSTILE_RECEIVES_NOTHING,
            summary: "a page on a third origin that opened the callback or the connect URL receives nothing on any channel",
            enforces: "oauth-flow.md, How resumption is delivered: BroadcastChannel and localStorage reach \"same-origin tabs\"; target-contract.md §4: postMessage to \"the platform's exact origin\"",
            tier: Tier::Browser,
        }
    }
    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_a_step(scenario, "open-hostile-page")
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !run.observation.hostile_pages.is_empty(),
            "page of a third origin",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        hostile_receives_nothing(run.observation)
    }
}

pub struct RedirectBoundToSession;

impl Check for RedirectBoundToSession {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: REDIRECT_BOUND_TO_SESSION,
            summary: "a platform redirect (code and state) obtained by another browser session is refused: no exchange, nothing resolved",
            enforces: "RFC 6749 §10.12: the state value binds the authorization request to \"the user-agent's authenticated state\"; oauth-flow.md, Notes: \"the platform checks state\"",
            tier: Tier::Browser,
        }
    }
    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_a_step(scenario, "redirect-from-another-session")
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !run.observation.cross_session_redirects.is_empty(),
            "redirect from another browser session",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        redirect_bound_to_session(run.observation)
    }
}

pub struct OrgIsolation;

impl Check for OrgIsolation {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: ORG_ISOLATION,
            summary: "the status API answers 404 and echoes nothing of another org's connection, and a callback URL naming it leaves it pending",
            enforces: "target-contract.md §4, Status API: \"404 for a connection of another org ... echoing nothing of it\"; oauth-flow.md: each org has its own connectors page",
            tier: Tier::Browser,
        }
    }
    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_a_step(scenario, "probe-another-org")
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !run.observation.other_org_probes.is_empty(),
            "probe of another org's connection",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        org_isolation(run.observation)
    }
}

/// Invariant 6: the provider never received the platform's session cookie or anything of the chat's auth.
fn provider_never_gets_platform_auth(observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for request in &observation.provider_requests {
        let mut seen = format!("{} {}?{}", request.method, request.path, request.query);
        for (name, value) in &request.headers {
            seen.push_str(&format!("\n{name}: {value}"));
        }
        for (name, value) in &observation.platform_cookies {
            if value.len() >= 8 && seen.contains(value.as_str()) {
                found.push(format!(
                    "the provider received the platform cookie {name} in {} {}",
                    request.method, request.path
                ));
            }
        }
    }
    found.dedup();
    found
}

/// Invariant 9: a page of another origin (`open-hostile-page`) receives nothing on any
/// channel, whether it opened the callback or started the connect flow itself.
fn hostile_receives_nothing(observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for page in &observation.hostile_pages {
        match &page.received {
            None => found.push(format!(
                    "tab {}: the hostile page could not be read at the end (closed or navigated away), so nothing shows it received nothing",
                    page.tab
                )),
            Some(received) => {
                for receipt in received {
                    found.push(format!(
                            "tab {} (another site) received on {} from {:?}: {}",
                            page.tab, receipt.channel, receipt.origin, receipt.data
                        ));
                }
            }
        }
    }
    found
}

/// Invariant 10: a platform redirect (code and state) started in another browser session is
/// refused: no code exchange, and the other session's connection is not resolved.
fn redirect_bound_to_session(observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for redirect in &observation.cross_session_redirects {
        if redirect.tokens_issued > 0 {
            found.push(format!(
                    "tab {}: the platform exchanged the code of a sign-in another browser session started ({} token response(s))",
                    redirect.tab, redirect.tokens_issued
                ));
        }
        if redirect.other_session_status == "connected" {
            found.push(format!(
                "tab {}: the other session's connection became connected through this browser",
                redirect.tab
            ));
        }
    }
    found
}

/// Invariant 11: this session learns nothing of another org's connection (the status API
/// answers 404 and echoes nothing of it), and opening the callback URL naming it resolves
/// nothing: it stays pending.
fn org_isolation(observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    for probe in &observation.other_org_probes {
        if probe.by_its_member {
            let status: Value = serde_json::from_str(&probe.body).unwrap_or(Value::Null);
            if status["status"] != "pending" {
                found.push(format!(
                        "another org's connection changed through this browser: its member now reads {} {}",
                        probe.status, probe.body
                    ));
            }
            continue;
        }
        let revealed = probe.body.contains(&probe.connection_id)
            || ["pending", "connected", "connectionId"]
                .iter()
                .any(|word| probe.body.contains(word));
        if (200..300).contains(&probe.status) || revealed {
            found.push(format!(
                "{} about another org's connection answered {} {}",
                probe.what, probe.status, probe.body
            ));
        }
    }
    found
}
