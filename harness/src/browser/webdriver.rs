//! Browsers over WebDriver: the engines, the driver processes the harness spawns on free ports
//! (with an Xvfb display of its own for WebKit), and a session guard with its BiDi side channel.

use crate::contract::Engine;
use crate::scenario::Step;
use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why WebKit cannot run a case whose connect holds Ctrl or Shift.
const WEBKIT_IGNORES_MODIFIERS: &str = "WebKitGTK's MiniBrowser opens every `window.open` in a window of its own whatever keys the click holds: after a Ctrl+click or a Shift+click the chat has lost the focus exactly as after a plain click (measured with WebKitWebDriver 2.50, docs/browsers.md), so neither a background tab nor a new window is what the user gets";
/// Why WebKit cannot run a case with a hard reload.
const WEBKIT_NO_HARD_RELOAD: &str = "WebKitGTK's WebDriver has one refresh, the one the reload step uses, and no BiDi for browsingContext.reload with ignoreCache: a reload that bypasses the cache cannot be told apart from a normal one there";
/// Why WebKit cannot run a case whose chat is embedded in another site's frame.
const WEBKIT_CANNOT_EMBED: &str = "WebKitGTK keeps no cookie in another site's frame and refuses a `Secure` cookie over http://127.0.0.1 even first-party (measured with WebKitWebDriver 2.50, docs/browsers.md): a chat embedded across sites has no session there, as in Safari, which blocks third-party cookies";

/// Chromium's switch for a chat embedded in another site's frame: the frame runs in its
/// embedder's process. Out of process (site isolation, on for users), ChromeDriver's BiDi lost
/// every console entry of the frame after its first in 1 run of 12 (and in 1 of 4 with a
/// reused session): the recorder's reports with them. Storage and BroadcastChannel stay
/// partitioned by top-level site either way (they are keyed in the storage layer, not by
/// process): the case's trace is the same.
pub const CHROMIUM_SAME_PROCESS_FRAMES: &str = "--disable-site-isolation-trials";

/// Where MiniBrowser lives in Debian's `webkit2gtk-driver`.
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

impl Engine {
    /// The WebDriver server binary and the hint to install it.
    pub fn driver(self) -> (&'static str, &'static str) {
        match self {
            Engine::Chromium => (
                "chromedriver",
                "apt-get install -y chromium chromium-driver",
            ),
            Engine::Firefox => (
                "geckodriver",
                "apt-get install -y firefox-esr && cargo install geckodriver --locked",
            ),
            Engine::Webkit => (
                "WebKitWebDriver",
                "apt-get install -y webkit2gtk-driver xvfb",
            ),
        }
    }

    /// The engine switches a case needs (its browser configuration, and the platform it
    /// runs on), or why the engine cannot run it (the scenario is then `precondition-failed`).
    pub fn switches_for_case(
        self,
        scenario: &crate::scenario::Scenario,
    ) -> Result<Vec<String>, String> {
        let mut switches = self.switches_for(&scenario.browser)?;
        if self == Engine::Webkit && scenario.steps.iter().any(Step::holds_a_modifier) {
            return Err(WEBKIT_IGNORES_MODIFIERS.to_owned());
        }
        if self == Engine::Webkit && scenario.steps.iter().any(Step::reloads_hard) {
            return Err(WEBKIT_NO_HARD_RELOAD.to_owned());
        }
        if scenario.platform.embeddable {
            match self {
                Engine::Webkit => return Err(WEBKIT_CANNOT_EMBED.to_owned()),
                Engine::Chromium => switches.push(CHROMIUM_SAME_PROCESS_FRAMES.to_owned()),
                Engine::Firefox => {}
            }
        }
        Ok(switches)
    }

