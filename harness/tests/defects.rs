//! The two-sided matrix (`harness::run::defects`): every known-bad reference server (one
//! defect each) and every conformant variant run as separate processes, and the scenarios run
//! against them through `--target`, as against a team's deployment, two rows at a time.
//! Sensitivity: each defect fails the scenario that catches it, naming the check that must
//! fire there. Specificity: each variant passes the scenarios where its difference shows, and
//! all variants at once pass every scenario.

use harness::contract::Engine;
use harness::run::defects::{DEFECT_CATCHES, Side, Subject, VARIANT_SCENARIOS};
use harness::run::options::RunOptions;
use harness::run::spawned::ServerFlags;
use harness::scenario::Outcome;
use reference_server::{Application, Defect, OpenerPolicy, Settings, Variant};
use std::process::{Child, Command, Stdio};

/// Not a test: a server of the matrix (this test binary, re-run with `--exact
/// matrix_server_process --ignored` and its flags in the environment).
#[test]
#[ignore = "started by the matrix tests as a server process"]
fn matrix_server_process() {
    let provider = std::env::var("ALUMIA_PROVIDER_URL").expect("set ALUMIA_PROVIDER_URL");
    let mut settings = Settings::for_provider(&provider);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    if let Ok(defect) = std::env::var("ALUMIA_DEFECT") {
        settings.defect = Some(Defect::parse(&defect).unwrap());
    }
    if let Ok(policy) = std::env::var("ALUMIA_OPENER_POLICY") {
        settings.opener_policy = Some(OpenerPolicy::parse(&policy).unwrap());
    }
    settings.embeddable = std::env::var("ALUMIA_EMBEDDABLE").is_ok();
    settings.data_dir = std::env::var_os("ALUMIA_DATA_DIR").map(Into::into);
    for name in std::env::var("ALUMIA_VARIANTS")
        .unwrap_or_default()
        .split(',')
    {
        if !name.is_empty() {
            settings.variants.push(Variant::parse(name).unwrap());
        }
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let app = Application::build(settings).await.unwrap();
        app.announce();
        app.run_until_stopped().await.unwrap();
    });
}

fn spawn(flags: &ServerFlags<'_>) -> anyhow::Result<Child> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([
            "--exact",
            "matrix_server_process",
            "--ignored",
            "--nocapture",
        ])
        .env("ALUMIA_PROVIDER_URL", flags.provider)
        .env("ALUMIA_VARIANTS", flags.variants.join(","))
        .env("ALUMIA_DATA_DIR", flags.data_dir)
        .env_remove("ALUMIA_DEFECT")
        .env_remove("ALUMIA_OPENER_POLICY")
        .env_remove("ALUMIA_EMBEDDABLE");
    if let Some(defect) = flags.defect {
        command.env("ALUMIA_DEFECT", defect);
    }
    if let Some(policy) = flags.opener_policy {
        command.env("ALUMIA_OPENER_POLICY", policy);
    }
    if flags.embeddable {
        command.env("ALUMIA_EMBEDDABLE", "1");
    }
    Ok(command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

fn options(scratch: &std::path::Path) -> RunOptions {
    RunOptions {
        seed: 61,
        jobs: 2,
        artifacts: scratch.to_owned(),
        ..RunOptions::default()
    }
}

fn run_matrix(subjects: &[Subject]) -> Vec<harness::run::defects::MatrixRow> {
    run_matrix_with(subjects, 0)
}

fn run_matrix_with(subjects: &[Subject], retries: usize) -> Vec<harness::run::defects::MatrixRow> {
    let scratch = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(harness::run::defects::matrix(
            subjects,
            &spawn,
            &RunOptions {
                retries,
                ..options(scratch.path())
            },
        ))
        .unwrap()
}

#[test]
fn the_tables_name_every_defect_and_variant_of_the_catalogue() {
    let defects: Vec<String> = Defect::ALL.iter().map(|d| d.name()).collect();
    let caught: Vec<&str> = DEFECT_CATCHES.iter().map(|(d, _, _)| *d).collect();
    assert_eq!(defects, caught);
    let variants: Vec<String> = Variant::ALL.iter().map(|v| v.name()).collect();
    let listed: Vec<&str> = VARIANT_SCENARIOS.iter().map(|(v, _)| *v).collect();
    assert_eq!(variants, listed);
    assert!(variants.len() >= 10, "{} variants", variants.len());
    // The counts the front door and docs/verdicts.md give are the catalogue's.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for doc in ["README.md", "docs/verdicts.md"] {
        let text = std::fs::read_to_string(root.join(doc))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for said in [
            format!("--defect NAME` ({} known-bad", defects.len()),
            format!("--variant NAME` ({} conformant", variants.len()),
        ] {
            let said_as_prose = said.replace(" (", ": ");
            assert!(
                text.contains(&said) || text.contains(&said_as_prose),
                "{doc} does not say `{said}`: the catalogue has {} defects and {} variants",
                defects.len(),
                variants.len()
            );
        }
    }
    // `harness defects --list`: every defect with what it breaks, where it is caught.
    let listed = harness::run::defects::catalogue_text();
    for defect in Defect::ALL {
        let entry = format!("{}\n  breaks: {}\n", defect.name(), defect.what_it_breaks());
        assert!(listed.contains(&entry), "{entry}");
        assert!(defect.what_it_breaks().len() > 20, "{}", defect.name());
    }
    for (_, scenario, check) in DEFECT_CATCHES {
        assert!(
            harness::check::invariants::browser_check_ids().any(|id| id == check)
                || check == harness::check::invariants::PROVIDER_CONTRACT,
            "{check}"
        );
        harness::scenario::discover(&harness::scenario::default_root(), scenario).unwrap();
    }
}

