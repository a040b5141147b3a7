//! The platform's own choices: everything `docs/target-contract.md` leaves open (routes outside
//! the contract, wording, the session cookie, timings, extra parameters and fields), named in
//! one place. The reference server's are [`Choices::reference`]; `--variant NAME` picks another
//! conformant set (the harness's specificity matrix), so every hook point of a variant is here
//! and not inside the handlers. A defect is the other kind of difference, a `Behaviour`
//! (`deviation.rs`).
//!
//! ```
//! use reference_server::Choices;
//! let reference = Choices::reference();
//! assert_eq!(reference.connect_path("acme", "files"), "/acme/connectors/files/connect");
//! assert_eq!(reference.redirect_path, "/oauth/redirect");
//! ```

use crate::paths;
use serde::Serialize;

/// How the callback words its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// "Connected to Files.", "Files did not grant access (access_denied)."
    Reference,
    /// The same facts in other sentences.
    Reworded,
    /// No `oauth_message` at all (it is optional).
    Omitted,
}

/// The `Cross-Origin-Opener-Policy` the platform sends. Whichever it is, the callback's
/// opener may be gone, so the card never relies on it (`../shared/spec/oauth-flow.md`, "What
/// never happens").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OpenerPolicy {
    /// None (the reference's): the callback keeps the opener the chat's tab gave it.
    #[default]
    Unset,
    /// `same-origin` on every page (site-wide COOP): the chat's handle on the tab it opens reads
    /// closed once the tab leaves the origin, and the callback has no opener.
    SiteWide,
    /// `noopener-allow-popups` on the callback page only (Chromium 131 and later): the callback
    /// has no opener; the platform's other pages keep theirs.
    CallbackNoopenerAllowPopups,
}

impl OpenerPolicy {
    pub const ALL: [OpenerPolicy; 3] = [
        OpenerPolicy::Unset,
        OpenerPolicy::SiteWide,
        OpenerPolicy::CallbackNoopenerAllowPopups,
    ];

    /// The policy named `name`; the error lists the names.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        parse_named(name, &Self::ALL, "opener policy")
    }

    /// Its name in settings and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            OpenerPolicy::Unset => "unset",
            OpenerPolicy::SiteWide => "site-wide",
            OpenerPolicy::CallbackNoopenerAllowPopups => "callback-noopener-allow-popups",
        }
    }

    /// The header value for a page at `path`, if any.
    pub fn header_for(self, path: &str) -> Option<&'static str> {
        match self {
            OpenerPolicy::Unset => None,
            OpenerPolicy::SiteWide => Some("same-origin"),
            OpenerPolicy::CallbackNoopenerAllowPopups => {
                (path == paths::CALLBACK).then_some("noopener-allow-popups")
            }
        }
    }
}

/// When a tool call renews an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// When the stored expiry has passed (the reference).
    OnExpiry,
    /// This long before the stored expiry.
    Early { secs: u64 },
    /// Never on a clock: only after the API answered `401` (a token without a known expiry,
    /// as many platforms treat every token).
    OnUnauthorizedOnly,
}

/// What the platform says to the provider beyond what the contract demands: all of it its own
/// choice (target-contract.md, What the harness checks: "What the platform says to the
/// provider is its own business beyond these rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderConversation {
    pub refresh: RefreshPolicy,
    /// A refresh that returns an access token already expired ends the tool call there
    /// (the connection is gone), instead of trying the API with it.
    pub skips_expired_fresh_token: bool,
    /// One API call right after the code exchange, to test the new connection.
    pub tests_new_connection: bool,
    /// A step-up reconnect revokes, at the provider, the grant it replaces.
    pub revokes_replaced_grant: bool,
}

impl ProviderConversation {
    /// The reference server's.
    pub const REFERENCE: ProviderConversation = ProviderConversation {
        refresh: RefreshPolicy::OnExpiry,
        skips_expired_fresh_token: false,
        tests_new_connection: false,
        revokes_replaced_grant: false,
    };

    /// These choices with every choice of `other` that differs from the reference's.
    fn and(self, other: ProviderConversation) -> Self {
        let reference = Self::REFERENCE;
        ProviderConversation {
            refresh: if other.refresh != reference.refresh {
                other.refresh
            } else {
                self.refresh
            },
            skips_expired_fresh_token: self.skips_expired_fresh_token
                || other.skips_expired_fresh_token,
            tests_new_connection: self.tests_new_connection || other.tests_new_connection,
            revokes_replaced_grant: self.revokes_replaced_grant || other.revokes_replaced_grant,
        }
    }