    /// The engine switches that produce a browser configuration, or why the engine cannot
    /// produce it with its own means (the scenario is then `precondition-failed`).
    pub fn switches_for(
        self,
        config: &crate::scenario::BrowserConfig,
    ) -> Result<Vec<String>, String> {
        use crate::scenario::{Feature, OpenerMode, StorageMode};
        if config.latency.is_some() && self == Engine::Chromium {
            // Tried: the first request the intercept holds is the page a classic navigation
            // waits for, and chromedriver answers no BiDi command until that navigation ends.
            return Err(CHROMIUM_CANNOT_DELAY.to_owned());
        }
        if self.has_bidi() {
            // A BiDi preload script produces every configuration, in every tab.
            return Ok(Vec::new());
        }
        if config.storage != StorageMode::Available {
            return Err(format!(
                "{} has no switch that makes storage throw (--features=-LocalStorage makes it null, another configuration) and no BiDi for a preload script",
                self.name()
            ));
        }
        if config.opener == OpenerMode::Noopener {
            return Err(format!(
                "{} has no switch that severs openers and no BiDi for a preload script",
                self.name()
            ));
        }
        if config.latency.is_some() {
            return Err(format!(
                "{} has no switch that slows an origin and no BiDi for network interception",
                self.name()
            ));
        }
        Ok(config
            .remove_features
            .iter()
            .map(|feature| match feature {
                Feature::BroadcastChannel => "--features=-BroadcastChannel".to_owned(),
            })
            .collect())
    }

    /// How the engine reloads a page as the user does (`hard`: as Ctrl+Shift+R does), measured
    /// in docs/browsers.md. Firefox restores form fields after a BiDi reload, as after the
    /// reload key, and not after a classic refresh; it refuses `ignoreCache`, and its classic
    /// refresh fetches everything again and leaves the page without its service worker, as a
    /// hard reload does. WebKitGTK has no BiDi (and runs no hard reload).
    pub fn reload_with(self, hard: bool) -> ReloadWith {
        match (self, hard) {
            (Engine::Webkit, _) | (Engine::Firefox, true) => ReloadWith::Refresh,
            (Engine::Chromium | Engine::Firefox, _) => ReloadWith::Bidi { ignore_cache: hard },
        }
    }

    /// Whether the engine's WebDriver offers BiDi (the recorder needs it).
    pub fn has_bidi(self) -> bool {
        !matches!(self, Engine::Webkit)
    }

    /// Capabilities of a fresh session with its own profile directory. `browser_args` are
    /// engine switches a scenario needs (WebKit's `--features=-BroadcastChannel`).
    pub fn capabilities(
        self,
        profile_dir: &Path,
        browser_args: &[String],
    ) -> serde_json::Map<String, serde_json::Value> {
        let caps = match self {
            Engine::Chromium => serde_json::json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    // chromedriver turns the popup blocker and background throttling off;
                    // users have them on.
                    "excludeSwitches": CHROMIUM_SWITCHES_REMOVED,
                    "args": CHROMIUM_SWITCHES_ADDED
                        .iter()
                        .map(|s| (*s).to_owned())
                        .chain([format!("--user-data-dir={}", profile_dir.display())])
                        .chain(browser_args.iter().cloned())
                        .collect::<Vec<_>>(),
                },
                "goog:loggingPrefs": { "browser": "ALL" },
                // WebDriver BiDi: the recorder and the browser configuration need it.
                "webSocketUrl": true,
            }),
            Engine::Firefox => serde_json::json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": firefox_binary(),
                    "args": ["-headless"],
                    "prefs": firefox_prefs(),
                },
                "webSocketUrl": true,
            }),
            Engine::Webkit => {
                // A non-empty args list replaces MiniBrowser's default `--automation`.
                let mut args = vec!["--automation".to_owned()];
                args.extend(browser_args.iter().cloned());
                serde_json::json!({
                    "webkitgtk:browserOptions": { "binary": MINIBROWSER, "args": args },
                })
            }
        };
        caps.as_object().expect("an object").clone()
    }
}

