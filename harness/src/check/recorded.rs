//! What the recorder (`browser/run/recorder.js`) reports from inside every document, typed as
//! it sends it (`{"e": KIND, "doc": ID, ...}`), and the requests a tab made (BiDi's network
//! events). A test keeps the kinds in step with the recorder's source.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One report, with the tab and the document it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub tab: String,
    /// The document's id, as the recorder numbered it (`None` for a request).
    pub doc: Option<String>,
    /// When the browser said it (ms since the Unix epoch), where it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    pub event: Event,
}

impl Recorded {
    /// The report's kind, as the recorder names it (`document`, `bc-send`, ...).
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }
}

/// The event being handled when `window.open` was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gesture {
    #[serde(rename = "type")]
    pub kind: String,
    pub trusted: bool,
}

/// A report of the recorder. Values a page can make unreadable are `Option`s (`null`, or
/// absent where the page passed `undefined`); channel data is kept as the JSON it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "kebab-case")]
pub enum Event {
    /// A document started, or was parsed.
    Document {
        url: Option<String>,
        #[serde(rename = "hasOpener", default)]
        has_opener: Option<bool>,
        #[serde(default)]
        name: Option<String>,
        /// In a frame whose top-level page is of another site.
        #[serde(rename = "thirdParty", default)]
        third_party: bool,
    },
    /// The page called `window.close()`.
    CloseCalled,
    /// `window.open` was called.
    WindowOpen {
        url: Option<String>,
        target: Option<String>,
        features: Option<String>,
        gesture: Option<Gesture>,
        #[serde(default)]
        activation: Option<bool>,
        #[serde(default)]
        blocked: bool,
    },
    /// A fetch or XMLHttpRequest of the page answered.
    Http {
        via: String,
        method: Option<String>,
        url: Option<String>,
        status: Option<u16>,
        #[serde(rename = "requestBody", default)]
        request_body: Option<String>,
        #[serde(rename = "responseBody", default)]
        response_body: Option<String>,
    },
    /// A message was posted on the platform's BroadcastChannel.
    BcSend {
        #[serde(default)]
        data: Value,
    },
    /// The recorder's own BroadcastChannel listener got a message.
    BcReceive {
        #[serde(default)]
        origin: Option<String>,
        #[serde(default)]
        data: Value,
    },
    /// BroadcastChannel could not be listened on.
    BcUnavailable { error: String },
    /// `Storage.setItem` was called.
    StorageWrite { key: String, value: String },
    /// The recorder's own storage listener got an event (`new_value` `None`: a removal).
    StorageEvent {
        key: Option<String>,
        #[serde(rename = "newValue")]
        new_value: Option<String>,
        #[serde(default)]
        url: Option<String>,
    },
    /// `postMessage` was called on this window, with its target origin.
    PostMessage {
        #[serde(rename = "targetOrigin")]
        target_origin: Option<String>,
        #[serde(default)]
        data: Value,
    },
    /// The recorder's own message listener got a message.
    Message {
        origin: Option<String>,
        #[serde(default)]
        data: Value,
    },
    /// What script can see: the markup, the text, cookies, storage, `window.name`.
    Surfaces {
        reason: String,
        url: Option<String>,
        html: Option<String>,
        text: Option<String>,
        cookie: Option<String>,
        #[serde(default)]
        local: Value,
        #[serde(default)]
        session: Value,
        name: Option<String>,
    },
    /// A console line, where the engine's console is not readable from outside.
    Console { level: String, text: String },
    /// A request the tab made (documents, scripts, images, fetches): BiDi's, not the
    /// recorder's.
    Request {
        method: Option<String>,
        url: Option<String>,
        referer: Option<String>,
    },
}

impl Event {
    /// Every kind, as the recorder names it.
    pub const KINDS: [&'static str; 14] = [
        "document",
        "close-called",
        "window-open",
        "http",
        "bc-send",
        "bc-receive",
        "bc-unavailable",
        "storage-write",
        "storage-event",
        "post-message",
        "message",
        "surfaces",
        "console",
        "request",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Document { .. } => "document",
            Event::CloseCalled => "close-called",
            Event::WindowOpen { .. } => "window-open",
            Event::Http { .. } => "http",
            Event::BcSend { .. } => "bc-send",
            Event::BcReceive { .. } => "bc-receive",
            Event::BcUnavailable { .. } => "bc-unavailable",
            Event::StorageWrite { .. } => "storage-write",
            Event::StorageEvent { .. } => "storage-event",
            Event::PostMessage { .. } => "post-message",
            Event::Message { .. } => "message",
            Event::Surfaces { .. } => "surfaces",
            Event::Console { .. } => "console",
            Event::Request { .. } => "request",
        }
    }

    /// The URL of a document, a `window.open`, a request, a page's HTTP call or its surfaces.
    pub fn url(&self) -> Option<&str> {
        match self {
            Event::Document { url, .. }
            | Event::WindowOpen { url, .. }
            | Event::Http { url, .. }
            | Event::Surfaces { url, .. }
            | Event::Request { url, .. } => url.as_deref(),
            _ => None,
        }
    }

    /// The data a channel carried: BroadcastChannel or `postMessage`, sent or received.
    pub fn data(&self) -> Option<&Value> {
        match self {
            Event::BcSend { data }
            | Event::BcReceive { data, .. }
            | Event::PostMessage { data, .. }
            | Event::Message { data, .. } => Some(data),
            _ => None,
        }
    }

    /// Whether the callback sent it (a channel write), as opposed to a page receiving it.
    pub fn is_sent(&self) -> bool {
        matches!(
            self,
            Event::BcSend { .. } | Event::StorageWrite { .. } | Event::PostMessage { .. }
        )
    }

    /// A document of another site's frame.
    pub fn in_third_party_frame(&self) -> bool {
        matches!(
            self,
            Event::Document {
                third_party: true,
                ..
            }
        )
    }
}

/// `Some(text)` as the JSON string it was, `None` as `null`: how the trace writes an optional
/// value.
pub fn json_of(value: &Option<String>) -> Value {
    value.clone().map(Value::String).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_the_recorder_sends_is_a_kind_of_event() {
        let recorder = include_str!("../browser/run/recorder.js");
        let sent: std::collections::BTreeSet<&str> = recorder
            .split("e: \"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(sent.len() >= 12, "{sent:?}");
        for kind in &sent {
            assert!(
                Event::KINDS.contains(kind),
                "recorder.js sends {kind:?}, which check/recorded.rs does not type"
            );
        }
    }

    #[test]
    fn a_report_parses_with_what_a_page_left_unreadable() {
        let open: Event = serde_json::from_str(
            r#"{"e":"window-open","doc":"d1","url":null,"target":"_blank","features":null,"gesture":{"type":"click","trusted":true},"activation":null,"blocked":false}"#,
        )
        .unwrap();
        assert_eq!(open.kind(), "window-open");
        assert_eq!(open.url(), None);
        let posted: Event =
            serde_json::from_str(r#"{"e":"post-message","targetOrigin":"*"}"#).unwrap();
        assert_eq!(posted.data(), Some(&Value::Null));
        assert!(serde_json::from_str::<Event>(r#"{"e":"no-such-kind"}"#).is_err());
    }
}
