//! A hostile third origin, served by the harness on loopback: a page that listens on every
//! channel (message, BroadcastChannel, storage) and opens a URL of the platform (its body's
//! `data-open`, set by the harness) when its button is clicked. It is neither the platform's origin nor the provider's, and not even the
//! platform's site (`127.0.0.2` when loopback allows it, so no `SameSite` cookie is shared).

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// Where a hostile page keeps what it received, for the harness to read at the end.
pub const RECEIVED_HOOK: &str = "__alumiaHostileReceived";

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body data-ready="true">
<main data-testid="hostile-page">
<h1>Another site</h1>
<button type="button" data-testid="hostile-open">Open</button>
<ol data-testid="hostile-received"></ol>
</main>
<script>
(function () {
  "use strict";
  var received = window.__alumiaHostileReceived = [];
  var list = document.querySelector("[data-testid=hostile-received]");
  function note(channel, origin, data) {
    var text;
    try { text = typeof data === "string" ? data : JSON.stringify(data); } catch (e) { text = String(data); }
    received.push({ channel: channel, origin: origin || "", data: String(text) });
    var item = document.createElement("li");
    item.textContent = channel + " " + text;
    list.appendChild(item);
  }
  window.addEventListener("message", function (event) { note("message", event.origin, event.data); });
  try {
    new BroadcastChannel("{{CHANNEL}}").onmessage = function (event) { note("broadcast", "", event.data); };
  } catch (e) { /* no BroadcastChannel here */ }
  window.addEventListener("storage", function (event) { note("storage", "", event.newValue); });
  document.querySelector("[data-testid=hostile-open]").addEventListener("click", function () {
    window.open(document.body.getAttribute("data-open"), "_blank");
  });
})();
</script>
</body></html>
"#;

/// A page of another site that embeds the platform's chat (as a help widget is embedded):
/// one frame, as large as the page, whose `src` the harness sets.
const EMBEDDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A site that embeds the chat</title>
<style>html, body { margin: 0; height: 100%; } iframe { border: 0; width: 100%; height: 100%; display: block; }</style></head>
<body data-testid="embedder"><iframe data-testid="embedded-chat" title="Chat"></iframe></body></html>
"#;

/// An ordinary page of another site, with no script: where a user goes for a while.
const ELSEWHERE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head>
<body><main data-testid="elsewhere"><h1>Another site</h1><p>The user reads something else.</p></main></body></html>
"#;

async fn page() -> Html<String> {
    Html(PAGE.replace("{{CHANNEL}}", crate::contract::CHANNEL_NAME))
}

/// The hostile origin's server, stopped when dropped.
pub struct HostileOrigin {
    pub origin: String,
    task: JoinHandle<()>,
}

impl HostileOrigin {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = match tokio::net::TcpListener::bind("127.0.0.2:0").await {
            Ok(listener) => listener,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let address: SocketAddr = listener.local_addr()?;
        let app = Router::new()
            .route("/opener", get(page))
            .route("/elsewhere", get(|| async { Html(ELSEWHERE) }))
            .route("/embed", get(|| async { Html(EMBEDDER) }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            origin: format!("http://{address}"),
            task,
        })
    }

    /// A page of another site with no script (`leave` steps go there).
    pub fn elsewhere_page(&self) -> String {
        format!("{}/elsewhere", self.origin)
    }

    /// A page of another site with one empty frame, for the harness to point at the chat.
    pub fn embedding_page(&self) -> String {
        format!("{}/embed", self.origin)
    }

    /// The page that opens its body's `data-open` when its button is clicked.
    pub fn opener_page(&self) -> String {
        format!("{}/opener", self.origin)
    }
}

impl Drop for HostileOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
