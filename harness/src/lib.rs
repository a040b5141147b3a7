//! The conformance harness for Alumia's OAuth connector flow.
//!
//! For now: the embedded target ([`stack::EmbeddedStack`]: fake provider and reference server
//! in-process) and browser sessions over WebDriver ([`webdriver`]).

pub mod authoring;
pub mod bench;
pub mod bidi;
pub mod command;
pub mod contract;
pub mod defects;
pub mod expectations;
pub mod hostile;
pub mod invariants;
pub mod observe;
pub mod other_session;
pub mod process;
pub mod proxy;
pub mod recording;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod snapshot;
pub mod soak;
pub mod stack;
pub mod suite;
pub mod target;
pub mod trace;
pub mod webdriver;
