//! The tabs the flow opens and closes: the provider's as a tab, opened inside the user's
//! gesture, and the callback's closing itself.

use super::payload::callback_documents;
use super::{Check, Rule, Run, Tier, unless};
use crate::check::observation::{Observation, SKIPPED_MARK};
use crate::check::recorded::{Event, Gesture};
use crate::contract::CALLBACK_PATH;
use crate::scenario::Step;

pub const OPENED_AS_TAB: &str = "opened-as-tab";
pub const CALLBACK_CLOSED: &str = "callback-closed";
pub const OPENED_IN_GESTURE: &str = "opened-in-gesture";

pub struct OpenedAsTab;

impl Check for OpenedAsTab {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: OPENED_AS_TAB,
            summary: "every connect opened its tab with window.open and no features string",
            enforces: "oauth-flow.md, Flow 2: \"The platform opens the provider's authorization URL in a normal new tab, not a popup. No fixed width/height/popup=1 features.\"",
            tier: Tier::Browser,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        let opened = run
            .observation
            .recorded
            .iter()
            .any(|r| matches!(r.event, Event::WindowOpen { .. }));
        let connects = run
            .scenario
            .steps
            .iter()
            .any(|s| matches!(s, Step::Connect { .. }));
        unless(opened || connects, "connect click")
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        opened_as_tab(run.observation)
    }
}

pub struct CallbackClosed;

impl Check for CallbackClosed {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: CALLBACK_CLOSED,
            summary: "the callback tab closed itself, or shows how to close it where the browser refuses",
            enforces: "oauth-flow.md, Flow 5: \"The callback page broadcasts the result, then closes itself.\" target-contract.md §4: \"where the browser refuses, [data-testid=callback-close-hint] becomes visible\"",
            tier: Tier::Both,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !callback_documents(run.observation).is_empty(),
            "callback page",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        callback_closed(run.observation)
    }
}

pub struct OpenedInGesture;

impl Check for OpenedInGesture {
    fn rule(&self) -> &'static Rule {
        &Rule {
            id: OPENED_IN_GESTURE,
            summary: "every window.open of a platform page ran inside a trusted click or key press, not after an await, a timer or a promise (where popup blockers refuse it)",
            enforces: "target-contract.md §4: \"window.open(url) in the click handler itself, no await before it\"; oauth-flow.md, Flow 2: \"opens the provider's authorization URL in a normal new tab\"",
            tier: Tier::Browser,
        }
    }
    fn not_applicable(&self, run: &Run) -> Option<String> {
        unless(
            !platform_opens(run.observation, run.platform_origin).is_empty(),
            "window.open by a platform page",
        )
    }

    fn judge(&self, run: &Run) -> Vec<String> {
        opened_in_gesture(run.observation, run.platform_origin)
    }
}

/// Invariant 3: the provider tab was opened with `window.open`, as a tab: no features string.
fn opened_as_tab(observation: &Observation) -> Vec<String> {
    let mut found = Vec::new();
    let opens: Vec<(&str, &str)> = observation
        .recorded
        .iter()
        .filter_map(|r| match &r.event {
            Event::WindowOpen { features, .. } => {
                Some((r.tab.as_str(), features.as_deref().unwrap_or("")))
            }
            _ => None,
        })
        .collect();
    for (tab, features) in &opens {
        if !features.is_empty() {
            found.push(format!(
                "tab {tab} called window.open with features {features:?}"
            ));
        }
    }
    let connects = observation
        .steps
        .iter()
        .filter(|s| s.contains(". connect ") && !s.contains(SKIPPED_MARK))
        .count();
    if connects > opens.len() {
        found.push(format!(
            "{connects} connect click(s) but {} window.open call(s): a tab was opened another way",
            opens.len()
        ));
    }
    found
}

/// Invariant 5: the callback tab closed itself, or stayed open showing how to close it.
fn callback_closed(observation: &Observation) -> Vec<String> {
    observation
        .callback_tabs
        .iter()
        .filter(|tab| !tab.closed_by_itself && !tab.close_hint_visible)
        .map(|tab| {
            format!(
                "tab {} loaded {CALLBACK_PATH}, stayed open and shows no close hint",
                tab.tab
            )
        })
        .collect()
}

/// The events that start a user activation, or are dispatched inside one (a click follows its
/// mouseup, a submit its click or Enter).
const ACTIVATIONS: [&str; 12] = [
    "click",
    "auxclick",
    "dblclick",
    "keydown",
    "keypress",
    "keyup",
    "mousedown",
    "mouseup",
    "pointerdown",
    "pointerup",
    "touchend",
    "submit",
];

/// The `window.open` calls made by the platform's own pages (not a hostile page's).
fn platform_opens<'a>(
    observation: &'a Observation,
    platform_origin: &str,
) -> Vec<&'a crate::check::observation::Recorded> {
    let platform_documents: Vec<&Option<String>> = observation
        .recorded
        .iter()
        .filter(|r| {
            matches!(r.event, Event::Document { .. })
                && r.event
                    .url()
                    .and_then(|u| url::Url::parse(u).ok())
                    .is_some_and(|u| u.origin().ascii_serialization() == platform_origin)
        })
        .map(|r| &r.doc)
        .collect();
    observation
        .recorded
        .iter()
        .filter(|r| matches!(r.event, Event::WindowOpen { .. }))
        .filter(|open| platform_documents.contains(&&open.doc))
        .collect()
}

/// Invariant 14: every `window.open` of a platform page ran synchronously inside a trusted
/// click or key press. After an await, a timer or a promise, Safari and popup blockers refuse
/// it (Chromium allows it for 5 s, which is why a green run in Chromium alone proves nothing).
fn opened_in_gesture(observation: &Observation, platform_origin: &str) -> Vec<String> {
    let mut found = Vec::new();
    for open in platform_opens(observation, platform_origin) {
        let Event::WindowOpen {
            gesture, blocked, ..
        } = &open.event
        else {
            continue;
        };
        let why = match gesture {
            None => "outside any event (after an await, a timer or a promise)".to_owned(),
            Some(Gesture {
                kind,
                trusted: false,
            }) => format!("inside an untrusted {kind} event (dispatched by script)"),
            Some(Gesture { kind, .. }) if !ACTIVATIONS.contains(&kind.as_str()) => {
                format!("inside a {kind} event, which is not a user activation")
            }
            Some(_) => continue,
        };
        found.push(format!(
            "tab {} called window.open {why}{}",
            open.tab,
            if *blocked {
                ", and the browser blocked the popup"
            } else {
                ""
            }
        ));
    }
    found
}
