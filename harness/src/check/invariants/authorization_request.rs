//! The authorization request the browser carries from the platform to the provider: read from
//! what the browser loaded, so it is judged against a real provider too.

use super::{Check, Rule, Run, Tier, unless};
use crate::check::recorded::Event;
use std::collections::BTreeMap;

pub const PKCE_AND_STATE: &str = "pkce-and-state";

pub struct PkceAndState;

impl Check for PkceAndState {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: PKCE_AND_STATE,
            summary: "every authorization request the platform sent the browser to names a non-empty state and a PKCE S256 code_challenge",
            enforces: "target-contract.md, the provider: \"authorization code flow with a non-empty `state` and a PKCE `S256` `code_challenge`\"; oauth-flow.md, Flow 5: \"exchanges the code (with PKCE)\"; RFC 9700 §2.1.1: clients \"MUST use PKCE\", with S256",
            tier: Tier::Browser,
        }
    }

    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !authorization_requests(run).is_empty(),
            "authorization request",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        authorization_requests(run)
            .into_iter()
            .filter_map(|(tab, url)| {
                let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
                let has = |key: &str| pairs.get(key).is_some_and(|value| !value.is_empty());
                let missing = if !has("state") {
                    "no state"
                } else if !has("code_challenge") {
                    "no PKCE code_challenge"
                } else if pairs.get("code_challenge_method").map(String::as_str) != Some("S256") {
                    "a code_challenge_method other than S256"
                } else {
                    return None;
                };
                Some(format!(
                    "tab {tab}: the authorization request to {}{} carries {missing}",
                    url.origin().ascii_serialization(),
                    url.path()
                ))
            })
            .collect()
    }
}

/// The platform's authorization requests the browser loaded or opened: a URL that asks for a
/// code (`response_type=code`) to be sent to a redirect URI on the platform, once each.
fn authorization_requests(run: &Run) -> Vec<(String, url::Url)> {
    let mut found: Vec<(String, url::Url)> = Vec::new();
    for record in &run.observation.recorded {
        if !matches!(
            record.event,
            Event::Document { .. } | Event::WindowOpen { .. } | Event::Request { .. }
        ) {
            continue;
        }
        let Some(url) = record.event.url().and_then(|u| url::Url::parse(u).ok()) else {
            continue;
        };
        let asks_for_a_code = url
            .query_pairs()
            .any(|(k, v)| k == "response_type" && v == "code");
        let back_to_the_platform = url.query_pairs().any(|(k, v)| {
            k == "redirect_uri"
                && url::Url::parse(&v)
                    .is_ok_and(|r| r.origin().ascii_serialization() == run.platform_origin)
        });
        if asks_for_a_code && back_to_the_platform && !found.iter().any(|(_, seen)| *seen == url) {
            found.push((record.tab.clone(), url));
        }
    }
    found
}
