//! What the provider's request log shows of the platform as an OAuth client: each code
//! exchanged once, refreshes one at a time, the resource named throughout, retries bounded,
//! one client registration. The simulator judges its flows with the same functions.

use super::{Check, Rule, Run, Tier, unless, unless_an_mcp_connector};
use crate::check::observation::Observation;
use crate::scenario::Scenario;
use fake_provider::{LoggedRequest, Outcome};

pub const SINGLE_EXCHANGE: &str = "single-exchange";
pub const REFRESH_SINGLE_FLIGHT: &str = "refresh-single-flight";
pub const RESOURCE_CONSISTENT: &str = "resource-consistent";
pub const BOUNDED_RETRIES: &str = "bounded-retries";
pub const REGISTRATION_REUSED: &str = "registration-reused";

pub struct SingleExchange;

impl Check for SingleExchange {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: SINGLE_EXCHANGE,
            summary: "no code is presented twice at the provider's token endpoint",
            enforces: "RFC 6749 §4.1.2: \"The client MUST NOT use the authorization code more than once.\"",
            tier: Tier::Browser,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        let exchanged = run
            .observation
            .provider_requests
            .iter()
            .any(|r| r.path == "/token");
        unless(exchanged, "code exchange")
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        single_exchange(run.observation)
    }
}

pub struct RefreshSingleFlight;

impl Check for RefreshSingleFlight {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: REFRESH_SINGLE_FLIGHT,
            summary: "no refresh token is presented again once the provider answered it with a new one: a connection's tokens are refreshed one request at a time",
            enforces: "RFC 9700 §4.14.2: with refresh token rotation, \"one of them will present an invalidated refresh token, which will inform the authorization server of the breach\" (the provider then revokes the grant); issue 15: two messages after expiry are both answered and the connection kept",
            tier: Tier::Browser,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        (scenario.provider.refresh_rotation == fake_provider::RefreshRotation::Off).then(|| {
            "the provider does not rotate refresh tokens here ([provider] refresh_rotation)".into()
        })
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        let refreshed = run
            .observation
            .provider_requests
            .iter()
            .any(|r| r.outcome.is_rotation());
        unless(
            refreshed,
            "refresh the provider rotated or refused as reused",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        refresh_single_flight(run.observation)
    }
}

pub struct ResourceConsistent;

impl Check for ResourceConsistent {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: RESOURCE_CONSISTENT,
            summary: "an authorization for the MCP server names its resource, and a grant names that same resource on its token and refresh requests",
            enforces: "RFC 8707 §2; MCP authorization (2025-06-18, 2025-11-25), Resource Parameter Implementation: \"MUST include the resource parameter in both authorization requests and token requests\"",
            tier: Tier::Both,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_an_mcp_connector(scenario)
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        let asked = run
            .observation
            .provider_requests
            .iter()
            .any(|r| r.path == "/authorize" && (names_resource(r) || is_mcp_authorization(r)));
        unless(
            asked,
            "authorization request with a resource or for the MCP server",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        resource_inconsistencies(&run.observation.provider_requests)
    }
}

pub struct BoundedRetries;

impl Check for BoundedRetries {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: BOUNDED_RETRIES,
            summary: "a tool call refreshes at most once and asks the provider's API at most twice: a provider that refuses the fresh token too ends it with a tool error, not a loop",
            enforces: "issue 16: \"a bounded number of retries (no loop)\" (gbrain #5222: a token the server always rejects, asked for again and again); MCP authorization, Scope Challenge Handling: clients SHOULD bound their retries",
            tier: Tier::Both,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(api_calls(run.observation) > 0, "call of the provider's API")
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        bounded_retries(run.observation)
    }
}

pub struct RegistrationReused;

impl Check for RegistrationReused {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: REGISTRATION_REUSED,
            summary: "an org registers a client with an MCP server's authorization server at most once: its later connects, reconnects and step-ups reuse it",
            enforces: "issue 16: the registration is \"stored per org and connector\"; target-contract.md, MCP connectors: \"keeps it per org and connector\" (mcp-wordpress-remote #80: a client re-registered on every connect, orphaning each registration at the authorization server)",
            tier: Tier::Both,
        }
    }
    fn reads_provider_log(&self) -> bool {
        true
    }

    fn out_of_scope(&self, scenario: &Scenario) -> Option<String> {
        unless_an_mcp_connector(scenario)
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            registrations(&run.observation.provider_requests) > 0,
            "client registration",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        registrations_beyond_one(&run.observation.provider_requests)
            .into_iter()
            .collect()
    }
}

/// Invariant 12: every authorization code is exchanged once: the provider never saw a code
/// presented twice (which, by RFC 6749 §4.1.2, also revokes what it issued).
fn single_exchange(observation: &Observation) -> Vec<String> {
    observation
        .provider_requests
        .iter()
        .filter(|r| r.outcome == Outcome::CodeReused)
        .map(|r| {
            format!(
                "the platform presented a code twice at the provider's token endpoint ({} {})",
                r.status, r.outcome
            )
        })
        .collect()
}

/// No refresh token presented again after the provider rotated it (the provider's log names
/// each such request `refresh token reused`).
fn refresh_single_flight(observation: &Observation) -> Vec<String> {
    observation
        .provider_requests
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::RefreshReused { .. }))
        .map(|r| {
            format!(
                    "the platform presented a refresh token the provider had already rotated ({} {}): two refreshes of one connection ran at once",
                    r.status, r.outcome
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
        .filter(|r| r.outcome != Outcome::NoBearerToken)
        .count()
}

fn bounded_retries(observation: &Observation) -> Vec<String> {
    let messages: usize = observation
        .chats
        .values()
        .map(|chat| chat.user_messages.max(chat.said))
        .sum();
    retries_beyond_bound(&observation.provider_requests, messages)
        .into_iter()
        .collect()
}

/// Each message the chats sent or re-sent may cost one refresh and two API calls (a call, a
/// refresh after its 401, a call with the fresh token): more is a loop. Both tiers judge
/// [`BOUNDED_RETRIES`] so, from the provider's log.
pub fn retries_beyond_bound(requests: &[LoggedRequest], messages: usize) -> Option<String> {
    let refreshes = requests.iter().filter(|r| r.outcome.is_refresh()).count();
    let calls = api_calls_in(requests);
    (refreshes > messages.max(1) || calls > 2 * messages.max(1)).then(|| {
        format!(
            "{refreshes} refresh(es) and {calls} API call(s) for {messages} message(s) sent or re-sent: a tool call retried without bound"
        )
    })
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
        .filter(|r| r.outcome.breaks_the_resource())
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
