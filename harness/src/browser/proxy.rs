//! The recording proxy, for engines whose WebDriver has no BiDi (WebKitGTK): an HTTP proxy the
//! browser is configured to use (the W3C `proxy` capability) that forwards every request
//! unchanged and adds one element to each HTML document, first in `<head>`:
//! `<script src="/__alumia-harness/recorder.js">`, served by the proxy on the document's own
//! origin (so a `script-src 'self'` policy allows it). The recorder reports with
//! `navigator.sendBeacon` to `/__alumia-harness/report`, which the proxy answers and keeps.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The path prefix the proxy answers itself, on every origin.
pub const PREFIX: &str = "/__alumia-harness/";
/// The reporting "document" of the exchanges the proxy forwards itself.
pub const EXCHANGES: &str = "proxy-exchanges";
/// The most of a body kept for the checks.
const LONGEST_BODY: usize = 256 * 1024;

#[derive(Default)]
struct ProxyState {
    recorder: Mutex<String>,
    reports: Mutex<Vec<Value>>,
}

/// A running recording proxy; stops when dropped.
pub struct RecordingProxy {
    pub address: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(ProxyState::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let app = Router::new()
            .fallback(handle)
            .with_state((state.clone(), client));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            state,
            task,
        })
    }

    /// The script served as `recorder.js` from now on (the scenario's configuration).
    pub fn set_recorder(&self, script: String) {
        *self.state.recorder.lock().unwrap() = script;
    }

    /// Every report received so far, in arrival order.
    pub fn reports(&self) -> Vec<Value> {
        self.state.reports.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.state.reports.lock().unwrap().clear();
    }

    /// The W3C `proxy` capability that sends a browser through this proxy.
    pub fn capability(&self) -> Value {
        serde_json::json!({
            "proxyType": "manual",
            "httpProxy": self.address.to_string(),
            "noProxy": [],
        })
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "content-length",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// `<script src>` first in `<head>` (or first in the document when there is no head).
pub fn inject(html: &str) -> String {
    let tag = format!("<script src=\"{PREFIX}recorder.js\"></script>");
    let lower = html.to_ascii_lowercase();
    let at = lower
        .find("<head")
        .and_then(|start| lower[start..].find('>').map(|end| start + end + 1))
        .or_else(|| {
            lower
                .find("<html")
                .and_then(|start| lower[start..].find('>').map(|end| start + end + 1))
        })
        .unwrap_or(0);
    format!("{}{tag}{}", &html[..at], &html[at..])
}

type Shared = (Arc<ProxyState>, reqwest::Client);

async fn handle(State((state, client)): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if let Some(what) = path.strip_prefix(PREFIX) {
        return match what {
            "recorder.js" => Response::builder()
                .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::from(state.recorder.lock().unwrap().clone()))
                .expect("a response"),
            "report" => {
                if let Ok(report) = serde_json::from_slice::<Value>(&body) {
                    state.reports.lock().unwrap().push(report);
                }
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Body::empty())
                    .expect("a response")
            }
            _ => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::empty())
                .expect("a response"),
        };
    }
    // Proxied requests carry the absolute URL; fall back to the Host header.
    let url = if parts.uri.scheme().is_some() {
        parts.uri.to_string()
    } else {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        format!("http://{host}{}", parts.uri)
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let forwarded = client
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await;
    let upstream = match forwarded {
        Ok(upstream) => upstream,
        Err(error) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!(
                    "the recording proxy could not reach {url}: {error}"
                )))
                .expect("a response");
        }
    };
    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    copy_headers(upstream.headers(), &mut response_headers);
    let is_html = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let bytes = upstream.bytes().await.unwrap_or_default();
    // Every exchange the browser makes, as the BiDi engines report their requests: the URL,
    // its Referer and both bodies, for the no-secret-visible check.
    let text = |bytes: &[u8]| {
        let end = bytes.len().min(LONGEST_BODY);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    state.reports.lock().unwrap().push(serde_json::json!({
        "doc": EXCHANGES,
        "seq": 0,
        "at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        "event": {
            "e": "request",
            "method": parts.method.as_str(),
            "url": url,
            "referer": parts.headers.get(header::REFERER).and_then(|v| v.to_str().ok()),
            "requestBody": text(&body),
            "status": status.as_u16(),
            "responseBody": text(&bytes),
        },
    }));
    let body = if is_html {
        Body::from(inject(&String::from_utf8_lossy(&bytes)))
    } else {
        Body::from(bytes)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

#[cfg(test)]
mod tests {
    use super::inject;

    #[test]
    fn the_recorder_goes_first_in_head() {
        let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><script src=\"/a.js\"></script></head></html>";
        let injected = inject(page);
        let recorder = injected.find("__alumia-harness/recorder.js").unwrap();
        assert!(recorder < injected.find("/a.js").unwrap());
        assert!(injected.starts_with("<!doctype html><html lang=\"en\"><head><script"));
        assert!(inject("<p>no head</p>").starts_with("<script"));
    }
}
