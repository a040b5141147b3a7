//! Generates one `#[test]` per scenario file, so `cargo test <name>` runs one scenario and
//! adding a scenario needs no Rust.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut tests = String::new();
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let id = file
            .strip_prefix(&root)
            .expect("under the root")
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        let name: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        // Chromium under the plain name (`cargo test <name>`), then every other engine.
        tests.push_str(&format!(
            "#[test]\nfn scenario_{name}() {{\n    run_scenario_test({id:?}, Engine::Chromium);\n}}\n\n"
        ));
        for engine in ["Firefox", "Webkit"] {
            let suffix = engine.to_lowercase();
            tests.push_str(&format!(
                "#[test]\nfn scenario_{name}_in_{suffix}() {{\n    run_scenario_test({id:?}, Engine::{engine});\n}}\n\n"
            ));
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("scenario_tests.rs"), tests).expect("OUT_DIR is writable");
}
