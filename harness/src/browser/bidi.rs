//! A small WebDriver BiDi client over the session's `webSocketUrl`: commands with their
//! answers, and every event kept in arrival order. fantoccini speaks no BiDi; this covers what
//! the harness needs (`script.addPreloadScript`, `session.subscribe`, `log.entryAdded`,
//! `browsingContext.*`, and `network.addIntercept` for a scenario's latency: each request the
//! intercept blocks is continued after the delay, by the reader itself).

use anyhow::{Context, anyhow};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// An event as received: its method (`log.entryAdded`) and params.
#[derive(Debug, Clone)]
pub struct BidiEvent {
    pub method: String,
    pub params: Value,
}

pub struct Bidi {
    sink: Arc<tokio::sync::Mutex<Sink>>,
    pending: Pending,
    events: Arc<Mutex<Vec<BidiEvent>>>,
    next_id: Arc<AtomicU64>,
    /// How long a request an intercept blocked waits before it is continued.
    delay: Arc<Mutex<Duration>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Bidi {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .with_context(|| format!("the BiDi socket {url} did not answer within 10 s"))?
        .with_context(|| format!("cannot open the BiDi socket {url}"))?;
        let (sink, mut stream) = socket.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<BidiEvent>>> = Arc::default();
        let next_id = Arc::new(AtomicU64::new(1));
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let reader = {
            let pending = pending.clone();
            let events = events.clone();
            let (sink, next_id, delay) = (sink.clone(), next_id.clone(), delay.clone());
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    match value["type"].as_str() {
                        Some("event") => {
                            let params = &value["params"];
                            if value["method"] == "network.beforeRequestSent"
                                && params["isBlocked"] == true
                            {
                                // Continued after the delay; its answer is not waited for.
                                let request = params["request"]["request"].clone();
                                let wait = *delay.lock().unwrap();
                                let id = next_id.fetch_add(1, Ordering::Relaxed);
                                let sink = sink.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(wait).await;
                                    let params = json!({ "request": request });
                                    let _ =
                                        send(&sink, id, "network.continueRequest", params).await;
                                });
                            }
                            events.lock().unwrap().push(BidiEvent {
                                method: value["method"].as_str().unwrap_or("").to_owned(),
                                params: params.clone(),
                            })
                        }
                        Some(kind) => {
                            let Some(id) = value["id"].as_u64() else {
                                continue;
                            };
                            let answer = if kind == "success" {
                                Ok(value["result"].clone())
                            } else {
                                Err(format!(
                                    "{}: {}",
                                    value["error"].as_str().unwrap_or("error"),
                                    value["message"].as_str().unwrap_or("")
                                ))
                            };
                            if let Some(waiter) = pending.lock().unwrap().remove(&id) {
                                let _ = waiter.send(answer);
                            }
                        }
                        None => {}
                    }
                }
            })
        };
        Ok(Self {
            sink,
            pending,
            events,
            next_id,
            delay,
            reader,
        })
    }

    /// Sends a command and waits for its answer.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        send(&self.sink, id, method, params).await?;
        tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .map_err(|_| anyhow!("the BiDi command {method} got no answer within 15 s"))?
            .map_err(|_| anyhow!("the BiDi socket closed before answering {method}"))?
            .map_err(|e| anyhow!("BiDi {method} failed: {e}"))
    }

    /// From now on, every request to `origin` waits `by` before it leaves; returns the
    /// intercept, for [`Bidi::stop_delaying`].
    pub async fn delay_requests_to(
        &self,
        origin: &url::Url,
        by: Duration,
    ) -> anyhow::Result<Value> {
        *self.delay.lock().unwrap() = by;
        let mut pattern = json!({
            "type": "pattern",
            "protocol": origin.scheme(),
            "hostname": origin.host_str().unwrap_or_default(),
        });
        if let Some(port) = origin.port() {
            pattern["port"] = json!(port.to_string());
        }
        let answer = self
            .command(
                "network.addIntercept",
                json!({ "phases": ["beforeRequestSent"], "urlPatterns": [pattern] }),
            )
            .await?;
        Ok(answer["intercept"].clone())
    }

    /// Ends [`Bidi::delay_requests_to`].
    pub async fn stop_delaying(&self, intercept: Value) -> anyhow::Result<()> {
        self.command("network.removeIntercept", json!({ "intercept": intercept }))
            .await?;
        Ok(())
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<BidiEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Forgets the events received so far (between scenarios in one session).
    pub fn clear_events(&self) {
        self.events.lock().unwrap().clear();
    }
}

/// Sends command `id` without waiting for its answer.
async fn send(
    sink: &tokio::sync::Mutex<Sink>,
    id: u64,
    method: &str,
    params: Value,
) -> anyhow::Result<()> {
    let message = json!({ "id": id, "method": method, "params": params }).to_string();
    sink.lock()
        .await
        .send(Message::Text(message.into()))
        .await
        .with_context(|| format!("cannot send the BiDi command {method}"))
}

impl Drop for Bidi {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