#[test]
fn every_defect_fails_the_scenario_that_catches_it_naming_its_check() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    let subjects: Vec<Subject> = DEFECT_CATCHES
        .iter()
        .map(|(defect, scenario, _)| Subject::defect(defect, scenario))
        .collect();
    let rows = run_matrix(&subjects);
    let table = harness::run::defects::table(&rows);
    println!("{table}");
    for (row, (defect, scenario, check)) in rows.iter().zip(DEFECT_CATCHES) {
        assert_eq!(row.subject.side, Side::Defect);
        let fired = row
            .failed
            .iter()
            .find(|(failed, _)| failed == scenario)
            .map(|(_, checks)| checks.clone())
            .unwrap_or_default();
        assert!(
            fired.iter().any(|c| c == check),
            "defect {defect}: {scenario} did not fail on {check} (it fired {fired:?})\n{table}"
        );
    }
}

#[test]
fn every_variant_passes_where_it_differs_and_all_at_once_pass_every_scenario() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    let mut subjects: Vec<Subject> = VARIANT_SCENARIOS
        .iter()
        .map(|(variant, scenarios)| Subject::variants(&[variant], scenarios))
        .collect();
    let all: Vec<&str> = VARIANT_SCENARIOS.iter().map(|(v, _)| *v).collect();
    subjects.extend(Subject::variants(&all, "*").in_shards(2));
    let rows = run_matrix(&subjects);
    let table = harness::run::defects::table(&rows);
    println!("{table}");
    for row in &rows {
        assert!(
            row.holds(),
            "{} fails a scenario\n{table}",
            row.subject.label()
        );
    }
    // Virtual time: a server with `/dev/clock` had its pauses on the servers' clocks skipped;
    // the one without had them waited for real, each said in a note.
    for row in &rows[..rows.len() - 2] {
        let noted: Vec<&str> = row
            .results
            .iter()
            .filter(|r| !r.notes.is_empty())
            .map(|r| r.scenario.as_str())
            .collect();
        if row.subject.names == ["no-dev-clock"] {
            assert_eq!(
                noted.len(),
                row.results.len(),
                "{}: {noted:?}",
                row.subject.label()
            );
            for result in &row.results {
                assert!(
                    result.notes[0].contains("waited for real")
                        && result.notes[0].contains("/dev/clock"),
                    "{:?}",
                    result.notes
                );
            }
        } else {
            assert!(noted.is_empty(), "{}: {noted:?}", row.subject.label());
        }
    }
    // All variants at once, in two shards: together every scenario, once.
    let shards = &rows[rows.len() - 2..];
    let mut ran: Vec<&str> = shards
        .iter()
        .flat_map(|row| row.outcomes.iter().map(|(id, _)| id.as_str()))
        .collect();
    ran.sort();
    let scenarios = harness::scenario::discover(&harness::scenario::default_root(), "*").unwrap();
    let mut every: Vec<&str> = scenarios.iter().map(|f| f.id.0.as_str()).collect();
    every.sort();
    assert_eq!(ran, every, "{table}");
}

#[test]
fn a_timing_sensitive_defect_with_one_retry_is_flaky_not_a_pass() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    // The first callback a fresh server serves delivers on no channel; the retry passes.
    let subjects = [Subject::defect("cold-start-callback", "channels/baseline")];
    let rows = run_matrix_with(&subjects, 1);
    let row = &rows[0];
    assert_eq!(
        row.outcomes,
        vec![("channels/baseline".to_owned(), Outcome::Flaky)],
        "{}",
        harness::run::defects::table(&rows)
    );
    assert!(
        row.holds(),
        "a flaky run is not as expected: the defect counts as caught"
    );
}

/// One pooled Firefox session across two servers on 127.0.0.1: the second case signs in with
/// nothing of the first server's cookies (cookies are per host, not per port), so the embedded
/// case's `Secure; Partitioned` session is not refused after a plain one.
#[test]
fn a_reused_firefox_session_brings_no_cookie_of_an_earlier_server() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Firefox) {
        return;
    }
    let subject = Subject {
        engine: Engine::Firefox,
        ..Subject::variants(
            &["message-wording"],
            "channels/baseline,embedded/chat-in-another-sites-frame",
        )
    };
    let rows = run_matrix(&[subject]);
    let table = harness::run::defects::table(&rows);
    assert_eq!(rows[0].scenarios, 2, "{table}");
    assert!(rows[0].holds(), "{table}");
}
