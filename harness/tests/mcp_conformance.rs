//! The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `interop/mcp-conformance/` with the Node 22 it needs, installed by `scripts/install-deps`):
//! the ids our scenario files cite are the suite's own, and the reference platform, played by
//! `harness mcp-client` in Chromium, passes every client scenario of the suite but the
//! extensions below and the baseline `interop/mcp-conformance/expected-failures.yaml`, which the
//! suite itself judges (a listed scenario that passes fails the run).

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;
mod support;

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

/// The client scenarios the pinned suite lists (`conformance list --client`), with their tags
/// (the revisions they belong to, or `extension`).
fn client_scenarios_tagged(node: &Path, entry: &Path) -> Vec<(String, String)> {
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
        .map(|rest| {
            let (id, tags) = rest.split_once(' ').unwrap_or((rest, ""));
            (id.to_owned(), tags.trim().to_owned())
        })
        .collect()
}

/// The client scenarios the pinned suite lists.
fn client_scenarios(node: &Path, entry: &Path) -> Vec<String> {
    client_scenarios_tagged(node, entry)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The suite's extension scenarios (optional by the suite's own rule, SEP-1730), which the
/// platform does not implement, each with why. A new extension in the suite fails the test
/// until it is run or listed here.
const EXTENSIONS_NOT_IMPLEMENTED: [(&str, &str); 10] = [
    (
        "auth/client-credentials-jwt",
        "client credentials (SEP-1046) are a machine's own grant; a chat connector acts for a user who consents",
    ),
    (
        "auth/client-credentials-basic",
        "client credentials (SEP-1046) are a machine's own grant; a chat connector acts for a user who consents",
    ),
    (
        "auth/enterprise-managed-authorization",
        "enterprise-managed authorization (SEP-990, cross-app access) needs an enterprise identity provider's token exchange; the platform has no enterprise sign-in",
    ),
    (
        "auth/dpop",
        "DPoP (RFC 9449) binds tokens to a key the platform would keep per connection; it sends bearer tokens",
    ),
    (
        "auth/dpop-nonce",
        "DPoP (RFC 9449) binds tokens to a key the platform would keep per connection; it sends bearer tokens",
    ),
    (
        "auth/wif-jwt-bearer",
        "workload identity federation (SEP-1933) is a workload's JWT-bearer grant, not a user's consent",
    ),
    (
        "sep-2640-client-no-prefetch",
        "skills (SEP-2640) are not a tool call; the platform lists and calls tools only",
    ),
    (
        "sep-2640-client-verify-digest",
        "skills (SEP-2640) are not a tool call; the platform lists and calls tools only",
    ),
    (
        "sep-2640-client-verify-size",
        "skills (SEP-2640) are not a tool call; the platform lists and calls tools only",
    ),
    (
        "sep-2640-client-verify-frontmatter",
        "skills (SEP-2640) are not a tool call; the platform lists and calls tools only",
    ),
];

/// Scenarios outside the baseline whose chat rightly ends without the tool's answer, and why;
/// every other one that passes must show the answer in the chat.
const ENDS_WITHOUT_AN_ANSWER: [(&str, &str); 10] = [
    ("initialize", "the server offers no tool"),
    ("request-metadata", "the server offers no tool"),
    (
        "json-schema-ref-no-deref",
        "the tool's answer has no text content",
    ),
    (
        "auth/resource-mismatch",
        "the metadata names another resource: nothing is asked",
    ),
    (
        "auth/metadata-issuer-mismatch",
        "the metadata names another issuer: nothing is asked",
    ),
    (
        "auth/iss-supported-missing",
        "the authorization response lacks the iss it must carry",
    ),
    (
        "auth/iss-wrong-issuer",
        "the authorization response names another issuer",
    ),
    (
        "auth/iss-unexpected",
        "the authorization response names another issuer",
    ),
    (
        "auth/iss-normalized",
        "the authorization response's iss differs from the issuer",
    ),
    (
        "auth/scope-retry-limit",
        "the server asks for more scope after every consent: the chat stops asking",
    ),
];

/// The scenarios the baseline lists (`client:` entries of the suite's YAML format).
fn baseline(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut in_client = false;
    let mut entries = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_client = trimmed == "client:";
            continue;
        }
        if in_client && let Some(entry) = trimmed.strip_prefix("- ") {
            entries.push(entry.split('#').next().unwrap().trim().to_owned());
        }
    }
    entries
}

