//! What the harness's commands do: run one scenario in one browser, the suite (scenarios ×
//! engines, in parallel), the benchmark, the soak, and the two-sided defect matrix.

pub mod bench;
pub mod defect_catalogue;
pub mod defects;
pub mod expectations;
pub mod judge;
pub mod mcp_client;
pub mod one_scenario;
pub mod options;
pub mod pool;
pub mod soak;
pub mod spawned;
pub mod suite;
