//! The one way the reference server departs from itself on purpose, for the harness's
//! detection matrix: a [`Behaviour`] whose every method's default is the reference's, chosen
//! once at start-up (`--defect NAME` gives one of `defects.rs`; none gives [`Reference`]).
//! What the contract leaves to a platform is the other kind of difference, data in
//! `choices.rs` (`--variant NAME`). The named points where a handler asks are in `hooks.rs`.

use crate::db::{ConnectionRecord, Database};

/// An edit to a served page script: `(file, from, to)`.
pub type ScriptEdit = (&'static str, &'static str, &'static str);

/// The stylesheet a callback page links under `token-in-subresource-url`, and the image it
/// makes the browser fetch.
pub const TOKEN_STYLESHEET_PATH: &str = "/debug/connection.css";
pub const TOKEN_PIXEL_PATH: &str = "/debug/pixel.gif";

/// How the platform behaves where a defect can make it break a promise. Every default is the
/// reference behaviour.
pub trait Behaviour: Send + Sync {
    /// The defect's name, `None` for the reference.
    fn name(&self) -> Option<String> {
        None
    }

    /// Edits to the served page scripts.
    fn script_edits(&self) -> &'static [ScriptEdit] {
        &[]
    }

    /// Serves [`TOKEN_STYLESHEET_PATH`], whose image URL carries the connection's token.
    fn serves_token_stylesheet(&self) -> bool {
        false
    }

    /// A queued message is re-sent for a connection that is not connected.
    fn resends_unconnected(&self) -> bool {
        false
    }

    /// A disconnect revokes the refresh token at the provider, not only the access token.
    fn revokes_refresh_token(&self) -> bool {
        true
    }

    /// Whether a delivery re-sends the queued message: the first only.
    fn resends(&self, first_resend: bool) -> bool {
        first_resend
    }

    /// Every connect click creates a connection, instead of reusing the pending one.
    fn new_connection_per_click(&self) -> bool {
        false
    }

    /// The authorization request sent to the provider.
    fn authorization_url(&self, _session_id: &str, url: url::Url) -> url::Url {
        url
    }

    /// A redirect whose state was used already, or for a connection no longer pending, is
    /// refused.
    fn refuses_replays(&self) -> bool {
        true
    }

    /// The redirect must come from the browser session that started the sign-in.
    fn binds_state_to_session(&self) -> bool {
        true
    }

    /// The message stored when the provider refused.
    fn provider_error_message(&self, message: String, _description: Option<&str>) -> String {
        message
    }

    /// The callback URL after a successful exchange.
    fn success_location(&self, location: String, _access_token: &str, _code: &str) -> String {
        location
    }

    /// The callback page as served.
    fn callback_page(
        &self,
        page: String,
        _message: &str,
        _connection_id: Option<&str>,
        _db: &Database,
    ) -> String {
        page
    }

    /// The connection the status API answers about: the org's.
    fn status_lookup(
        &self,
        found: Option<ConnectionRecord>,
        _id: &str,
        _db: &Database,
    ) -> anyhow::Result<Option<ConnectionRecord>> {
        Ok(found)
    }

    /// The status API's answer.
    fn status_answer(
        &self,
        answer: serde_json::Value,
        _connection_id: &str,
        _db: &Database,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(answer)
    }

    /// A disconnect marks the connection revoked and keeps its token, instead of deleting
    /// and revoking.
    fn disconnect_keeps_token(&self) -> bool {
        false
    }

    /// A connection's tokens are refreshed one request at a time.
    fn refreshes_one_at_a_time(&self) -> bool {
        true
    }

    /// How many refreshes one tool call may make before it gives up.
    fn refreshes_per_tool_call(&self) -> u32 {
        1
    }

    /// The `resource` an MCP connector asks for, given its server's.
    fn mcp_resource(&self, found: String) -> String {
        found
    }

    /// A refresh names the connector's `resource` again.
    fn resource_on_refresh(&self) -> bool {
        true
    }

    /// An authorization response naming another issuer is refused.
    fn checks_issuer(&self) -> bool {
        true
    }

    /// An API answer of a shape the connector does not read is a tool error.
    fn refuses_unreadable_answers(&self) -> bool {
        true
    }

    /// A failed revocation at the provider keeps the credentials, stored again.
    fn keeps_credentials_after_failed_revocation(&self) -> bool {
        false
    }

    /// A tool call still uses connection `id`, shown revoked, whose token was kept.
    fn uses_revoked_connection(&self, _id: &str, _db: &Database) -> bool {
        false
    }

    /// An MCP connector's connect reuses the client the org registered.
    fn reuses_registration(&self) -> bool {
        true
    }

    /// An MCP connector uses a client ID metadata document where the server takes one.
    fn uses_metadata_documents(&self) -> bool {
        true
    }

    /// Where an authorization server refuses the `resource`, the sign-in is tried again
    /// without it (instead of showing the error).
    fn retries_without_resource(&self) -> bool {
        false
    }
}

/// The URL without the query parameters `drop` selects (what a deviation leaves out of a
/// request: the PKCE challenge, the resource).
pub fn without_parameters(mut url: url::Url, drop: impl Fn(&str) -> bool) -> url::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !drop(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    url
}

/// The reference behaviour: every default.
pub struct Reference;

impl Behaviour for Reference {}
