//! Disconnecting and revocation: local deletion first, provider revocation best-effort, and
//! the chat's next tool call gets a tool error and a reconnect prompt.

mod support;

use fake_provider::{Endpoint, Faults};
use serde_json::{Value, json};
use support::{Browser, Stack, callback_params, card, stack};

/// Logs in, connects `files` through the chat and re-sends; returns the connection id.
async fn connected(stack: &Stack, browser: &Browser) -> String {
    browser.login("alice", "acme").await;
    let card = card(&browser.say("acme", "c1", "list my files").await).clone();
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    let params = callback_params(&browser.decide(&consent, &request, "allow").await);
    assert_eq!(params["oauth_result"], "success");
    let (_, resent) = browser.resend(&card).await;
    assert_eq!(resent["resent"], true);
    assert!(stack.provider.rules().secrets().all().len() >= 4);
    card["connectionId"].as_str().unwrap().to_owned()
}

fn kinds(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect()
}

fn issued_tokens(stack: &Stack) -> Vec<String> {
    stack
        .provider
        .rules()
        .secrets()
        .all()
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                fake_provider::SecretKind::AccessToken | fake_provider::SecretKind::RefreshToken
            )
        })
        .map(|s| s.value.clone())
        .collect()
}

fn database_bytes(stack: &Stack) -> Vec<u8> {
    let mut bytes = std::fs::read(&stack.database_path).unwrap();
    for suffix in ["-journal", "-wal"] {
        let extra = stack
            .database_path
            .with_extension(format!("sqlite3{suffix}"));
        if let Ok(more) = std::fs::read(extra) {
            bytes.extend(more);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn disconnect_revokes_at_the_provider_erases_the_token_and_the_next_tool_call_asks_to_reconnect()
 {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    let connection = connected(&stack, &browser).await;
    let tokens = issued_tokens(&stack);
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens.iter().all(|t| contains(&database_bytes(&stack), t)),
        "stored before the disconnect"
    );

    let (status, body) = browser
        .api_post(
            &format!("/api/orgs/acme/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["providerRevocation"], "revoked");
    assert!(
        stack
            .provider
            .rules()
            .request_log()
            .iter()
            .any(|r| r.endpoint == Endpoint::Revoke && r.status == 200)
    );
    for token in &tokens {
        assert!(
            !contains(&database_bytes(&stack), token),
            "token bytes left in the database file"
        );
    }
    assert!(!stack.provider.rules().access_token_is_live(&tokens[0], 0));

    let added = browser.say("acme", "c1", "list my files").await;
    assert_eq!(kinds(&added), ["text", "tool-error", "reconnect-card"]);
    let reconnect = card(&added);
    assert_ne!(
        reconnect["connectionId"], connection,
        "reconnecting makes a new connection"
    );
    let (_, status) = browser.connection(&connection).await;
    assert_eq!(status["status"], "revoked");

    // Reconnecting resumes the message that hit the error.
    let (consent, request) = browser
        .open_consent(reconnect["startUrl"].as_str().unwrap())
        .await;
    browser.decide(&consent, &request, "allow").await;
    let (_, resent) = browser.resend(reconnect).await;
    assert_eq!(
        kinds(resent["messages"].as_array().unwrap()),
        ["resent", "answer"]
    );
}

#[tokio::test]
async fn a_failing_revoke_endpoint_does_not_block_the_disconnect() {
    let stack = stack(Faults::none().revoke_endpoint_fails()).await;
    let browser = Browser::new(&stack);
    let connection = connected(&stack, &browser).await;
    let tokens = issued_tokens(&stack);
    let (status, body) = browser
        .api_post(
            &format!("/api/orgs/acme/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "revoked");
    assert!(
        body["providerRevocation"]
            .as_str()
            .unwrap()
            .starts_with("failed"),
        "{body}"
    );
    for token in &tokens {
        assert!(!contains(&database_bytes(&stack), token));
    }
    let added = browser.say("acme", "c1", "list my files").await;
    assert_eq!(kinds(&added), ["text", "tool-error", "reconnect-card"]);
}

#[tokio::test]
async fn a_revoke_endpoint_that_never_answers_is_cut_off_by_the_timeout() {
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/revoke", slow.local_addr().unwrap());
    let stack = support::stack_with(Faults::none(), |settings| {
        settings.revoke_timeout = std::time::Duration::from_millis(300);
        for connector in &mut settings.connectors {
            connector.revoke_url = slow_url.clone();
        }
    })
    .await;
    let browser = Browser::new(&stack);
    let connection = connected(&stack, &browser).await;
    let (status, body) = browser
        .api_post(
            &format!("/api/orgs/acme/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body["providerRevocation"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{body}"
    );
    drop(slow);
}

#[tokio::test]
async fn revocation_at_the_provider_gives_a_tool_error_and_a_reconnect_prompt() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    let connection = connected(&stack, &browser).await;
    assert_eq!(stack.provider.rules().revoke_all_grants(None), 2);
    let added = browser.say("acme", "c1", "list my files").await;
    assert_eq!(kinds(&added), ["text", "tool-error", "reconnect-card"]);
    let (_, status) = browser.connection(&connection).await;
    assert_eq!(status["status"], "revoked");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_before_the_tool_call() {
    let stack = stack(Faults::none().token_lifetime(std::time::Duration::from_secs(3600))).await;
    let browser = Browser::new(&stack);
    connected(&stack, &browser).await;
    // An hour later on the platform's clock, without waiting for it: through `/dev/clock`,
    // as the harness moves a deployment's clock (a body it does not read is refused).
    let clock = stack.app_url.join("dev/clock").unwrap();
    let http = reqwest::Client::new();
    let refused = http
        .post(clock.clone())
        .json(&serde_json::json!({ "ms": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("advance_ms"));
    let before = stack.clock.now_ms();
    let moved = http
        .post(clock)
        .json(&serde_json::json!({ "advance_ms": 3_601_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert!(stack.clock.now_ms() - before >= 3_601_000);
    let added = browser.say("acme", "c1", "list my files").await;
    assert_eq!(kinds(&added), ["text", "answer"]);
    let refreshes = stack
        .provider
        .rules()
        .request_log()
        .iter()
        .filter(|r| {
            r.outcome
                == fake_provider::Outcome::Refreshed {
                    resource_left_out: false,
                }
        })
        .count();
    assert_eq!(refreshes, 1);
}

#[tokio::test]
async fn an_expiry_with_no_refresh_token_is_reported_expired_without_asking_the_provider() {
    let stack = stack(
        Faults::none()
            .withholds_refresh_token()
            .token_lifetime(std::time::Duration::from_secs(3600)),
    )
    .await;
    let browser = Browser::new(&stack);
    let connection = connected(&stack, &browser).await;
    // An hour later on the platform's clock, without waiting for it.
    stack.clock.advance(std::time::Duration::from_secs(3601));
    let token_requests_before = stack.provider.rules().request_log().len();
    let added = browser.say("acme", "c1", "list my files").await;
    assert_eq!(kinds(&added), ["text", "tool-error", "reconnect-card"]);
    let error = added[1]["text"].as_str().unwrap();
    assert!(error.contains("expired"), "{error}");
    assert!(!error.contains("revoked"), "{error}");
    let (_, status) = browser.connection(&connection).await;
    assert_eq!(
        status["status"], "revoked",
        "the connection needs a reconnect"
    );
    assert!(
        !status.to_string().contains("no longer accepts"),
        "the provider was never asked: {status}"
    );
    assert_eq!(
        stack.provider.rules().request_log().len(),
        token_requests_before,
        "no request reached the provider"
    );
}

#[tokio::test]
async fn insufficient_scope_asks_to_reconnect_for_the_scope_and_the_reconnect_asks_for_it() {
    let stack = stack(Faults::none().api_requires_scope("files.write")).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let card = card(&browser.say("acme", "c1", "list my files").await).clone();
    let connection = card["connectionId"].as_str().unwrap().to_owned();
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    let params = callback_params(&browser.decide(&consent, &request, "allow").await);
    assert_eq!(params["oauth_result"], "success");
    let (_, resent) = browser.resend(&card).await;
    let added = resent["messages"].as_array().unwrap().clone();
    assert_eq!(
        kinds(&added),
        ["resent", "tool-error", "reconnect-card"],
        "{resent}"
    );
    let error = added[1]["text"].as_str().unwrap();
    assert!(error.contains("files.write"), "{error}");
    assert!(!error.contains("try again"), "{error}");
    let (_, status) = browser.connection(&connection).await;
    assert_eq!(
        status["status"], "revoked",
        "the connection needs a reconnect"
    );

    // The reconnect asks for the scope the resource named, beside the connector's own.
    let reconnect = &added[2];
    let (consent, request) = browser
        .open_consent(reconnect["startUrl"].as_str().unwrap())
        .await;
    let authorize: std::collections::BTreeMap<_, _> =
        consent.url.query_pairs().into_owned().collect();
    assert_eq!(
        authorize["scope"], "files.read files.write",
        "{authorize:?}"
    );
    let params = callback_params(&browser.decide(&consent, &request, "allow").await);
    assert_eq!(params["oauth_result"], "success");
    let (_, resent) = browser.resend(reconnect).await;
    let added = resent["messages"].as_array().unwrap().clone();
    assert_eq!(kinds(&added), ["resent", "answer"], "{resent}");
}
