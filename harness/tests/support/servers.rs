//! Servers the tests start as separate processes, as a user would: the workspace's binaries
//! and what each announces on its standard output.

use harness::deployment::process::KillOnDrop;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The workspace's binary `name`, built if needed (it belongs to another package).
pub fn workspace_binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let path = dir.join(name);
    // The same build as `cargo test --workspace` (features unified the same way), so in CI,
    // after it, nothing is built twice.
    let status = Command::new(env!("CARGO"))
        .args(["test", "--workspace", "--no-run", "--quiet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo test --workspace --no-run failed");
    assert!(path.is_file(), "{} not found", path.display());
    path
}

/// The values of the lines of `server`'s standard output that start with each of `prefixes`,
/// read until all were seen (20 s at most); the rest of its output is drained.
pub fn announced(server: &mut KillOnDrop, prefixes: &[&'static str]) -> Vec<String> {
    use std::io::BufRead as _;
    let stdout = server.0.stdout.take().expect("a piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    let wanted = prefixes.to_vec();
    std::thread::spawn(move || {
        let mut values: Vec<Option<String>> = vec![None; wanted.len()];
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            for (value, prefix) in values.iter_mut().zip(&wanted) {
                if let Some(rest) = line.strip_prefix(prefix) {
                    *value = Some(rest.trim().to_owned());
                }
            }
            if values.iter().all(Option::is_some) {
                let _ = sender.send(values.iter().flatten().cloned().collect::<Vec<_>>());
                break;
            }
        }
        for _ in lines {}
    });
    receiver
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("the server did not announce {prefixes:?} within 20 s"))
}
