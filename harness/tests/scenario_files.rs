//! Scenario files have a closed schema: every mistake names the file, the line and what is
//! allowed.

use harness::scenario::{Scenario, discover};

fn error_of(text: &str) -> String {
    Scenario::parse("scenarios/demo/broken.toml", text)
        .unwrap_err()
        .to_string()
}

const STEPS: &str = "[[steps]]\ndo = \"open-chat\"\n";

#[test]
fn an_unknown_key_names_the_file_the_line_and_the_allowed_keys() {
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[browser]\nremove_feature = [\"BroadcastChannel\"]\n"
    ));
    assert!(message.contains("scenarios/demo/broken.toml"), "{message}");
    assert!(message.contains("line 5"), "{message}");
    assert!(
        message.contains("remove_feature") && message.contains("remove_features"),
        "{message}"
    );
}

#[test]
fn an_unknown_step_lists_the_steps_there_are() {
    let message = error_of("description = \"x\"\n[[steps]]\ndo = \"teleport\"\n");
    assert!(
        message.contains("line 3") || message.contains("line 2"),
        "{message}"
    );
    assert!(
        message.contains("teleport")
            && message.contains("open-chat")
            && message.contains("wait-for"),
        "{message}"
    );
}

#[test]
fn a_wrong_type_names_the_key_and_line() {
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[provider]\ntoken_delay_ms = \"slow\"\n"
    ));
    assert!(message.contains("line 5"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn an_unknown_feature_or_fault_value_lists_the_allowed_values() {
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[browser]\nremove_features = [\"WebSockets\"]\n"
    ));
    assert!(message.contains("BroadcastChannel"), "{message}");
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[provider]\ncoop_on_redirect = \"strict\"\n"
    ));
    assert!(
        message.contains("same-origin") && message.contains("report-only"),
        "{message}"
    );
}

#[test]
fn an_expected_non_pass_needs_a_reason() {
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[expect]\noutcome = \"fail\"\n"
    ));
    assert!(message.contains("needs expect.reason"), "{message}");
    assert!(
        Scenario::parse(
            "x.toml",
            &format!(
                "description = \"x\"\n{STEPS}[expect]\noutcome = \"fail\"\nreason = \"known bug\"\n"
            )
        )
        .is_ok()
    );
}

#[test]
fn a_step_on_a_tab_no_step_opened_is_an_impossible_combination() {
    let message = error_of("description = \"x\"\n[[steps]]\ndo = \"say\"\ntext = \"hi\"\n");
    assert!(
        message.contains("line 2: step 1 (do = \"say\")")
            && message.contains("\"chat\"")
            && message.contains("before a step opens it"),
        "{message}"
    );
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[expect.chat]\nchat2 = \"resumed\"\n"
    ));
    assert!(message.contains("chat2"), "{message}");
}

#[test]
fn every_scenario_in_the_repository_parses_and_has_both_snapshots_in_every_engine() {
    use harness::check::trace::Layer;
    let files = discover(&harness::scenario::default_root(), "*").unwrap();
    assert!(files.len() >= 16, "{} scenarios", files.len());
    let mut expected = std::collections::BTreeSet::new();
    for file in files {
        for engine in harness::contract::Engine::NAMES {
            for layer in [Layer::Normative, Layer::Transcript] {
                let name = harness::check::snapshot::name_in(&file, engine, layer);
                let snapshot = harness::check::snapshot::path_for(
                    &harness::check::snapshot::default_root(),
                    &name,
                );
                assert!(
                    snapshot.is_file(),
                    "{} has no snapshot at {}",
                    file.id,
                    snapshot.display()
                );
                expected.insert(snapshot);
            }
        }
    }
    // And no snapshot belongs to no scenario.
    for entry in glob::glob(&format!(
        "{}/**/*.snap",
        harness::check::snapshot::default_root().display()
    ))
    .unwrap()
    {
        let path = entry.unwrap();
        let canonical = expected
            .iter()
            .any(|e| e.canonicalize().ok() == path.canonicalize().ok());
        assert!(canonical, "{} belongs to no scenario", path.display());
    }
}

#[test]
fn a_glob_that_matches_nothing_says_how_to_find_the_ids() {
    let message = discover(&harness::scenario::default_root(), "nothing/*")
        .unwrap_err()
        .to_string();
    assert!(message.contains("harness list"), "{message}");
}

