//! Each rule of the provider, called in-process: what it accepts and what it rejects.

use base64::Engine;
use fake_provider::{
    ClientRegistration, ClientsKnownBy, Endpoint, Faults, IssInResponse, Provider, ProviderConfig,
    ProviderRequest, ProviderResponse, RefreshRotation, ResourceInMetadata, SecretKind,
    TokenFailure, TokenType, pkce_challenge,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/redirect";
const VERIFIER: &str = "verifier-0123456789-0123456789-0123456789-abc";

fn provider(faults: Faults) -> Provider {
    Provider::new(ProviderConfig {
        public_url: Url::parse("http://localhost:1/").unwrap(),
        clients: vec![
            ClientRegistration::new("files-client", "files-secret-value", REDIRECT),
            ClientRegistration::new("calendar-client", "calendar-secret-value", REDIRECT),
        ],
        seed: 1,
        faults,
    })
}

fn get(provider: &Provider, endpoint: Endpoint, query: &[(&str, &str)]) -> ProviderResponse {
    let query = serde_urlencoded::to_string(query).unwrap();
    provider.handle(
        endpoint,
        &ProviderRequest {
            method: "GET".into(),
            path: "/".into(),
            query,
            ..Default::default()
        },
        0,
    )
}

fn post(
    provider: &Provider,
    endpoint: Endpoint,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
    now_ms: u64,
) -> ProviderResponse {
    provider.handle(
        endpoint,
        &ProviderRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: serde_urlencoded::to_string(form).unwrap().into_bytes(),
        },
        now_ms,
    )
}

fn authorize_query<'a>(client_id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "state-1"),
        ("scope", "files.read"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn location_params(response: &ProviderResponse) -> BTreeMap<String, String> {
    assert_eq!(response.status, 302, "{}", response.body_text());
    let location = Url::parse(response.header("location").unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

fn basic(client: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"))
    )
}

fn consent_request_id(page: &ProviderResponse) -> String {
    fake_provider::consent_request_id(&page.body_text())
        .expect("a consent form")
        .to_owned()
}

/// Runs authorize and consent; returns the code.
fn code_for(provider: &Provider, client_id: &str) -> String {
    code_with(provider, client_id, &[])
}

/// Runs authorize, with `extra` parameters (replacing those of the same name), and consent;
/// returns the code.
fn code_with(provider: &Provider, client_id: &str, extra: &[(&str, &str)]) -> String {
    let challenge = pkce_challenge(VERIFIER);
    let mut query = authorize_query(client_id, &challenge);
    query.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
    query.extend_from_slice(extra);
    let page = get(provider, Endpoint::Authorize, &query);
    assert_eq!(page.status, 200, "{}", page.body_text());
    let request = consent_request_id(&page);
    let redirect = post(
        provider,
        Endpoint::Consent,
        &[],
        &[("request", &request), ("decision", "allow")],
        0,
    );
    let params = location_params(&redirect);
    assert_eq!(params["state"], "state-1");
    params["code"].clone()
}

fn exchange(provider: &Provider, code: &str, verifier: &str, now_ms: u64) -> ProviderResponse {
    exchange_with(provider, code, verifier, &[], now_ms)
}

/// The code exchange with `extra` form fields (a `resource`, say).
fn exchange_with(
    provider: &Provider,
    code: &str,
    verifier: &str,
    extra: &[(&str, &str)],
    now_ms: u64,
) -> ProviderResponse {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    form.extend_from_slice(extra);
    post(
        provider,
        Endpoint::Token,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &form,
        now_ms,
    )
}

/// The token response of a fresh authorization of `files-client` (authorize, consent, exchange).
fn tokens_for(provider: &Provider) -> serde_json::Value {
    json(&exchange(
        provider,
        &code_for(provider, "files-client"),
        VERIFIER,
        0,
    ))
}

fn json(response: &ProviderResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap()
}

fn api(provider: &Provider, token: &str, now_ms: u64) -> ProviderResponse {
    provider.handle(
        Endpoint::ApiFiles,
        &ProviderRequest {
            method: "GET".into(),
            path: "/api/files".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..Default::default()
        },
        now_ms,
    )
}

#[test]
fn a_well_formed_flow_issues_tokens_that_the_api_accepts() {
    let provider = provider(Faults::none());
    let code = code_for(&provider, "files-client");
    let tokens = exchange(&provider, &code, VERIFIER, 10);
    assert_eq!(tokens.status, 200, "{}", tokens.body_text());
    let body = json(&tokens);
    assert_eq!(body["token_type"], "bearer");
    let access = body["access_token"].as_str().unwrap();
    let files = api(&provider, access, 20);
    assert_eq!(files.status, 200);
    assert_eq!(json(&files)["items"][0]["name"], "quarterly-report.pdf");
    let kinds: Vec<SecretKind> = provider.secrets().all().iter().map(|s| s.kind).collect();
    for kind in [
        SecretKind::ClientSecret,
        SecretKind::AuthorizationCode,
        SecretKind::AccessToken,
        SecretKind::RefreshToken,
        SecretKind::PkceVerifier,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
    }
}

#[test]
fn the_authorize_endpoint_rejects_each_malformed_request() {
    let provider = provider(Faults::none());
    let challenge = pkce_challenge(VERIFIER);
    let unknown_client = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("nobody", &challenge),
    );
    assert_eq!(
        unknown_client.status, 400,
        "an unknown client gets an error page, no redirect"
    );
    let mut wrong_redirect = authorize_query("files-client", &challenge);
    wrong_redirect[2] = ("redirect_uri", "http://127.0.0.1:9/oauth/redirect/");
    assert_eq!(
        get(&provider, Endpoint::Authorize, &wrong_redirect).status,
        400
    );

    let cases: [(usize, (&str, &str), &str); 4] = [
        (0, ("response_type", "token"), "unsupported_response_type"),
        (3, ("state", ""), "invalid_request"),
        (5, ("code_challenge", ""), "invalid_request"),
        (6, ("code_challenge_method", "plain"), "invalid_request"),
    ];
    for (index, replacement, error) in cases {
        let mut query = authorize_query("files-client", &challenge);
        query[index] = replacement;
        let params = location_params(&get(&provider, Endpoint::Authorize, &query));
        assert_eq!(params["error"], error, "with {replacement:?}");
        assert!(!params.contains_key("code"));
    }
}

#[test]
fn denying_consent_redirects_with_access_denied_and_the_state() {
    let provider = provider(Faults::none());
    let challenge = pkce_challenge(VERIFIER);
    let page = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    );
    let request = consent_request_id(&page);
    let params = location_params(&post(
        &provider,
        Endpoint::Consent,
        &[],
        &[("request", &request), ("decision", "deny")],
        0,
    ));
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "state-1");
    let again = post(
        &provider,
        Endpoint::Consent,
        &[],
        &[("request", &request), ("decision", "allow")],
        0,
    );
    assert_eq!(again.status, 400, "a consent request is answered once");
}

