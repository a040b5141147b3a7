//! The conformance harness for Alumia's OAuth connector flow.
//!
//! `ls harness/src` is the architecture. Each folder is one concept; a module may use the
//! ones above it in this list and never one below it (a test, `architecture` below, fails on
//! an import cycle between folders or between files):
//!
//! ```text
//! contract.rs   what any deployment must offer: Identity, platform paths, channel names,
//!               storage key, Engine (kept in step with docs/target-contract.md by a test)
//! scenario/     scenario files: types, parsing, discovery, step descriptions, the template
//! deployment/   the platform under test: embedded (in-process servers), remote, processes,
//!               and a real provider's profile (its pages, what it does)
//! check/        judging what was seen: observation, invariants (the one catalogue), trace,
//!               snapshot, verdict (one scenario's result)
//! browser/      driving real browsers: webdriver, bidi, recording proxy, recorder.js,
//!               hostile origin, other session, and the step runner (run, steps, gather)
//! report/       writing verdicts down: console, JSON, JUnit, HTML
//! run/          what the commands do: one scenario, the suite, bench, soak, defect matrix
//! authoring.rs  `harness new` and `harness explain`
//! sim/          the seeded simulator: a model of browsers, servers and the chat page
//! ```
//!
//! The simulator and the browser tier share `contract`, `scenario` and `check`, never each
//! other.

pub mod authoring;
pub mod browser;
pub mod check;
pub mod contract;
pub mod deployment;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sim;

#[cfg(test)]
mod architecture {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    type Graph = BTreeMap<String, BTreeSet<String>>;

    /// Every module of the crate, as its path (`check::trace`; a folder's `mod.rs` is the
    /// folder), with the source of its file.
    fn modules() -> Vec<(String, String)> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                let name = if prefix.is_empty() {
                    stem.clone()
                } else {
                    format!("{prefix}::{stem}")
                };
                if path.is_dir() {
                    walk(&path, &name, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let module = match stem.as_str() {
                        "lib" | "main" if prefix.is_empty() => continue,
                        "mod" => prefix.to_owned(),
                        _ => name,
                    };
                    out.push((module, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            "",
            &mut out,
        );
        out
    }

    /// The paths a source names through `crate::` or `super::`, resolved to full paths
    /// (`crate::{a::x, b}` names `a::x` and `b`).
    fn named_paths(module: &str, text: &str) -> Vec<String> {
        let mut paths = Vec::new();
        for root in ["crate::", "super::"] {
            for (at, _) in text.match_indices(root) {
                if root == "crate::" && text[..at].ends_with("$") {
                    continue;
                }
                let base = if root == "crate::" {
                    String::new()
                } else {
                    match module.rsplit_once("::") {
                        Some((parent, _)) => format!("{parent}::"),
                        None => String::new(),
                    }
                };
                let rest = &text[at + root.len()..];
                let items: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => {
                        let mut depth = 0;
                        let end = group
                            .char_indices()
                            .find(|(_, c)| {
                                match c {
                                    '{' => depth += 1,
                                    '}' if depth == 0 => return true,
                                    '}' => depth -= 1,
                                    _ => {}
                                }
                                false
                            })
                            .map_or(group.len(), |(i, _)| i);
                        let mut items = Vec::new();
                        let (mut depth, mut start) = (0, 0);
                        for (i, c) in group[..end].char_indices() {
                            match c {
                                '{' => depth += 1,
                                '}' => depth -= 1,
                                ',' if depth == 0 => {
                                    items.push(group[start..i].to_owned());
                                    start = i + 1;
                                }
                                _ => {}
                            }
                        }
                        items.push(group[start..end].to_owned());
                        items
                    }
                    None => vec![rest.to_owned()],
                };
                for item in items {
                    let path: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    if !path.is_empty() {
                        paths.push(format!("{base}{}", path.trim_end_matches(':')));
                    }
                }
            }
        }
        paths
    }

    /// Which module imports which: `depth` 1 is the folder level (`browser` -> `check`),
    /// 2 the file level (`browser::run` -> `check::trace`).
    fn imports(depth: usize) -> Graph {
        let modules = modules();
        let known: BTreeSet<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
        let cut =
            |path: &str| -> String { path.split("::").take(depth).collect::<Vec<_>>().join("::") };
        let mut graph = Graph::new();
        for (module, text) in &modules {
            let from = cut(module);
            graph.entry(from.clone()).or_default();
            for path in named_paths(module, text) {
                // The longest prefix of the path that is a module: `check::trace::Layer` is in
                // `check::trace`.
                let segments: Vec<&str> = path.split("::").collect();
                let Some(target) = (1..=segments.len())
                    .rev()
                    .map(|n| segments[..n].join("::"))
                    .find(|p| known.contains(p.as_str()))
                else {
                    continue;
                };
                let to = cut(&target);
                // A folder's own files may use each other; that is the file level's business.
                if to != from && !module.starts_with(&format!("{to}::")) {
                    graph.get_mut(&from).unwrap().insert(to);
                }
            }
        }
        graph
    }

    /// A cycle through `start`, if there is one: the modules in order.
    fn cycle_from(graph: &Graph, start: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
        for next in graph.get(path.last().unwrap()).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if !path.contains(next) && graph.contains_key(next) {
                path.push(next.clone());
                if let Some(cycle) = cycle_from(graph, start, path) {
                    return Some(cycle);
                }
                path.pop();
            }
        }
        None
    }

