//! The run as a sequence of moments in time order, for the report's sequence chart: the user's
//! steps, each tab's documents and `window.open` calls, each channel delivery from the tab that
//! sent it to the tab that received it, and the requests the provider received (from a tab, or
//! from the platform's server). Every text goes through the normalizer, so the chart carries
//! placeholders, never a secret.

use crate::check::normalize::Normalizer;
use crate::check::observation::Observation;
use crate::check::recorded::{Event, Recorded};
use serde::{Deserialize, Serialize};

/// The user's lane.
pub const USER: &str = "user";
/// The platform's server (its requests to the provider).
pub const PLATFORM: &str = "platform (server)";
/// The provider's server.
pub const PROVIDER: &str = "provider (server)";

/// One moment of the chart: an arrow from `from` to `to`, or a note on `from` alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Milliseconds since the run's first moment.
    pub at_ms: u64,
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub text: String,
    /// What kind of moment: `step`, `navigation`, `open`, `delivery`, `request`.
    pub kind: String,
}

/// Milliseconds since the Unix epoch, as the browsers' and the provider's timestamps are.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The lanes of `moments` in order of first appearance, the user first and the servers last.
pub fn lanes(moments: &[Moment]) -> Vec<String> {
    let mut tabs: Vec<String> = Vec::new();
    for moment in moments {
        for lane in std::iter::once(&moment.from).chain(moment.to.as_ref()) {
            if ![USER, PLATFORM, PROVIDER].contains(&lane.as_str()) && !tabs.contains(lane) {
                tabs.push(lane.clone());
            }
        }
    }
    let mut lanes = vec![USER.to_owned()];
    lanes.extend(tabs);
    lanes.push(PLATFORM.to_owned());
    lanes.push(PROVIDER.to_owned());
    lanes
}

/// The run's moments in time order. Moments without a time (an engine that does not say) keep
/// their place after the one before them.
pub fn moments(observation: &Observation, normalizer: &mut Normalizer) -> Vec<Moment> {
    let mut moments: Vec<(u64, Moment)> = Vec::new();
    let mut push = |at: u64, from: &str, to: Option<&str>, text: String, kind: &str| {
        moments.push((
            at,
            Moment {
                at_ms: at,
                from: from.to_owned(),
                to: to.map(str::to_owned),
                text,
                kind: kind.to_owned(),
            },
        ))
    };
    for (line, at) in observation.steps.iter().zip(&observation.step_started_ms) {
        push(
            *at,
            USER,
            first_tab(line),
            normalizer.apply(line.trim()),
            "step",
        );
    }
    let mut last = observation.step_started_ms.first().copied().unwrap_or(0);
    for (index, record) in observation.recorded.iter().enumerate() {
        let at = record.at_ms.unwrap_or(last);
        last = at;
        match &record.event {
            Event::Document { url: Some(url), .. } if url != "about:blank" && !url.is_empty() => {
                push(
                    at,
                    &record.tab,
                    None,
                    normalizer.apply(&format!("loads {url}")),
                    "navigation",
                )
            }
            Event::WindowOpen { url, features, .. } => push(
                at,
                &record.tab,
                opened_tab(observation, at),
                normalizer.apply(&format!(
                    "window.open {}{}",
                    url.as_deref().unwrap_or(""),
                    features
                        .as_deref()
                        .filter(|f| !f.is_empty())
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                )),
                "open",
            ),
            Event::BcReceive { .. } | Event::StorageEvent { .. } | Event::Message { .. } => {
                let (channel, data) = delivered(&record.event);
                let from = sender(observation, index, &record.event);
                // A tab's own listener hearing its own broadcast says nothing.
                if from == Some(record.tab.as_str()) {
                    continue;
                }
                push(
                    at,
                    from.unwrap_or("?"),
                    Some(&record.tab),
                    normalizer.apply(&format!("{channel} {data}")),
                    "delivery",
                )
            }
            Event::BcUnavailable { .. } => push(
                at,
                &record.tab,
                None,
                "cannot listen on BroadcastChannel".into(),
                "delivery",
            ),
            _ => {}
        }
    }
    // The provider counts time from its own start: its requests are placed by the first
    // authorization request, which the browser loaded as a document just after.
    let offset = provider_offset(observation);
    // The provider's pages are asked for by the tab that shows them.
    let provider_tab = observation
        .recorded
        .iter()
        .find(|r| {
            r.event.url().is_some_and(shows_the_provider)
                && matches!(r.event, Event::Document { .. })
        })
        .map(|r| r.tab.clone())
        .unwrap_or_else(|| "provider tab".into());
    for request in &observation.provider_requests {
        let from = match request.endpoint {
            fake_provider::Endpoint::Authorize | fake_provider::Endpoint::Consent => {
                provider_tab.as_str()
            }
            _ => PLATFORM,
        };
        let text = normalizer.apply(&format!(
            "{} {} -> {} ({})",
            request.method, request.path, request.status, request.outcome
        ));
        let at = (request.at_ms as i64 + offset).max(0) as u64;
        push(at, from, Some(PROVIDER), text, "request");
    }
    moments.sort_by_key(|(at, _)| *at);
    let start = moments.first().map(|(at, _)| *at).unwrap_or(0);
    moments
        .into_iter()
        .map(|(at, mut moment)| {
            moment.at_ms = at.saturating_sub(start);
            moment
        })
        .collect()
}

