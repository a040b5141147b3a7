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
    /// Says "list my files" again.
    Say,
    /// Opens the same chat in a second tab: its card waits on the same queued message.
    SecondChatTab,
    /// A page of another origin posts a well-formed success for the card's connection to the
    /// chat (with target `*`).
    ForgedSuccess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
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

/// Every case the simulator explores.
pub fn cases() -> impl Strategy<Value = Case> {
    (
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
            |(bc, storage, noopener, coop, provider, duplicate, actions, seed)| Case {
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