#[test]
fn a_code_is_single_use_and_its_reuse_revokes_what_it_issued() {
    let provider = provider(Faults::none());
    let code = code_for(&provider, "files-client");
    let first = json(&exchange(&provider, &code, VERIFIER, 0));
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let replay = exchange(&provider, &code, VERIFIER, 0);
    assert_eq!(replay.status, 400);
    assert_eq!(json(&replay)["error"], "invalid_grant");
    assert!(!provider.access_token_is_live(&access, 0));
    assert!(!provider.refresh_token_is_live(&refresh));
    assert_eq!(api(&provider, &access, 0).status, 401);
}

#[test]
fn a_code_is_bound_to_its_verifier_its_redirect_uri_and_its_client() {
    let provider = provider(Faults::none());
    let wrong_verifier = exchange(
        &provider,
        &code_for(&provider, "files-client"),
        "another-verifier-0123456789-0123456789-01234",
        0,
    );
    assert_eq!(json(&wrong_verifier)["error"], "invalid_grant");

    let code = code_for(&provider, "files-client");
    let wrong_redirect = post(
        &provider,
        Endpoint::Token,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", VERIFIER),
        ],
        0,
    );
    assert_eq!(json(&wrong_redirect)["error"], "invalid_grant");

    let code = code_for(&provider, "files-client");
    let other_client = post(
        &provider,
        Endpoint::Token,
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "calendar-client"),
            ("client_secret", "calendar-secret-value"),
        ],
        0,
    );
    assert_eq!(json(&other_client)["error"], "invalid_grant");

    let expired = exchange(
        &provider,
        &code_for(&provider, "files-client"),
        VERIFIER,
        11 * 60 * 1000,
    );
    assert_eq!(json(&expired)["error"], "invalid_grant");
}

#[test]
fn the_token_endpoint_authenticates_the_client_by_basic_or_by_form_but_not_both() {
    let provider = provider(Faults::none());
    let code = code_for(&provider, "files-client");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "files-client"),
        ("client_secret", "files-secret-value"),
    ];
    let both = post(
        &provider,
        Endpoint::Token,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &form,
        0,
    );
    assert_eq!(json(&both)["error"], "invalid_request");
    let none = post(&provider, Endpoint::Token, &[], &form[..4], 0);
    assert_eq!(none.status, 401);
    assert_eq!(json(&none)["error"], "invalid_client");
    let wrong = post(
        &provider,
        Endpoint::Token,
        &[("authorization", &basic("files-client", "not-the-secret"))],
        &form[..4],
        0,
    );
    assert_eq!(wrong.status, 401);
    let by_form = post(&provider, Endpoint::Token, &[], &form, 0);
    assert_eq!(by_form.status, 200, "{}", by_form.body_text());
    let unsupported = post(
        &provider,
        Endpoint::Token,
        &[],
        &[("grant_type", "password"), form[4], form[5]],
        0,
    );
    assert_eq!(json(&unsupported)["error"], "unsupported_grant_type");
}

