//! Child processes the harness or its tests start (servers, a Grid): killed and reaped on drop,
//! so a failing run leaves nothing behind.

use std::process::Child;

/// Owns a child process; kills and waits for it when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory for the data of a server the harness starts, removed when dropped: a server
/// killed by [`KillOnDrop`] cannot remove a temporary one of its own. Declare it before the
/// server's `KillOnDrop`, so that the server is stopped before its directory goes.
pub fn server_data_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("alumia-data-").tempdir()
}

/// Starts `command` as the leader of a process group of its own, which the processes it
/// starts join unless they leave it (a driver and its browser).
pub fn spawn_group_leader(command: &mut std::process::Command) -> std::io::Result<Child> {
    std::os::unix::process::CommandExt::process_group(command, 0);
    command.spawn()
}

/// Kills every process of the group `leader` leads (started by [`spawn_group_leader`]), then
/// reaps the leader.
pub fn kill_group(leader: &mut Child) {
    let group = nix::unistd::Pid::from_raw(leader.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = leader.kill();
    let _ = leader.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Whether process `pid` exists and is not a zombie.
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    }

    #[test]
    fn killing_a_group_ends_the_processes_its_leader_started() {
        // A leader that starts a grandchild and forgets it, as a driver starts a browser.
        let mut leader = spawn_group_leader(
            std::process::Command::new("sh")
                .args(["-c", "sleep 600 & echo $!; wait"])
                .stdout(std::process::Stdio::piped()),
        )
        .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert!(alive(grandchild));
        kill_group(&mut leader);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(grandchild) {
            assert!(
                Instant::now() < deadline,
                "the grandchild outlived its group"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
