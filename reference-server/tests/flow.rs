//! The whole connector flow over real HTTP: platform and fake provider on loopback.

mod support;

use fake_provider::{Endpoint, Faults, IssInResponse, TokenFailure};
use serde_json::json;
use support::{Browser, callback_params, card, stack};

#[tokio::test]
async fn consent_connects_and_the_queued_message_is_resent_exactly_once() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let added = browser.say("acme", "c1", "list my files").await;
    let card = card(&added).clone();
    assert_eq!(card["queuedState"], "waiting");
    let connection = card["connectionId"].as_str().unwrap().to_owned();
    let (status, body) = browser.connection(&connection).await;
    assert_eq!(
        (status.as_u16(), body["status"].as_str()),
        (200, Some("pending"))
    );

    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    assert_eq!(
        consent.url.host_str(),
        Some("localhost"),
        "the provider is another site"
    );
    let authorize: std::collections::BTreeMap<_, _> =
        consent.url.query_pairs().into_owned().collect();
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(authorize["client_id"], "alumia-files");
    let callback = browser.decide(&consent, &request, "allow").await;
    let params = callback_params(&callback);
    assert_eq!(params["oauth_result"], "success");
    assert_eq!(params["connection_id"], connection);
    assert!(
        !params.contains_key("code"),
        "the code never reaches the callback page"
    );
    assert_eq!(callback.headers["cache-control"], "no-store");
    assert!(callback.text.contains("/static/callback.js"));

    let (_, body) = browser.connection(&connection).await;
    assert_eq!(body["status"], "connected");
    let (status, first) = browser.resend(&card).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["resent"], true);
    let answer = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "answer")
        .unwrap();
    assert_eq!(
        answer["text"],
        "Your files: quarterly-report.pdf, roadmap.md, team-photo.png."
    );
    let (_, second) = browser.resend(&card).await;
    assert_eq!(second["resent"], false);
    assert_eq!(second["messages"], json!([]));

    let tokens = stack
        .provider
        .rules()
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .count();
    assert_eq!(tokens, 1);

    // Nothing the browser saw carries a secret.
    let secrets = stack.provider.rules().secrets();
    let platform_urls: Vec<_> = browser
        .visited_urls()
        .into_iter()
        .filter(|u| u.host_str() == Some("127.0.0.1"))
        .collect();
    for url in platform_urls
        .iter()
        .filter(|u| u.path() != "/oauth/redirect")
    {
        assert!(secrets.find_in(url.as_str()).is_empty(), "{url}");
    }
    let (_, messages) = browser.api_get("/api/orgs/acme/chats/c1/messages").await;
    for text in [
        callback.text.clone(),
        messages.to_string(),
        body.to_string(),
    ] {
        assert!(secrets.find_in(&text).is_empty(), "{text}");
    }
}

#[tokio::test]
async fn denied_consent_fails_the_connection_and_a_retry_reuses_it() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let added = browser.say("acme", "c1", "list my files").await;
    let card = card(&added).clone();
    let connection = card["connectionId"].as_str().unwrap();
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    let params = callback_params(&browser.decide(&consent, &request, "deny").await);
    assert_eq!(params["oauth_result"], "error");
    assert_eq!(params["connection_id"], connection);
    assert!(params["oauth_message"].contains("access_denied"));
    let (_, status) = browser.connection(connection).await;
    assert_eq!(status["status"], "failed");
    let (code, _) = browser.resend(&card).await;
    assert_eq!(code, 409, "nothing is re-sent on denial");

    // Retry: the same connection goes back to pending; no second connection appears.
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    let (_, status) = browser.connection(connection).await;
    assert_eq!(status["status"], "pending");
    let params = callback_params(&browser.decide(&consent, &request, "allow").await);
    assert_eq!(params["connection_id"], connection);
    let (_, list) = browser.api_get("/api/orgs/acme/connectors").await;
    let files = list["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "files")
        .unwrap();
    assert_eq!(files["connectionId"], connection);
    assert_eq!(files["status"], "connected");
}