#[test]
fn a_refresh_token_mints_access_tokens_until_it_is_revoked() {
    let provider = provider(Faults::none());
    let tokens = tokens_for(&provider);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let auth = basic("files-client", "files-secret-value");
    let refreshed = post(
        &provider,
        Endpoint::Token,
        &[("authorization", &auth)],
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        0,
    );
    assert_eq!(refreshed.status, 200);
    let new_access = json(&refreshed)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_access, tokens["access_token"].as_str().unwrap());
    let by_other_client = post(
        &provider,
        Endpoint::Token,
        &[(
            "authorization",
            &basic("calendar-client", "calendar-secret-value"),
        )],
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        0,
    );
    assert_eq!(json(&by_other_client)["error"], "invalid_grant");

    let revoked = post(
        &provider,
        Endpoint::Revoke,
        &[("authorization", &auth)],
        &[("token", refresh)],
        0,
    );
    assert_eq!(revoked.status, 200);
    assert!(
        !provider.access_token_is_live(&new_access, 0),
        "revoking a refresh token revokes its access tokens"
    );
    let after = post(
        &provider,
        Endpoint::Token,
        &[("authorization", &auth)],
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        0,
    );
    assert_eq!(json(&after)["error"], "invalid_grant");
}

#[test]
fn the_revoke_endpoint_needs_client_auth_accepts_unknown_tokens_and_refuses_others_tokens() {
    let provider = provider(Faults::none());
    let tokens = tokens_for(&provider);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        post(&provider, Endpoint::Revoke, &[], &[("token", access)], 0).status,
        401
    );
    let other = post(
        &provider,
        Endpoint::Revoke,
        &[(
            "authorization",
            &basic("calendar-client", "calendar-secret-value"),
        )],
        &[("token", access)],
        0,
    );
    assert_eq!(other.status, 400);
    assert!(provider.access_token_is_live(access, 0));
    let unknown = post(
        &provider,
        Endpoint::Revoke,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &[("token", "at_nothing_like_this_exists_here")],
        0,
    );
    assert_eq!(unknown.status, 200);
}

#[test]
fn the_api_refuses_missing_expired_and_revoked_tokens() {
    let provider = provider(Faults::none().token_lifetime(std::time::Duration::from_secs(2)));
    let tokens = tokens_for(&provider);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(api(&provider, access, 1_000).status, 200);
    let expired = api(&provider, access, 2_000);
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let missing = provider.handle(Endpoint::ApiFiles, &ProviderRequest::default(), 0);
    assert_eq!(missing.status, 401);

    let provider = self::provider(Faults::none());
    let tokens = tokens_for(&provider);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(provider.revoke_all_grants(None), 2);
    assert_eq!(api(&provider, access, 0).status, 401);
    let calendar = provider.handle(
        Endpoint::ApiCalendar,
        &ProviderRequest {
            headers: vec![("authorization".into(), format!("Bearer {access}"))],
            ..Default::default()
        },
        0,
    );
    assert_eq!(calendar.status, 401);
}

#[test]
fn faults_change_what_the_endpoints_answer() {
    let challenge = pkce_challenge(VERIFIER);
    let denied = provider(Faults::none().consent_denied());
    let params = location_params(&get(
        &denied,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    ));
    assert_eq!(params["error"], "access_denied");

    let erroring = provider(Faults::none().error_redirect("server_error", "provider is down"));
    let params = location_params(&get(
        &erroring,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    ));
    assert_eq!(params["error"], "server_error");
    assert_eq!(params["error_description"], "provider is down");

    let failing = provider(Faults::none().token_fails_with(TokenFailure::ServerError));
    let response = exchange(&failing, &code_for(&failing, "files-client"), VERIFIER, 0);
    assert_eq!(response.status, 503);

    let refusing = provider(Faults::none().token_fails_with(TokenFailure::InvalidGrant));
    let response = exchange(&refusing, &code_for(&refusing, "files-client"), VERIFIER, 0);
    assert_eq!(json(&response)["error"], "invalid_grant");

    let slow = provider(Faults::none().token_delay(std::time::Duration::from_millis(1500)));
    assert_eq!(
        exchange(&slow, &code_for(&slow, "files-client"), VERIFIER, 0).delay_ms,
        1500
    );

    let coop = provider(
        Faults::none()
            .coop_on_consent_page(fake_provider::Coop::ReportOnly)
            .coop_on_redirect(fake_provider::Coop::SameOrigin),
    );
    let page = get(
        &coop,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    );
    assert_eq!(
        page.header("cross-origin-opener-policy-report-only"),
        Some("same-origin")
    );
    let request = consent_request_id(&page);
    let redirect = post(
        &coop,
        Endpoint::Consent,
        &[],
        &[("request", &request), ("decision", "allow")],
        0,
    );
    assert_eq!(
        redirect.header("cross-origin-opener-policy"),
        Some("same-origin")
    );

    let revoke_fails = provider(Faults::none().revoke_endpoint_fails());
    let response = post(
        &revoke_fails,
        Endpoint::Revoke,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &[("token", "at_whatever_whatever_whatever")],
        0,
    );
    assert_eq!(response.status, 503);
}

