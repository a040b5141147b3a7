//! A platform and a fake provider on loopback, and a browser-like HTTP client with a cookie
//! jar that follows redirects one hop at a time, so a test sees every URL.

#![allow(dead_code)]

use fake_provider::{ClientRegistration, FakeProvider, Faults};
use reference_server::{Application, DEFAULT_CLIENTS, Settings};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

pub struct Stack {
    pub provider: FakeProvider,
    /// The platform's clock: advanced instead of sleeping.
    pub clock: reference_server::Clock,
    pub app_url: Url,
    pub database_path: PathBuf,
    _data_dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn stack(faults: Faults) -> Stack {
    stack_with(faults, |_| {}).await
}

pub async fn stack_with(faults: Faults, adjust: impl FnOnce(&mut Settings)) -> Stack {
    let provider = FakeProvider::builder()
        .seed(7)
        .faults(faults)
        .start()
        .await
        .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_provider(provider.public_url().as_str());
    settings.data_dir = Some(data_dir.path().to_owned());
    settings.seed = Some(11);
    adjust(&mut settings);
    let app = Application::build(settings).await.unwrap();
    for (_, _, client_id, secret) in DEFAULT_CLIENTS {
        provider.rules().register_client(ClientRegistration::new(
            client_id,
            secret,
            &app.redirect_uri(),
        ));
    }
    let app_url = app.url();
    let clock = app.clock().clone();
    let database_path = app.database_path().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Stack {
        provider,
        clock,
        app_url,
        database_path,
        _data_dir: data_dir,
        _stop: stop,
    }
}

impl Stack {
    /// Whether the provider received a request at `path` (`/token`, `/authorize`, ...).
    pub fn provider_saw(&self, path: &str) -> bool {
        self.provider
            .rules()
            .request_log()
            .iter()
            .any(|r| r.path == path)
    }
}

/// A browser stand-in: one cookie jar, manual redirects, every visited URL remembered.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub app: Url,
    pub visited: std::sync::Mutex<Vec<Url>>,
}

pub struct Page {
    pub url: Url,
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Browser {
    pub fn new(stack: &Stack) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            jar,
            app: stack.app_url.clone(),
            visited: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> Url {
        self.app.join(path).unwrap()
    }

    /// GET, then follow redirects; returns the last page.
    pub async fn visit(&self, url: Url) -> Page {
        self.follow(self.http.get(url.clone()), url).await
    }

    async fn follow(&self, first: reqwest::RequestBuilder, mut url: Url) -> Page {
        let mut request = first;
        for _ in 0..10 {
            self.visited.lock().unwrap().push(url.clone());
            let response = request.send().await.unwrap();
            if response.status().is_redirection() {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&location).unwrap();
                request = self.http.get(url.clone());
                continue;
            }
            return Page {
                url,
                status: response.status(),
                headers: response.headers().clone(),
                text: response.text().await.unwrap(),
            };
        }
        panic!("more than 10 redirects");
    }

    /// POST a form, then follow redirects.
    pub async fn submit(&self, url: Url, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(url.clone()).form(form);
        self.follow(request, url).await
    }

    pub async fn login(&self, user: &str, org: &str) {
        let page = self
            .visit(self.url(&format!(
                "/dev/login?user={user}&org={org}&next=/{org}/connectors"
            )))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
    }

    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The status API's answer about connection `id` of `acme`.
    pub async fn connection(&self, id: &str) -> (StatusCode, Value) {
        self.api_get(&format!("/api/orgs/acme/connections/{id}"))
            .await
    }

    /// Asks the platform to re-send the message a card in chat `c1` of `acme` queued, as the
    /// card does once its connection resolves; returns the status and the answer.
    pub async fn resend(&self, card: &Value) -> (StatusCode, Value) {
        let queued = card["queuedId"]
            .as_str()
            .expect("a card with a queued message");
        self.api_post(
            &format!("/api/orgs/acme/chats/c1/queued/{queued}/resend"),
            serde_json::json!({}),
        )
        .await
    }

    /// Sends a chat message; returns the messages it added.
    pub async fn say(&self, org: &str, chat: &str, text: &str) -> Vec<Value> {
        let (status, body) = self
            .api_post(
                &format!("/api/orgs/{org}/chats/{chat}/messages"),
                serde_json::json!({ "text": text }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().unwrap().clone()
    }

    /// Opens the card's start URL up to the consent page; returns the consent request id.
    pub async fn open_consent(&self, start_url: &str) -> (Page, String) {
        let page = self.visit(self.url(start_url)).await;
        assert_eq!(page.status, 200, "{}: {}", page.url, page.text);
        assert!(page.text.contains("consent-allow"), "{}", page.text);
        let request = fake_provider::consent_request_id(&page.text)
            .expect("a consent form")
            .to_owned();
        (page, request)
    }

    /// Answers the consent page; follows the redirects to the callback page.
    pub async fn decide(&self, consent_page: &Page, request: &str, decision: &str) -> Page {
        let url = consent_page.url.join("/consent").unwrap();
        self.submit(url, &[("request", request), ("decision", decision)])
            .await
    }

    /// Asks for files in chat `c1` of `org`, follows the card to the consent page and answers
    /// it with `decision`; returns the card and the callback page.
    pub async fn connect_through_consent(&self, org: &str, decision: &str) -> (Value, Page) {
        let card = card(&self.say(org, "c1", "list my files").await).clone();
        let (consent, request) = self.open_consent(card["startUrl"].as_str().unwrap()).await;
        let callback = self.decide(&consent, &request, decision).await;
        (card, callback)
    }

    pub fn visited_urls(&self) -> Vec<Url> {
        self.visited.lock().unwrap().clone()
    }
}

/// The connect card among messages.
pub fn card(messages: &[Value]) -> &Value {
    messages
        .iter()
        .find(|m| m["kind"] == "connect-card" || m["kind"] == "reconnect-card")
        .unwrap_or_else(|| panic!("no connect card in {messages:#?}"))
}

pub fn callback_params(page: &Page) -> std::collections::BTreeMap<String, String> {
    assert_eq!(
        page.url.path(),
        "/auth/connector-callback",
        "ended at {}",
        page.url
    );
    page.url.query_pairs().into_owned().collect()
}
