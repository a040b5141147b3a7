//! Every invariant catches a deliberately broken platform: the reference server with one
//! route or page script changed, driven through a scenario that passes on the unbroken server.
//! No check can pass vacuously.

mod support;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use harness::browser::webdriver::{DriverProcess, Session};
use harness::check::invariants::{
    CALLBACK_CLOSED, CHANNELS_COMPLETE, CHAT_RESUMED, HOSTILE_RECEIVES_NOTHING, NO_SECRET_VISIBLE,
    OPENED_AS_TAB, PAYLOAD_SHAPE, PROVIDER_NEVER_GETS_PLATFORM_AUTH, REVOCATION,
};
use harness::check::verdict::ScenarioResult;
use harness::contract::Engine;
use harness::deployment::Target;
use harness::run::one_scenario::{Artifacts, run_scenario};
use harness::scenario::{Outcome, Scenario, ScenarioFile, ScenarioId};
use reference_server::defects::edits::Edit;
use reference_server::{Defect, RouterCustomizer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Connect from the chat, allow, wait for the answer.
macro_rules! baseline_steps {
    () => {
        r#"
[[steps]]
do = "open-chat"
[[steps]]
do = "say"
text = "list my files"
[[steps]]
do = "connect"
[[steps]]
do = "consent"
decision = "allow"
[[steps]]
do = "wait-for"
condition = "answer"
"#
    };
}
const BASELINE: &str = concat!(
    "description = \"Baseline flow for a broken platform.\"\n",
    baseline_steps!(),
    "[expect.chat]\nchat = \"resumed\"\n"
);

fn run(broken: Option<RouterCustomizer>, scenario: &str) -> ScenarioResult {
    let file = ScenarioFile {
        id: ScenarioId("broken/platform".into()),
        path: "inline.toml".into(),
        scenario: Scenario::parse("inline.toml", scenario).unwrap(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let target = Target::embedded_for(&file.scenario.platform, 2, broken)
            .await
            .unwrap();
        let driver = DriverProcess::spawn(Engine::Chromium).unwrap();
        let switches = Engine::Chromium.switches_for_case(&file.scenario).unwrap();
        let session = Session::start_with(Engine::Chromium, &driver.url, &switches)
            .await
            .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let artifacts = Artifacts {
            root: scratch.path().to_owned(),
            driver_log: None,
        };
        let result = run_scenario(
            &file,
            &target,
            &session,
            Engine::Chromium,
            2,
            "",
            &artifacts,
        )
        .await;
        session.close().await.unwrap();
        result
    })
}

/// Asserts the run failed and that `invariant` is among its violations.
fn assert_caught(result: &ScenarioResult, invariant: &str) {
    assert_ne!(
        result.outcome,
        Outcome::Pass,
        "the broken platform passed: {result:#?}"
    );
    assert!(
        result.violations.iter().any(|v| v.invariant == invariant),
        "{invariant} did not fire; violations: {:#?}",
        result.violations
    );
}

/// Serves the page scripts with each `(file, from, to)` edit made; panics at once if a `from`
/// is not in its script, so a test can never run against an unbroken page by accident.
fn broken_script(edits: &[Edit]) -> RouterCustomizer {
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    for (name, from, to) in edits {
        let script = broken.entry(format!("/static/{name}")).or_insert_with(|| {
            reference_server::asset(name)
                .unwrap_or_else(|| panic!("no asset {name}"))
                .to_owned()
        });
        assert!(script.contains(from), "{name} does not contain {from:?}");
        *script = script.replace(from, to);
    }
    let broken = Arc::new(broken);
    Box::new(move |router: Router| {
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let broken = broken.clone();
            async move {
                if let Some(script) = broken.get(request.uri().path()) {
                    return Response::builder()
                        .header("content-type", "text/javascript")
                        .body(Body::from(script.clone()))
                        .unwrap();
                }
                next.run(request).await
            }
        }))
    })
}

