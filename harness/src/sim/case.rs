//! One simulated flow: the browser's capabilities, the provider's behaviour, what the user
//! does, and the seed of every delivery delay. `proptest` generates and shrinks these.

use proptest::prelude::*;
use serde::Serialize;

/// Where the provider sends `Cross-Origin-Opener-Policy: same-origin` (which severs the
/// provider tab from the chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CoopHop {
    ConsentPage,
    Redirect,
}

/// What the provider does with the sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProviderBehaviour {
    /// Shows the consent page; the token endpoint works.
    Behaves,
    /// Redirects at once with `error=server_error`.
    ErrorRedirect,
    /// The token endpoint answers 503.
    TokenUnavailable,
    /// The token endpoint refuses the code (`invalid_grant`).
    TokenInvalidGrant,
    /// The token endpoint takes 4 s.
    SlowToken,
}

/// The connector the user's message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Connector {
    /// `files`, configured with its endpoints ("list my files").
    Files,
    /// `notes`, an MCP server known by its URL alone ("list my notes"): the platform discovers
    /// its authorization and registers a client on the first connect, in the flow.
    Notes(McpServer),
}

impl Connector {
    /// What the user says to need it.
    pub fn request(self) -> &'static str {
        match self {
            Connector::Files => "list my files",
            Connector::Notes(_) => "list my notes",
        }
    }

    /// How a report names it: `files`, or `notes` with what its server does.
    pub fn label(self) -> String {
        match self {
            Connector::Files => "files".into(),
            Connector::Notes(server) => format!("notes ({})", server.name()),
        }
    }

    /// Its name on the connectors page.
    pub fn name(self) -> &'static str {
        match self {
            Connector::Files => "files",
            Connector::Notes(_) => "notes",
        }
    }
}

/// What the MCP server and its authorization server do (`[provider.mcp]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum McpServer {
    Behaves,
    /// Its metadata names another server's resource: no authorization request may be made.
    NamesAnotherResource,
    /// Its authorization server's metadata names another issuer: likewise.
    NamesAnotherIssuer,
    /// Dynamic client registration is refused.
    RegistrationRefused,
    /// The authorization server refuses `resource` with `invalid_target`.
    RefusesResource,
    /// The tools need a scope beyond the one the challenge named (403 `insufficient_scope`).
    StepUp,
    /// Its authorization server knows clients by their client ID metadata document alone (no
    /// registration endpoint): it fetches the platform's document when it first meets it.
    MetadataDocumentOnly,
}

impl McpServer {
    pub const ALL: [McpServer; 7] = [
        McpServer::Behaves,
        McpServer::NamesAnotherResource,
        McpServer::NamesAnotherIssuer,
        McpServer::RegistrationRefused,
        McpServer::RefusesResource,
        McpServer::StepUp,
        McpServer::MetadataDocumentOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            McpServer::Behaves => "behaves",
            McpServer::NamesAnotherResource => "names another resource",
            McpServer::NamesAnotherIssuer => "names another issuer",
            McpServer::RegistrationRefused => "registration refused",
            McpServer::RefusesResource => "refuses resource",
            McpServer::StepUp => "step-up",
            McpServer::MetadataDocumentOnly => "metadata documents only",
        }
    }

    /// Whether a conformant platform's discovery and registration succeed with this server,
    /// so every connect reaches its authorization endpoint.
    pub fn discovery_succeeds(self) -> bool {
        !matches!(
            self,
            McpServer::NamesAnotherResource
                | McpServer::NamesAnotherIssuer
                | McpServer::RegistrationRefused
        )
    }
}

/// How long the provider's access tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TokenLifetime {
    /// An hour: no flow outlives one.
    Hour,
    /// One second: a message said after the next action refreshes first.
    Second,
    /// Zero: every access token is refused, the fresh one too.
    ExpiredOnArrival,
}

impl TokenLifetime {
    pub const ALL: [TokenLifetime; 3] = [
        TokenLifetime::Hour,
        TokenLifetime::Second,
        TokenLifetime::ExpiredOnArrival,
    ];

    pub fn secs(self) -> u64 {
        match self {
            TokenLifetime::Hour => 3_600,
            TokenLifetime::Second => 1,
            TokenLifetime::ExpiredOnArrival => 0,
        }
    }
}

