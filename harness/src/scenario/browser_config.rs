//! The browser configuration of a scenario (`[browser]`): produced with the browser's own
//! means, never by changing the platform's pages.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A browser feature a scenario can remove before any page script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Feature {
    BroadcastChannel,
}

/// What `localStorage` and `sessionStorage` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StorageMode {
    #[default]
    Available,
    /// Every access throws `SecurityError`, as with cookies blocked (produced by a preload
    /// script, because the browser's own cookie blocking would also stop the platform's login).
    Throws,
    /// Only a page in a frame whose top-level page is of another origin gets `SecurityError`
    /// (as Safari, Firefox's strict mode and Chromium with third-party cookies blocked treat
    /// another site's frame); top-level tabs keep working storage. Also a preload script.
    ThrowsInThirdPartyFrames,
    /// Reads work, and every write throws `QuotaExceededError`, in every tab: the origin's
    /// quota is used up (another app of the same origin filled it). Also a preload script.
    Full,
}

impl StorageMode {
    /// Whether a write to storage in a top-level tab (the platform's own chat, connectors and
    /// callback tabs) goes through.
    pub fn writes_at_top_level(self) -> bool {
        self.fails(false).is_none()
    }

    /// Why storage cannot carry a result in a page, if it cannot: `framed` for a page in a
    /// frame under another origin's page.
    pub fn fails(self, framed: bool) -> Option<&'static str> {
        match self {
            StorageMode::Available => None,
            StorageMode::Throws => Some("storage throws"),
            StorageMode::ThrowsInThirdPartyFrames if framed => Some("storage throws in the frame"),
            StorageMode::ThrowsInThirdPartyFrames => None,
            StorageMode::Full => Some("storage is full: a write throws QuotaExceededError"),
        }
    }

    /// The word the recorder's preload script takes.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Available => "available",
            StorageMode::Throws => "throws",
            StorageMode::ThrowsInThirdPartyFrames => "throws-in-third-party-frames",
            StorageMode::Full => "full",
        }
    }
}

/// Whether tabs opened with `window.open` keep their opener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OpenerMode {
    #[default]
    Keep,
    /// Every `window.open` is made with `noopener` (the browser severs the opener).
    Noopener,
}

/// The browser configuration, produced with the browser's own means (BiDi preload scripts,
/// BiDi network interception), never by changing the platform's pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserConfig {
    pub remove_features: Vec<Feature>,
    pub storage: StorageMode,
    pub opener: OpenerMode,
    /// A slow network to one origin: every request the browser makes there waits before it
    /// leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// Network latency to one origin, by WebDriver BiDi network interception (`network.addIntercept`,
/// each request continued after `ms`): page loads, scripts, `fetch` and form posts alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Whose origin is slow.
    pub origin: SlowOrigin,
    /// How long each request waits before it leaves, in milliseconds.
    pub ms: u64,
}

/// An origin of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SlowOrigin {
    /// The platform's (its pages, scripts and API).
    Platform,
    /// The provider's (its authorization and consent pages).
    Provider,
}