/// The first tab a step line names (`[chat]`), punctuation aside.
fn first_tab(line: &str) -> Option<&str> {
    let start = line.find('[')? + 1;
    let end = line[start..].find(']')? + start;
    Some(&line[start..end]).filter(|tab| !tab.is_empty() && !tab.contains('#'))
}

/// The tab a `window.open` at `at` opened: the one the latest connect step before it said it
/// opens (`opening [provider]`).
fn opened_tab(observation: &Observation, at: u64) -> Option<&str> {
    observation
        .steps
        .iter()
        .zip(&observation.step_started_ms)
        .filter(|(_, started)| **started <= at)
        .filter_map(|(line, _)| {
            let rest = &line[line.find("opening [")? + "opening ".len()..];
            first_tab(rest)
        })
        .next_back()
}

/// A URL of the provider's authorization page.
fn shows_the_provider(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.path().ends_with("/authorize"))
}

/// How far to move the provider's times (ms since it started) onto the browser's clock.
fn provider_offset(observation: &Observation) -> i64 {
    let loaded = observation.recorded.iter().find_map(|r| match &r.event {
        Event::Document { url: Some(url), .. } if shows_the_provider(url) => r.at_ms,
        _ => None,
    });
    let asked = observation
        .provider_requests
        .iter()
        .find(|r| r.path.ends_with("/authorize"))
        .map(|r| r.at_ms);
    let first_step = observation.step_started_ms.first().copied();
    let first_request = observation.provider_requests.first().map(|r| r.at_ms);
    match (loaded, asked, first_step, first_request) {
        (Some(loaded), Some(asked), _, _) => loaded as i64 - asked as i64 - 1,
        (_, _, Some(step), Some(request)) => step as i64 - request as i64,
        _ => 0,
    }
}

/// The channel and the data of a receipt.
fn delivered(event: &Event) -> (&'static str, String) {
    match event {
        Event::BcReceive { data, .. } => ("BroadcastChannel", data.to_string()),
        Event::StorageEvent { key, new_value, .. } => (
            "storage event",
            format!(
                "{} = {}",
                key.as_deref().unwrap_or("null"),
                new_value.as_deref().unwrap_or("(removed)")
            ),
        ),
        Event::Message { data, .. } => ("postMessage", data.to_string()),
        _ => ("", String::new()),
    }
}

/// The latest callback page of another tab before record `index`: who posts to an opener.
fn latest_callback<'a>(
    observation: &'a Observation,
    index: usize,
    receiver: &str,
) -> Option<&'a str> {
    observation.recorded[..index]
        .iter()
        .rev()
        .find(|r| {
            r.tab != receiver
                && matches!(r.event, Event::Document { .. })
                && r.event
                    .url()
                    .and_then(|u| url::Url::parse(u).ok())
                    .is_some_and(|u| crate::contract::is_callback(&u))
        })
        .map(|r| r.tab.as_str())
}

/// The tab that sent what a receipt got: the latest send before it of the same data on the
/// same channel (BroadcastChannel and storage by the callback, `postMessage` to the opener).
fn sender<'a>(observation: &'a Observation, index: usize, receipt: &Event) -> Option<&'a str> {
    let same = |sent: &Recorded| match (&sent.event, receipt) {
        (Event::BcSend { data }, Event::BcReceive { data: got, .. }) => data == got,
        (
            Event::StorageWrite { key, value },
            Event::StorageEvent {
                key: Some(got_key),
                new_value: Some(got),
                ..
            },
        ) => key == got_key && value == got,
        _ => false,
    };
    if let Event::Message { .. } = receipt {
        // The recorder sees a postMessage in the window it is posted to, not in the sender's.
        return latest_callback(observation, index, &observation.recorded[index].tab);
    }
    observation.recorded[..index]
        .iter()
        .rev()
        .find(|sent| same(sent))
        .map(|sent| sent.tab.as_str())
}
