//! The `harness` command as a user runs it: reports, exit status, snapshots, and a deployment
//! elsewhere (`--target`): the `reference-server` and `fake-provider serve` binaries started as
//! separate processes.

#[path = "support/servers.rs"]
mod servers;
mod support;

use harness::deployment::process::{KillOnDrop, server_data_dir};
use servers::{announced, workspace_binary};
use std::path::Path;
use std::process::{Command, Stdio};

fn harness() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .env_remove("HARNESS_SEED")
        .env("RUST_BACKTRACE", "0");
    command
}

/// The command succeeded; if not, what it printed on both streams is the failure's message.
fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A scenario folder with the repository's baseline scenario (and, if asked, its snapshot),
/// expecting `outcome`.
fn scenario_folder(expect: &str, with_snapshot: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::scenario::default_root();
    let mut text = std::fs::read_to_string(root.join("channels/baseline.toml")).unwrap();
    if expect != "pass" {
        text.push_str(&format!(
            "\n[expect]\noutcome = \"{expect}\"\nreason = \"testing the harness\"\n"
        ));
    }
    std::fs::create_dir_all(dir.path().join("scenarios/channels")).unwrap();
    std::fs::write(dir.path().join("scenarios/channels/baseline.toml"), text).unwrap();
    std::fs::create_dir_all(dir.path().join("snapshots/channels")).unwrap();
    if with_snapshot {
        for layer in ["baseline.snap", "baseline.reference.snap"] {
            std::fs::copy(
                harness::check::snapshot::default_root()
                    .join("channels")
                    .join(layer),
                dir.path().join("snapshots/channels").join(layer),
            )
            .unwrap();
        }
    }
    dir
}

