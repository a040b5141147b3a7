//! Secrets: nothing the provider issued or received shows on any surface the browser has.

use super::{Check, Rule, Run, Tier};
use crate::check::observation::Observation;
use crate::check::recorded::{Event, json_of};
use crate::contract;
use serde_json::Value;

pub const NO_SECRET_VISIBLE: &str = "no-secret-visible";

pub struct NoSecretVisible;

impl Check for NoSecretVisible {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: NO_SECRET_VISIBLE,
            summary: "no secret the provider issued or received on any surface the browser shows",
            enforces: "oauth-flow.md, What never happens: \"The callback never sends tokens or secrets back through postMessage or localStorage.\" Notes: \"The authorization code must never reach the callback page.\"",
            tier: Tier::Both,
        }
    }
    fn partly_seen(&self, run: &Run) -> Option<String> {
        run.observation.real_provider.as_ref().map(|profile| format!(
            "looked for the authorization codes the browser carried only: the tokens a real provider (profile {profile}) issued are not known to the harness"
        ))
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        no_secret_visible(run.observation, run.platform_origin)
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Invariant 1: no secret the provider issued or received on any browser-visible surface.
fn no_secret_visible(observation: &Observation, platform_origin: &str) -> Vec<String> {
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
        .filter(|r| {
            matches!(
                r.event,
                Event::Document { .. } | Event::WindowOpen { .. } | Event::Request { .. }
            )
        })
        .filter_map(|r| url::Url::parse(r.event.url()?).ok())
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
        let where_ = format!("tab {} ({})", record.tab, record.kind());
        match &record.event {
            Event::Request {
                method,
                url,
                referer,
            } => {
                let mut exchange = serde_json::json!({
                    "method": method, "url": url, "referer": referer,
                });
                if let Some(url) = url {
                    exchange["url"] = Value::String(without_the_code(url));
                    if to_the_platform(url)
                        && let Some(referer) = referer
                    {
                        exchange["referer"] = Value::String(without_the_code(referer));
                    }
                }
                surfaces.push((where_, exchange.to_string()))
            }
            Event::Document { url, .. } => surfaces.push((
                format!("{where_} URL"),
                without_the_code(&text_of(&json_of(url))),
            )),
            Event::WindowOpen { url, .. } => {
                surfaces.push((format!("{where_} URL"), text_of(&json_of(url))))
            }
            Event::Surfaces {
                html,
                text,
                cookie,
                local,
                session,
                name,
                ..
            } => {
                for (key, value) in [
                    ("html", json_of(html)),
                    ("text", json_of(text)),
                    ("cookie", json_of(cookie)),
                    ("local", local.clone()),
                    ("session", session.clone()),
                    ("name", json_of(name)),
                ] {
                    surfaces.push((format!("{where_} {key}"), text_of(&value)));
                }
            }
            other => surfaces.push((
                where_,
                serde_json::to_string(other).expect("an event serializes"),
            )),
        }
    }
    for line in &observation.console {
        surfaces.push((format!("tab {} console", line.tab), line.text.clone()));
    }
    let mut found = Vec::new();
    for (surface, text) in surfaces {
        for finding in observation.secrets.find_in(&text) {
            found.push(format!(
                "{:?} ({:?}) in {surface}",
                finding.kind, finding.encoding
            ));
        }
    }
    found.dedup();
    found
}