/// Appends `extra(request)` to the `Location` of responses on paths that `path_matches`.
fn broken_redirect(
    path_matches: fn(&str) -> bool,
    extra: fn(&Request) -> String,
) -> RouterCustomizer {
    Box::new(move |router: Router| {
        router.layer(middleware::from_fn(
            move |request: Request, next: Next| async move {
                if !path_matches(request.uri().path()) {
                    return next.run(request).await;
                }
                let added = extra(&request);
                let mut response = next.run(request).await;
                if let Some(location) = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                {
                    let changed = format!("{location}&{added}");
                    response
                        .headers_mut()
                        .insert("location", changed.parse().unwrap());
                }
                response
            },
        ))
    })
}

#[test]
fn the_unbroken_platform_passes_the_scenario_the_broken_ones_fail() {
    if !support::chromium_available() {
        return;
    }
    let result = run(None, BASELINE);
    assert_eq!(result.outcome, Outcome::Pass, "{:#?}", result.violations);
}

#[test]
fn a_code_in_the_callback_url_is_caught_as_a_visible_secret() {
    if !support::chromium_available() {
        return;
    }
    let leak = broken_redirect(
        |path| path == "/oauth/redirect",
        |request| {
            let query = request.uri().query().unwrap_or("");
            let code = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            format!("code={code}")
        },
    );
    let result = run(Some(leak), BASELINE);
    assert_caught(&result, NO_SECRET_VISIBLE);
    assert!(
        result
            .violations
            .iter()
            .all(|v| !v.detail.contains("code_")),
        "violation details carry no secret: {:#?}",
        result.violations
    );
}

#[test]
fn an_extra_field_in_the_payload_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let broken = broken_script(&[(
        "callback.js",
        r#"connectionId: params.get("connection_id") || """#,
        r#"connectionId: params.get("connection_id") || "", tracking: document.referrer"#,
    )]);
    assert_caught(&run(Some(broken), BASELINE), PAYLOAD_SHAPE);
}

#[test]
fn a_callback_that_posts_nothing_to_the_opener_of_a_chat_in_another_sites_frame_is_caught() {
    if !support::chromium_available() {
        return;
    }
    // In another site's frame the opener's message is the only channel that reaches the chat
    // (storage and BroadcastChannel are partitioned): the check holds the callback to it there
    // too, although the chat resumes by polling.
    let embedded = BASELINE.replacen(
        "do = \"open-chat\"",
        "do = \"open-chat\"\nembedded = true",
        1,
    ) + "[platform]\nembeddable = true\n";
    assert_eq!(run(None, &embedded).outcome, Outcome::Pass);
    let broken = broken_script(&[(
        "callback.js",
        "window.opener.postMessage(payload, location.origin);",
        "/* no message to the opener */",
    )]);
    assert_caught(&run(Some(broken), &embedded), CHANNELS_COMPLETE);
}

/// The callback page posting its result to any origin.
fn callback_posting_to_any_origin() -> RouterCustomizer {
    broken_script(Defect::PostMessageToAnyOrigin.script_edits())
}

#[test]
fn post_message_to_any_origin_is_caught() {
    if !support::chromium_available() {
        return;
    }
    assert_caught(
        &run(Some(callback_posting_to_any_origin()), BASELINE),
        PAYLOAD_SHAPE,
    );
}

#[test]
fn post_message_to_any_origin_reaches_a_hostile_opener_and_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let broken = callback_posting_to_any_origin();
    let scenario = std::fs::read_to_string(
        harness::scenario::default_root().join("hostile/third-origin-opens-the-callback.toml"),
    )
    .unwrap();
    let result = run(Some(broken), &scenario);
    assert_caught(&result, HOSTILE_RECEIVES_NOTHING);
    let detail = result
        .violations
        .iter()
        .find(|v| v.invariant == HOSTILE_RECEIVES_NOTHING)
        .map(|v| v.detail.clone())
        .unwrap_or_default();
    assert!(
        detail.contains("received on message") && detail.contains("success"),
        "{detail}"
    );
}

