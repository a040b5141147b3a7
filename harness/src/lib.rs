//! The conformance harness for Alumia's OAuth connector flow.
//!
//! For now: the embedded target ([`stack::EmbeddedStack`]: fake provider and reference server
//! in-process) and browser sessions over WebDriver ([`webdriver`]).

pub mod stack;
pub mod webdriver;
