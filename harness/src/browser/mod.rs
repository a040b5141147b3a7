//! Driving real browsers: WebDriver sessions and their drivers, WebDriver BiDi, the recording
//! proxy (for engines without BiDi), the in-page recorder, a hostile origin, a second user's
//! session, and the runner that plays a scenario's steps.

pub mod bidi;
pub mod hostile;
pub mod other_session;
pub mod proxy;
pub mod recording;
pub mod run;
pub mod webdriver;