fn run_in(dir: &Path, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let report = dir.join("report.json");
    let output = harness()
        .args(["run", "--seed", "12", "--scenarios"])
        .arg(dir.join("scenarios"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .arg("--artifacts")
        .arg(dir.join("artifacts"))
        .arg("--json")
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&report)
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (output, json)
}

#[test]
fn the_json_and_junit_reports_carry_every_field_and_a_pass_exits_zero() {
    if !support::chromium_available() {
        return;
    }
    let dir = scenario_folder("pass", true);
    let junit = dir.path().join("junit.xml");
    let (output, json) = run_in(dir.path(), &["--junit", junit.to_str().unwrap()]);
    assert_succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = &json["results"][0];
    assert_eq!(result["scenario"], "channels/baseline");
    assert_eq!(result["engine"], "chromium");
    assert_eq!(result["outcome"], "pass");
    assert_eq!(result["expected"], "pass");
    assert_eq!(result["violations"], serde_json::json!([]));
    assert!(result["duration_ms"].as_u64().unwrap() > 0);
    // How the browser was set up: the popup blocker chromedriver turns off is back on.
    let browser = &json["browsers"][0];
    assert_eq!(browser["engine"], "chromium", "{json}");
    assert!(
        browser["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{json}"
    );
    assert!(
        browser["flags_removed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("--disable-popup-blocking")),
        "{json}"
    );
    assert!(stdout.contains("1 as expected, 0 unexpected"), "{stdout}");
    // The JUnit report reads back as CI systems read it: a suite per engine, a case per
    // scenario, each check's status a property.
    let xml = std::fs::read_to_string(junit).unwrap();
    let report =
        quick_junit::Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(
        (report.tests, report.failures, report.errors),
        (1, 0, 0),
        "{xml}"
    );
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "chromium");
    let case = &suite.test_cases[0];
    assert_eq!(case.name.as_str(), "channels/baseline");
    assert_eq!(
        case.classname.as_ref().map(|c| c.as_str()),
        Some("chromium.channels")
    );
    assert!(matches!(
        case.status,
        quick_junit::TestCaseStatus::Success { .. }
    ));
    let property = |name: &str| {
        case.properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.value.as_str().to_owned())
    };
    assert_eq!(
        property("check:no-secret-visible").as_deref(),
        Some("pass"),
        "{xml}"
    );
    assert!(
        property("check:revocation").is_some_and(|v| v.starts_with("not-applicable: ")),
        "{xml}"
    );
}

#[test]
fn an_unexpected_pass_fails_the_run() {
    if !support::chromium_available() {
        return;
    }
    let dir = scenario_folder("fail", true);
    let (output, json) = run_in(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["results"][0]["outcome"], "pass");
    assert_eq!(json["results"][0]["expected"], "fail");
}

#[test]
fn a_run_that_is_not_as_expected_is_never_accepted_as_a_snapshot() {
    if !support::chromium_available() {
        return;
    }
    // Expected to fail, it passes: its trace is no reference for anything.
    let dir = scenario_folder("fail", false);
    let (output, _) = run_in(dir.path(), &["--accept"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not accepted"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for layer in ["baseline.snap", "baseline.reference.snap"] {
        assert!(!dir.path().join("snapshots/channels").join(layer).exists());
    }
}

#[test]
fn a_missing_snapshot_fails_with_the_commands_to_rerun_and_accept() {
    if !support::chromium_available() {
        return;
    }
    let dir = scenario_folder("pass", false);
    let (output, json) = run_in(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(
        json["results"][0]["violations"][0]["invariant"],
        "normative-trace"
    );
    assert!(stdout.contains("seed: 12"), "{stdout}");
    assert!(
        stdout.contains("--scenario 'channels/baseline' --seed 12"),
        "{stdout}"
    );
    assert!(stdout.contains("--accept"), "{stdout}");
    // Accepting writes it; the next run passes.
    let (accepted, _) = run_in(dir.path(), &["--accept"]);
    assert!(accepted.status.success());
    for layer in ["baseline.snap", "baseline.reference.snap"] {
        assert!(dir.path().join("snapshots/channels").join(layer).is_file());
    }
    let (again, _) = run_in(dir.path(), &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn bad_input_gets_an_error_that_names_the_thing_and_a_hint() {
    let unreachable = harness()
        .args([
            "run",
            "--target",
            "http://127.0.0.1:9/",
            "--provider",
            "http://127.0.0.1:9/",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("http://127.0.0.1:9/") && stderr.contains("fake-provider serve"),
        "{stderr}"
    );
    let no_provider = harness()
        .args(["run", "--target", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_provider.stderr).contains("--target needs --provider"));
    let engine = harness()
        .args(["run", "--engine", "netscape"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&engine.stderr).contains("allowed: chromium"));
    let misspelt = harness()
        .args(["run", "--engine", "firefx"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&misspelt.stderr).contains("did you mean \"firefox\"?"),
        "{}",
        String::from_utf8_lossy(&misspelt.stderr)
    );
    let missing_profile = harness()
        .args(["run", "--target", "http://127.0.0.1:9/"])
        .args(["--provider", "http://127.0.0.1:9/"])
        .args(["--provider-profile", "no-such-profile.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing_profile.stderr);
    assert!(
        stderr.contains("no-such-profile.toml") && stderr.contains("hint"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("mine.toml");
    std::fs::write(&profile, "description = \"x\"\n[[pages]]\nname = \"a\"\n").unwrap();
    let bad_profile = harness()
        .args(["run", "--target", "http://127.0.0.1:9/"])
        .args(["--provider", "http://127.0.0.1:9/", "--provider-profile"])
        .arg(&profile)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad_profile.stderr);
    assert!(
        stderr.contains("mine.toml") && stderr.contains("shows") && stderr.contains("hint"),
        "{stderr}"
    );
    let embedded = harness()
        .args(["run", "--provider", "http://127.0.0.1:9/"])
        .arg("--provider-profile")
        .arg(&profile)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&embedded.stderr).contains("--provider is for --target runs"),
        "{}",
        String::from_utf8_lossy(&embedded.stderr)
    );
}

// --- a deployment elsewhere -------------------------------------------------------------

#[test]
fn the_scenarios_pass_against_a_separately_started_reference_server_and_provider() {
    if !support::chromium_available() {
        return;
    }
    // Each server binds a port of its own choosing and says where it listens; the provider
    // learns the platform's redirect URI, known only then, through its admin endpoint.
    let mut provider = KillOnDrop(
        Command::new(workspace_binary("fake-provider"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let provider_url = announced(&mut provider, &["public URL:"]).remove(0);
    let data_dir = server_data_dir().unwrap();
    let mut platform = KillOnDrop(
        Command::new(workspace_binary("reference-server"))
            .args(["--bind", "127.0.0.1:0", "--provider-url", &provider_url])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let [platform_url, redirect] = <[String; 2]>::try_from(announced(
        &mut platform,
        &[reference_server::LISTENING, reference_server::REDIRECT_URI],
    ))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (_, _, id, secret) in reference_server::DEFAULT_CLIENTS {
        let answer = runtime
            .block_on(
                reqwest::Client::new()
                    .post(format!("{provider_url}_admin/clients"))
                    .form(&[
                        ("client_id", id),
                        ("client_secret", secret),
                        ("redirect_uri", redirect.as_str()),
                    ])
                    .send(),
            )
            .unwrap();
        assert!(answer.status().is_success(), "registering {id}: {answer:?}");
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    // The scenarios that use every admin endpoint of a separately served provider (faults,
    // requests, secrets, violations, revoke-grants) and every hostile step; every scenario
    // runs through --target in the matrix (tests/defects.rs).
    // And one case that needs the platform configured: skipped here, with the reason.
    let chosen = "channels/baseline,provider/token-exchange-5xx,revocation/provider-side,hostile/*,opener/platform-coop-site-wide";
    let output = harness()
        .args(["run", "--seed", "21", "--scenario", chosen])
        .args(["--target", &platform_url])
        .args(["--provider", &provider_url])
        .arg("--json")
        .arg(report.path())
        .output()
        .unwrap();
    assert_succeeded(&output);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    let scenarios =
        harness::scenario::discover(&harness::scenario::default_root(), chosen).unwrap();
    assert_eq!(results.len(), scenarios.len());
    assert!(results.len() >= 10, "{}", results.len());
    assert!(
        results.iter().all(|r| r["outcome"] == r["expected"]),
        "{json:#}"
    );
    let configured = results
        .iter()
        .find(|r| r["scenario"] == "opener/platform-coop-site-wide")
        .unwrap();
    assert_eq!(configured["outcome"], "skipped", "{configured:#}");
    assert!(
        configured
            .to_string()
            .contains("--target-opener-policy site-wide"),
        "{configured:#}"
    );
    // The reference server through --target: its transcript is informative there, and equal.
    for result in results.iter().filter(|r| r["outcome"] != "skipped") {
        assert!(result.get("informative").is_none(), "{result:#}");
        let transcript = result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "reference-transcript")
            .unwrap();
        assert_eq!(transcript["status"], "not-applicable", "{result:#}");
    }
    // One case in two engines in one run against the same deployment: each engine signs in
    // as an org of its own, so the second does not find the first's connection made (its
    // card would never show a connect button).
    if !harness::browser::webdriver::driver_available_for_tests(harness::contract::Engine::Firefox)
    {
        return;
    }
    let output = harness()
        .args(["run", "--seed", "21", "--scenario", "channels/baseline"])
        .args(["--engine", "chromium,firefox"])
        .args(["--target", &platform_url])
        .args(["--provider", &provider_url])
        .output()
        .unwrap();
    assert_succeeded(&output);
}

#[test]
fn a_baseline_of_known_failures_tolerates_them_and_a_stale_entry_fails_the_run() {
    if !support::chromium_available() {
        return;
    }
    // No snapshots: both layers fail; listed, the run is as expected.
    let dir = scenario_folder("pass", false);
    let known = dir.path().join("known.toml");
    std::fs::write(
        &known,
        "[[known-failure]]\nid = \"channels/baseline:normative-trace\"\nreason = \"no snapshot yet\"\n\n[[known-failure]]\nid = \"channels/baseline:reference-transcript\"\nreason = \"no snapshot yet\"\n",
    )
    .unwrap();
    let (output, json) = run_in(dir.path(), &["--expect", known.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("a known failure"), "{stdout}");
    assert_eq!(
        json["results"][0]["known_failures"][0],
        format!("no snapshot yet ({}:2)", known.display())
    );
    // With the snapshots, the same entries are stale: the run fails and says which line.
    let dir = scenario_folder("pass", true);
    let stale = dir.path().join("known.toml");
    std::fs::write(
        &stale,
        "[[known-failure]]\nid = \"channels/baseline:chat-resumed\"\nreason = \"TICKET-7\"\n",
    )
    .unwrap();
    let (output, json) = run_in(dir.path(), &["--expect", stale.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(
        json["results"][0]["violations"][0]["invariant"],
        "stale-expectation"
    );
    assert!(stdout.contains("known.toml:2"), "{stdout}");
    // An unknown id is an error naming the line, before any browser starts.
    std::fs::write(
        &stale,
        "[[known-failure]]\nid = \"channels/nope\"\nreason = \"r\"\n",
    )
    .unwrap();
    let (output, _) = run_in(dir.path(), &["--expect", stale.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("known.toml:2: unknown scenario"),
        "{stderr}"
    );
}

#[test]
fn a_running_webdriver_endpoint_can_be_given_instead_of_a_spawned_driver() {
    if !support::chromium_available() {
        return;
    }
    let driver =
        harness::browser::webdriver::DriverProcess::spawn(harness::contract::Engine::Chromium)
            .unwrap();
    let dir = scenario_folder("pass", true);
    let (output, json) = run_in(dir.path(), &["--webdriver", &driver.url]);
    assert_succeeded(&output);
    assert_eq!(json["results"][0]["outcome"], "pass");
}

#[test]
fn harness_sim_with_the_same_seed_and_count_prints_the_same_report_twice() {
    let run = || {
        let output = harness()
            .args(["sim", "--seed", "1", "--cases", "2000"])
            .output()
            .unwrap();
        assert_succeeded(&output);
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.starts_with("seed 1\n"), "{first}");
    assert!(first.contains("flows simulated: 2000"), "{first}");
    assert!(first.contains("counterexample: none"), "{first}");
}

#[test]
fn harness_sim_prints_a_broken_clients_counterexample_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sim.json");
    let output = harness()
        .args([
            "sim",
            "--seed",
            "3",
            "--cases",
            "500",
            "--broken-client",
            "never-polls",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("violation chat-resumed"), "{stdout}");
    assert!(stdout.contains("do = \"open-chat\""), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["seed"], 3);
    let scenario = report["counterexample"]["scenario"].as_str().unwrap();
    harness::scenario::Scenario::parse("found.toml", scenario).unwrap();
}

/// `harness explain` says which channels each waiting tab can get in the case's
/// configuration, and why the others cannot reach it.
#[test]
fn explain_names_the_channels_each_waiting_tab_can_get_and_why_not_the_others() {
    let said = |id: &str| {
        let output = harness().args(["explain", id]).output().unwrap();
        assert!(output.status.success(), "{id}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let framed = said("embedded/chat-in-another-sites-frame");
    assert!(
        framed.contains("[chat]: postMessage to the opener, polling its server; not BroadcastChannel (it is in another site's frame"),
        "{framed}"
    );
    let noopener = said("opener/noopener");
    assert!(
        noopener
            .contains("not postMessage to the opener (severed: the browser opens with noopener)"),
        "{noopener}"
    );
    let baseline = said("channels/baseline");
    assert!(
        baseline.contains("[chat]: BroadcastChannel, the storage event, postMessage to the opener, polling its server\n"),
        "{baseline}"
    );
}
