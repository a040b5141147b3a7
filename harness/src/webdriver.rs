//! Browsers over WebDriver: a driver process the harness spawns on a free port, and a
//! session guard that closes the browser.

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A browser engine the harness can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Chromium,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
        }
    }

    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "chromium" => Ok(Engine::Chromium),
            other => bail!("unknown engine {other:?} (allowed: chromium)"),
        }
    }

    /// The WebDriver server binary and the hint to install it.
    fn driver(self) -> (&'static str, &'static str) {
        match self {
            Engine::Chromium => (
                "chromedriver",
                "apt-get install -y chromium chromium-driver",
            ),
        }
    }

    /// Capabilities of a fresh headless session with its own profile directory.
    pub fn capabilities(self, profile_dir: &Path) -> serde_json::Map<String, serde_json::Value> {
        let caps = match self {
            Engine::Chromium => serde_json::json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        format!("--user-data-dir={}", profile_dir.display()),
                    ],
                },
                "goog:loggingPrefs": { "browser": "ALL" },
                // WebDriver BiDi: the recorder and the browser configuration need it.
                "webSocketUrl": true,
            }),
        };
        caps.as_object().expect("an object").clone()
    }
}

/// Finds a program on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// Whether `engine`'s driver can be used by a test. A missing driver skips the test locally
/// (with the reason on stderr) and fails it in CI (`CI` set), as cargo's own test support does.
pub fn driver_available_for_tests(engine: Engine) -> bool {
    let (program, hint) = engine.driver();
    if find_program(program).is_some() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "{program} is missing in CI (hint: {hint}; .ci/run installs it)"
    );
    eprintln!("skipped: {program} is not on PATH (hint: {hint})");
    false
}

/// A free TCP port on loopback (bound, then released for the driver to take).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A WebDriver server the harness started; killed on drop.
pub struct DriverProcess {
    child: Child,
    pub url: String,
    /// The driver's own log, kept among a failed scenario's artifacts.
    pub log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl DriverProcess {
    pub fn spawn(engine: Engine) -> anyhow::Result<Self> {
        let (program, hint) = engine.driver();
        let Some(path) = find_program(program) else {
            bail!("{program} is not on PATH (hint: {hint})");
        };
        let port = free_port()?;
        let log_dir = tempfile::Builder::new()
            .prefix("alumia-driver-")
            .tempdir()?;
        let log_path = log_dir.path().join(format!("{program}.log"));
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log_path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", path.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("{program} did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url,
            log_path,
            _log_dir: log_dir,
        })
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session with its BiDi side channel. Call [`Session::close`]; dropping without
/// it leaks the browser.
pub struct Session {
    pub client: Client,
    /// `None` when the WebDriver endpoint offers no BiDi (`webSocketUrl`).
    pub bidi: Option<crate::bidi::Bidi>,
    _profile: tempfile::TempDir,
}

impl Session {
    pub async fn start(engine: Engine, webdriver_url: &str) -> anyhow::Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("alumia-browser-")
            .tempdir()?;
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(engine.capabilities(profile.path()))
                .connect(webdriver_url),
        )
        .await
        .with_context(|| format!("no browser session from {webdriver_url} within 60 s"))?
        .with_context(|| format!("cannot start a browser session at {webdriver_url}"))?;
        let socket = client
            .capabilities()
            .and_then(|caps| caps.get("webSocketUrl"))
            .and_then(|url| url.as_str())
            .map(str::to_owned);
        let bidi = match socket {
            Some(url) => {
                let bidi = crate::bidi::Bidi::connect(&url).await?;
                bidi.command(
                    "session.subscribe",
                    serde_json::json!({ "events": [
                        "log.entryAdded",
                        "browsingContext.contextCreated",
                        "browsingContext.contextDestroyed",
                    ] }),
                )
                .await?;
                Some(bidi)
            }
            None => None,
        };
        Ok(Self {
            client,
            bidi,
            _profile: profile,
        })
    }

    pub async fn close(self) -> anyhow::Result<()> {
        drop(self.bidi);
        self.client.close().await?;
        Ok(())
    }
}
