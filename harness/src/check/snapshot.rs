//! Snapshots of normalized traces, in insta's file format, at the path that mirrors the
//! scenario's (`scenarios/<id>.toml`): the normative trace at `snapshots/<id>.snap` (part of
//! the verdict on every target) and the reference server's transcript at
//! `snapshots/<id>.reference.snap` (compared on the embedded target only). `cargo test` asserts
//! them with insta; the `harness` command reads and compares them itself.

use crate::check::trace::Layer;
use std::path::{Path, PathBuf};

/// The `snapshots/` folder of this repository.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots")
}

/// A snapshot's path as a person reads it in a report: relative to the repository when it is
/// inside it (`snapshots/channels/baseline.snap`), as it is otherwise.
pub fn shown(path: &Path) -> String {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repository = repository.canonicalize().unwrap_or(repository);
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    absolute
        .strip_prefix(&repository)
        .map(|relative| relative.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

/// The snapshot name (the file stem insta uses) of a scenario's layer in `engine`: the
/// scenario's own unless the scenario says the engine legitimately differs in that layer,
/// then with the engine in it (`revisited.firefox.reference`).
pub fn name_for(scenario_id: &str, layer: Layer, engine: Option<&str>) -> String {
    let mut name = scenario_id.to_owned();
    if let Some(engine) = engine {
        name.push('.');
        name.push_str(engine);
    }
    if layer == Layer::Transcript {
        name.push_str(".reference");
    }
    name
}

/// The snapshot name of a scenario's `layer` in `engine` (`snapshots/<name>.snap`): the
/// scenario's own, or the engine's where the scenario file says that layer differs in it.
pub fn name_in(file: &crate::scenario::ScenarioFile, engine: &str, layer: Layer) -> String {
    let own = file
        .scenario
        .expect
        .own_snapshot(engine, layer == Layer::Transcript);
    name_for(&file.id.0, layer, own.then_some(engine))
}

/// The file of a snapshot name.
pub fn path_for(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.snap"))
}

/// The body of a snapshot file (what follows its header), if the file exists.
pub fn read(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(rest[end + 5..].to_owned())
}

/// Whether a trace equals a snapshot body (insta ignores trailing newlines the same way).
pub fn matches(body: &str, trace: &str) -> bool {
    body.trim_end() == trace.trim_end()
}

/// Writes a snapshot as insta would (used by `harness run --accept` on the embedded target).
pub fn write(
    path: &Path,
    scenario_id: &str,
    description: &str,
    trace: &str,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let header = format!(
        "---\nsource: harness/tests/scenarios.rs\ndescription: {}\nexpression: trace\ninput_file: scenarios/{scenario_id}.toml\n---\n",
        serde_json::to_string(description).expect("a string serializes")
    );
    std::fs::write(path, format!("{header}{}\n", trace.trim_end()))
}

/// The lines that differ, in order, `-` for expected and `+` for actual: a reordered or
/// duplicated line shows too.
pub fn diff(expected: &str, actual: &str) -> String {
    let expected = format!("{}\n", expected.trim_end());
    let actual = format!("{}\n", actual.trim_end());
    let mut out = String::new();
    for change in similar::TextDiff::from_lines(&expected, &actual).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "- ",
            similar::ChangeTag::Insert => "+ ",
            similar::ChangeTag::Equal => continue,
        };
        out.push_str(sign);
        out.push_str(change.value().trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reordered_or_repeated_line_is_a_difference() {
        assert_eq!(diff("a\nb\n", "b\na\n"), "+ b\n- b\n");
        assert_eq!(diff("a\n", "a\na\n"), "+ a\n");
        assert_eq!(diff("a\n", "a"), "");
    }

    #[test]
    fn names_mirror_the_scenario_with_engine_and_layer() {
        assert_eq!(
            name_for("callback/revisited", Layer::Normative, None),
            "callback/revisited"
        );
        assert_eq!(
            name_for("callback/revisited", Layer::Transcript, Some("firefox")),
            "callback/revisited.firefox.reference"
        );
    }
}
