//! Interop with a real, OpenID-certified provider: panva's `oidc-provider` (npm, pinned by
//! `interop/oidc-provider/package-lock.json`, installed by `scripts/install-deps`), with the
//! reference server configured for it as a team would (its endpoints, `offline_access` and
//! `prompt=consent` for a refresh token, its issuer, whose `iss` it then requires in every
//! authorization response, a client secret that needs form-encoding),
//! driven by `harness run --provider-profile` in headless Chromium through the provider's own
//! sign-in and consent pages.

#[path = "support/servers.rs"]
mod servers;
mod support;

use harness::deployment::process::KillOnDrop;
use servers::{announced, workspace_binary};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// One browser flow at a time: the two tests share two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// RFC 6749 §2.3.1: the client secret is form-encoded before it goes into HTTP Basic.
const FILES_SECRET: &str = "s3cr@t +:&%/=~!";
const CALENDAR_SECRET: &str = "calendar-interop-secret";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn profile() -> PathBuf {
    repository().join("interop/oidc-provider/profile.toml")
}

/// `interop/oidc-provider/server.mjs`, set up as `profile.toml`'s [behaviour] says (tokens live
/// 4 s, the token endpoint answers 1.5 s late); returns it and its base URL.
fn start_provider() -> (KillOnDrop, String) {
    let dir = repository().join("interop/oidc-provider");
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "oidc-provider is not installed in {} (hint: run scripts/install-deps, which runs `npm ci` there)",
        dir.display()
    );
    let mut provider = KillOnDrop(
        Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("ACCESS_TOKEN_TTL", "4")
            .env("TOKEN_DELAY_MS", "1500")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (hint: scripts/install-deps installs it)"),
    );
    let url = announced(&mut provider, &["public URL:"]).remove(0);
    (provider, url)
}

/// The reference server configured for the provider at `provider` (with `extra` flags, a
/// defect say), its clients registered there; returns it, its URL and its settings folder.
fn start_platform(provider: &str, extra: &[&str]) -> (KillOnDrop, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let issuer = provider.trim_end_matches('/');
    let mut settings = String::new();
    for (name, display, secret) in [
        ("files", "Files", FILES_SECRET),
        ("calendar", "Calendar", CALENDAR_SECRET),
    ] {
        settings.push_str(&format!(
            r#"
[[connectors]]
name = "{name}"
display_name = "{display}"
client_id = "alumia-{name}"
client_secret = "{secret}"
authorize_url = "{provider}auth"
token_url = "{provider}token"
revoke_url = "{provider}token/revocation"
api_url = "{provider}api/{name}"
scopes = ["{name}.read", "offline_access"]
issuer = "{issuer}"
requires_iss = true
authorization_parameters = {{ prompt = "consent" }}
"#
        ));
    }
    let path = dir.path().join("alumia.toml");
    std::fs::write(&path, settings).unwrap();
    let mut platform = KillOnDrop(
        Command::new(workspace_binary("reference-server"))
            .arg("--config")
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let [url, redirect] = <[String; 2]>::try_from(announced(
        &mut platform,
        &[reference_server::LISTENING, reference_server::REDIRECT_URI],
    ))
    .unwrap();
    for (name, secret) in [("files", FILES_SECRET), ("calendar", CALENDAR_SECRET)] {
        let answer = blocking(
            reqwest::Client::new()
                .post(format!("{provider}_interop/clients"))
                .form(&[
                    ("client_id", format!("alumia-{name}").as_str()),
                    ("client_secret", secret),
                    ("redirect_uri", redirect.as_str()),
                ])
                .send(),
        )
        .unwrap();
        assert!(
            answer.status().is_success(),
            "registering {name}: {answer:?}"
        );
    }
    (platform, url, dir)
}

fn blocking<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// `harness run` against the platform and the provider through its profile; returns whether
/// it exited 0, its console output and its JSON report.
fn run_harness(
    platform: &str,
    provider: &str,
    scenarios: &str,
) -> (bool, String, serde_json::Value) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .env_remove("HARNESS_SEED")
        .args(["run", "--seed", "8", "--scenario", scenarios])
        .args(["--target", platform, "--provider", provider])
        .arg("--provider-profile")
        .arg(profile())
        .arg("--json")
        .arg(report.path())
        .output()
        .unwrap();
    let console = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let json = std::fs::read_to_string(report.path())
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no JSON report: {console}"));
    (output.status.success(), console, json)
}

/// The entry of the array `list` whose `key` is `value` (a result by scenario, a check by id).
fn entry<'a>(list: &'a serde_json::Value, key: &str, value: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {key} {value} in {list:#}"))
}

fn result<'a>(json: &'a serde_json::Value, scenario: &str) -> &'a serde_json::Value {
    entry(&json["results"], "scenario", scenario)
}

fn check<'a>(result: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    entry(&result["checks"], "id", id)
}

