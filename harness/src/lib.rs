//! The conformance harness for Alumia's OAuth connector flow.
//!
//! For now: the embedded target ([`stack::EmbeddedStack`]: fake provider and reference server
//! in-process) and browser sessions over WebDriver ([`webdriver`]).

pub mod authoring;
pub mod bench;
pub mod bidi;
pub mod command;
pub mod contract;
pub mod defects;
pub mod expectations;
pub mod hostile;
pub mod invariants;
pub mod observe;
pub mod other_session;
pub mod process;
pub mod proxy;
pub mod recording;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod snapshot;
pub mod soak;
pub mod stack;
pub mod suite;
pub mod target;
pub mod trace;
pub mod webdriver;

#[cfg(test)]
mod architecture {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The top-level modules each module names through `crate::` paths (a folder counts as
    /// one module).
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap().flatten() {
            let path = entry.path();
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                for inner in std::fs::read_dir(&path).unwrap().flatten() {
                    if inner.path().extension().is_some_and(|e| e == "rs") {
                        files.push((module.clone(), inner.path()));
                    }
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push((module, path));
            }
        }
        for (module, path) in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let entry = graph.entry(module.clone()).or_default();
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let named: Vec<&str> = match rest.strip_prefix('{') {
                    // `crate::{a::x, b}`: the first segment of each item at the top level.
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
                                    items.push(&group[start..i]);
                                    start = i + 1;
                                }
                                _ => {}
                            }
                        }
                        items.push(&group[start..end]);
                        items
                    }
                    None => vec![rest],
                };
                for item in named {
                    let first: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !first.is_empty() && first != module {
                        entry.insert(first);
                    }
                }
            }
        }
        graph
    }

    /// A cycle through `start`, if there is one: the modules in order.
    fn cycle_from(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
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

    #[test]
    fn no_module_of_the_harness_imports_one_that_imports_it_back() {
        let graph = imports();
        assert!(graph.len() >= 10, "{graph:?}");
        assert!(
            graph["runner"].contains("contract"),
            "the parser reads `use crate::` lines"
        );
        for module in graph.keys() {
            if let Some(cycle) = cycle_from(&graph, module, &mut vec![module.clone()]) {
                panic!(
                    "an import cycle between the harness's modules: {} (move what both need into a module of its own)",
                    cycle.join(" -> ")
                );
            }
        }
    }

    #[test]
    fn the_cycle_finder_finds_a_cycle() {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        graph.insert("a".into(), ["b".to_owned()].into());
        graph.insert("b".into(), ["c".to_owned()].into());
        graph.insert("c".into(), ["a".to_owned()].into());
        assert_eq!(
            cycle_from(&graph, "a", &mut vec!["a".into()]),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }
}
