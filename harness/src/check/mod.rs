//! Judging what was seen: the observation a run gathers, the invariants (one catalogue of
//! checks with the spec sentence each enforces), the normalised trace, its snapshot, and one
//! scenario's verdict.

pub mod credentials;
pub mod invariants;
pub mod normalize;
pub mod observation;
pub mod recorded;
pub mod snapshot;
pub mod timeline;
pub mod trace;
pub mod verdict;
