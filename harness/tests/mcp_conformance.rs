//! The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `interop/mcp-conformance/` with the Node 22 it needs, installed by `scripts/install-deps`):
//! the ids our scenario files cite are the suite's own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned suite's entry point and the Node that runs it; `None` (skip locally, fail in
/// CI) when `scripts/install-deps` has not installed them.
fn suite() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/mcp-conformance");
    let node = root.join("node_modules/node/bin/node");
    let entry = root.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    if node.is_file() && entry.is_file() {
        return Some((node, entry));
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "the MCP conformance suite is not installed in {} (scripts/install-deps installs it)",
        root.display()
    );
    eprintln!(
        "skipped: the MCP conformance suite is not installed (hint: scripts/install-deps, or npm ci --prefix interop/mcp-conformance)"
    );
    None
}

/// The client scenarios the pinned suite lists (`conformance list --client`).
fn client_scenarios(node: &Path, entry: &Path) -> Vec<String> {
    let output = Command::new(node)
        .arg(entry)
        .args(["list", "--client"])
        .output()
        .expect("the suite runs");
    assert!(
        output.status.success(),
        "conformance list --client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_scenario_files_cite_only_scenarios_the_pinned_suite_has() {
    let Some((node, entry)) = suite() else {
        return;
    };
    let known = client_scenarios(&node, &entry);
    assert!(
        known.iter().any(|id| id == "auth/basic-cimd") && known.len() > 20,
        "the suite's list was not read: {known:?}"
    );
    let files = harness::scenario::discover(&harness::scenario::default_root(), "*").unwrap();
    let mut unknown = Vec::new();
    let mut cited = 0;
    for file in &files {
        for id in &file.scenario.mcp_conformance {
            cited += 1;
            if !known.contains(id) {
                unknown.push(format!("{}: {id}", file.path.display()));
            }
        }
    }
    assert!(cited >= 5, "only {cited} ids cited");
    assert!(
        unknown.is_empty(),
        "scenario files cite MCP conformance scenarios the pinned suite does not have (its `conformance list --client` lists {}):\n{}",
        known.join(", "),
        unknown.join("\n")
    );
}
