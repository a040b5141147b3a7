//! The provider over real sockets: wiremock serves the rules on loopback.

use fake_provider::{ClientRegistration, Coop, FakeProvider, Faults, pkce_challenge};

const REDIRECT: &str = "http://127.0.0.1:9/oauth/redirect";

/// The user allows on the consent page `html`: the provider's answer (its redirect).
async fn allow(http: &reqwest::Client, provider: &FakeProvider, html: &str) -> reqwest::Response {
    let request = fake_provider::consent_request_id(html).unwrap();
    http.post(provider.public_url().join("consent").unwrap())
        .form(&[("request", request), ("decision", "allow")])
        .send()
        .await
        .unwrap()
}

/// A provider on loopback with one client, `files-client`, and `faults`.
async fn files_provider(faults: Faults) -> FakeProvider {
    FakeProvider::builder()
        .client(ClientRegistration::new(
            "files-client",
            "files-secret-value",
            REDIRECT,
        ))
        .faults(faults)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_consent_page_and_its_redirect_are_served_over_http_with_their_faults() {
    let provider = files_provider(Faults::none().coop_on_redirect(Coop::SameOrigin)).await;
    assert_eq!(provider.public_url().host_str(), Some("localhost"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = provider.authorize_url();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "files-client")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s1")
        .append_pair("code_challenge", &pkce_challenge("v".repeat(43).as_str()))
        .append_pair("code_challenge_method", "S256");
    let page = http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("data-testid=\"consent-allow\""));
    let redirect = allow(&http, &provider, &html).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(
        redirect.headers()["cross-origin-opener-policy"],
        "same-origin"
    );
    assert!(
        redirect.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );

    let stray = http
        .get(provider.public_url().join("apple-touch-icon.png").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);
    let violations = provider.rules().violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "/apple-touch-icon.png");
}

#[tokio::test]
async fn a_slow_token_endpoint_answers_after_its_delay() {
    let provider =
        files_provider(Faults::none().token_delay(std::time::Duration::from_millis(300))).await;
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(provider.token_url())
        .form(&[("grant_type", "authorization_code"), ("code", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn binding_a_taken_port_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = FakeProvider::builder()
        .bind(holder.local_addr().unwrap())
        .start()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cannot bind"), "{message}");
    assert!(message.contains("hint"), "{message}");
}

#[tokio::test]
async fn an_mcp_client_finds_its_way_from_the_servers_challenge_over_http() {
    let provider = FakeProvider::builder().start().await.unwrap();
    let http = reqwest::Client::new();
    let mcp = provider.public_url().join("mcp").unwrap();
    // 401 with the metadata's URL, which answers with the resource and its server, whose own
    // metadata names the registration endpoint, which registers a client.
    let anonymous = http
        .post(mcp.clone())
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let get_json = |url: String| {
        let http = http.clone();
        async move {
            let answer = http.get(url).send().await.unwrap();
            answer.json::<serde_json::Value>().await.unwrap()
        }
    };
    let metadata = get_json(metadata_url).await;
    assert_eq!(metadata["resource"], mcp.as_str());
    let issuer = metadata["authorization_servers"][0].as_str().unwrap();
    let server = get_json(format!("{issuer}/.well-known/oauth-authorization-server")).await;
    assert_eq!(server["issuer"], issuer);
    let registered = http
        .post(server["registration_endpoint"].as_str().unwrap())
        .json(&serde_json::json!({ "redirect_uris": [REDIRECT] }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let client: serde_json::Value = registered.json().await.unwrap();
    assert!(client["client_id"].as_str().unwrap().starts_with("dcr_"));
}

#[tokio::test]
async fn moving_the_clock_ahead_expires_a_token_without_waiting_and_the_log_keeps_real_time() {
    let provider =
        files_provider(Faults::none().token_lifetime(std::time::Duration::from_secs(60))).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "v".repeat(43);
    let mut url = provider.authorize_url();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "files-client")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s1")
        .append_pair("scope", "files.read")
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let html = http.get(url).send().await.unwrap().text().await.unwrap();
    let redirect = allow(&http, &provider, &html).await;
    let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: serde_json::Value = http
        .post(provider.token_url())
        .basic_auth("files-client", Some("files-secret-value"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let files = provider.public_url().join("api/files").unwrap();
    let call = || http.get(files.clone()).bearer_auth(&access).send();
    assert_eq!(call().await.unwrap().status(), 200);

    let clock = provider.public_url().join("_admin/clock").unwrap();
    let refused = http
        .post(clock.clone())
        .body("{\"advance\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("advance_ms"));
    let moved = http
        .post(clock)
        .body("{\"advance_ms\": 61000}")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(call().await.unwrap().status(), 401);

    // The log's times are the time that really passed: well under the minute moved ahead.
    let log = provider.rules().request_log();
    assert!(log.last().unwrap().at_ms < 60_000, "{:?}", log.last());
}

/// Dropping a provider inside a tokio task that has spent its cooperative budget: wiremock's
/// drop waits on a tokio lock, which in such a task answers `Pending` for ever
/// (tokio-rs/tokio#2711). The provider must stop all the same.
#[test]
fn a_provider_dropped_by_a_task_out_of_budget_stops() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let provider = FakeProvider::builder().start().await.unwrap();
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
            for n in 0..1000 {
                sender.send(n).unwrap();
            }
            // Each ready `recv` spends a unit of the task's budget (128): spend what is left.
            while tokio::task::coop::has_budget_remaining() {
                receiver.recv().await.unwrap();
            }
            drop(provider);
        });
        let _ = done.send(());
    });
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .is_ok(),
        "dropping the provider did not return within 20 s"
    );
}
