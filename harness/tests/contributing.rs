//! CONTRIBUTING.md's five-minute guide, followed literally: every line of its first `sh` block
//! runs in a scratch copy of the repository's scenario folders, with `cargo run -q -p harness
//! --` standing for this build's harness binary. A line marked `# fails` must fail (with the
//! missing snapshot named), every other line must succeed.

use std::path::Path;
use std::process::Command;

fn guide_commands() -> Vec<String> {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../CONTRIBUTING.md"))
            .unwrap();
    let start = guide
        .find("```sh\n")
        .expect("a sh block in CONTRIBUTING.md")
        + 6;
    let end = start + guide[start..].find("```").unwrap();
    guide[start..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_newcomer_adds_a_passing_scenario_by_following_contributing_md() {
    if !harness::browser::webdriver::driver_available_for_tests(harness::contract::Engine::Chromium)
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let scenarios = work.path().join("scenarios");
    std::fs::create_dir_all(scenarios.join("channels")).unwrap();
    std::fs::copy(
        harness::scenario::default_root().join("channels/baseline.toml"),
        scenarios.join("channels/baseline.toml"),
    )
    .unwrap();
    let snapshots = work.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let commands = guide_commands();
    assert!(commands.len() >= 5, "{commands:?}");
    for line in commands {
        let command = line.replace("cargo run -q -p harness --", env!("CARGO_BIN_EXE_harness"));
        let output = Command::new("sh")
            .args(["-c", &command])
            .current_dir(work.path())
            .env("HARNESS_SCENARIOS", &scenarios)
            .env("HARNESS_SNAPSHOTS", &snapshots)
            .env("HARNESS_SEED", "41")
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if line.contains("# fails") {
            assert!(!output.status.success(), "{line}\nshould fail:\n{printed}");
            assert!(printed.contains("no snapshot"), "{line}\n{printed}");
        } else {
            assert!(output.status.success(), "{line}\nfailed:\n{printed}");
        }
        if line.contains(" new ") {
            assert!(
                printed.contains("--accept"),
                "`new` prints the command that accepts: {printed}"
            );
        }
        if line.contains(" explain ") {
            assert!(printed.contains("BroadcastChannel is removed"), "{printed}");
            assert!(printed.contains("same-origin"), "{printed}");
        }
    }
    assert!(snapshots.join("channels/my-case.snap").is_file());
}

#[test]
fn the_template_of_harness_new_is_a_valid_scenario() {
    let scenario =
        harness::scenario::Scenario::parse("template.toml", harness::authoring::TEMPLATE).unwrap();
    assert!(scenario.description.starts_with("TODO"));
}

#[test]
fn harness_new_refuses_a_bad_id_and_an_existing_file() {
    let root = tempfile::tempdir().unwrap();
    let bad = harness::authoring::new_scenario(root.path(), "NoGroup", None)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("<group>/<name>"), "{bad}");
    harness::authoring::new_scenario(root.path(), "group/case", None).unwrap();
    let again = harness::authoring::new_scenario(root.path(), "group/case", None)
        .unwrap_err()
        .to_string();
    assert!(again.contains("exists already"), "{again}");
    let missing = harness::authoring::new_scenario(root.path(), "group/other", Some("nope/none"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("harness list"), "{missing}");
}