#[test]
fn the_same_seed_gives_the_same_codes_and_tokens() {
    let run = || {
        let provider = provider(Faults::none());
        let code = code_for(&provider, "files-client");
        let tokens = json(&exchange(&provider, &code, VERIFIER, 0));
        (
            code,
            tokens["access_token"].clone(),
            tokens["refresh_token"].clone(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_request_no_endpoint_matches_is_a_violation_and_admin_requests_are_not_logged() {
    let provider = provider(Faults::none());
    let response = provider.handle(
        Endpoint::route("GET", "/oauth/authorize"),
        &ProviderRequest {
            method: "GET".into(),
            path: "/oauth/authorize".into(),
            ..Default::default()
        },
        0,
    );
    assert_eq!(response.status, 404);
    let violations = provider.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/oauth/authorize");
    provider.handle(Endpoint::AdminSecrets, &ProviderRequest::default(), 0);
    assert_eq!(provider.request_log().len(), 1);
    assert_eq!(Endpoint::route("POST", "/token"), Endpoint::Token);
    assert_eq!(Endpoint::route("GET", "/token"), Endpoint::Unmatched);
}

#[test]
fn a_provider_that_remembers_consent_grants_again_without_the_page_and_forgets_on_new_faults() {
    let challenge = pkce_challenge(VERIFIER);
    let faults = Faults::none()
        .csp_on_consent_page("form-action 'self'")
        .remembers_consent();
    let provider = provider(faults.clone());
    let page = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        Some("form-action 'self'")
    );
    // Not allowed yet: a denial is not remembered.
    let request = consent_request_id(&page);
    post(
        &provider,
        Endpoint::Consent,
        &[],
        &[("request", &request), ("decision", "deny")],
        0,
    );
    let again = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    );
    assert_eq!(again.status, 200, "a denied scope shows the page again");
    let first = code_for(&provider, "files-client");
    let params = location_params(&get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("files-client", &challenge),
    ));
    assert_ne!(params["code"], first, "a fresh code");
    assert_eq!(params["state"], "state-1");
    assert_eq!(
        exchange(&provider, &params["code"], VERIFIER, 0).status,
        200,
        "the remembered grant's code is a real one"
    );
    // A new run, whether its faults are set in-process or through the admin endpoint,
    // starts with nothing remembered.
    for through_admin in [false, true] {
        let new_run = || {
            if through_admin {
                let answer = provider.handle(
                    Endpoint::AdminFaults,
                    &ProviderRequest {
                        method: "PUT".into(),
                        path: "/_admin/faults".into(),
                        body: serde_json::to_vec(&faults).unwrap(),
                        ..Default::default()
                    },
                    0,
                );
                assert_eq!(answer.status, 200);
            } else {
                provider.set_faults(faults.clone());
            }
        };
        new_run();
        code_for(&provider, "files-client");
        new_run();
        let page = get(
            &provider,
            Endpoint::Authorize,
            &authorize_query("files-client", &challenge),
        );
        assert_eq!(
            page.status, 200,
            "remembered after a new run (admin: {through_admin})"
        );
    }
}

#[test]
fn a_client_registered_through_the_admin_endpoint_is_accepted_from_then_on() {
    let provider = provider(Faults::none());
    let challenge = pkce_challenge(VERIFIER);
    let before = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("late-client", &challenge),
    );
    assert_eq!(before.status, 400, "an unknown client is refused");
    let incomplete = post(
        &provider,
        Endpoint::AdminClients,
        &[],
        &[("client_id", "late-client")],
        0,
    );
    assert_eq!(incomplete.status, 400);
    assert!(
        incomplete.body_text().contains("redirect_uri"),
        "{}",
        incomplete.body_text()
    );
    let registered = post(
        &provider,
        Endpoint::AdminClients,
        &[],
        &[
            ("client_id", "late-client"),
            ("client_secret", "late-secret-value"),
            ("redirect_uri", REDIRECT),
        ],
        0,
    );
    assert_eq!(registered.status, 200, "{}", registered.body_text());
    let after = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query("late-client", &challenge),
    );
    assert_eq!(after.status, 200, "{}", after.body_text());
    assert!(
        provider
            .secrets()
            .all()
            .iter()
            .any(|s| s.kind == SecretKind::ClientSecret && s.value == "late-secret-value"),
        "the ledger watches the new client's secret"
    );
    assert_eq!(
        Endpoint::route("POST", "/_admin/clients"),
        Endpoint::AdminClients
    );
}

fn refresh_with(provider: &Provider, refresh: &str) -> ProviderResponse {
    refresh_naming(provider, refresh, &[])
}

/// A refresh with `extra` form fields (a `resource`, say).
fn refresh_naming(provider: &Provider, refresh: &str, extra: &[(&str, &str)]) -> ProviderResponse {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
    form.extend_from_slice(extra);
    post(
        provider,
        Endpoint::Token,
        &[(
            "authorization",
            &basic("files-client", "files-secret-value"),
        )],
        &form,
        0,
    )
}