/// How a reload step reloads: BiDi `browsingContext.reload`, or WebDriver's classic refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadWith {
    Bidi { ignore_cache: bool },
    Refresh,
}

/// What the harness changes in each engine against what its WebDriver server sets, per engine:
/// listed in `docs/browsers.md` and in every JSON report (`browsers`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrowserSetup {
    pub engine: &'static str,
    /// The browser's version, as its session reports it.
    pub version: String,
    /// Command-line switches the harness adds.
    pub flags_added: Vec<String>,
    /// Switches the WebDriver server adds that the harness removes.
    pub flags_removed: Vec<String>,
    /// Preferences the harness sets, with their values.
    pub prefs: serde_json::Value,
    /// What the WebDriver server does that the harness leaves as it is.
    pub notes: &'static str,
}

/// Why Chromium runs no case with `[browser] latency`.
pub const CHROMIUM_CANNOT_DELAY: &str = "chromedriver holds a BiDi network.continueRequest until the classic navigation command that waits for the held request ends, so a delayed page never loads (SeleniumHQ/selenium#17373, GoogleChromeLabs/chromium-bidi#4043); Chromium has no switch that slows one origin";

/// Switches chromedriver adds that the harness removes: the popup blocker off, and the timers
/// of a background tab (the chat's, while the provider tab is in front) never slowed down.
pub const CHROMIUM_SWITCHES_REMOVED: [&str; 3] = [
    "disable-popup-blocking",
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
];
/// Switches the harness adds to Chromium (no other changes the flow's behaviour).
pub const CHROMIUM_SWITCHES_ADDED: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Firefox preferences: geckodriver's recommended set turns the popup blocker off
/// (`dom.disable_open_during_load = false`); the harness turns it back on, and leaves the
/// popup limits at Firefox's defaults.
fn firefox_prefs() -> serde_json::Value {
    serde_json::json!({
        "dom.disable_open_during_load": true,
        "browser.shell.checkDefaultBrowser": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        "app.update.enabled": false,
    })
}

impl Engine {
    /// How the harness sets this engine up, with `version` from the session.
    pub fn setup(self, version: String, browser_args: &[String]) -> BrowserSetup {
        match self {
            Engine::Chromium => BrowserSetup {
                engine: self.name(),
                version,
                flags_added: CHROMIUM_SWITCHES_ADDED
                    .iter()
                    .map(|s| (*s).to_owned())
                    .chain(browser_args.iter().cloned())
                    .collect(),
                flags_removed: CHROMIUM_SWITCHES_REMOVED
                    .iter()
                    .map(|s| format!("--{s}"))
                    .collect(),
                prefs: serde_json::json!({}),
                notes: "chromedriver's other switches (--enable-automation, --disable-hang-monitor, --disable-prompt-on-repost, --disable-client-side-phishing-detection, --allow-pre-commit-input, --test-type=webdriver, ...) are kept; none of them touches popups, timers, storage or the back/forward cache",
            },
            Engine::Firefox => BrowserSetup {
                engine: self.name(),
                version,
                flags_added: vec!["-headless".into()],
                flags_removed: Vec::new(),
                prefs: firefox_prefs(),
                notes: "geckodriver's other recommended preferences are kept",
            },
            Engine::Webkit => BrowserSetup {
                engine: self.name(),
                version,
                flags_added: std::iter::once("--automation".to_owned())
                    .chain(browser_args.iter().cloned())
                    .collect(),
                flags_removed: Vec::new(),
                prefs: serde_json::json!({}),
                notes: "MiniBrowser in automation mode keeps its popup blocker (a window.open outside a click returns null); it runs under an Xvfb display of the harness's own, as it has no headless mode",
            },
        }
    }
}

