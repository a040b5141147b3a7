//! Logs never carry a secret: the whole flow, every crate's events at TRACE, searched for every
//! secret the provider issued or received.

mod support;

use fake_provider::Faults;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::{Browser, callback_params, card, stack};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let card = card(&browser.say("acme", "c1", "list my files").await).clone();
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    assert_eq!(
        callback_params(&browser.decide(&consent, &request, "allow").await)["oauth_result"],
        "success"
    );
    browser.resend(&card).await;
    let connection = card["connectionId"].as_str().unwrap();
    browser
        .api_post(
            &format!("/api/orgs/acme/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("connected"), "the flow was logged: {logs}");
    let secrets = stack.provider.rules().secrets();
    assert_eq!(
        secrets.all().len(),
        6,
        "two client secrets, a code, a verifier, an access and a refresh token"
    );
    let leaks = secrets.find_in(&logs);
    assert!(leaks.is_empty(), "secrets in the logs: {leaks:?}");
}
