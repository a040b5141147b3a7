//! The whole flow in real headless Chromium against the embedded stack: sign in, ask for
//! files, connect in a new tab, allow, watch the tab close itself and the chat answer.
//!
//! Without chromedriver this test is skipped with a reason locally, and fails in CI (`CI` set).

mod support;

use fantoccini::{Client, Locator};
use harness::browser::webdriver::{DriverProcess, Session};
use harness::contract::Engine;
use harness::deployment::embedded::EmbeddedStack;
use std::time::{Duration, Instant};

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_files_from_the_chat_and_the_chat_answers() {
    if !support::chromium_available() {
        return;
    }
    let stack = EmbeddedStack::start(fake_provider::Faults::none(), 3)
        .await
        .unwrap();
    let driver = DriverProcess::spawn(Engine::Chromium).unwrap();
    let session = Session::start(Engine::Chromium, &driver.url).await.unwrap();
    let outcome = run(&session.client, &stack).await;
    session.close().await.unwrap();
    let (answer, visible_to_script, window_count_after) = outcome.unwrap();
    assert_eq!(
        answer,
        "Your files: quarterly-report.pdf, roadmap.md, team-photo.png."
    );
    assert_eq!(window_count_after, 1, "the callback tab closed itself");
    let secrets = stack.provider.rules();
    assert!(secrets.secrets().all().len() >= 5, "tokens were issued");
    let leaks = secrets.secrets().find_in(&visible_to_script);
    assert!(
        leaks.is_empty(),
        "secrets visible to the chat page: {leaks:?}"
    );
}

/// Keeps a screenshot under `target/harness/browser_connect/` for a person to look at.
async fn keep_screenshot(client: &Client, name: &str) -> anyhow::Result<()> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/harness/browser_connect");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), client.screenshot().await?)?;
    Ok(())
}

async fn run(client: &Client, stack: &EmbeddedStack) -> anyhow::Result<(String, String, usize)> {
    client
        .goto(
            stack
                .login_url("alice", "acme", "/acme/chat/general")
                .as_str(),
        )
        .await?;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("body[data-ready=true]"))
        .await?;
    client
        .find(Locator::Css("[data-testid=chat-input]"))
        .await?
        .send_keys("list my files")
        .await?;
    client
        .find(Locator::Css("[data-testid=chat-send]"))
        .await?
        .click()
        .await?;
    let chat_window = client.window().await?;
    let button = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=connect-card-button]"))
        .await?;
    keep_screenshot(client, "1-chat-with-connect-card").await?;
    button.click().await?;
    let mut provider_window = None;
    for _ in 0..200 {
        let windows = client.windows().await?;
        if let Some(other) = windows.into_iter().find(|w| *w != chat_window) {
            provider_window = Some(other);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let provider_window = provider_window.ok_or_else(|| anyhow::anyhow!("no new tab opened"))?;
    client.switch_to_window(provider_window).await?;
    let allow = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=consent-allow]"))
        .await?;
    keep_screenshot(client, "2-consent-page").await?;
    allow.click().await?;
    // The callback tab closes itself; wait for a single window.
    let mut windows = client.windows().await?.len();
    for _ in 0..200 {
        windows = client.windows().await?.len();
        if windows == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    client.switch_to_window(chat_window).await?;
    let answer = text_of(client, "[data-testid=agent-answer]").await;
    keep_screenshot(client, "3-chat-answered").await?;
    let visible: serde_json::Value = client
        .execute(
            "return JSON.stringify({text: document.body.innerText, html: document.documentElement.outerHTML, \
             storage: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage), \
             cookies: document.cookie, name: window.name})",
            vec![],
        )
        .await?;
    Ok((answer, visible.to_string(), windows))
}

// --- canaries: the browsers block popups as users' browsers do ----------------------------

/// A page that tries `window.open` while loading (no user activation), on a click, and 6 s
/// after a click (the activation has expired), and keeps what each returned.
const CANARY_PAGE: &str = r#"<!doctype html><html><body>
<button id="now">now</button><button id="later">later</button>
<script>
  var results = window.canary = {};
  function attempt(name) { results[name] = window.open("/popup", "_blank") === null ? "blocked" : "opened"; }
  attempt("load");
  document.getElementById("now").onclick = function () { attempt("click"); };
  document.getElementById("later").onclick = function () { setTimeout(function () { attempt("later"); }, 6000); };
</script></body></html>"#;

async fn canary(engine: Engine) -> serde_json::Value {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Html(CANARY_PAGE) }),
        )
        .route(
            "/popup",
            axum::routing::get(|| async { axum::response::Html("<p>popup</p>") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let driver = DriverProcess::spawn(engine).unwrap();
    let session = Session::start(engine, &driver.url).await.unwrap();
    let client = &session.client;
    let result = async {
        client.goto(&origin).await?;
        client.find(Locator::Css("#now")).await?.click().await?;
        client.find(Locator::Css("#later")).await?.click().await?;
        // The activation a click gives lasts 5 s in Chromium and Firefox, 1 s in WebKit.
        tokio::time::sleep(Duration::from_millis(6_800)).await;
        anyhow::Ok(client.execute("return window.canary;", vec![]).await?)
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
    result.unwrap()
}

fn assert_user_default(engine: Engine, results: serde_json::Value) {
    assert_eq!(
        results,
        serde_json::json!({ "load": "blocked", "click": "opened", "later": "blocked" }),
        "{}: window.open without user activation, and 6 s after a click, must be blocked as in the user's browser (docs/browsers.md)",
        engine.name()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_blocks_popups_outside_a_click_as_users_have_it() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    assert_user_default(Engine::Chromium, canary(Engine::Chromium).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_blocks_popups_outside_a_click_as_users_have_it() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Firefox) {
        return;
    }
    assert_user_default(Engine::Firefox, canary(Engine::Firefox).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webkit_blocks_popups_outside_a_click_as_users_have_it() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Webkit) {
        return;
    }
    assert_user_default(Engine::Webkit, canary(Engine::Webkit).await);
}

/// The processes of process group `group` that are not zombies (read from /proc).
fn live_members(group: u32) -> Vec<String> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: the fields after the command's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) == Some(&group.to_string().as_str()) && fields[0] != "Z" {
            members.push(head.split_once(" (").map_or(head, |(_, c)| c).to_owned());
        }
    }
    members
}

/// A demonstration, not run by `cargo test`: started beside the canaries' browsers on a cold
/// machine its Firefox once took over 60 s to start (a fresh-clone CI run). The mechanism is
/// tested without browsers in `harness::deployment::process`. Run it alone:
/// `cargo test -p harness --test browser_connect -- --ignored`; without the group kill in
/// `DriverProcess`'s drop it fails, Firefox still running.
#[test]
#[ignore = "a demonstration with a real Firefox; run with --ignored"]
fn a_browser_whose_session_was_never_closed_ends_with_its_driver() {
    // Firefox: it outlives a killed geckodriver unless the guard ends its process group
    // (Chromium ends with its driver's pipe anyway).
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Firefox) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let driver = DriverProcess::spawn(Engine::Firefox).unwrap();
    let group = driver.process_group();
    let session = runtime
        .block_on(Session::start(Engine::Firefox, &driver.url))
        .unwrap();
    let before = live_members(group);
    assert!(
        before.iter().any(|m| m.contains("firefox")),
        "the browser runs in its driver's process group: {before:?}"
    );
    // Dropped without Session::close, as a failing run would leave it.
    drop(session);
    drop(driver);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live_members(group).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running 10 s after the driver was dropped: {:?}",
            live_members(group)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
