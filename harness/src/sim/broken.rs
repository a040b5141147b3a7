//! Deliberately broken chat clients and platform servers: what the browser tier's known-bad
//! platforms do, in the simulator. The clients' edits are the reference server's
//! (`reference_server::defects::edits`); the servers are its defects.

use reference_server::Defect;
use reference_server::defects::edits::{
    Edit, NO_ORIGIN_CHECK, NO_POLLING, RESEND_ON_ERROR, RESEND_ON_EVERY_DELIVERY,
};
use serde::Serialize;

/// A deliberately broken chat client: what the browser tier's known-bad platforms do, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BrokenClient {
    /// Listens to `window.opener` messages only, and never polls.
    OpenerOnly,
    /// Never polls the server.
    NeverPolls,
    /// Re-sends on every delivery.
    ResendOnEveryDelivery,
    /// Acts on messages from any origin (no origin check).
    AcceptsAnyOrigin,
    /// Re-sends when the server says the connection failed.
    ResendsOnError,
}

impl BrokenClient {
    pub const ALL: [BrokenClient; 5] = [
        BrokenClient::OpenerOnly,
        BrokenClient::NeverPolls,
        BrokenClient::ResendOnEveryDelivery,
        BrokenClient::AcceptsAnyOrigin,
        BrokenClient::ResendsOnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BrokenClient::OpenerOnly => "opener-only",
            BrokenClient::NeverPolls => "never-polls",
            BrokenClient::ResendOnEveryDelivery => "resend-on-every-delivery",
            BrokenClient::AcceptsAnyOrigin => "accepts-any-origin",
            BrokenClient::ResendsOnError => "resends-on-error",
        }
    }

    /// Its edits to `card-decisions.js`, from the reference server's one copy of each.
    pub fn edits(self) -> &'static [Edit] {
        match self {
            BrokenClient::OpenerOnly | BrokenClient::NeverPolls => &NO_POLLING,
            BrokenClient::ResendOnEveryDelivery => &[RESEND_ON_EVERY_DELIVERY],
            BrokenClient::AcceptsAnyOrigin => &[NO_ORIGIN_CHECK],
            BrokenClient::ResendsOnError => &[RESEND_ON_ERROR],
        }
    }

    /// The module's text with this client's edits.
    pub fn module_source(self) -> String {
        let mut source = reference_server::CARD_DECISIONS_JS.to_owned();
        for (_, from, to) in self.edits() {
            assert!(
                source.contains(from),
                "card-decisions.js no longer contains {from:?}: update BrokenClient::edits"
            );
            source = source.replace(from, to);
        }
        source
    }

    /// Whether the page listens on BroadcastChannel and storage events (not only the opener).
    pub(crate) fn listens_beyond_opener(self) -> bool {
        self != BrokenClient::OpenerOnly
    }
}

/// A deliberately broken platform server: one of the reference server's defects whose fault is
/// in its server code (what the simulator runs), not in the pages' scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BrokenServer {
    /// The access token rides in the callback URL.
    TokenInCallbackUrl,
    /// An MCP connector's refresh leaves out `resource`.
    DropsResourceOnRefresh,
    /// A tool call whose fresh token is refused too refreshes and asks again, five times over.
    RetriesWithoutBound,
    /// An MCP connector registers a new client on every connect.
    RegistersOnEveryConnect,
    /// An MCP connector knows only dynamic registration, so it cannot connect to a server that
    /// takes client ID metadata documents alone.
    IgnoresClientMetadataDocuments,
    /// An MCP connector whose authorization server refuses `resource` signs in again without
    /// it.
    RetriesWithoutResource,
    /// A disconnect revokes the access token only: the refresh token stays alive.
    RevokesAccessTokenOnly,
}

impl BrokenServer {
    pub const ALL: [BrokenServer; 7] = [
        BrokenServer::TokenInCallbackUrl,
        BrokenServer::DropsResourceOnRefresh,
        BrokenServer::RetriesWithoutBound,
        BrokenServer::RegistersOnEveryConnect,
        BrokenServer::IgnoresClientMetadataDocuments,
        BrokenServer::RetriesWithoutResource,
        BrokenServer::RevokesAccessTokenOnly,
    ];

    /// The reference server's defect.
    pub fn defect(self) -> Defect {
        match self {
            BrokenServer::TokenInCallbackUrl => Defect::TokenInCallbackUrl,
            BrokenServer::DropsResourceOnRefresh => Defect::DropsResourceOnRefresh,
            BrokenServer::RetriesWithoutBound => Defect::RetriesWithoutBound,
            BrokenServer::RegistersOnEveryConnect => Defect::RegistersOnEveryConnect,
            BrokenServer::IgnoresClientMetadataDocuments => Defect::IgnoresClientMetadataDocuments,
            BrokenServer::RetriesWithoutResource => Defect::RetriesWithoutResource,
            BrokenServer::RevokesAccessTokenOnly => Defect::RevokesAccessTokenOnly,
        }
    }

    pub fn name(self) -> String {
        self.defect().name()
    }
}
