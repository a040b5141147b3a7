//! The checks only the simulator judges (`sim::world`): they are about what the card module
//! decides, which a browser run sees only through the chat.

use super::{Rule, Tier};

pub const RESEND_AT_MOST_ONCE: &str = "resend-at-most-once";
pub const FOREIGN_ORIGIN_IGNORED: &str = "foreign-origin-ignored";
pub const NO_DUPLICATE_CONNECTION: &str = "no-duplicate-connection";

pub const RESEND_AT_MOST_ONCE_RULE: Rule = Rule {
    id: RESEND_AT_MOST_ONCE,
    summary: "no card re-sends its queued message twice, and the server re-sends it once in all",
    enforces: "oauth-flow.md, Notes: \"sent again exactly once\"",
    tier: Tier::Simulator,
};

pub const FOREIGN_ORIGIN_IGNORED_RULE: Rule = Rule {
    id: FOREIGN_ORIGIN_IGNORED,
    summary: "a message from another origin changes nothing",
    enforces: "target-contract.md §4: postMessage to \"the platform's exact origin\"",
    tier: Tier::Simulator,
};

pub const NO_DUPLICATE_CONNECTION_RULE: Rule = Rule {
    id: NO_DUPLICATE_CONNECTION,
    summary: "retries and second tabs reuse the pending connection",
    enforces: "oauth-flow.md, Flow 1-4: one connection per connect prompt",
    tier: Tier::Simulator,
};