    fn assert_no_cycle(graph: &Graph, level: &str) {
        for module in graph.keys() {
            if let Some(cycle) = cycle_from(graph, module, &mut vec![module.clone()]) {
                panic!(
                    "an import cycle between the harness's {level}: {} (move what both need \
                     into the lower one, or into a module of its own; the layout is in lib.rs)",
                    cycle.join(" -> ")
                );
            }
        }
    }

    #[test]
    fn no_folder_of_the_harness_imports_one_that_imports_it_back() {
        let graph = imports(1);
        for folder in [
            "contract",
            "scenario",
            "deployment",
            "check",
            "browser",
            "run",
            "report",
            "sim",
        ] {
            assert!(
                graph.contains_key(folder),
                "{folder} is missing from {graph:?}"
            );
        }
        assert!(
            graph["browser"].contains("check"),
            "the parser reads `use crate::` lines: {graph:?}"
        );
        assert_no_cycle(&graph, "folders");
    }

    #[test]
    fn no_file_of_the_harness_imports_one_that_imports_it_back() {
        let graph = imports(2);
        assert!(graph.len() >= 30, "{graph:?}");
        assert!(
            graph["sim::replay"].contains("sim::case"),
            "the parser reads `super::` lines: {graph:?}"
        );
        assert_no_cycle(&graph, "files");
    }

    #[test]
    fn the_simulator_and_the_browser_tier_never_use_each_other() {
        let graph = imports(1);
        for (from, to) in [
            ("sim", "browser"),
            ("browser", "sim"),
            ("sim", "run"),
            ("sim", "deployment"),
        ] {
            assert!(
                !graph[from].contains(to),
                "{from} uses {to}: the simulator and the browser tier share contract, scenario \
                 and check only"
            );
        }
        for lower in ["contract", "scenario", "check"] {
            assert!(
                !graph[lower].iter().any(
                    |m| ["browser", "sim", "run", "report", "deployment"].contains(&m.as_str())
                ),
                "{lower} uses {:?}, a folder above it (the layout is in lib.rs)",
                graph[lower]
            );
        }
    }

    #[test]
    fn the_cycle_finder_finds_a_cycle() {
        let mut graph = Graph::new();
        graph.insert("a".into(), ["b".to_owned()].into());
        graph.insert("b".into(), ["c".to_owned()].into());
        graph.insert("c".into(), ["a".to_owned()].into());
        assert_eq!(
            cycle_from(&graph, "a", &mut vec!["a".into()]),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn the_path_reader_reads_groups_and_super() {
        assert_eq!(
            named_paths(
                "sim::world",
                "use crate::{check::trace::Layer, contract};\nuse super::case::Case;"
            ),
            vec!["check::trace::Layer", "contract", "sim::case::Case"]
        );
    }

    /// The longest a source file may be: past it, split it by job (one concept per file).
    const LONGEST_SOURCE_FILE: usize = 700;

    #[test]
    fn no_source_file_of_the_workspace_is_longer_than_a_reader_can_hold() {
        fn walk(dir: &Path, out: &mut Vec<(String, usize)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                    out.push((path.display().to_string(), lines));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for crate_dir in ["harness", "reference-server", "fake-provider"] {
            walk(&root.join(crate_dir).join("src"), &mut files);
        }
        assert!(files.len() > 50, "{files:?}");
        let long: Vec<&(String, usize)> = files
            .iter()
            .filter(|(_, lines)| *lines > LONGEST_SOURCE_FILE)
            .collect();
        assert!(
            long.is_empty(),
            "source files over {LONGEST_SOURCE_FILE} lines (split each by job, one concept per file): {long:?}"
        );
    }
}
