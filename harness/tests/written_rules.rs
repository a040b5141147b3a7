//! Every rule that can fail a run is a sentence a team can read first
//! (`docs/target-contract.md`): each check of the catalogue, each wait of a step, each
//! selector the harness asks a platform for.

use harness::check::invariants::Tier;
use harness::check::invariants::catalogue::rules;
use std::path::{Path, PathBuf};

fn contract() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/target-contract.md"),
    )
    .expect("docs/target-contract.md")
}

/// Every check a run can fail on, in either tier, is a numbered sentence of the contract that
/// names it in bold, `**id**`.
#[test]
fn every_check_is_a_sentence_of_the_contract() {
    let document = contract();
    let missing: Vec<&str> = rules()
        .map(|rule| rule.id)
        .filter(|id| !document.contains(&format!("**{id}**")))
        .collect();
    assert!(
        missing.is_empty(),
        "checks that can fail a run with no sentence in docs/target-contract.md (write one that names it as **id**): {missing:?}"
    );
    assert!(
        rules().any(|rule| rule.tier == Tier::Simulator),
        "the catalogue's simulator checks were not found"
    );
}

/// Every wait of a step is a row of the contract's "What each step waits for", and every
/// selector the harness's sources name is the contract's or one of its own pages'.
#[test]
fn every_step_wait_and_selector_is_a_sentence_of_the_contract() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = contract();
    for (step, waits) in harness::contract::STEP_WAITS {
        let row = format!("| `{step}` | {waits} |");
        assert!(
            document.contains(&row),
            "docs/target-contract.md has no row\n{row}\n(What each step waits for): write it there, word for word as harness/src/contract.rs STEP_WAITS says"
        );
    }
    let names = |step: &str| -> Vec<String> { step.split(", ").map(str::to_owned).collect() };
    let listed: Vec<String> = harness::contract::STEP_WAITS
        .iter()
        .flat_map(|(s, _)| names(s))
        .collect();
    // Every step a scenario file can name, from its JSON Schema.
    let schema: serde_json::Value =
        serde_json::from_str(&harness::scenario::json_schema()).unwrap();
    let steps: Vec<&str> = schema["$defs"]["Step"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|variant| variant["properties"]["do"]["const"].as_str())
        .collect();
    assert!(steps.len() > 10, "the schema's steps were not found");
    for step in steps {
        assert!(
            listed.iter().any(|l| l == step),
            "the step {step} has no row in STEP_WAITS (and in the contract's What each step waits for)"
        );
    }
    let mut files = Vec::new();
    collect_rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(start) = rest.find("[data-testid=") {
                let tail = &rest[start..];
                let end = tail.find(']').map_or(tail.len(), |e| e + 1);
                let selector = &tail[..end];
                rest = &tail[end..];
                let name = &selector["[data-testid=".len()..selector.len().saturating_sub(1)];
                let well_formed = selector.ends_with(']')
                    && !name.is_empty()
                    && name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "-{}<>".contains(c)
                    });
                if !well_formed {
                    continue;
                }
                let contract_form = selector
                    .replace("{connector}", "<connector>")
                    .replace("{name}", "<connector>");
                if !harness::contract::HARNESS_PAGE_SELECTORS.contains(&selector)
                    && !document.contains(&contract_form)
                {
                    found.push(format!("{}:{}: {selector}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the harness names selectors docs/target-contract.md does not (a platform could not know to offer them):\n{}",
        found.join("\n")
    );
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
