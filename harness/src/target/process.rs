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
