//! The snapshot layers of the verdict (judged by `check::snapshot`), and the two kinds of
//! violation that are not checks of the flow.

use super::{Rule, Tier};

/// The normative trace differs from its snapshot (part of the verdict on every target).
pub const NORMATIVE_TRACE: &str = "normative-trace";
/// The reference transcript differs from its snapshot (embedded target only).
pub const REFERENCE_TRANSCRIPT: &str = "reference-transcript";
/// Not an invariant of the flow: the provider saw a request it has no endpoint for.
pub const PROVIDER_CONTRACT: &str = "provider-contract";
/// Not an invariant: a step could not be performed.
pub const STEP: &str = "step";

pub const NORMATIVE_TRACE_RULE: Rule = Rule {
    id: NORMATIVE_TRACE,
    summary: "the run's normative facts (who received what on which channel, provider requests with the parameters the contract names, chat states) equal the reference server's",
    enforces: "docs/verdicts.md: the normative layer holds only what oauth-flow.md and target-contract.md demand",
    tier: Tier::Browser,
};

pub const REFERENCE_TRANSCRIPT_RULE: Rule = Rule {
    id: REFERENCE_TRANSCRIPT,
    summary: "the reference server's transcript is unchanged (embedded target only; informative elsewhere)",
    enforces: "docs/verdicts.md: a regression guard of the reference implementation, never a verdict on another target",
    tier: Tier::Browser,
};