    /// Whether an access token stored to expire at `expires_at_ms` counts as expired at
    /// `now_ms` (never, on a platform that keeps no clock).
    pub fn expired(&self, expires_at_ms: Option<i64>, now_ms: i64) -> bool {
        self.refresh != RefreshPolicy::OnUnauthorizedOnly
            && expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// Whether an access token stored to expire at `expires_at_ms` is renewed before a call at
    /// `now_ms`.
    pub fn refreshes_before_calling(&self, expires_at_ms: Option<i64>, now_ms: i64) -> bool {
        match (self.refresh, expires_at_ms) {
            (_, None) | (RefreshPolicy::OnUnauthorizedOnly, _) => false,
            (RefreshPolicy::OnExpiry, Some(at)) => at <= now_ms,
            (RefreshPolicy::Early { secs }, Some(at)) => at - (secs as i64) * 1000 <= now_ms,
        }
    }
}

/// One conformant set of choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    /// The route of the URL the connect buttons open (axum template with `{org}` and
    /// `{connector}`).
    pub connect_route: &'static str,
    /// The redirect URI's path, registered at the provider.
    pub redirect_path: &'static str,
    /// The path of the client ID metadata document (its URL is the `client_id` with
    /// authorization servers that take those).
    pub client_metadata_path: &'static str,
    /// An MCP connector finds its server's authorization again on every connect (it still
    /// reuses its client); the reference finds it once per org.
    pub mcp_discovery_every_connect: bool,
    /// Authorization request parameters beyond those the contract names.
    pub extra_authorization_parameters: &'static [(&'static str, &'static str)],
    pub session_cookie: &'static str,
    /// The session cookie's attributes after `name=value; `.
    pub session_cookie_attributes: &'static str,
    /// `/dev/login` goes through one more of the platform's own pages before `next`.
    pub login_hop: bool,
    /// `POST /dev/clock` moves the platform's clock ahead (virtual time).
    pub dev_clock: bool,
    pub wording: Wording,
    /// The status API answers with more fields than the contract names.
    pub status_extra_fields: bool,
    /// The callback page has other markup and text than the reference's.
    pub callback_markup: bool,
    /// A refused replay of a redirect (its state already used) names its connection in the
    /// error callback; the reference names none.
    pub replay_refusal_names_connection: bool,
    /// The redirect URI answers with a page that forwards to the callback (with a
    /// stylesheet, whose request carries the redirect URI's URL as its Referer) instead of a
    /// `302`.
    pub redirect_through_page: bool,
    /// How long the callback page waits after its deliveries before it closes itself.
    pub callback_close_after_ms: u32,
    /// What it says to the provider beyond the contract.
    pub provider_conversation: ProviderConversation,
    /// Edits to the page scripts: `(file, from, to)`.
    pub script_edits: Vec<(&'static str, &'static str, &'static str)>,
    pub opener_policy: OpenerPolicy,
    /// Other sites may frame the chat page (`frame-ancestors http: https:` there, no
    /// `X-Frame-Options`), and the session cookie is [`EMBEDDABLE_SESSION_COOKIE`].
    pub embeddable: bool,
}

/// The session cookie of a platform whose chat other sites embed: without `Partitioned`
/// (CHIPS) a browser that blocks third-party cookies (Chromium as a user has it, Firefox's
/// Total Cookie Protection) gives the frame no session; `SameSite=None` lets the frame send it;
/// `Partitioned` keys it by the embedding site, so no other site's page can use it.
pub const EMBEDDABLE_SESSION_COOKIE: &str = "Path=/; HttpOnly; SameSite=None; Secure; Partitioned";

impl Default for Choices {
    fn default() -> Self {
        Self::reference()
    }
}

/// The reference callback's wait before it closes itself, as `static/callback.js` has it.
pub const REFERENCE_CALLBACK_CLOSE_AFTER_MS: u32 = 100;

/// The reference callback's wait before it closes itself, as `static/callback.js` has it.
pub const REFERENCE_CALLBACK_CLOSE: &str = "  }, 100);\n})();";

/// The path of the extra sign-in hop (`login_hop`).
pub const LOGIN_HOP_PATH: &str = "/session/begin";

impl Choices {
    /// The reference server's choices.
    pub fn reference() -> Self {
        Self {
            connect_route: paths::CONNECT,
            redirect_path: paths::REDIRECT,
            client_metadata_path: paths::CLIENT_METADATA,
            mcp_discovery_every_connect: false,
            extra_authorization_parameters: &[],
            session_cookie: crate::SESSION_COOKIE,
            session_cookie_attributes: "Path=/; HttpOnly; SameSite=Lax",
            login_hop: false,
            dev_clock: true,
            wording: Wording::Reference,
            status_extra_fields: false,
            callback_markup: false,
            callback_close_after_ms: REFERENCE_CALLBACK_CLOSE_AFTER_MS,
            provider_conversation: ProviderConversation::REFERENCE,
            replay_refusal_names_connection: false,
            redirect_through_page: false,
            script_edits: Vec::new(),
            opener_policy: OpenerPolicy::Unset,
            embeddable: false,
        }
    }