#[tokio::test]
async fn a_forged_or_reused_state_is_an_error_and_nothing_is_exchanged_twice() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let forged = browser
        .visit(browser.url("/oauth/redirect?code=forged&state=st_forged"))
        .await;
    let params = callback_params(&forged);
    assert_eq!(params["oauth_result"], "error");
    assert!(!params.contains_key("connection_id"));
    let missing = callback_params(&browser.visit(browser.url("/oauth/redirect?code=x")).await);
    assert_eq!(missing["oauth_result"], "error");

    let added = browser.say("acme", "c1", "list my files").await;
    let card = card(&added).clone();
    let (consent, request) = browser
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    browser.decide(&consent, &request, "allow").await;
    let redirect = browser
        .visited_urls()
        .into_iter()
        .find(|u| u.path() == "/oauth/redirect" && u.query().unwrap_or("").contains("code=code_"))
        .unwrap();
    let replay = callback_params(&browser.visit(redirect).await);
    assert_eq!(replay["oauth_result"], "error");
    assert!(replay["oauth_message"].contains("already used"));
    let exchanges = stack
        .provider
        .rules()
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Token)
        .count();
    assert_eq!(
        exchanges, 1,
        "a replayed redirect makes no second code exchange"
    );
    let (_, status) = browser
        .api_get(&format!(
            "/api/orgs/acme/connections/{}",
            card["connectionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status["status"], "connected", "the replay changed nothing");
}

#[tokio::test]
async fn a_state_from_another_browser_session_resolves_nothing() {
    let stack = stack(Faults::none()).await;
    let victim = Browser::new(&stack);
    victim.login("alice", "acme").await;
    let attacker = Browser::new(&stack);
    attacker.login("mallory", "evil").await;
    let added = attacker.say("evil", "c1", "list my files").await;
    let card = card(&added).clone();
    let (consent, request) = attacker
        .open_consent(card["startUrl"].as_str().unwrap())
        .await;
    // The attacker stops at the provider's redirect and sends the link to the victim.
    let response = attacker
        .http
        .post(consent.url.join("/consent").unwrap())
        .form(&[("request", request.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let link = response.headers()["location"].to_str().unwrap().to_owned();
    let params = callback_params(&victim.visit(url::Url::parse(&link).unwrap()).await);
    assert_eq!(params["oauth_result"], "error");
    assert!(params["oauth_message"].contains("another browser session"));
    assert!(!params.contains_key("connection_id"));
    let (_, status) = attacker
        .api_get(&format!(
            "/api/orgs/evil/connections/{}",
            card["connectionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        status["status"], "pending",
        "the attacker's connection was not resolved"
    );
    assert_eq!(
        stack
            .provider
            .rules()
            .request_log()
            .iter()
            .filter(|r| r.endpoint == Endpoint::Token)
            .count(),
        0
    );
}

#[tokio::test]
async fn a_pkce_mismatch_fails_the_exchange() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let added = browser.say("acme", "c1", "list my files").await;
    let card = card(&added).clone();
    let start = browser
        .http
        .get(browser.url(card["startUrl"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let mut authorize = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let tampered: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code_challenge" {
                fake_provider::pkce_challenge(&"x".repeat(64))
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(tampered);
    let consent = browser.visit(authorize).await;
    let request = fake_provider::consent_request_id(&consent.text)
        .expect("a consent form")
        .to_owned();
    let params = callback_params(&browser.decide(&consent, &request, "allow").await);
    assert_eq!(params["oauth_result"], "error");
    assert!(
        params["oauth_message"].contains("invalid_grant"),
        "{}",
        params["oauth_message"]
    );
    let (_, status) = browser
        .api_get(&format!(
            "/api/orgs/acme/connections/{}",
            card["connectionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status["status"], "failed");
}

#[tokio::test]
async fn a_failing_token_endpoint_fails_the_connection_with_a_message_and_no_secret() {
    for failure in [TokenFailure::ServerError, TokenFailure::InvalidGrant] {
        let stack = stack(Faults::none().token_fails_with(failure)).await;
        let browser = Browser::new(&stack);
        browser.login("alice", "acme").await;
        let (card, callback) = browser.connect_through_consent("acme", "allow").await;
        let params = callback_params(&callback);
        assert_eq!(params["oauth_result"], "error", "{failure:?}");
        assert!(
            stack
                .provider
                .rules()
                .secrets()
                .find_in(callback.url.as_str())
                .is_empty()
        );
        let (_, status) = browser
            .api_get(&format!(
                "/api/orgs/acme/connections/{}",
                card["connectionId"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status["status"], "failed");
    }
}

#[tokio::test]
async fn another_org_cannot_read_resolve_or_delete_a_connection() {
    let stack = stack(Faults::none()).await;
    let alice = Browser::new(&stack);
    alice.login("alice", "acme").await;
    let card = card(&alice.say("acme", "c1", "list my files").await).clone();
    let connection = card["connectionId"].as_str().unwrap();
    let bob = Browser::new(&stack);
    bob.login("bob", "other").await;
    for path in [
        format!("/api/orgs/acme/connections/{connection}"),
        format!("/api/orgs/other/connections/{connection}"),
        "/api/orgs/acme/connectors".to_owned(),
        "/api/orgs/acme/chats/c1/messages".to_owned(),
    ] {
        let (status, body) = bob.api_get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains(connection));
    }
    let (status, _) = bob
        .api_post(
            &format!("/api/orgs/acme/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = bob
        .api_post(
            &format!("/api/orgs/other/connections/{connection}/disconnect"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let page = bob
        .visit(bob.url(&format!(
            "/other/connectors/files/connect?connection={connection}"
        )))
        .await;
    assert_eq!(page.status, 404);
    let page = bob.visit(bob.url("/acme/connectors")).await;
    assert_eq!(page.status, 404);
    let (_, status) = alice.connection(connection).await;
    assert_eq!(status["status"], "pending");

    let anonymous = Browser::new(&stack);
    let (status, _) = anonymous.connection(connection).await;
    assert_eq!(status, 401);
    let page = anonymous
        .http
        .get(anonymous.url("/acme/chat/c1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert!(
        page.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/dev/login")
    );
}

#[tokio::test]
async fn an_authorization_response_naming_this_provider_connects_and_one_naming_another_is_refused()
{
    for (iss, connects) in [
        (IssInResponse::Absent, true),
        (IssInResponse::Correct, true),
        (IssInResponse::OfAnotherProvider, false),
    ] {
        let stack = stack(Faults::none().iss_in_response(iss)).await;
        let browser = Browser::new(&stack);
        browser.login("alice", "acme").await;
        let (_, callback) = browser.connect_through_consent("acme", "allow").await;
        let params = callback_params(&callback);
        let exchanged = stack.provider_saw("/token");
        if connects {
            assert_eq!(params["oauth_result"], "success", "{iss:?}");
            assert!(exchanged, "{iss:?}");
        } else {
            assert_eq!(params["oauth_result"], "error", "{iss:?}");
            assert!(
                params["oauth_message"].contains("another provider"),
                "{params:?}"
            );
            assert!(
                !exchanged,
                "the code of a foreign response is never exchanged"
            );
        }
    }
}

#[tokio::test]
async fn a_connectors_authorization_parameters_reach_the_provider_beside_the_contracts() {
    let stack = support::stack_with(Faults::none(), |settings| {
        let files = &mut settings.connectors[0];
        files
            .authorization_parameters
            .insert("prompt".into(), "consent".into());
        files
            .authorization_parameters
            .insert("resource".into(), "https://files.example/ a&b".into());
    })
    .await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    let (_, callback) = browser.connect_through_consent("acme", "allow").await;
    assert_eq!(callback_params(&callback)["oauth_result"], "success");
    let authorize = stack
        .provider
        .rules()
        .request_log()
        .into_iter()
        .find(|r| r.path == "/authorize")
        .expect("an authorization request");
    let query: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(authorize.query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query["prompt"], "consent", "{query:?}");
    assert_eq!(query["resource"], "https://files.example/ a&b", "{query:?}");
    assert_eq!(query["client_id"], "alumia-files", "{query:?}");
    assert_eq!(query["code_challenge_method"], "S256", "{query:?}");
}

#[tokio::test]
async fn a_connector_whose_provider_sends_iss_refuses_a_response_without_it() {
    for (iss, connects) in [
        (IssInResponse::Correct, true),
        (IssInResponse::Absent, false),
    ] {
        let stack = support::stack_with(Faults::none().iss_in_response(iss), |settings| {
            settings.connectors[0].requires_iss = true;
        })
        .await;
        let browser = Browser::new(&stack);
        browser.login("alice", "acme").await;
        let (_, callback) = browser.connect_through_consent("acme", "allow").await;
        let params = callback_params(&callback);
        let exchanged = stack.provider_saw("/token");
        assert_eq!(
            params["oauth_result"] == "success",
            connects,
            "{iss:?}: {params:?}"
        );
        assert_eq!(
            exchanged, connects,
            "{iss:?}: the code is exchanged only if it connects"
        );
    }
}

#[tokio::test]
async fn token_type_is_read_whatever_its_case() {
    for spelling in [
        fake_provider::TokenType::Capitalized,
        fake_provider::TokenType::Uppercase,
    ] {
        let mut faults = Faults::none();
        faults.token_type = spelling;
        let stack = stack(faults).await;
        let browser = Browser::new(&stack);
        browser.login("alice", "acme").await;
        let (card, callback) = browser.connect_through_consent("acme", "allow").await;
        assert_eq!(
            callback_params(&callback)["oauth_result"],
            "success",
            "{spelling:?}"
        );
        let (_, resent) = browser.resend(&card).await;
        assert!(
            resent["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["kind"] == "answer"),
            "{spelling:?}: {resent}"
        );
    }
}

/// Asks for notes in chat `c1` of `acme` and opens the card's start URL as far as it goes.
async fn connect_notes(browser: &Browser) -> (serde_json::Value, support::Page) {
    browser.login("alice", "acme").await;
    let card = card(&browser.say("acme", "c1", "list my notes").await).clone();
    assert_eq!(card["connector"], "notes", "{card}");
    let page = browser
        .visit(browser.url(card["startUrl"].as_str().unwrap()))
        .await;
    (card, page)
}

#[tokio::test]
async fn an_mcp_connector_known_by_its_url_finds_its_server_registers_and_answers_with_resource() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    let (card, consent) = connect_notes(&browser).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    let authorize: std::collections::BTreeMap<_, _> =
        consent.url.query_pairs().into_owned().collect();
    let resource = stack.provider.public_url().join("mcp").unwrap().to_string();
    assert_eq!(authorize["resource"], resource, "{authorize:?}");
    assert!(
        authorize["client_id"].starts_with("dcr_"),
        "a registered client: {authorize:?}"
    );
    assert_eq!(authorize["scope"], "mcp.tools");
    let request = fake_provider::consent_request_id(&consent.text)
        .unwrap()
        .to_owned();
    let callback = browser.decide(&consent, &request, "allow").await;
    assert_eq!(callback_params(&callback)["oauth_result"], "success");
    let (_, resent) = browser.resend(&card).await;
    let answer = resent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "answer")
        .unwrap_or_else(|| panic!("{resent}"));
    assert_eq!(answer["text"], "Your notes: standup.md, design-review.md.");
    let log = stack.provider.rules().request_log();
    let steps: Vec<String> = log
        .iter()
        .map(|r| match &r.rpc {
            Some(method) => format!("{} {} {method} -> {}", r.method, r.path, r.status),
            None => format!("{} {} -> {}", r.method, r.path, r.status),
        })
        .collect();
    assert_eq!(
        steps,
        [
            // The message: the server is asked first, without a token, and wants one.
            "POST /mcp server/discover -> 401",
            // The connect: where its authorization is (the challenge of the same request).
            "POST /mcp server/discover -> 401",
            "GET /.well-known/oauth-protected-resource/mcp -> 200",
            "GET /.well-known/oauth-authorization-server -> 200",
            "POST /register -> 201",
            "GET /authorize -> 200",
            "POST /consent -> 302",
            "POST /token -> 200",
            // The stateless revision first; this server (2025-11-25) wants a session.
            "POST /mcp server/discover -> 400",
            "POST /mcp initialize -> 200",
            "POST /mcp notifications/initialized -> 202",
            "POST /mcp tools/list -> 200",
            "POST /mcp tools/call -> 200",
        ]
    );
    // The registered client secret never reaches a page.
    let secrets = stack.provider.rules().secrets();
    for text in [&consent.text, &callback.text, &resent.to_string()] {
        assert!(secrets.find_in(text).is_empty(), "{text}");
    }
}

#[tokio::test]
async fn an_mcp_server_whose_metadata_names_another_resource_is_never_authorized_and_the_card_says_so()
 {
    let mut faults = Faults::none();
    faults.mcp.resource_in_metadata = fake_provider::ResourceInMetadata::AnotherServer;
    let stack = stack(faults).await;
    let browser = Browser::new(&stack);
    let (_, callback) = connect_notes(&browser).await;
    let params = callback_params(&callback);
    assert_eq!(params["oauth_result"], "error", "{params:?}");
    assert!(
        params["oauth_message"].contains("another-mcp-server"),
        "{params:?}"
    );
    assert!(
        !stack.provider_saw("/authorize") && !stack.provider_saw("/register"),
        "no authorization request, no registration"
    );
}

#[tokio::test]
async fn an_mcp_server_that_takes_metadata_documents_alone_fetches_the_platforms_and_a_public_client_connects()
 {
    let mut faults = Faults::none();
    faults.mcp.clients_known_by = fake_provider::ClientsKnownBy::MetadataDocument;
    let stack = stack(faults).await;
    let browser = Browser::new(&stack);
    let (card, consent) = connect_notes(&browser).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    let authorize: std::collections::BTreeMap<_, _> =
        consent.url.query_pairs().into_owned().collect();
    let document_url = stack.app_url.join("oauth/client-metadata.json").unwrap();
    assert_eq!(
        authorize["client_id"],
        document_url.as_str(),
        "{authorize:?}"
    );
    let document: serde_json::Value = reqwest::get(document_url.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["client_id"], document_url.as_str());
    assert_eq!(document["token_endpoint_auth_method"], "none");
    assert_eq!(
        document["redirect_uris"][0],
        stack.app_url.join("oauth/redirect").unwrap().as_str()
    );
    let request = fake_provider::consent_request_id(&consent.text)
        .unwrap()
        .to_owned();
    let callback = browser.decide(&consent, &request, "allow").await;
    assert_eq!(callback_params(&callback)["oauth_result"], "success");
    let (_, resent) = browser.resend(&card).await;
    assert!(
        resent["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "answer"),
        "{resent}"
    );
    assert!(!stack.provider_saw("/register"), "no registration");
    let token = stack
        .provider
        .rules()
        .request_log()
        .into_iter()
        .find(|r| r.path == "/token")
        .unwrap();
    assert!(
        !token.headers.iter().any(|(n, _)| n == "authorization"),
        "a public client sends no credentials: {:?}",
        token.headers
    );
}
