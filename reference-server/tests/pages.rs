//! Sign-in, cookies, security headers, settings errors and the pages' markup contract.

mod support;

use fake_provider::Faults;
use reference_server::Settings;
use support::{Browser, stack};

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    let response = browser
        .http
        .get(browser.url("/dev/login?user=alice&org=acme&next=/acme/connectors"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("alumia_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(response.headers()["location"], "/acme/connectors");
    let offsite = browser
        .http
        .get(browser.url("/dev/login?user=alice&org=acme&next=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        offsite.headers()["location"],
        "/acme/chat/general",
        "no open redirect"
    );
    let bad = browser
        .visit(browser.url("/dev/login?user=Alice!&org=acme"))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn pages_carry_a_csp_without_inline_scripts_and_no_referrer() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    browser.login("alice", "acme").await;
    for path in [
        "/acme/connectors",
        "/acme/chat/c1",
        "/auth/connector-callback?oauth_result=success",
    ] {
        let page = browser.visit(browser.url(path)).await;
        assert_eq!(page.status, 200, "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert!(
            !page.text.contains("<script>"),
            "{path} has an inline script"
        );
    }
    let connectors = browser.visit(browser.url("/acme/connectors")).await.text;
    for testid in [
        "connect-files",
        "connect-calendar",
        "disconnect-files",
        "connector-status-files",
    ] {
        assert!(
            connectors.contains(&format!("data-testid=\"{testid}\"")),
            "{testid}"
        );
    }
    let script = browser
        .visit(browser.url("/static/card-decisions.js"))
        .await;
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(script.text, reference_server::CARD_DECISIONS_JS);
}

#[tokio::test]
async fn the_callback_page_renders_its_message_as_text() {
    let stack = stack(Faults::none()).await;
    let browser = Browser::new(&stack);
    let page = browser
        .visit(browser.url("/auth/connector-callback?oauth_result=error&oauth_message=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .await;
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.text.contains("<script>alert"));
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[test]
fn a_settings_file_with_an_unknown_key_names_the_file_the_line_and_the_allowed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alumia.toml");
    std::fs::write(&path, "bind = \"127.0.0.1:0\"\nprovider = \"x\"\n").unwrap();
    let message = Settings::from_file(&path).unwrap_err().to_string();
    assert!(message.contains("alumia.toml"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("allowed keys"), "{message}");
}

#[test]
fn settings_without_connectors_are_refused_with_a_hint() {
    let message = Settings::default().validate().unwrap_err().to_string();
    assert!(message.contains("--provider-url"), "{message}");
}

#[tokio::test]
async fn the_opener_policy_setting_sends_coop_where_it_says() {
    use reference_server::OpenerPolicy;
    let pages = [
        "/acme/connectors",
        "/acme/chat/c1",
        "/auth/connector-callback?oauth_result=success",
    ];
    for (policy, expected) in [
        (OpenerPolicy::Unset, [None, None, None]),
        (
            OpenerPolicy::SiteWide,
            [
                Some("same-origin"),
                Some("same-origin"),
                Some("same-origin"),
            ],
        ),
        (
            OpenerPolicy::CallbackNoopenerAllowPopups,
            [None, None, Some("noopener-allow-popups")],
        ),
    ] {
        let stack = support::stack_with(Faults::none(), |settings| {
            settings.opener_policy = Some(policy);
        })
        .await;
        let browser = Browser::new(&stack);
        browser.login("alice", "acme").await;
        for (path, expected) in pages.iter().zip(expected) {
            let page = browser.visit(browser.url(path)).await;
            let coop = page
                .headers
                .get("cross-origin-opener-policy")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(coop.as_deref(), expected, "{policy:?} {path}");
        }
    }
    assert_eq!(
        OpenerPolicy::parse("site-wide").unwrap(),
        OpenerPolicy::SiteWide
    );
    let error = OpenerPolicy::parse("same-origin").unwrap_err().to_string();
    assert!(
        error.contains("unset, site-wide, callback-noopener-allow-popups"),
        "{error}"
    );
}

#[test]
fn an_authorization_parameter_the_platform_sets_itself_is_refused_naming_the_connector() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alumia.toml");
    std::fs::write(
        &path,
        r#"
[[connectors]]
name = "files"
display_name = "Files"
client_id = "alumia-files"
client_secret = "s"
authorize_url = "http://127.0.0.1:9/authorize"
token_url = "http://127.0.0.1:9/token"
revoke_url = "http://127.0.0.1:9/revoke"
api_url = "http://127.0.0.1:9/api/files"
scopes = ["files.read"]
authorization_parameters = { prompt = "consent", state = "fixed" }
"#,
    )
    .unwrap();
    let settings = Settings::from_file(&path).unwrap();
    assert_eq!(
        settings.connectors[0].authorization_parameters["prompt"],
        "consent"
    );
    let message = settings.validate().unwrap_err().to_string();
    assert!(message.contains("connector files"), "{message}");
    assert!(message.contains("\"state\""), "{message}");
    assert!(message.contains("hint"), "{message}");
}

#[tokio::test]
async fn an_embeddable_platform_lets_other_sites_frame_its_chat_page_alone() {
    let stack = support::stack_with(Faults::none(), |settings| settings.embeddable = true).await;
    let browser = Browser::new(&stack);
    let response = browser
        .http
        .get(browser.url("/dev/login?user=alice&org=acme&next=/acme/chat/c1"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=None", "Secure", "Partitioned"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    browser.login("alice", "acme").await;
    let chat = browser.visit(browser.url("/acme/chat/c1")).await;
    assert_eq!(chat.status, 200);
    let csp = chat.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors http: https:"), "{csp}");
    assert!(!chat.headers.contains_key("x-frame-options"));
    for path in [
        "/acme/connectors",
        "/auth/connector-callback?oauth_result=success",
    ] {
        let page = browser.visit(browser.url(path)).await;
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
    }
}
