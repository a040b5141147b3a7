//! What a disconnect leaves: every credential of the connection dead at the provider, and
//! none of them presented again (`check::credentials` reads the provider's grants; the
//! simulator judges its flows with the same functions).

use super::{Check, Rule, Run, Tier, none_in_this_run, unless_a_step};
use crate::check::credentials;
use crate::check::observation::Observation;
use crate::scenario::Scenario;
use fake_provider::{GrantState, LoggedRequest};

pub const REVOKED_AT_PROVIDER: &str = "revoked-at-provider";
pub const UNUSED_AFTER_DISCONNECT: &str = "unused-after-disconnect";

/// What a disconnect check asks of the provider's grants and log, given the run's
/// disconnects: a sentence for each way the run broke its rule.
type Judgement = fn(&[GrantState], &[LoggedRequest], &[credentials::Disconnected]) -> Vec<String>;

/// A check of what a disconnect leaves: the two differ only in their rule and judgement.
pub struct AfterDisconnect {
    rule: Rule,
    judgement: Judgement,
}

pub static REVOKED_AT_PROVIDER_CHECK: AfterDisconnect = AfterDisconnect {
    rule: Rule {
        id: REVOKED_AT_PROVIDER,
        summary: "after a disconnect, every credential the platform held for the connection (its latest grant's access and refresh tokens) is dead at the provider, unless the provider refused the revocation the platform asked for",
        enforces: "oauth-flow.md, Disconnecting: \"Removing a connection at /[orgSlug]/connectors revokes the stored credentials immediately.\" target-contract.md §4: \"credentials deleted at once, revoked at the provider\"; RFC 7009 §2",
        tier: Tier::Both,
    },
    judgement: credentials::left_alive,
};

pub static UNUSED_AFTER_DISCONNECT_CHECK: AfterDisconnect = AfterDisconnect {
    rule: Rule {
        id: UNUSED_AFTER_DISCONNECT,
        summary: "once the connection shows revoked, no token of its grant is presented to the provider again (no refresh, no API or MCP call)",
        enforces: "target-contract.md §4: \"disconnects: credentials deleted at once\"; oauth-flow.md, Disconnecting: \"Sessions that try to use the connector after that point receive a tool error\"",
        tier: Tier::Both,
    },
    judgement: credentials::used_after,
};

impl Check for AfterDisconnect {
    fn rule(&self) -> &Rule {
        &self.rule
    }

    fn reads_provider_log(&self) -> bool {
        true
    }

    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_a_step(scenario, "disconnect")
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        nothing_held(run.observation)
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        (self.judgement)(
            &run.observation.grants,
            &run.observation.provider_requests,
            &disconnects(run.observation),
        )
    }
}

/// Why neither disconnect check applies: no disconnect, or none found a grant held.
fn nothing_held(observation: &Observation) -> Option<String> {
    if observation.disconnects.is_empty() {
        return none_in_this_run("disconnect");
    }
    (!credentials::any_held(&observation.grants, &disconnects(observation)))
        .then(|| "no disconnect found a grant held (the sign-in was still pending)".into())
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