#[test]
fn a_popup_with_a_features_string_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let broken = broken_script(Defect::PopupWithFeatures.script_edits());
    assert_caught(&run(Some(broken), BASELINE), OPENED_AS_TAB);
}

#[test]
fn a_card_that_never_resends_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let broken = broken_script(Defect::NoResend.script_edits());
    let result = run(Some(broken), BASELINE);
    assert_eq!(result.outcome, Outcome::Timeout, "{:#?}", result.violations);
    assert_caught(&result, CHAT_RESUMED);
}

#[test]
fn a_callback_that_neither_closes_nor_says_how_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let broken = broken_script(Defect::CallbackNeverCloses.script_edits());
    assert_caught(&run(Some(broken), BASELINE), CALLBACK_CLOSED);
}

#[test]
fn a_session_cookie_sent_to_the_provider_is_caught() {
    if !support::chromium_available() {
        return;
    }
    let leak = broken_redirect(
        |path| path.ends_with("/connect"),
        |request| {
            let cookie = request
                .headers()
                .get("cookie")
                .and_then(|c| c.to_str().ok())
                .unwrap_or("")
                .to_owned();
            format!(
                "login_hint={}",
                url::form_urlencoded::byte_serialize(cookie.as_bytes()).collect::<String>()
            )
        },
    );
    assert_caught(
        &run(Some(leak), BASELINE),
        PROVIDER_NEVER_GETS_PLATFORM_AUTH,
    );
}

#[test]
fn a_disconnect_that_leaves_the_token_usable_is_caught() {
    if !support::chromium_available() {
        return;
    }
    // The disconnect answers as if it worked and the status lies, but nothing is revoked.
    let disconnected = Arc::new(AtomicBool::new(false));
    let broken: RouterCustomizer = Box::new(move |router: Router| {
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let disconnected = disconnected.clone();
            async move {
                let path = request.uri().path().to_owned();
                if path.ends_with("/disconnect") {
                    disconnected.store(true, Ordering::SeqCst);
                    return Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from(r#"{"status":"revoked"}"#))
                        .unwrap();
                }
                let response = next.run(request).await;
                if path.ends_with("/connectors")
                    && path.starts_with("/api/")
                    && disconnected.load(Ordering::SeqCst)
                {
                    let (parts, body) = response.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let text =
                        String::from_utf8_lossy(&bytes).replace("\"connected\"", "\"revoked\"");
                    let mut parts = parts;
                    parts.headers.remove("content-length");
                    return Response::from_parts(parts, Body::from(text));
                }
                response
            }
        }))
    });
    let scenario = concat!(
        "description = \"Disconnect, then ask again.\"\n",
        baseline_steps!(),
        r#"
[[steps]]
do = "open-connectors"
[[steps]]
do = "disconnect"
connector = "files"
[[steps]]
do = "say"
text = "list my files"
"#
    );
    assert_caught(&run(Some(broken), scenario), REVOCATION);
}

#[test]
fn a_simulator_counterexample_for_a_broken_client_fails_in_real_chromium_too() {
    if !support::chromium_available() {
        return;
    }
    let broken_client = harness::sim::BrokenClient::NeverPolls;
    let report = harness::sim::explore(&harness::sim::SimOptions {
        seed: 1,
        cases: 500,
        broken: Some(broken_client),
        broken_server: None,
    })
    .unwrap();
    let found = report
        .counterexample
        .expect("the simulator catches a client that never polls");
    // The same broken module, served to a real browser, with the printed scenario file.
    let broken = broken_script(broken_client.edits());
    let result = run(Some(broken), &found.scenario);
    assert_caught(&result, CHAT_RESUMED);
    // And the served module passes the same file.
    let unbroken = run(None, &found.scenario);
    assert!(
        unbroken.violations.is_empty(),
        "{}\n{:#?}",
        found.scenario,
        unbroken.violations
    );
}
