//! Snapshots of normalized traces, in insta's file format, at `snapshots/<scenario id>.snap`
//! (the path mirrors `scenarios/<scenario id>.toml`). `cargo test` asserts them with insta; the
//! `harness` command reads and compares them itself.

use std::path::{Path, PathBuf};

/// The `snapshots/` folder of this repository.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots")
}

pub fn path_for(root: &Path, scenario_id: &str) -> PathBuf {
    root.join(format!("{scenario_id}.snap"))
}

/// The snapshot `engine` is compared with: the scenario's own, unless the scenario says the
/// engine legitimately differs (`own_snapshot`), then `<id>.<engine>.snap`.
pub fn path_for_engine(root: &Path, scenario_id: &str, engine: &str, own: bool) -> PathBuf {
    if own {
        root.join(format!("{scenario_id}.{engine}.snap"))
    } else {
        path_for(root, scenario_id)
    }
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

/// A line diff of expected against actual, for failure output.
pub fn diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for line in &expected {
        if !actual.contains(line) {
            out.push_str(&format!("- {line}\n"));
        }
    }
    for line in &actual {
        if !expected.contains(line) {
            out.push_str(&format!("+ {line}\n"));
        }
    }
    out
}