#[test]
fn shards_split_the_scenarios_into_disjoint_stable_parts() {
    use harness::run::options::{parse_shard, shard_of};
    let files = discover(&harness::scenario::default_root(), "*").unwrap();
    for shards in 1..=4 {
        let mut seen = 0;
        for k in 1..=shards {
            let part: Vec<_> = files
                .iter()
                .filter(|f| shard_of(&f.id.0, shards) == k)
                .collect();
            seen += part.len();
        }
        assert_eq!(
            seen,
            files.len(),
            "every scenario in exactly one of {shards} shards"
        );
    }
    // A scenario's shard depends on its id only: adding another moves nothing.
    assert_eq!(
        shard_of("channels/baseline", 3),
        shard_of("channels/baseline", 3)
    );
    assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
    for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let message = parse_shard(bad).unwrap_err().to_string();
        assert!(message.contains("K/N"), "{message}");
    }
}

#[test]
fn an_engine_expectation_needs_a_known_engine_and_a_reason() {
    let base = format!("description = \"x\"\n{STEPS}");
    let message = error_of(&format!("{base}[expect.engines.safari]\nreason = \"x\"\n"));
    assert!(message.contains("chromium, firefox, webkit"), "{message}");
    let message = error_of(&format!("{base}[expect.engines.webkit]\nreason = \"\"\n"));
    assert!(message.contains("reason is empty"), "{message}");
    let message = error_of(&format!(
        "{base}[expect.engines.webkit]\noutcome = \"fail\"\n"
    ));
    assert!(message.contains("reason"), "{message}");
}

#[test]
fn the_committed_json_schema_matches_the_scenario_types() {
    let path = harness::scenario::default_root().join("scenario.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == harness::scenario::json_schema(),
        "{} is out of date with the Rust types (hint: cargo run -q -p harness -- schema > scenarios/scenario.schema.json)",
        path.display()
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
    for file in discover(&harness::scenario::default_root(), "*").unwrap() {
        let text = std::fs::read_to_string(&file.path).unwrap();
        assert!(
            text.starts_with("#:schema ../scenario.schema.json\n"),
            "{} lacks the editor's #:schema line",
            file.path.display()
        );
    }
}

#[test]
fn the_mcp_suites_ids_a_file_names_reach_its_json_result() {
    let files = discover(&harness::scenario::default_root(), "mcp/*").unwrap();
    let named: Vec<_> = files
        .iter()
        .filter(|f| !f.scenario.mcp_conformance.is_empty())
        .collect();
    assert!(
        named.len() >= 5,
        "{} files name MCP suite scenarios",
        named.len()
    );
    for file in named {
        for id in &file.scenario.mcp_conformance {
            assert!(
                id.starts_with("auth/"),
                "{}: {id} is not an id of the suite's auth scenarios",
                file.id
            );
        }
        let result = harness::check::verdict::ScenarioResult::new(
            file,
            harness::contract::Engine::Chromium,
            1,
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(
            json["mcp_conformance"],
            serde_json::json!(file.scenario.mcp_conformance),
            "{}",
            file.id
        );
    }
}

#[test]
fn an_mcp_suite_id_not_spelt_as_the_suite_spells_them_is_refused() {
    for id in ["auth-basic-dcr", "auth/Basic", "auth/", "basic-dcr"] {
        let message = error_of(&format!(
            "description = \"x\"\nmcp_conformance = [\"{id}\"]\n{STEPS}"
        ));
        assert!(message.contains("scenarios/demo/broken.toml"), "{message}");
        assert!(
            message.contains(id) && message.contains("auth/basic-cimd"),
            "{message}"
        );
    }
    Scenario::parse(
        "scenarios/demo/fine.toml",
        &format!("description = \"x\"\nmcp_conformance = [\"auth/basic-cimd\"]\n{STEPS}"),
    )
    .unwrap();
}

/// A file whose third step has `field`, at line 11, column 1.
fn third_step_with(step: &str, field: &str) -> String {
    error_of(&format!(
        "description = \"x\"\n{STEPS}\n[[steps]]\ndo = \"say\"\ntext = \"hi\"\n\n[[steps]]\ndo = \"{step}\"\n{field}\n"
    ))
}

#[test]
fn a_mistake_inside_a_step_names_its_line_column_field_and_what_it_takes() {
    // A wrong type: the field, and what it wants.
    let message = third_step_with("pause", "ms = \"4s\"");
    assert!(
        message.contains("line 11, column 1: step 3 (do = \"pause\"), field `ms`")
            && message.contains("found string \"4s\", wanted a whole number"),
        "{message}"
    );
    // A misspelt field: did you mean, and the fields there are.
    let message = third_step_with("say", "txt = \"hi\"");
    assert!(
        message.contains("line 11, column 1: step 3 (do = \"say\"), field `txt`")
            && message.contains("did you mean `text`?"),
        "{message}"
    );
    // A value outside its set: the values there are.
    let message = third_step_with("connect", "by = \"middle-click\"");
    assert!(
        message.contains("line 11, column 1: step 3 (do = \"connect\"), field `by`")
            && message.contains("`click`, `keyboard`"),
        "{message}"
    );
    // A misspelt step: did you mean.
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}\n[[steps]]\ndo = \"sayy\"\n"
    ));
    assert!(
        message.contains("line 6, column 1: step 2 (do = \"sayy\"), field `do`")
            && message.contains("did you mean \"say\"?"),
        "{message}"
    );
    // Outside the steps: the key toml's message leaves out.
    let message = error_of(&format!(
        "description = \"x\"\n{STEPS}[provider]\ncoop_on_redirect = true\n"
    ));
    assert!(
        message.contains("line 5: `coop_on_redirect`: wanted string or table"),
        "{message}"
    );
}