    /// These choices with every choice of `other` that differs from the reference's: several
    /// variants at once.
    pub fn and(mut self, other: Choices) -> Self {
        let reference = Self::reference();
        macro_rules! take {
            ($($field:ident),*) => {$(
                if other.$field != reference.$field {
                    self.$field = other.$field;
                }
            )*};
        }
        take!(
            connect_route,
            redirect_path,
            client_metadata_path,
            mcp_discovery_every_connect,
            extra_authorization_parameters,
            session_cookie,
            session_cookie_attributes,
            login_hop,
            dev_clock,
            wording,
            status_extra_fields,
            callback_markup,
            callback_close_after_ms,
            replay_refusal_names_connection,
            redirect_through_page,
            opener_policy,
            embeddable
        );
        self.script_edits.extend(other.script_edits);
        self.provider_conversation = self.provider_conversation.and(other.provider_conversation);
        self
    }

    /// The connect URL's path for `org` and `connector`.
    pub fn connect_path(&self, org: &str, connector: &str) -> String {
        paths::fill(
            self.connect_route,
            &[("org", org), ("connector", connector)],
        )
    }

    /// `message` as this platform words it on the callback, or `None` to send none.
    pub fn callback_message(&self, success: bool, message: &str) -> Option<String> {
        match self.wording {
            Wording::Reference => Some(message.to_owned()),
            Wording::Reworded if success => Some("All set: you can go back to your chat.".into()),
            Wording::Reworded => Some(format!(
                "We could not finish connecting. Details: {message}"
            )),
            Wording::Omitted => None,
        }
    }

    /// The edits these choices make to the page scripts: their own, and the callback's wait
    /// before it closes itself where it is not the reference's.
    pub fn all_script_edits(&self) -> Vec<(&'static str, String, String)> {
        let mut edits: Vec<(&'static str, String, String)> = self
            .script_edits
            .iter()
            .map(|(file, from, to)| (*file, (*from).to_owned(), (*to).to_owned()))
            .collect();
        if self.callback_close_after_ms != REFERENCE_CALLBACK_CLOSE_AFTER_MS {
            edits.push((
                "callback.js",
                REFERENCE_CALLBACK_CLOSE.to_owned(),
                REFERENCE_CALLBACK_CLOSE.replace("100", &self.callback_close_after_ms.to_string()),
            ));
        }
        edits
    }

    /// The session cookie as set on sign-in.
    pub fn session_cookie_header(&self, session: &str) -> String {
        format!(
            "{}={session}; {}",
            self.session_cookie, self.session_cookie_attributes
        )
    }
}

/// The kebab-case name serde gives a unit variant.
pub(crate) fn kebab_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The member of `all` named `name`, or an error listing the allowed names.
pub(crate) fn parse_named<T: Serialize + Copy>(
    name: &str,
    all: &[T],
    what: &str,
) -> anyhow::Result<T> {
    all.iter()
        .copied()
        .find(|item| kebab_name(item) == name)
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(kebab_name).collect();
            let meant = names
                .iter()
                .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, candidate)| format!("did you mean {candidate:?}? "))
                .unwrap_or_default();
            anyhow::anyhow!(
                "unknown {what} {name:?}: {meant}the {what}s there are: {}",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_name_gets_the_closest_one() {
        let error = crate::OpenerPolicy::parse("sitewide")
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean \"site-wide\"?"), "{error}");
        let error = crate::OpenerPolicy::parse("zzz").unwrap_err().to_string();
        assert!(!error.contains("did you mean"), "{error}");
        assert!(error.contains("site-wide"), "{error}");
    }

    #[test]
    fn the_callback_script_has_the_close_wait_a_choice_edits() {
        let callback = include_str!("../static/callback.js");
        assert!(
            callback.contains(REFERENCE_CALLBACK_CLOSE),
            "static/callback.js no longer ends with {REFERENCE_CALLBACK_CLOSE:?}: update REFERENCE_CALLBACK_CLOSE"
        );
        let at_once = Choices {
            callback_close_after_ms: 0,
            ..Choices::reference()
        };
        assert_eq!(
            at_once.all_script_edits(),
            vec![(
                "callback.js",
                REFERENCE_CALLBACK_CLOSE.to_owned(),
                "  }, 0);\n})();".to_owned()
            )]
        );
    }
}