#[test]
fn with_rotation_each_refresh_answers_a_new_refresh_token_and_refuses_the_used_one() {
    let provider = provider(Faults::none().refresh_rotation(RefreshRotation::Rotate));
    let tokens = tokens_for(&provider);
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let answered = json(&refresh_with(&provider, &first));
    let second = answered["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "a new refresh token each time");
    let again = refresh_with(&provider, &first);
    assert_eq!(json(&again)["error"], "invalid_grant");
    assert!(
        provider.access_token_is_live(answered["access_token"].as_str().unwrap(), 0),
        "without reuse detection a reuse revokes nothing"
    );
    assert_eq!(refresh_with(&provider, &second).status, 200);
}

#[test]
fn with_reuse_detection_a_refresh_token_used_twice_revokes_the_whole_grant() {
    let provider =
        provider(Faults::none().refresh_rotation(RefreshRotation::RotateWithReuseDetection));
    let tokens = tokens_for(&provider);
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let answered = json(&refresh_with(&provider, &first));
    let (second, access) = (
        answered["refresh_token"].as_str().unwrap().to_owned(),
        answered["access_token"].as_str().unwrap().to_owned(),
    );
    // Two requests with the same refresh token (two refreshes racing): the second is a reuse.
    let reuse = refresh_with(&provider, &first);
    assert_eq!(json(&reuse)["error"], "invalid_grant");
    assert!(
        json(&reuse)["error_description"]
            .as_str()
            .unwrap()
            .contains("reuse detected"),
        "{}",
        reuse.body_text()
    );
    assert!(
        !provider.access_token_is_live(&access, 0),
        "the grant's access tokens are revoked"
    );
    assert!(
        !provider.refresh_token_is_live(&second),
        "and its newest refresh token"
    );
    assert_eq!(
        json(&refresh_with(&provider, &second))["error"],
        "invalid_grant"
    );
}

#[test]
fn an_expired_token_serves_through_the_grace_period_and_not_after() {
    let mut faults = Faults::none().token_lifetime(std::time::Duration::from_secs(2));
    faults.access_token_grace_secs = 3;
    let provider = provider(faults);
    let tokens = tokens_for(&provider);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        tokens["expires_in"], 2,
        "the lifetime it announces is the real one"
    );
    assert_eq!(
        api(&provider, access, 4_999).status,
        200,
        "within the grace"
    );
    assert_eq!(api(&provider, access, 5_000).status, 401, "after it");
}

#[test]
fn token_type_is_spelt_as_the_faults_say() {
    for (spelling, expected) in [
        (TokenType::Lowercase, "bearer"),
        (TokenType::Capitalized, "Bearer"),
        (TokenType::Uppercase, "BEARER"),
    ] {
        let mut faults = Faults::none();
        faults.token_type = spelling;
        let provider = provider(faults);
        let tokens = tokens_for(&provider);
        assert_eq!(tokens["token_type"], expected);
    }
}