fn firefox_binary() -> String {
    for candidate in ["/usr/bin/firefox-esr", "/usr/bin/firefox"] {
        if Path::new(candidate).is_file() {
            return candidate.to_owned();
        }
    }
    "firefox".to_owned()
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

/// A TCP port free on both loopbacks, 127.0.0.1 and ::1 (bound, then released for the driver
/// to take). Both, because chromedriver listens on the port on IPv4 and IPv6 and exits with
/// status 1 when either is taken (SeleniumHQ/selenium#11085); with `--port=0` it takes an
/// ephemeral IPv4 port and the same number on ::1, which a connection to `localhost` may hold.
pub fn free_port() -> std::io::Result<u16> {
    let mut last_error = None;
    for _ in 0..64 {
        let v4 = TcpListener::bind("127.0.0.1:0")?;
        let port = v4.local_addr()?.port();
        match TcpListener::bind(("::1", port)) {
            Ok(_) => return Ok(port),
            // No IPv6 loopback: the drivers listen on IPv4 alone.
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => return Ok(port),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("64 attempts made"))
}

/// How long Xvfb may take to say which display it serves.
const XVFB_READY: Duration = Duration::from_secs(30);

/// An Xvfb display of the harness's own; killed by pid on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Xvfb picks a free display number itself and writes it once it accepts clients
    /// (`-displayfd`): no number is chosen here and then taken by another server.
    pub fn start() -> anyhow::Result<Self> {
        let Some(program) = find_program("Xvfb") else {
            bail!("Xvfb is not on PATH (hint: apt-get install -y xvfb)");
        };
        // Its messages, for the error below (a temporary file: nothing blocks on a full pipe).
        let log = tempfile::NamedTempFile::new()?;
        let mut child = Command::new(&program)
            .args(["-displayfd", "1", "-screen", "0", "1280x1024x24"])
            .args(["-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(log.reopen()?)
            .spawn()
            .context("cannot start Xvfb")?;
        let stdout = child.stdout.take().expect("piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = sender.send(line);
        });
        // Measured at 0.05 s, 0.4 s with cold caches; a fresh CI run once saw no answer in 10 s
        // while two browsers started cold beside it, so the wait is generous.
        match receiver.recv_timeout(XVFB_READY) {
            Ok(line) if line.trim().parse::<u32>().is_ok() => Ok(Self {
                child,
                display: format!(":{}", line.trim()),
            }),
            answer => {
                let running = matches!(child.try_wait(), Ok(None));
                let _ = child.kill();
                let _ = child.wait();
                let messages = std::fs::read_to_string(log.path()).unwrap_or_default();
                bail!(
                    "Xvfb did not say which display it serves within {XVFB_READY:?} ({}; {}); its messages:\n{}\nrun `Xvfb -displayfd 1` by hand to see why",
                    match answer {
                        Ok(line) if line.is_empty() => "it closed its output".to_owned(),
                        Ok(line) => format!("it wrote {:?}", line.trim()),
                        Err(_) => "no answer".to_owned(),
                    },
                    if running { "still running" } else { "exited" },
                    messages.trim_end()
                )
            }
        }
    }
}

impl Drop for Xvfb {
    /// SIGTERM first, so that Xvfb removes its lock file and socket; SIGKILL if it lingers.
    fn drop(&mut self) {
        let terminated = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .is_ok();
        if terminated {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver server the harness started, in a process group of its own with the browsers it
/// starts: dropping it kills the group, so no browser outlives its driver (a session that was
/// never closed, a run that failed half-way).
pub struct DriverProcess {
    child: Child,
    pub url: String,
    /// The driver's own log, kept among a failed scenario's artifacts.
    pub log_path: PathBuf,
    _xvfb: Option<Xvfb>,
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
        let log_file = std::fs::File::create(&log_path)?;
        let mut command = Command::new(&path);
        let mut xvfb = None;
        match engine {
            Engine::Chromium => {
                command
                    .arg(format!("--port={port}"))
                    .arg(format!("--log-path={}", log_path.display()));
            }
            Engine::Firefox => {
                // One session per geckodriver; its BiDi port must be free too (default 9222).
                command
                    .args(["--port", &port.to_string()])
                    .args(["--websocket-port", &free_port()?.to_string()]);
            }
            Engine::Webkit => {
                let display = Xvfb::start()?;
                command
                    .arg(format!("--port={port}"))
                    .env("DISPLAY", &display.display);
                xvfb = Some(display);
            }
        }
        // Its own process group, which the browsers it starts join (Chromium's crash handler
        // excepted, which ends with the browser).
        let child = crate::deployment::process::spawn_group_leader(
            command.stdout(log_file.try_clone()?).stderr(log_file),
        )
        .with_context(|| format!("cannot start {}", path.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = child;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!(
                    "{program} exited ({status}) before it listened on port {port}; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{program} did not listen on port {port} within 10 s (its log: {})",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url,
            log_path,
            _xvfb: xvfb,
            _log_dir: log_dir,
        })
    }
}

impl DriverProcess {
    /// The process group of the driver and its browsers (the driver's pid).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        crate::deployment::process::kill_group(&mut self.child);
    }
}

/// One browser session with its BiDi side channel. Call [`Session::close`]; one dropped
/// without it ends with its [`DriverProcess`] (a Grid's sessions end as the Grid decides).
pub struct Session {
    pub client: Client,
    pub engine: Engine,
    /// The engine switches the session was started with (WebKit's feature toggles).
    pub browser_args: Vec<String>,
    /// `None` when the WebDriver endpoint offers no BiDi (`webSocketUrl`).
    pub bidi: Option<crate::browser::bidi::Bidi>,
    /// For engines without BiDi: the recording proxy the browser goes through.
    pub proxy: Option<crate::browser::proxy::RecordingProxy>,
    /// How the harness set this browser up, and its version.
    pub setup: BrowserSetup,
    _profile: tempfile::TempDir,
}

impl Session {
    pub async fn start(engine: Engine, webdriver_url: &str) -> anyhow::Result<Self> {
        Self::start_with(engine, webdriver_url, &[]).await
    }

    pub async fn start_with(
        engine: Engine,
        webdriver_url: &str,
        browser_args: &[String],
    ) -> anyhow::Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("alumia-browser-")
            .tempdir()?;
        let mut capabilities = engine.capabilities(profile.path(), browser_args);
        let proxy = if engine.has_bidi() {
            None
        } else {
            let proxy = crate::browser::proxy::RecordingProxy::start().await?;
            capabilities.insert("proxy".into(), proxy.capability());
            Some(proxy)
        };
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(webdriver_url),
        )
        .await
        .with_context(|| {
            format!(
                "no {} session from {webdriver_url} within 60 s",
                engine.name()
            )
        })?
        .with_context(|| {
            format!(
                "cannot start a {} session at {webdriver_url}",
                engine.name()
            )
        })?;
        let version = client
            .capabilities()
            .and_then(|caps| caps.get("browserVersion"))
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_owned();
        let setup = engine.setup(version, browser_args);
        let socket = client
            .capabilities()
            .and_then(|caps| caps.get("webSocketUrl"))
            .and_then(|url| url.as_str())
            .map(str::to_owned);
        let bidi = match socket {
            Some(url) => {
                let bidi = crate::browser::bidi::Bidi::connect(&url).await?;
                bidi.command(
                    "session.subscribe",
                    serde_json::json!({ "events": [
                        "log.entryAdded",
                        "browsingContext.contextCreated",
                        "browsingContext.contextDestroyed",
                        "network.beforeRequestSent",
                    ] }),
                )
                .await?;
                Some(bidi)
            }
            None => None,
        };
        Ok(Self {
            client,
            engine,
            browser_args: browser_args.to_vec(),
            bidi,
            proxy,
            setup,
            _profile: profile,
        })
    }

    pub async fn close(self) -> anyhow::Result<()> {
        drop(self.bidi);
        self.client.close().await?;
        Ok(())
    }
}
