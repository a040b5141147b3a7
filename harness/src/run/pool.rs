//! The browser sessions of one suite: a scenario takes a session of its engine and switches
//! (an idle one, or a new one with a driver of its own) and gives it back when its run ended as
//! expected, or failed on a verdict about the platform with no retry to follow, so the next
//! scenario of that engine starts at once (each scenario signs in anew, with windows and
//! storage reset; starting Firefox alone takes 2-4 s). A session whose run hung or timed out,
//! or that a retry follows, is closed, never lent again. `harness run`, `cargo test` and the
//! defect matrix share this pool.

use crate::browser::webdriver::{BrowserSetup, DriverProcess, Session};
use crate::contract::Engine;
use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long closing a browser session may take.
pub const CLOSE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// A session lent to one scenario, with the driver it runs on (none with a WebDriver
/// endpoint given, a Selenium Grid say).
pub struct Lease {
    pub session: Session,
    pub driver: Option<DriverProcess>,
    switches: Vec<String>,
}

pub struct SessionPool {
    /// A running WebDriver endpoint instead of drivers the pool spawns.
    webdriver: Option<String>,
    /// Keep a session for the next scenario (`false`: `--fresh-session`).
    reuse: bool,
    idle: Mutex<Vec<Lease>>,
    /// How each engine's browser was set up, by engine and switches (for the JSON report).
    setups: Mutex<BTreeMap<String, BrowserSetup>>,
}

impl SessionPool {
    pub fn new(webdriver: Option<String>, reuse: bool) -> Self {
        Self {
            webdriver,
            reuse,
            idle: Mutex::new(Vec::new()),
            setups: Mutex::new(BTreeMap::new()),
        }
    }

    /// A session of `engine` started with `switches`: an idle one, or a new one.
    pub async fn take(&self, engine: Engine, switches: &[String]) -> anyhow::Result<Lease> {
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .position(|l| l.session.engine == engine && l.switches == switches)
                .map(|at| idle.remove(at))
        };
        if let Some(lease) = idle {
            return Ok(lease);
        }
        // A WebKit session with other switches would be a second WebKit browser at once.
        if engine == Engine::Webkit {
            let others: Vec<Lease> = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let (webkit, rest): (Vec<Lease>, Vec<Lease>) = std::mem::take(&mut *idle)
                    .into_iter()
                    .partition(|l| l.session.engine == Engine::Webkit);
                *idle = rest;
                webkit
            };
            for lease in others {
                close(lease).await;
            }
        }
        let (driver, url) = match &self.webdriver {
            Some(url) => (None, url.clone()),
            None => {
                let driver = DriverProcess::spawn(engine)?;
                let url = driver.url.clone();
                (Some(driver), url)
            }
        };
        let session = Session::start_with(engine, &url, switches)
            .await
            .with_context(|| format!("starting {}", engine.name()))?;
        self.setups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(format!("{} {:?}", engine.name(), session.browser_args))
            .or_insert_with(|| session.setup.clone());
        Ok(Lease {
            session,
            driver,
            switches: switches.to_vec(),
        })
    }

    /// The session of a run that ended as expected: kept for the next scenario (closed with
    /// `--fresh-session`).
    pub async fn give_back(&self, lease: Lease) {
        if self.reuse {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(lease);
        } else {
            close(lease).await;
        }
    }

    /// Closes every idle session and ends its driver: nothing is left running.
    pub async fn close_all(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for lease in idle {
            close(lease).await;
        }
    }

    /// How each browser was set up, one entry per engine and switches.
    pub fn setups(&self) -> Vec<BrowserSetup> {
        self.setups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Closes a session that is not lent again (its browser quits; its driver, if the pool
/// spawned one, is ended when dropped).
pub async fn close(lease: Lease) {
    let _ = tokio::time::timeout(CLOSE_BUDGET, lease.session.close()).await;
}