#[test]
fn the_committed_reference_of_every_step_and_field_is_the_types_own() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenario-reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == harness::scenario::reference::markdown(),
        "{} is not what the scenario types say (regenerate it: cargo run -p harness -- schema --markdown > docs/scenario-reference.md)",
        path.display()
    );
    for step in ["open-chat", "wait-for", "probe-another-org"] {
        assert!(
            committed.contains(&format!("### `do = \"{step}\"`")),
            "{step}"
        );
    }
}

/// `harness explain` leaves out a check the case gives nothing to look at: each check that can
/// be out of scope is so in some scenario file and in scope in another (a misspelt step name
/// or setting would make it out of scope everywhere, a check that can never fail).
#[test]
fn every_check_out_of_scope_somewhere_is_in_scope_in_another_scenario() {
    let files = discover(&harness::scenario::default_root(), "*").unwrap();
    let mut scoped = 0;
    for check in harness::check::invariants::catalogue::browser_checks() {
        let (out, within): (Vec<_>, Vec<_>) = files
            .iter()
            .partition(|file| check.out_of_scope(&file.scenario).is_some());
        if out.is_empty() {
            continue;
        }
        scoped += 1;
        assert!(
            !within.is_empty(),
            "{} is out of scope in every scenario file ({}): its out_of_scope reads a step or setting no file has",
            check.rule().id,
            check.out_of_scope(&out[0].scenario).unwrap()
        );
    }
    // revocation, refresh-single-flight, resource-consistent, registration-reused,
    // hostile-receives-nothing, redirect-bound-to-session, org-isolation and both disconnect
    // checks.
    assert_eq!(
        scoped, 9,
        "a check gained or lost its out_of_scope: update this count"
    );
}

/// `harness explain` lists only the checks that apply, and says why each other one does not.
#[test]
fn explain_lists_the_checks_that_apply_and_why_the_others_do_not() {
    let files = discover(&harness::scenario::default_root(), "channels/baseline").unwrap();
    let text = harness::authoring::explain(&files[0]);
    let (apply, rest) = text
        .split_once("Checks that apply")
        .map(|(_, after)| {
            after
                .split_once("Checks this case leaves nothing to look at")
                .unwrap()
        })
        .unwrap();
    for id in ["no-secret-visible", "chat-resumed", "channels-complete"] {
        assert!(
            apply.contains(&format!("  - {id}: ")),
            "{id} not listed as applying:\n{text}"
        );
    }
    for (id, why) in [
        ("registration-reused", "no MCP connector"),
        ("org-isolation", "no probe-another-org step"),
        ("revoked-at-provider", "no disconnect step"),
    ] {
        assert!(
            !apply.contains(&format!("  - {id}: ")),
            "{id} listed as applying:\n{text}"
        );
        assert!(
            rest.contains(&format!("  - {id}: ")) && rest.contains(why),
            "{id}:\n{text}"
        );
    }
}
