//! The normalized trace of a run: user actions, navigations, channel deliveries, provider
//! requests and chat events, with numbered placeholders for volatile values (`[STATE#1]`
//! sent and echoed stays `[STATE#1]`), so the same behaviour gives the same text.
//!
//! Two layers are rendered from one observation (`docs/verdicts.md`):
//! - [`Layer::Normative`]: only what the spec and the target contract demand. Wording,
//!   platform paths outside the contract, the redirect URI's path, authorization parameters
//!   the contract does not name and parameter order are left out or become placeholders. Its
//!   snapshot is part of the verdict on every target.
//! - [`Layer::Transcript`]: everything, as the reference server does it. Compared on the
//!   embedded target only (a regression guard); against another target a difference is
//!   informative.

use crate::check::observation::{Observation, UNNAMED_TAB};
use crate::check::recorded::{Event, json_of};
use crate::contract;
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::check::normalize::{
    Layer, NAMED_AUTHORIZATION_PARAMETERS, Normalizer, Placeholders,
};
use crate::check::normalize::{payload_text, short, sorted_query};

/// The lines of a rendered trace, each with the section it stands in (`provider`, `steps`,
/// `chats`, ...): the one reader of the format [`render`] writes.
pub fn lines_by_section(trace: &str) -> Vec<(&str, &str)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in trace.lines() {
        if line.starts_with(' ') {
            out.push((section, line.trim()));
        } else {
            section = line.trim_end_matches(':');
        }
    }
    out
}

