//! Where the recorder's reports come from: WebDriver BiDi (preload script, console entries and
//! browsing-context events), or, for engines without BiDi, the recording proxy (beacons).
//! Both are read as BiDi-shaped events, so the observation does not care which.

use crate::browser::bidi::{Bidi, BidiEvent};
use crate::browser::proxy::{PREFIX, RecordingProxy};
use crate::check::observation::MARKER;
use serde_json::{Value, json};

/// The hidden property through which the proxy-served recorder names its document.
pub const DOC_HOOK: &str = "__alumiaHarnessDoc";

/// What [`Recorder::install`] set up in the browser, for [`Recorder::uninstall`].
#[derive(Debug, Default)]
pub struct Installed {
    script: Option<Value>,
    intercept: Option<Value>,
}

#[derive(Clone, Copy)]
pub enum Recorder<'a> {
    Bidi(&'a Bidi),
    Proxy(&'a RecordingProxy),
}

impl Recorder<'_> {
    /// The recorder's transport setting for `recorder.js`.
    pub fn transport(&self) -> &'static str {
        match self {
            Recorder::Bidi(_) => "console",
            Recorder::Proxy(_) => "beacon",
        }
    }

    pub fn report_url(&self) -> String {
        format!("{PREFIX}report")
    }

    /// Installs `call` (`(recorder)(config)`) in every document from now on, and, with
    /// `latency`, delays every request to its origin (BiDi only: an engine without BiDi cannot
    /// run such a case, `webdriver::Engine::switches_for`); returns what `uninstall` needs.
    pub async fn install(
        &self,
        call: &str,
        latency: Option<(&url::Url, std::time::Duration)>,
    ) -> anyhow::Result<Installed> {
        match self {
            Recorder::Bidi(bidi) => {
                let script = bidi
                    .command(
                        "script.addPreloadScript",
                        json!({ "functionDeclaration": format!("() => {call}") }),
                    )
                    .await?;
                let intercept = match latency {
                    Some((origin, by)) => Some(bidi.delay_requests_to(origin, by).await?),
                    None => None,
                };
                Ok(Installed {
                    script: Some(script["script"].clone()),
                    intercept,
                })
            }
            Recorder::Proxy(proxy) => {
                anyhow::ensure!(
                    latency.is_none(),
                    "the recording proxy delays no request (a case with latency needs BiDi)"
                );
                proxy.set_recorder(format!("{call};\n"));
                Ok(Installed::default())
            }
        }
    }

    /// Deletes every cookie the browser holds (BiDi `storage.deleteCookies`), so that a reused
    /// session brings nothing of an earlier server on the same host (127.0.0.1 on another
    /// port) to the next sign-in. Through the proxy (WebKit) there is nothing to ask: kept.
    pub async fn forget_cookies(&self) -> anyhow::Result<()> {
        if let Recorder::Bidi(bidi) = self {
            bidi.command("storage.deleteCookies", json!({})).await?;
        }
        Ok(())
    }

    /// Reloads the tab whose BiDi context is `context` (`browsingContext.reload`, bypassing
    /// the cache if `ignore_cache`), and says whether it could: without BiDi it cannot.
    pub async fn reload(&self, context: &str, ignore_cache: bool) -> anyhow::Result<bool> {
        match self {
            Recorder::Bidi(bidi) => {
                let mut params = json!({ "context": context, "wait": "complete" });
                if ignore_cache {
                    params["ignoreCache"] = json!(true);
                }
                bidi.command("browsingContext.reload", params).await?;
                Ok(true)
            }
            Recorder::Proxy(_) => Ok(false),
        }
    }

    pub async fn uninstall(&self, installed: Installed) {
        match self {
            Recorder::Bidi(bidi) => {
                if let Some(intercept) = installed.intercept {
                    let _ = bidi.stop_delaying(intercept).await;
                }
                if let Some(script) = installed.script {
                    let _ = bidi
                        .command("script.removePreloadScript", json!({ "script": script }))
                        .await;
                }
            }
            Recorder::Proxy(proxy) => proxy.set_recorder(String::new()),
        }
    }

    pub fn clear(&self) {
        match self {
            Recorder::Bidi(bidi) => bidi.clear_events(),
            Recorder::Proxy(proxy) => proxy.clear(),
        }
    }

    /// Every event so far, BiDi-shaped. From the proxy, each report becomes a console entry
    /// whose context is the reporting document's id.
    pub fn events(&self) -> Vec<BidiEvent> {
        match self {
            Recorder::Bidi(bidi) => bidi.events(),
            Recorder::Proxy(proxy) => {
                // One read: documents in order of first arrival, then each one's reports in
                // sequence (beacons of one document can arrive out of order).
                let mut reports = proxy.reports();
                let mut order: Vec<String> = Vec::new();
                for report in &reports {
                    let doc = report["doc"].as_str().unwrap_or("").to_owned();
                    if !order.contains(&doc) {
                        order.push(doc);
                    }
                }
                reports.sort_by_key(|r| (r["doc"].as_str().map(str::to_owned), r["seq"].as_u64()));
                let mut events = Vec::new();
                for doc in order {
                    for report in reports.iter().filter(|r| r["doc"] == doc.as_str()) {
                        events.push(report_event(&doc, &report["event"], &report["at"]));
                    }
                }
                events
            }
        }
    }
}

/// A report as a console entry of its document, with `at`, when the recorder sent it.
fn report_event(doc: &str, event: &Value, at: &Value) -> BidiEvent {
    let (text, level) = if event["e"] == "console" {
        (
            event["text"].as_str().unwrap_or("").to_owned(),
            event["level"].as_str().unwrap_or("info").to_owned(),
        )
    } else {
        (format!("{MARKER}{event}"), "debug".to_owned())
    };
    BidiEvent {
        method: "log.entryAdded".into(),
        params: json!({ "source": { "context": doc }, "text": text, "level": level, "at": at }),
    }
}
