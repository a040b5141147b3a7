//! What a disconnect owes the provider, judged over the provider's grants and log in both
//! tiers (the browser runs and the simulator feed the same facts to these functions):
//!
//! - `revoked-at-provider`: every credential the platform held for the connection (the
//!   access and refresh tokens of its latest grant) is dead at the provider afterwards, or the
//!   platform asked the provider to revoke it and the provider refused;
//! - `unused-after-disconnect`: once the connectors page shows the connection revoked, no
//!   token of that grant is presented to the provider again.
//!
//! ```
//! use fake_provider::GrantState;
//! use harness::check::credentials::{Disconnected, left_alive};
//! let grant = GrantState {
//!     id: 1, client_id: "alumia-files".into(), scope: "files.read".into(), issued_seq: 3,
//!     live_access_tokens: 0, live_refresh_token: true,
//! };
//! let disconnect = Disconnected {
//!     connector: "files".into(), was_connected: true, before_seq: 5, after_seq: 7,
//! };
//! let found = left_alive(&[grant], &[], &[disconnect]);
//! assert!(found[0].contains("live refresh token"));
//! ```

use crate::contract::connector_scope;
use fake_provider::{Endpoint, GrantState, LoggedRequest};

/// A disconnect of one connector, placed in the provider's log: the `seq` of the last request
/// before it began and the last one when the connection showed revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    pub connector: String,
    /// The status API said the connector's connection was `connected` when the disconnect
    /// began (a pending one, a reconnect a step-up asked for, holds no grant).
    pub was_connected: bool,
    pub before_seq: u64,
    pub after_seq: u64,
}

/// The grant the platform held for `connector` when a disconnect began: where its connection
/// was connected, the latest grant the provider issued for the connector's scope before it (a
/// step-up's wider grant included; a grant it replaced is no longer held).
pub fn held_at<'a>(grants: &'a [GrantState], disconnect: &Disconnected) -> Option<&'a GrantState> {
    if !disconnect.was_connected {
        return None;
    }
    let scope = connector_scope(&disconnect.connector)?;
    grants
        .iter()
        .filter(|g| g.issued_seq <= disconnect.before_seq)
        .filter(|g| g.scope.split_whitespace().any(|s| s == scope))
        .max_by_key(|g| g.issued_seq)
}

/// Whether any disconnect found a grant held (else neither check has anything to judge).
pub fn any_held(grants: &[GrantState], disconnects: &[Disconnected]) -> bool {
    disconnects.iter().any(|d| held_at(grants, d).is_some())
}

/// `revoked-at-provider`: the held grants that still have a live credential at the end, where
/// the platform did not even ask the provider to revoke them (a provider that refuses a
/// revocation leaves them alive through no fault of the platform's).
pub fn left_alive(
    grants: &[GrantState],
    requests: &[LoggedRequest],
    disconnects: &[Disconnected],
) -> Vec<String> {
    let mut found = Vec::new();
    for disconnect in disconnects {
        let Some(grant) = held_at(grants, disconnect) else {
            continue;
        };
        if !grant.is_live() {
            continue;
        }
        let asked_and_refused = requests.iter().any(|r| {
            r.endpoint == Endpoint::Revoke
                && r.grant == Some(grant.id)
                && r.seq > disconnect.before_seq
                && r.status >= 400
        });
        if asked_and_refused {
            continue;
        }
        let mut alive = Vec::new();
        if grant.live_refresh_token {
            alive.push("a live refresh token".to_owned());
        }
        if grant.live_access_tokens > 0 {
            alive.push(format!("{} live access token(s)", grant.live_access_tokens));
        }
        found.push(format!(
            "after the disconnect of {} (provider request #{}), grant {} ({}, {}) still has {}: a credential the platform held outlived the disconnect",
            disconnect.connector,
            disconnect.before_seq + 1,
            grant.id,
            grant.client_id,
            grant.scope,
            alive.join(" and ")
        ));
    }
    found
}

/// `unused-after-disconnect`: requests that presented a token of a disconnected connection's
/// grant (a refresh, an API or MCP call) after the connection showed revoked.
pub fn used_after(
    grants: &[GrantState],
    requests: &[LoggedRequest],
    disconnects: &[Disconnected],
) -> Vec<String> {
    let mut found = Vec::new();
    for disconnect in disconnects {
        let Some(grant) = held_at(grants, disconnect) else {
            continue;
        };
        for request in requests.iter().filter(|r| {
            r.seq > disconnect.after_seq
                && r.grant == Some(grant.id)
                && matches!(
                    r.endpoint,
                    Endpoint::Token | Endpoint::ApiFiles | Endpoint::ApiCalendar | Endpoint::Mcp
                )
        }) {
            found.push(format!(
                "{} {} presented a token of grant {} ({}), whose connection was disconnected before (provider request #{}): {} ({})",
                request.method,
                request.path,
                grant.id,
                disconnect.connector,
                disconnect.after_seq,
                request.status,
                request.outcome
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: u64, scope: &str, issued_seq: u64, live: bool) -> GrantState {
        GrantState {
            id,
            client_id: "alumia-files".into(),
            scope: scope.into(),
            issued_seq,
            live_access_tokens: usize::from(live),
            live_refresh_token: live,
        }
    }

    fn request(seq: u64, endpoint: Endpoint, grant: u64, status: u16) -> LoggedRequest {
        LoggedRequest {
            seq,
            at_ms: 0,
            endpoint,
            method: "POST".into(),
            path: "/x".into(),
            query: String::new(),
            headers: Vec::new(),
            status,
            outcome: "".into(),
            grant: Some(grant),
            rpc: None,
        }
    }

    fn files(before_seq: u64, after_seq: u64) -> Disconnected {
        Disconnected {
            connector: "files".into(),
            was_connected: true,
            before_seq,
            after_seq,
        }
    }

    #[test]
    fn the_held_grant_is_the_latest_of_the_connector_before_the_disconnect() {
        let grants = [
            grant(1, "files.read", 3, true),
            grant(2, "calendar.read", 4, true),
            grant(3, "files.read files.write", 6, true),
            grant(4, "files.read", 9, true),
        ];
        assert_eq!(held_at(&grants, &files(7, 8)).map(|g| g.id), Some(3));
        assert_eq!(held_at(&grants, &files(2, 3)), None);
        let pending = Disconnected {
            was_connected: false,
            ..files(7, 8)
        };
        assert_eq!(held_at(&grants, &pending), None);
    }

    #[test]
    fn a_grant_left_alive_is_caught_unless_the_provider_refused_its_revocation() {
        let grants = [grant(1, "files.read", 3, true)];
        assert_eq!(left_alive(&grants, &[], &[files(5, 6)]).len(), 1);
        let refused = [request(6, Endpoint::Revoke, 1, 503)];
        assert!(left_alive(&grants, &refused, &[files(5, 7)]).is_empty());
        let dead = [grant(1, "files.read", 3, false)];
        assert!(left_alive(&dead, &[], &[files(5, 6)]).is_empty());
    }

    #[test]
    fn a_token_presented_after_the_disconnect_is_caught_and_one_in_flight_before_is_not() {
        let grants = [grant(1, "files.read", 3, false)];
        let requests = [
            request(5, Endpoint::ApiFiles, 1, 200),
            request(8, Endpoint::Revoke, 1, 200),
            request(9, Endpoint::ApiFiles, 1, 401),
        ];
        let found = used_after(&grants, &requests, &[files(4, 8)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("401"), "{found:?}");
    }
}