#[test]
fn the_reference_platform_passes_every_client_scenario_of_the_suite_but_its_baseline() {
    let Some((node, entry)) = suite() else {
        return;
    };
    if !support::chromium_available() {
        return;
    }
    // `harness mcp-client` starts the reference-server beside it.
    servers::workspace_binary("reference-server");
    let command = format!("{} mcp-client", env!("CARGO_BIN_EXE_harness"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/mcp-conformance");
    let baseline_path = root.join("expected-failures.yaml");
    let expected_failures = baseline(&baseline_path);
    assert!(!expected_failures.is_empty(), "the baseline was not read");
    let scenarios = client_scenarios_tagged(&node, &entry);
    let extensions: Vec<&str> = scenarios
        .iter()
        .filter(|(_, tags)| tags.contains("extension"))
        .map(|(id, _)| id.as_str())
        .collect();
    let listed: Vec<&str> = EXTENSIONS_NOT_IMPLEMENTED
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        extensions, listed,
        "the suite's extension scenarios are not those EXTENSIONS_NOT_IMPLEMENTED explains: run the new ones or say why not"
    );
    let out = tempfile::tempdir().unwrap();
    let to_run: Vec<&str> = scenarios
        .iter()
        .filter(|(_, tags)| !tags.contains("extension"))
        .map(|(id, _)| id.as_str())
        .collect();
    // Two scenarios at a time: each is the suite's Node, a platform and a Chromium, which
    // leave a core idle while they start and wait on one another.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut runs: Vec<(usize, std::process::Output)> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(id) = to_run.get(i) else {
                            return done;
                        };
                        let run = Command::new(&node)
                            .arg(&entry)
                            .args(["client", "--command", &command, "--scenario", id])
                            .args(["--timeout", "90000", "--expected-failures"])
                            .arg(&baseline_path)
                            .arg("-o")
                            .arg(saved_in(out.path(), id))
                            .output()
                            .expect("the suite runs");
                        done.push((i, run));
                    }
                })
            })
            .collect();
        lanes
            .into_iter()
            .flat_map(|lane| lane.join().expect("a lane of the suite's runs"))
            .collect()
    });
    runs.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    let mut answered = 0;
    for (i, run) in runs {
        let id = to_run[i];
        let printed = String::from_utf8_lossy(&run.stdout).into_owned()
            + &String::from_utf8_lossy(&run.stderr);
        if !run.status.success() {
            failures.push(format!(
                "{id}: the suite's verdict is a failure (an unexpected failure, or a baseline entry that now passes):\n{}",
                tail(&printed, 40)
            ));
            continue;
        }
        if expected_failures.iter().any(|e| e == id) {
            continue;
        }
        let chat = chat_ending(&saved_in(out.path(), id));
        let without = ENDS_WITHOUT_AN_ANSWER.iter().any(|(s, _)| *s == id);
        let shows_answer = chat.starts_with(harness::run::mcp_client::ANSWERED);
        if shows_answer {
            answered += 1;
        }
        if shows_answer == without {
            failures.push(format!(
                "{id}: the chat {} the tool's answer, and ENDS_WITHOUT_AN_ANSWER says it {}: {chat}",
                if shows_answer { "shows" } else { "does not show" },
                if without { "must not" } else { "must" },
            ));
        }
    }
    assert!(answered >= 20, "only {answered} scenarios showed an answer");
    assert!(
        failures.is_empty(),
        "MCP conformance (rerun one: cd interop/mcp-conformance && node_modules/node/bin/node node_modules/@modelcontextprotocol/conformance/dist/index.js client --command '{command}' --scenario ID):\n{}",
        failures.join("\n\n")
    );
}

/// Where the suite saves what scenario `id` printed.
fn saved_in(out: &Path, id: &str) -> PathBuf {
    out.join(id.replace('/', "_"))
}

/// What `harness mcp-client` printed of the chat's end, from the suite's saved stdout.
fn chat_ending(dir: &Path) -> String {
    let mut found = String::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "stdout.txt") {
                found = std::fs::read_to_string(&path).unwrap_or_default();
            }
        }
    }
    found.trim().to_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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
