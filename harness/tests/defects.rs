//! The detection matrix: every known-bad reference server (feature `defects`, one defect each)
//! runs as a separate process, and every scenario runs against it through `--target`. Each
//! defect must be caught by at least one scenario, which names the invariant that caught it.

use harness::command::RunOptions;
use harness::webdriver::Engine;
use reference_server::{Application, Defect, Settings};
use std::process::{Child, Command, Stdio};

/// Not a test: the defective server process the matrix starts (this test binary, re-run with
/// `--exact defective_server_process --ignored` and the defect in the environment).
#[test]
#[ignore = "started by every_defect_is_caught_by_at_least_one_scenario as a server process"]
fn defective_server_process() {
    let (Ok(defect), Ok(bind), Ok(provider)) = (
        std::env::var("ALUMIA_DEFECT"),
        std::env::var("ALUMIA_BIND"),
        std::env::var("ALUMIA_PROVIDER_URL"),
    ) else {
        panic!("set ALUMIA_DEFECT, ALUMIA_BIND and ALUMIA_PROVIDER_URL");
    };
    let mut settings = Settings::for_provider(&provider);
    settings.bind = bind.parse().unwrap();
    settings.defect = Some(Defect::parse(&defect).unwrap());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        Application::build(settings)
            .await
            .unwrap()
            .run_until_stopped()
            .await
            .unwrap();
    });
}

fn spawn(defect: &str, bind: &str, provider: &str) -> anyhow::Result<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "defective_server_process",
            "--ignored",
            "--nocapture",
        ])
        .env("ALUMIA_DEFECT", defect)
        .env("ALUMIA_BIND", bind)
        .env("ALUMIA_PROVIDER_URL", provider)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

#[test]
fn every_defect_is_caught_by_at_least_one_scenario() {
    if !harness::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    let names: Vec<String> = Defect::ALL.iter().map(|d| d.name()).collect();
    assert!(names.len() >= 15, "{} defects", names.len());
    let scratch = tempfile::tempdir().unwrap();
    let options = RunOptions {
        scenarios_root: harness::scenario::default_root(),
        snapshots_root: harness::snapshot::default_root(),
        pattern: "*".into(),
        engines: vec![Engine::Chromium],
        jobs: 1,
        shard: None,
        fail_fast: true,
        seed: 61,
        target: None,
        provider: None,
        webdriver: None,
        json: None,
        junit: None,
        html: None,
        artifacts: scratch.path().to_owned(),
        accept: false,
        run_id: String::new(),
        reuse_session: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime
        .block_on(harness::defects::matrix(&names, &spawn, &options))
        .unwrap();
    let table = harness::defects::table(&rows);
    println!("{table}");
    for row in &rows {
        assert!(
            !row.caught_by.is_empty(),
            "defect {} is caught by no scenario: a missing check\n{table}",
            row.defect
        );
        assert!(
            row.caught_by.iter().any(|(_, invariants)| invariants
                .iter()
                .any(|i| harness::invariants::BROWSER_CHECKS.contains(&i.as_str()))),
            "defect {} is caught only by a snapshot difference or a failed step, not by a named invariant\n{table}",
            row.defect
        );
    }
}