#[test]
fn the_metadata_names_the_endpoints_and_says_whether_responses_carry_iss() {
    for (iss, supported) in [
        (IssInResponse::Absent, false),
        (IssInResponse::Correct, true),
    ] {
        let provider = provider(Faults::none().iss_in_response(iss));
        let metadata = json(&get(&provider, Endpoint::Metadata, &[]));
        let issuer = metadata["issuer"].as_str().unwrap().to_owned();
        assert!(!issuer.ends_with('/'), "{issuer}");
        assert_eq!(
            metadata["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(metadata["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(metadata["code_challenge_methods_supported"][0], "S256");
        assert_eq!(
            metadata["authorization_response_iss_parameter_supported"], supported,
            "{iss:?}"
        );
    }
    assert_eq!(
        Endpoint::route("GET", "/.well-known/oauth-authorization-server"),
        Endpoint::Metadata
    );
}

// --- the MCP server and its authorization (RFC 9728, RFC 8707, RFC 7591) ---------------------

/// The MCP server's resource identifier in these tests.
const MCP: &str = "http://localhost:1/mcp";

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const LIST_NOTES: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_notes"}}"#;

/// One POST to the MCP server, with a bearer token, a session and a protocol version if given.
fn mcp_post(
    provider: &Provider,
    token: Option<&str>,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> ProviderResponse {
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if let Some(token) = token {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    if let Some(session) = session {
        headers.push(("mcp-session-id".into(), session.into()));
        headers.push(("mcp-protocol-version".into(), "2025-11-25".into()));
    }
    provider.handle(
        Endpoint::Mcp,
        &ProviderRequest {
            method: "POST".into(),
            path: "/mcp".into(),
            headers,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        },
        0,
    )
}

/// A session with the MCP server (initialize, initialized) and one message in it: the answer
/// of the first step that fails, or of `body`.
fn in_session(provider: &Provider, token: Option<&str>, body: &str) -> ProviderResponse {
    let initialized = mcp_post(provider, token, None, &[], INITIALIZE);
    if initialized.status != 200 {
        return initialized;
    }
    let session = initialized.header("mcp-session-id").unwrap().to_owned();
    let notified = mcp_post(provider, token, Some(&session), &[], INITIALIZED);
    assert_eq!(notified.status, 202, "{}", notified.body_text());
    mcp_post(provider, token, Some(&session), &[], body)
}

/// `list_notes`, called in a session.
fn call_tool(provider: &Provider, token: Option<&str>) -> ProviderResponse {
    in_session(provider, token, LIST_NOTES)
}

/// Tokens for the MCP server: authorized for `resource`, exchanged naming `exchanged`.
fn mcp_tokens(provider: &Provider, resource: &str, exchanged: &[(&str, &str)]) -> ProviderResponse {
    let code = code_with(
        provider,
        "files-client",
        &[("scope", "mcp.tools"), ("resource", resource)],
    );
    exchange_with(provider, &code, VERIFIER, exchanged, 0)
}

#[test]
fn the_mcp_server_says_where_its_metadata_is_and_serves_only_tokens_bound_to_it() {
    let provider = provider(Faults::none());
    let anonymous = call_tool(&provider, None);
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(
            "resource_metadata=\"http://localhost:1/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    let metadata = json(&get(&provider, Endpoint::ResourceMetadata, &[]));
    assert_eq!(metadata["resource"], MCP);
    assert_eq!(metadata["authorization_servers"][0], "http://localhost:1");
    let server = json(&get(&provider, Endpoint::Metadata, &[]));
    assert_eq!(
        server["registration_endpoint"],
        "http://localhost:1/register"
    );

    let tokens = json(&mcp_tokens(&provider, MCP, &[("resource", MCP)]));
    let access = tokens["access_token"].as_str().unwrap();
    let answer = call_tool(&provider, Some(access));
    assert_eq!(answer.status, 200, "{}", answer.body_text());
    assert_eq!(json(&answer)["id"], 7);
    assert!(
        json(&answer)["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("design-review.md")
    );
    // gbrain #5222: a token for the origin root is not a token for this server; nor is one
    // for no resource at all.
    for (resource, named) in [
        ("http://localhost:1/", "http://localhost:1/"),
        ("", "no resource"),
    ] {
        let tokens = if resource.is_empty() {
            json(&exchange(
                &provider,
                &code_with(&provider, "files-client", &[("scope", "mcp.tools")]),
                VERIFIER,
                0,
            ))
        } else {
            json(&mcp_tokens(&provider, resource, &[]))
        };
        let refused = call_tool(&provider, tokens["access_token"].as_str());
        assert_eq!(refused.status, 401, "{resource}");
        assert!(
            refused
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
        let outcome = provider.request_log().last().unwrap().outcome.to_string();
        assert!(outcome.contains(named), "{outcome}");
    }
}

#[test]
fn the_mcp_server_wants_an_initialized_session_its_protocol_version_and_answers_in_events_when_asked()
 {
    let provider = provider(Faults::none());
    let tokens = json(&mcp_tokens(&provider, MCP, &[("resource", MCP)]));
    let token = tokens["access_token"].as_str();
    // No session: refused, and the log names the method.
    let early = mcp_post(&provider, token, None, &[], LIST_NOTES);
    assert_eq!(early.status, 400, "{}", early.body_text());
    let logged = provider.request_log().last().unwrap().clone();
    assert_eq!(logged.rpc.as_deref(), Some("tools/call"));
    assert!(
        logged.outcome.to_string().contains("without a session"),
        "{}",
        logged.outcome
    );
    // An initialize that does not say who the client is: refused.
    let anonymous = mcp_post(
        &provider,
        token,
        None,
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
    );
    assert_eq!(anonymous.status, 400);
    assert!(anonymous.body_text().contains("protocolVersion"));
    // A session without the protocol version header: refused.
    let opened = mcp_post(&provider, token, None, &[], INITIALIZE);
    assert_eq!(json(&opened)["result"]["protocolVersion"], "2025-11-25");
    let session = opened.header("mcp-session-id").unwrap().to_owned();
    let unversioned = provider.handle(
        Endpoint::Mcp,
        &ProviderRequest {
            method: "POST".into(),
            path: "/mcp".into(),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", token.unwrap())),
                ("mcp-session-id".into(), session.clone()),
            ],
            body: LIST_NOTES.as_bytes().to_vec(),
            ..Default::default()
        },
        0,
    );
    assert_eq!(unversioned.status, 400);
    // In a session: several tools, and server-sent events for a client that accepts them.
    let listed = in_session(
        &provider,
        token,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    let names: Vec<String> = json(&listed)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["list_notes", "search_notes", "get_note"]);
    let streamed = mcp_post(
        &provider,
        token,
        Some(&session),
        &[("accept", "application/json, text/event-stream")],
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_note","arguments":{"name":"standup"}}}"#,
    );
    assert_eq!(streamed.content_type, "text/event-stream");
    let text = streamed.body_text();
    assert!(text.starts_with("event: message\ndata: {"), "{text}");
    assert!(text.contains("the team meets at nine"), "{text}");
}

#[test]
fn the_resource_must_agree_on_the_token_request_and_a_refresh_that_drops_it_gets_no_audience() {
    let provider = provider(Faults::none());
    // mcp-remote #218: another resource at the token endpoint than at authorization.
    let differs = mcp_tokens(&provider, MCP, &[("resource", "http://localhost:1/")]);
    assert_eq!(differs.status, 400);
    assert_eq!(json(&differs)["error"], "invalid_target");

    let tokens = json(&mcp_tokens(&provider, MCP, &[("resource", MCP)]));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let dropped = json(&refresh_with(&provider, refresh));
    assert_eq!(
        call_tool(&provider, dropped["access_token"].as_str()).status,
        401,
        "a refresh without resource gives a token the server refuses"
    );
    let named = json(&refresh_naming(&provider, refresh, &[("resource", MCP)]));
    assert_eq!(
        call_tool(&provider, named["access_token"].as_str()).status,
        200
    );
    let other = refresh_naming(
        &provider,
        refresh,
        &[("resource", "https://elsewhere.example/")],
    );
    assert_eq!(json(&other)["error"], "invalid_target");
}

#[test]
fn mcp_faults_change_the_metadata_the_resource_parameter_registration_and_scopes() {
    let mut faults = Faults::none();
    faults.mcp.resource_in_metadata = ResourceInMetadata::AnotherServer;
    let provider = self::provider(faults);
    let metadata = json(&get(&provider, Endpoint::ResourceMetadata, &[]));
    assert_ne!(metadata["resource"], MCP);

    // sentry-for-ai #59: an authorization server that refuses `resource`.
    let mut faults = Faults::none();
    faults.mcp.refuses_resource = true;
    let provider = self::provider(faults);
    let challenge = pkce_challenge(VERIFIER);
    let mut query = authorize_query("files-client", &challenge);
    query.push(("resource", MCP));
    let refused = location_params(&get(&provider, Endpoint::Authorize, &query));
    assert_eq!(refused["error"], "invalid_target");
    assert_eq!(refused["state"], "state-1");

    let mut faults = Faults::none();
    faults.mcp.step_up_scope = Some("mcp.admin".into());
    let provider = self::provider(faults);
    let tokens = json(&mcp_tokens(&provider, MCP, &[("resource", MCP)]));
    let short = call_tool(&provider, tokens["access_token"].as_str());
    assert_eq!(short.status, 403);
    let challenge = short.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_scope")
            && challenge.contains("scope=\"mcp.tools mcp.admin\""),
        "{challenge}"
    );
    let code = code_with(
        &provider,
        "files-client",
        &[("scope", "mcp.tools mcp.admin"), ("resource", MCP)],
    );
    let wider = json(&exchange_with(
        &provider,
        &code,
        VERIFIER,
        &[("resource", MCP)],
        0,
    ));
    assert_eq!(
        call_tool(&provider, wider["access_token"].as_str()).status,
        200
    );
}

#[test]
fn dynamic_registration_issues_a_confidential_client_and_refuses_as_told() {
    let provider = provider(Faults::none());
    let register = |provider: &Provider, body: &str| {
        provider.handle(
            Endpoint::Register,
            &ProviderRequest {
                method: "POST".into(),
                path: "/register".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.as_bytes().to_vec(),
                ..Default::default()
            },
            0,
        )
    };
    let answer = register(
        &provider,
        &format!(r#"{{"redirect_uris":["{REDIRECT}"],"client_name":"Alumia"}}"#),
    );
    assert_eq!(answer.status, 201, "{}", answer.body_text());
    let client = json(&answer);
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert!(
        !provider.secrets().find_in(secret).is_empty(),
        "the registered secret is in the ledger"
    );
    let page = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query(id, &pkce_challenge(VERIFIER)),
    );
    assert_eq!(page.status, 200, "the registered client can authorize");
    assert!(page.body_text().contains("Alumia"));

    for (body, error) in [
        (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (r#"{"redirect_uris":["/relative"]}"#, "invalid_redirect_uri"),
        (
            &*format!(r#"{{"redirect_uris":["{REDIRECT}"],"token_endpoint_auth_method":"none"}}"#),
            "invalid_client_metadata",
        ),
        ("not json", "invalid_client_metadata"),
    ] {
        assert_eq!(json(&register(&provider, body))["error"], error, "{body}");
    }
    let mut faults = Faults::none();
    faults.mcp.registration_refused = true;
    let closed = self::provider(faults);
    let refused = register(&closed, &format!(r#"{{"redirect_uris":["{REDIRECT}"]}}"#));
    assert_eq!(refused.status, 400);
    assert_eq!(json(&refused)["error"], "invalid_client_metadata");
}

/// The client ID of a client known by its metadata document in these tests.
const DOCUMENT_CLIENT: &str = "http://127.0.0.1:9/oauth/client-metadata.json";

/// A provider that knows clients as `known_by` says, whose document fetches answer `document`
/// and are counted.
fn provider_fetching(
    known_by: ClientsKnownBy,
    document: serde_json::Value,
) -> (Provider, Arc<AtomicUsize>) {
    let mut faults = Faults::none();
    faults.mcp.clients_known_by = known_by;
    let provider = provider(faults);
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    provider.set_document_fetcher(Arc::new(move |url: &Url| {
        counted.fetch_add(1, Ordering::SeqCst);
        assert_eq!(url.as_str(), DOCUMENT_CLIENT);
        Ok((200, document.to_string().into_bytes()))
    }));
    (provider, fetches)
}

fn public_client_document() -> serde_json::Value {
    serde_json::json!({
        "client_id": DOCUMENT_CLIENT,
        "client_name": "Alumia",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    })
}

/// The code exchange of a public client: it names itself in the form, no secret.
fn public_exchange(provider: &Provider, code: &str, verifier: &str) -> ProviderResponse {
    post(
        provider,
        Endpoint::Token,
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", DOCUMENT_CLIENT),
        ],
        0,
    )
}

#[test]
fn a_client_known_by_its_metadata_document_is_fetched_once_and_proves_itself_by_pkce() {
    let (provider, fetches) =
        provider_fetching(ClientsKnownBy::MetadataDocument, public_client_document());
    let metadata = json(&get(&provider, Endpoint::Metadata, &[]));
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert!(
        metadata.get("registration_endpoint").is_none(),
        "{metadata}"
    );
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"none".into())
    );
    let register = provider.handle(
        Endpoint::Register,
        &ProviderRequest {
            method: "POST".into(),
            path: "/register".into(),
            body: format!(r#"{{"redirect_uris":["{REDIRECT}"]}}"#).into_bytes(),
            ..Default::default()
        },
        0,
    );
    assert_eq!(register.status, 404, "no registration with documents only");

    let page = get(
        &provider,
        Endpoint::Authorize,
        &authorize_query(DOCUMENT_CLIENT, &pkce_challenge(VERIFIER)),
    );
    assert_eq!(page.status, 200, "{}", page.body_text());
    assert!(page.body_text().contains("Alumia"), "the document's name");
    let code = code_for(&provider, DOCUMENT_CLIENT);
    let wrong = public_exchange(
        &provider,
        &code,
        "another-verifier-0123456789-0123456789-01",
    );
    assert_eq!(json(&wrong)["error"], "invalid_grant", "PKCE is its proof");
    let code = code_for(&provider, DOCUMENT_CLIENT);
    let tokens = public_exchange(&provider, &code, VERIFIER);
    assert_eq!(tokens.status, 200, "{}", tokens.body_text());
    assert!(json(&tokens)["access_token"].is_string());
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the document is fetched once"
    );

    // A confidential client cannot leave its secret out by naming itself.
    let code = code_for(&provider, "files-client");
    let unauthenticated = post(
        &provider,
        Endpoint::Token,
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "files-client"),
        ],
        0,
    );
    assert_eq!(
        unauthenticated.status,
        401,
        "{}",
        unauthenticated.body_text()
    );
}

#[test]
fn a_document_that_does_not_describe_a_public_client_or_a_server_without_documents_stops_authorize()
{
    let mut confidential = public_client_document();
    confidential["token_endpoint_auth_method"] = "client_secret_basic".into();
    let (provider, _) = provider_fetching(ClientsKnownBy::Either, confidential);
    let challenge = pkce_challenge(VERIFIER);
    let query = authorize_query(DOCUMENT_CLIENT, &challenge);
    let refused = get(&provider, Endpoint::Authorize, &query);
    assert_eq!(refused.status, 400);
    assert!(refused.body_text().contains("no shared secret"));
    let outcome = provider.request_log().last().unwrap().outcome.to_string();
    assert!(outcome.starts_with("rejected"), "{outcome}");

    let (provider, fetches) =
        provider_fetching(ClientsKnownBy::Registration, public_client_document());
    let metadata = json(&get(&provider, Endpoint::Metadata, &[]));
    assert!(
        metadata
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let unknown = get(&provider, Endpoint::Authorize, &query);
    assert_eq!(unknown.status, 400, "an unknown client");
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "nothing fetched");
}

#[test]
fn every_grant_is_numbered_logged_with_its_requests_and_listed_with_what_of_it_still_works() {
    let provider = provider(Faults::none());
    let first = tokens_for(&provider);
    let second = tokens_for(&provider);
    let files_auth = basic("files-client", "files-secret-value");
    let (access, refresh) = (
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(api(&provider, access, 10).status, 200);
    let revoke = |token: &str| {
        post(
            &provider,
            Endpoint::Revoke,
            &[("authorization", &files_auth)],
            &[("token", token)],
            20,
        )
    };
    // The access token alone: the grant's refresh token still works.
    assert_eq!(revoke(access).status, 200);
    let listed = provider.grants(30);
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].id, listed[1].id), (1, 2));
    assert_eq!(listed[0].live_access_tokens, 0);
    assert!(listed[0].live_refresh_token && listed[0].is_live());
    assert!(listed[1].is_live());
    // Its refresh token too: nothing of the first grant works; the second is untouched.
    assert_eq!(revoke(refresh).status, 200);
    let listed = provider.grants(40);
    assert!(!listed[0].is_live(), "{listed:?}");
    assert!(listed[1].is_live(), "{listed:?}");
    assert!(second["access_token"].is_string());
    // Each request that concerned a grant says which.
    let concerned: Vec<(Endpoint, Option<u64>)> = provider
        .request_log()
        .iter()
        .filter(|r| r.endpoint != Endpoint::Authorize && r.endpoint != Endpoint::Consent)
        .map(|r| (r.endpoint, r.grant))
        .collect();
    assert_eq!(
        concerned,
        vec![
            (Endpoint::Token, Some(1)),
            (Endpoint::Token, Some(2)),
            (Endpoint::ApiFiles, Some(1)),
            (Endpoint::Revoke, Some(1)),
            (Endpoint::Revoke, Some(1)),
        ]
    );
    // The grant's origin is the code exchange that created it.
    let exchange_seq = provider
        .request_log()
        .iter()
        .find(|r| r.endpoint == Endpoint::Token)
        .unwrap()
        .seq;
    assert_eq!(provider.grants(50)[0].issued_seq, exchange_seq);
}

#[test]
fn a_grant_whose_refresh_token_was_withheld_is_live_by_its_access_token_only() {
    let provider = provider(Faults {
        withholds_refresh_token: true,
        token_lifetime_secs: 1,
        ..Faults::none()
    });
    let tokens = tokens_for(&provider);
    assert!(tokens["refresh_token"].is_null());
    let listed = provider.grants(0);
    assert_eq!(listed[0].live_access_tokens, 1);
    assert!(!listed[0].live_refresh_token, "the platform never held one");
    assert!(!provider.grants(1_000)[0].is_live(), "expired");
}