/// The trace without what only the fake provider's pages and log produce: the `provider`
/// section and the lines of `tabs` that name `[PROVIDER]` (its pages). What a run against a
/// real provider is compared on: the steps, the platform's pages, channels and chats.
pub fn without_the_provider(trace: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    for line in trace.lines() {
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
        }
        let providers = section == "provider" || (section == "tabs" && line.contains("[PROVIDER]"));
        if !providers {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Renders the observation as the text kept in `snapshots/`: the normative layer
/// (`<id>.snap`) or the reference transcript (`<id>.reference.snap`). `org` is the run's org,
/// to tell the contract's pages from the platform's own.
pub fn render(
    observation: &Observation,
    normalizer: &mut Normalizer,
    layer: Layer,
    org: &str,
) -> String {
    learn_volatile_values(observation, normalizer, layer);
    let mut out = String::new();
    out.push_str("steps:\n");
    for step in &observation.steps {
        out.push_str(&format!("  {}\n", step.trim_start()));
    }

    render_tabs(observation, normalizer, layer, org, &mut out);
    render_channels(observation, normalizer, layer, &mut out);

    // The platform's conversation with the provider is not in the normative layer: the spec
    // makes none of it observable in the browser, and what it must respect is judged by the
    // provider-log checks (single-exchange, refresh-single-flight, bounded-retries,
    // resource-consistent, registration-reused, revoked-at-provider,
    // nothing-used-after-disconnect, provider-never-gets-platform-auth).
    if layer == Layer::Transcript {
        render_provider_requests(observation, normalizer, &mut out);
    }

    out.push_str("chats:\n");
    for (tab, chat) in &observation.chats {
        out.push_str(&format!(
            "  [{tab}] said {}, re-sent {}, cards {}, answers {}, tool errors {}, reconnect prompts {}, card errors shown {}\n",
            chat.said,
            chat.resent(),
            chat.cards,
            chat.answers,
            chat.tool_errors,
            chat.reconnect_prompts,
            chat.card_errors_visible
        ));
    }
    let probes = render_probes(observation, normalizer, layer);
    if !probes.is_empty() {
        out.push_str("probes:\n");
        for line in probes {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// Teaches the normalizer the run's volatile values (states, challenges, connection ids, the
/// redirect URI and a client metadata document's URL), before any line is written.
fn learn_volatile_values(observation: &Observation, normalizer: &mut Normalizer, layer: Layer) {
    for request in &observation.provider_requests {
        for (key, value) in url::form_urlencoded::parse(request.query.as_bytes()) {
            match key.as_ref() {
                "state" => normalizer.learn(&value, "STATE"),
                "code_challenge" => normalizer.learn(&value, "CHALLENGE"),
                // Where the platform's redirect URI lives is its own choice.
                "redirect_uri" if layer == Layer::Normative => {
                    normalizer.add_exact_first(&value, "[REDIRECT-URI]")
                }
                // So is where its client ID metadata document lives (its URL is the
                // `client_id` with authorization servers that take documents).
                "client_id"
                    if layer == Layer::Normative
                        && fake_provider::is_document_client_id(&value) =>
                {
                    normalizer.add_exact_first(&value, "[CLIENT-METADATA-DOCUMENT]")
                }
                _ => {}
            }
        }
    }
    for record in &observation.recorded {
        if let Some(data) = record.event.data()
            && let Some(id) =
                crate::check::invariants::payload_object(data)["connectionId"].as_str()
        {
            normalizer.learn(id, "CONNECTION");
        }
        if let Event::Document { url: Some(url), .. } = &record.event
            && let Ok(url) = url::Url::parse(url)
        {
            for (key, value) in url.query_pairs() {
                match key.as_ref() {
                    "connection_id" | "connection" => normalizer.learn(&value, "CONNECTION"),
                    "state" => normalizer.learn(&value, "STATE"),
                    _ => {}
                }
            }
        }
        if let Event::WindowOpen { url: Some(url), .. } = &record.event
            && let Ok(url) = url::Url::parse(url)
        {
            for (key, value) in url.query_pairs() {
                if key == "connection" {
                    normalizer.learn(&value, "CONNECTION");
                }
            }
        }
    }
}

/// The `tabs:` section: each tab's documents and `window.open` calls in order, then how it
/// ended.
fn render_tabs(
    observation: &Observation,
    normalizer: &mut Normalizer,
    layer: Layer,
    org: &str,
    out: &mut String,
) {
    // Tabs in order of first appearance, each with its own events in order: the relative
    // timing of two tabs is the browser's, so it is not part of the trace.
    out.push_str("tabs:\n");
    let mut tab_order: Vec<&str> = Vec::new();
    for record in &observation.recorded {
        if matches!(
            record.event,
            Event::Document { .. } | Event::WindowOpen { .. }
        ) && !tab_order.contains(&record.tab.as_str())
        {
            tab_order.push(&record.tab);
        }
    }
    for tab in &observation.destroyed_tabs {
        if !tab_order.contains(&tab.as_str()) {
            tab_order.push(tab);
        }
    }
    // A tab no step named appears when the browser pleases (Firefox's new-tab page in a new
    // window, before or after the page the click opened): it comes after the named ones.
    tab_order.sort_by_key(|tab| tab.starts_with(UNNAMED_TAB));
    let platform_origin = normalizer.platform_origin.clone();
    for tab in tab_order {
        for record in observation.recorded.iter().filter(|r| r.tab == tab) {
            let line = match &record.event {
                Event::Document {
                    url,
                    has_opener,
                    third_party,
                    ..
                } => {
                    let url = url.as_deref().unwrap_or("");
                    if url.is_empty() || url == "about:blank" {
                        continue;
                    }
                    let opener = format!(
                        "{}{}",
                        if *has_opener == Some(true) {
                            "with opener"
                        } else {
                            "no opener"
                        },
                        if *third_party {
                            ", in another site's frame"
                        } else {
                            ""
                        }
                    );
                    match layer {
                        Layer::Transcript => format!("[{tab}] loads {url} ({opener})"),
                        // Whether a tab keeps its opener is the browser's and the
                        // deployment's business (a COOP header severs it); what the callback
                        // owes an opener it kept is judged by channels-complete.
                        Layer::Normative => {
                            let Some(what) = normative_document(url, &platform_origin, org) else {
                                continue;
                            };
                            if *third_party {
                                format!("[{tab}] loads {what} (in another site's frame)")
                            } else {
                                format!("[{tab}] loads {what}")
                            }
                        }
                    }
                }
                Event::WindowOpen {
                    url,
                    target,
                    features,
                    ..
                } => match layer {
                    Layer::Transcript => format!(
                        "[{tab}] window.open {} target={} features={}",
                        short(&json_of(url)),
                        short(&json_of(target)),
                        short(&json_of(features)),
                    ),
                    Layer::Normative => match features.as_deref() {
                        None | Some("") => format!("[{tab}] window.open, no features"),
                        Some(features) => {
                            format!("[{tab}] window.open with features {features:?}")
                        }
                    },
                },
                _ => continue,
            };
            out.push_str(&format!("  {}\n", normalizer.apply(&line)));
        }
        let callback = observation.callback_tabs.iter().find(|c| c.tab == tab);
        if observation.destroyed_tabs.iter().any(|t| t == tab) {
            let how = if observation.closed_by_user.iter().any(|t| t == tab) {
                "closed by the user"
            } else if layer == Layer::Normative && callback.is_some() {
                "closes itself or shows the close hint"
            } else {
                "closed itself"
            };
            out.push_str(&format!("  [{tab}] {how}\n"));
        }
        if let Some(callback) = callback.filter(|c| !c.closed_by_itself) {
            let hint = match (layer, callback.close_hint_visible) {
                (Layer::Normative, true) => "closes itself or shows the close hint",
                (Layer::Transcript, true) => "stays open, shows the close hint",
                (_, false) => "stays open, shows no close hint",
            };
            out.push_str(&format!("  [{tab}] {hint}\n"));
        }
    }
}

/// The `channels:` section: which tab got what on which channel, sorted, with counts.
fn render_channels(
    observation: &Observation,
    normalizer: &mut Normalizer,
    layer: Layer,
    out: &mut String,
) {
    // Deliveries: which tab got what on which channel. Their relative timing is the
    // browser's, so they are listed sorted, with counts.
    // What a callback tab itself receives is noise: its own broadcast, or (in Firefox, whose
    // self-closing tabs linger) results meant for the pages that wait.
    let callback_tabs: Vec<&str> = observation
        .documents()
        .filter(|(_, url)| url::Url::parse(url).is_ok_and(|u| contract::is_callback(&u)))
        .map(|(tab, _)| tab)
        .collect();
    let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
    for record in &observation.recorded {
        let receipt = matches!(
            record.event,
            Event::BcReceive { .. } | Event::StorageEvent { .. } | Event::Message { .. }
        );
        if receipt && callback_tabs.contains(&record.tab.as_str()) {
            continue;
        }
        // A message to the opener exists only where the callback kept one, which the
        // deployment's COOP decides: channels-complete and payload-shape judge it.
        if layer == Layer::Normative
            && matches!(
                record.event,
                Event::PostMessage { .. } | Event::Message { .. }
            )
        {
            continue;
        }
        let line = match &record.event {
            Event::BcSend { data } => format!(
                "[{}] posts on BroadcastChannel {}",
                record.tab,
                payload_text(data, layer)
            ),
            Event::BcReceive { data, .. } => format!(
                "[{}] receives on BroadcastChannel {}",
                record.tab,
                payload_text(data, layer)
            ),
            Event::StorageWrite { key, value } => format!(
                "[{}] writes localStorage {} = {}",
                record.tab,
                short(&Value::String(key.clone())),
                payload_text(&Value::String(value.clone()), layer)
            ),
            Event::StorageEvent { key, new_value, .. } => {
                if new_value.is_none() {
                    // Removing the key (to make the next write distinct) is one way of many.
                    if layer == Layer::Normative {
                        continue;
                    }
                    format!(
                        "[{}] storage event {} removed",
                        record.tab,
                        short(&json_of(key))
                    )
                } else {
                    format!(
                        "[{}] storage event {} = {}",
                        record.tab,
                        short(&json_of(key)),
                        payload_text(&json_of(new_value), layer)
                    )
                }
            }
            Event::PostMessage {
                target_origin,
                data,
            } => format!(
                "[{}] is posted a message for origin {} {}",
                record.tab,
                short(&json_of(target_origin)),
                payload_text(data, layer)
            ),
            Event::Message { origin, data } => format!(
                "[{}] receives a message from {} {}",
                record.tab,
                short(&json_of(origin)),
                payload_text(data, layer)
            ),
            Event::BcUnavailable { .. } => {
                format!("[{}] cannot listen on BroadcastChannel", record.tab)
            }
            _ => continue,
        };
        let line = normalizer.apply(&line);
        *deliveries.entry(line).or_default() += 1;
    }
    out.push_str("channels:\n");
    for (line, count) in deliveries {
        if count > 1 {
            out.push_str(&format!("  {line} (x{count})\n"));
        } else {
            out.push_str(&format!("  {line}\n"));
        }
    }
}

/// The provider's log as the transcript shows it: every request with its parameters, status
/// and the provider's verdict.
fn render_provider_requests(
    observation: &Observation,
    normalizer: &mut Normalizer,
    out: &mut String,
) {
    out.push_str("provider:\n");
    for request in &observation.provider_requests {
        let query = if request.query.is_empty() {
            String::new()
        } else {
            format!("?{}", sorted_query(&request.query, Layer::Transcript))
        };
        let line = normalizer.apply(&format!(
            "{} {}{} -> {} ({})",
            request.method, request.path, query, request.status, request.outcome
        ));
        out.push_str(&format!("  {line}\n"));
    }
}

/// A document as the normative layer shows it: the contract's pages by what they are (the
/// callback with its result and connection only), other origins' documents with the
/// parameters the contract names; `None` for the platform's own pages (an interstitial at
/// its connect URL, an error page), which are its business.
fn normative_document(url: &str, platform_origin: &str, org: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.origin().is_tuple() {
        // A browser's own page (Firefox's about:newtab): its URL is all there is to show.
        return Some(url.to_owned());
    }
    if parsed.origin().ascii_serialization() != platform_origin {
        let mut shown = format!("{}{}", parsed.origin().ascii_serialization(), parsed.path());
        if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
            shown.push('?');
            shown.push_str(&sorted_query(query, Layer::Normative));
        }
        return Some(shown);
    }
    match contract::contract_page(&parsed, org)? {
        "callback" => {
            let pairs: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
            let result = pairs.get("oauth_result").map(String::as_str).unwrap_or("");
            // Whether an error names its connection is the platform's choice.
            let connection = match pairs.get("connection_id").map(String::as_str) {
                _ if result == "error" => String::new(),
                None | Some("") => ", no connection".to_owned(),
                Some(id) => format!(", connection_id={id}"),
            };
            Some(format!("the callback: oauth_result={result}{connection}"))
        }
        "connectors" => Some("the connectors page".to_owned()),
        _ => Some(format!(
            "chat {}",
            parsed.path().rsplit('/').next().unwrap_or("")
        )),
    }
}

/// What hostile steps found out: mid-scenario chat checks, what hostile pages received, the
/// other session's redirect and the other org's connection.
fn render_probes(
    observation: &Observation,
    normalizer: &mut Normalizer,
    layer: Layer,
) -> Vec<String> {
    let mut lines = Vec::new();
    for check in &observation.chat_checks {
        let chat = &check.state;
        lines.push(format!(
            "at step {}: [{}] said {}, re-sent {}, cards {}, answers {}, card errors shown {}",
            check.step.split('.').next().unwrap_or(""),
            check.tab,
            chat.said,
            chat.resent(),
            chat.cards,
            chat.answers,
            chat.card_errors_visible
        ));
    }
    for page in &observation.hostile_pages {
        match &page.received {
            None => lines.push(format!("[{}] (another site) could not be read", page.tab)),
            Some(received) if received.is_empty() => {
                lines.push(format!("[{}] (another site) received nothing", page.tab))
            }
            Some(received) => {
                for receipt in received {
                    lines.push(format!(
                        "[{}] (another site) received on {} from {:?}: {}",
                        page.tab,
                        receipt.channel,
                        receipt.origin,
                        payload_text(&Value::String(receipt.data.clone()), layer)
                    ));
                }
            }
        }
    }
    for redirect in &observation.cross_session_redirects {
        lines.push(format!(
            "[{}] another session's redirect: {} token response(s); that session's connection is {}",
            redirect.tab, redirect.tokens_issued, redirect.other_session_status
        ));
    }
    for probe in &observation.other_org_probes {
        normalizer.learn(&probe.connection_id, "CONNECTION");
        let who = if probe.by_its_member {
            "its member"
        } else {
            "this session"
        };
        let answer = match layer {
            Layer::Transcript => probe.body.trim().to_owned(),
            // The body's wording is the platform's; what the member reads is its status.
            Layer::Normative if probe.by_its_member => serde_json::from_str::<Value>(&probe.body)
                .ok()
                .and_then(|v| v["status"].as_str().map(|s| format!("status {s}")))
                .unwrap_or_default(),
            Layer::Normative => String::new(),
        };
        lines.push(
            format!("{who}: {} -> {} {answer}", probe.what, probe.status)
                .trim_end()
                .to_owned(),
        );
    }
    lines.into_iter().map(|l| normalizer.apply(&l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normative_layer_reads_a_scope_as_a_set_and_the_transcript_as_written() {
        let query = "scope=files.write+files.read&state=s&prompt=consent";
        assert_eq!(
            sorted_query(query, Layer::Normative),
            "scope=files.read files.write&state=s"
        );
        assert_eq!(
            sorted_query(query, Layer::Transcript),
            "prompt=consent&scope=files.write files.read&state=s"
        );
    }

    #[test]
    fn without_the_provider_keeps_everything_but_its_pages_and_its_log() {
        let trace = "steps:\n  1. consent allow in [provider]\ntabs:\n  [chat] loads chat main (no opener)\n  [provider] loads [PROVIDER]/authorize?x (with opener)\nprovider:\n  POST /token -> 200 (issued)\nchats:\n  [chat] said 1\n";
        assert_eq!(
            without_the_provider(trace),
            "steps:\n  1. consent allow in [provider]\ntabs:\n  [chat] loads chat main (no opener)\nchats:\n  [chat] said 1\n"
        );
    }
}
