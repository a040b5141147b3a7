//! The platform's clock, in its state: the wall clock, possibly moved ahead (a test, or the
//! harness, advances it instead of sleeping through a token's lifetime), or a clock that reads
//! only what it is set to (the simulator's virtual time).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Clock {
    kind: Kind,
    /// Milliseconds: ahead of the wall clock, or the time itself.
    value: Arc<AtomicI64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wall,
    Set,
}

impl Default for Clock {
    fn default() -> Self {
        Self::wall()
    }
}

impl Clock {
    /// The wall clock (until advanced).
    pub fn wall() -> Self {
        Self {
            kind: Kind::Wall,
            value: Arc::new(AtomicI64::new(0)),
        }
    }

    /// A clock that reads `now_ms` until set or advanced.
    pub fn set_to(now_ms: i64) -> Self {
        Self {
            kind: Kind::Set,
            value: Arc::new(AtomicI64::new(now_ms)),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let value = self.value.load(Ordering::SeqCst);
        match self.kind {
            Kind::Set => value,
            Kind::Wall => {
                value
                    + SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0)
            }
        }
    }

    /// Moves the clock ahead by `by`: every copy of it reads the later time.
    pub fn advance(&self, by: Duration) {
        self.value
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Sets a clock made with [`Clock::set_to`] to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        assert_eq!(
            self.kind,
            Kind::Set,
            "the wall clock is advanced, not set (Clock::advance)"
        );
        self.value.store(now_ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_reads_later_in_every_copy_and_a_set_one_reads_what_it_was_set_to() {
        let wall = Clock::wall();
        let copy = wall.clone();
        let before = copy.now_ms();
        wall.advance(Duration::from_secs(3600));
        assert!(copy.now_ms() >= before + 3_600_000);
        let virtual_time = Clock::set_to(5);
        virtual_time.advance(Duration::from_millis(10));
        assert_eq!(virtual_time.now_ms(), 15);
        virtual_time.set(1);
        assert_eq!(virtual_time.clone().now_ms(), 1);
    }
}