/// Every access and refresh token the provider issued so far (model, id, grantId), in order.
fn issued(provider: &str) -> Vec<serde_json::Value> {
    blocking(async {
        reqwest::get(format!("{provider}_interop/issued"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// What the provider's own introspection says of every token it issued from index `from` on,
/// by grant, in the order the grants began: `(model, active)` per token.
fn introspect_issued(provider: &str, from: usize) -> Vec<Vec<(String, bool)>> {
    let issued = issued(provider);
    blocking(async {
        let http = reqwest::Client::new();
        let mut grants: Vec<(String, Vec<(String, bool)>)> = Vec::new();
        for token in issued.into_iter().skip(from) {
            let answer: serde_json::Value = http
                .post(format!("{provider}token/introspection"))
                .basic_auth(
                    "alumia-files",
                    Some(
                        url::form_urlencoded::byte_serialize(FILES_SECRET.as_bytes())
                            .collect::<String>(),
                    ),
                )
                .form(&[("token", token["id"].as_str().unwrap())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let grant = token["grantId"].as_str().unwrap().to_owned();
            let entry = (
                token["model"].as_str().unwrap().to_owned(),
                answer["active"] == true,
            );
            match grants.iter_mut().find(|(id, _)| *id == grant) {
                Some((_, tokens)) => tokens.push(entry),
                None => grants.push((grant, vec![entry])),
            }
        }
        grants.into_iter().map(|(_, tokens)| tokens).collect()
    })
}

#[test]
fn the_flow_works_through_a_certified_provider_and_a_disconnect_leaves_its_tokens_inactive() {
    if !support::chromium_available() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_provider, provider) = start_provider();
    let (_platform, platform, _settings) = start_platform(&provider, &[]);

    // Connect through its sign-in and consent pages, deny, the refresh race under rotation
    // with reuse detection, and two cases the profile cannot play (skipped, with the reason).
    let chosen = "channels/baseline,provider/consent-denied,refresh/two-tabs-at-once-after-expiry,hostile/login-csrf,provider/iss-of-another-provider";
    let (passed, console, json) = run_harness(&platform, &provider, chosen);
    assert!(passed, "{console}");
    for (scenario, outcome) in [
        ("channels/baseline", "pass"),
        ("provider/consent-denied", "pass"),
        ("refresh/two-tabs-at-once-after-expiry", "pass"),
        ("hostile/login-csrf", "skipped"),
        ("provider/iss-of-another-provider", "skipped"),
    ] {
        assert_eq!(
            result(&json, scenario)["outcome"],
            outcome,
            "{scenario}: {console}"
        );
    }
    let reason = |scenario: &str| result(&json, scenario)["violations"][0]["detail"].to_string();
    assert!(
        reason("hostile/login-csrf").contains("admin API"),
        "{json:#}"
    );
    assert!(
        reason("provider/iss-of-another-provider").contains("iss_in_response"),
        "{json:#}"
    );
    // Which checks applied, and why the others did not: never a silent pass.
    let baseline = result(&json, "channels/baseline");
    for id in [
        "single-exchange",
        "refresh-single-flight",
        "provider-never-gets-platform-auth",
    ] {
        let check = check(baseline, id);
        assert_eq!(check["status"], "not-applicable", "{check}");
        assert!(
            check["reason"].to_string().contains("real provider"),
            "{check}"
        );
    }
    let secrets = check(baseline, "no-secret-visible");
    assert_eq!(secrets["status"], "pass");
    assert!(secrets["reason"].to_string().contains("codes"), "{secrets}");
    for id in [
        "chat-resumed",
        "channels-complete",
        "callback-closed",
        "opened-in-gesture",
    ] {
        assert_eq!(check(baseline, id)["status"], "pass", "{id}: {baseline:#}");
    }
    assert!(
        check(baseline, "normative-trace")["reason"]
            .to_string()
            .contains("without the provider's pages"),
        "{baseline:#}"
    );

    // A disconnect revokes at the provider: its introspection says so of every token of the
    // first grant (a refresh token lives a day, so only a revocation ends it), while the
    // reconnect's refresh token is live (its access token lives 4 s, and may have expired).
    let before = issued(&provider).len();
    let (passed, console, _) =
        run_harness(&platform, &provider, "revocation/disconnect-mid-session");
    assert!(passed, "{console}");
    let grants = introspect_issued(&provider, before);
    let has_refresh = |tokens: &[(String, bool)], active: bool| {
        tokens
            .iter()
            .any(|(model, live)| model == "RefreshToken" && *live == active)
    };
    assert_eq!(grants.len(), 2, "a grant, then the reconnect's: {grants:?}");
    assert!(
        has_refresh(&grants[0], false) && grants[0].iter().all(|(_, active)| !active),
        "the disconnected grant's tokens are all inactive: {grants:?}"
    );
    assert!(
        has_refresh(&grants[1], true),
        "the reconnect's refresh token is live: {grants:?}"
    );
}

#[test]
fn defects_are_caught_through_a_certified_provider() {
    if !support::chromium_available() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_provider, provider) = start_provider();
    // The code is the one secret the harness knows of a real provider; the refresh race is
    // seen through what the provider's reuse detection does to the chats.
    for (defect, scenario, caught_by) in [
        (
            "code-in-callback-url",
            "channels/baseline",
            "no-secret-visible",
        ),
        (
            "refresh-not-single-flight",
            "refresh/two-tabs-at-once-after-expiry",
            "chat-resumed",
        ),
    ] {
        let (_platform, platform, _settings) = start_platform(&provider, &["--defect", defect]);
        let (passed, console, json) = run_harness(&platform, &provider, scenario);
        assert!(!passed, "{defect} passed: {console}");
        let result = result(&json, scenario);
        assert_eq!(result["outcome"], "fail", "{defect}: {result:#}");
        assert!(
            result["violations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["invariant"] == caught_by),
            "{defect} is not caught by {caught_by}: {result:#}"
        );
    }
}