/// One thing the user (or the world) does after clicking connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    Consent {
        allow: bool,
    },
    CloseProviderTab,
    ReloadChat,
    /// Clicks the card's button again.
    Retry,
    /// Lets time pass (virtual milliseconds).
    Wait {
        ms: u16,
    },
    /// Disconnects the connector from the connectors page.
    Disconnect,
    /// The provider revokes every grant.
    ProviderRevokes,
    /// Says what needs the connector again.
    Say,
    /// Opens the same chat in a second tab: its card waits on the same queued message.
    SecondChatTab,
    /// A page of another origin posts a well-formed success for the card's connection to the
    /// chat (with target `*`).
    ForgedSuccess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub connector: Connector,
    pub token_lifetime: TokenLifetime,
    pub broadcast_channel: bool,
    pub storage: bool,
    pub noopener: bool,
    pub coop: Option<CoopHop>,
    pub provider: ProviderBehaviour,
    /// What the provider says with `ErrorRedirect`.
    pub error_description: String,
    /// Every channel delivery happens twice.
    pub duplicate_deliveries: bool,
    pub actions: Vec<Action>,
    /// The seed of delivery delays and the platform's and provider's random values.
    pub seed: u64,
}

impl Case {
    /// The plain case: all channels, a provider that behaves, the user allows.
    pub fn baseline() -> Self {
        Self {
            connector: Connector::Files,
            token_lifetime: TokenLifetime::Hour,
            broadcast_channel: true,
            storage: true,
            noopener: false,
            coop: None,
            provider: ProviderBehaviour::Behaves,
            error_description: "down".into(),
            duplicate_deliveries: false,
            actions: vec![Action::Consent { allow: true }],
            seed: 0,
        }
    }
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => any::<bool>().prop_map(|allow| Action::Consent { allow }),
        1 => Just(Action::CloseProviderTab),
        1 => Just(Action::ReloadChat),
        2 => Just(Action::Retry),
        3 => (0u16..5000).prop_map(|ms| Action::Wait { ms }),
        1 => Just(Action::Disconnect),
        1 => Just(Action::ProviderRevokes),
        1 => Just(Action::Say),
        1 => Just(Action::SecondChatTab),
        1 => Just(Action::ForgedSuccess),
    ]
}

fn connector() -> impl Strategy<Value = Connector> {
    prop_oneof![
        6 => Just(Connector::Files),
        3 => Just(Connector::Notes(McpServer::Behaves)),
        1 => Just(Connector::Notes(McpServer::NamesAnotherResource)),
        1 => Just(Connector::Notes(McpServer::NamesAnotherIssuer)),
        1 => Just(Connector::Notes(McpServer::RegistrationRefused)),
        1 => Just(Connector::Notes(McpServer::RefusesResource)),
        2 => Just(Connector::Notes(McpServer::StepUp)),
        2 => Just(Connector::Notes(McpServer::MetadataDocumentOnly)),
    ]
}

fn token_lifetime() -> impl Strategy<Value = TokenLifetime> {
    prop_oneof![
        6 => Just(TokenLifetime::Hour),
        2 => Just(TokenLifetime::Second),
        1 => Just(TokenLifetime::ExpiredOnArrival),
    ]
}

/// Every case the simulator explores.
pub fn cases() -> impl Strategy<Value = Case> {
    (
        (connector(), token_lifetime()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(CoopHop::ConsentPage)),
            1 => Just(Some(CoopHop::Redirect)),
        ],
        prop_oneof![
            6 => Just(ProviderBehaviour::Behaves),
            1 => Just(ProviderBehaviour::ErrorRedirect),
            1 => Just(ProviderBehaviour::TokenUnavailable),
            1 => Just(ProviderBehaviour::TokenInvalidGrant),
            1 => Just(ProviderBehaviour::SlowToken),
        ],
        any::<bool>(),
        proptest::collection::vec(action(), 0..7),
        any::<u64>(),
    )
        .prop_map(
            |(
                (connector, token_lifetime),
                bc,
                storage,
                noopener,
                coop,
                provider,
                duplicate,
                actions,
                seed,
            )| Case {
                connector,
                token_lifetime,
                broadcast_channel: bc,
                storage,
                noopener,
                coop,
                provider,
                error_description: "down".into(),
                duplicate_deliveries: duplicate,
                actions,
                seed,
            },
        )
}
