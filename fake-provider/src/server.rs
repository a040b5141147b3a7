//! The socket front door: a wiremock `MockServer` whose mocks hand each request to the rules.
//!
//! ```no_run
//! # async fn demo() {
//! use fake_provider::{ClientRegistration, FakeProvider, Faults};
//! let provider = FakeProvider::builder()
//!     .client(ClientRegistration::new("files-client", "s3cret-files", "http://127.0.0.1:8080/oauth/redirect"))
//!     .seed(42)
//!     .faults(Faults::none())
//!     .start()
//!     .await
//!     .expect("provider starts");
//! println!("authorize at {}", provider.authorize_url());
//! # }
//! ```

use crate::faults::Faults;
use crate::rules::{ClientRegistration, Endpoint, Provider, ProviderConfig, ProviderRequest};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use url::Url;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Errors starting the provider.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot bind the fake provider to {addr}: {source} (hint: pick a free port, or 127.0.0.1:0 for any)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the public URL {0} is not a valid absolute URL")]
    PublicUrl(String),
}

/// Sets up a provider before it starts.
#[derive(Debug, Clone)]
#[must_use]
pub struct FakeProviderBuilder {
    bind: SocketAddr,
    public_url: Option<String>,
    clients: Vec<ClientRegistration>,
    seed: u64,
    faults: Faults,
}

impl FakeProviderBuilder {
    /// The socket address to listen on; `127.0.0.1:0` (any free port) by default.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The URL browsers use to reach the provider. By default `http://localhost:PORT`:
    /// another site than a platform served on `127.0.0.1`.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    pub fn client(mut self, client: ClientRegistration) -> Self {
        self.clients.push(client);
        self
    }

    /// The seed every code and token derives from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub async fn start(self) -> Result<FakeProvider, StartError> {
        let listener =
            std::net::TcpListener::bind(self.bind).map_err(|source| StartError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.bind,
            source,
        })?;
        let public = self
            .public_url
            .unwrap_or_else(|| format!("http://localhost:{}", addr.port()));
        let public_url = Url::parse(&public).map_err(|_| StartError::PublicUrl(public.clone()))?;
        let provider = Provider::new(ProviderConfig {
            public_url: public_url.clone(),
            clients: self.clients,
            seed: self.seed,
            faults: self.faults,
        });
        let server = MockServer::builder()
            .listener(listener)
            .disable_request_recording()
            .start()
            .await;
        let started = Instant::now();
        for (endpoint, verb, route) in Endpoint::ROUTES {
            Mock::given(method(verb))
                .and(path(route))
                .respond_with(FrontDoor {
                    provider: provider.clone(),
                    endpoint,
                    started,
                })
                .named(format!("{verb} {route}"))
                .mount(&server)
                .await;
        }
        Mock::given(any())
            .respond_with(FrontDoor {
                provider: provider.clone(),
                endpoint: Endpoint::Unmatched,
                started,
            })
            .with_priority(u8::MAX)
            .named("anything else (recorded as a violation)")
            .mount(&server)
            .await;
        Ok(FakeProvider {
            provider,
            server: Some(server),
            public_url,
            addr,
        })
    }
}

/// A running provider. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeProvider {
    provider: Provider,
    /// `None` only while it is being dropped.
    server: Option<MockServer>,
    public_url: Url,
    addr: SocketAddr,
}

impl Drop for FakeProvider {
    /// wiremock's `MockServer` blocks on a tokio `RwLock` when dropped. Inside a tokio task
    /// whose cooperative budget is spent, that lock answers `Pending` and wakes itself at once,
    /// for ever (tokio-rs/tokio#2711: a nested executor never gets the budget back): a hang at
    /// 100 % CPU, caught by gdb in `harness/tests/defects.rs`. A thread of its own has no
    /// budget to spend.
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::spawn(move || drop(server)).join();
            } else {
                drop(server);
            }
        }
    }
}

impl FakeProvider {
    pub fn builder() -> FakeProviderBuilder {
        FakeProviderBuilder {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            clients: Vec::new(),
            seed: 0,
            faults: Faults::none(),
        }
    }

    /// The rules and state behind the sockets (secrets, request log, faults).
    pub fn rules(&self) -> &Provider {
        &self.provider
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    pub fn authorize_url(&self) -> Url {
        self.public_url.join("authorize").expect("a path joins")
    }

    pub fn token_url(&self) -> Url {
        self.public_url.join("token").expect("a path joins")
    }

    pub fn revoke_url(&self) -> Url {
        self.public_url.join("revoke").expect("a path joins")
    }

    /// The provider's API root: resources live at `api/files` and `api/calendar` under it.
    pub fn api_url(&self) -> Url {
        self.public_url.join("api/").expect("a path joins")
    }

    /// Keeps the wiremock server alive for the caller's scope (it stops on drop).
    pub fn mock_server(&self) -> &MockServer {
        self.server.as_ref().expect("present until dropped")
    }
}

struct FrontDoor {
    provider: Provider,
    endpoint: Endpoint,
    started: Instant,
}

impl Respond for FrontDoor {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let provider_request = ProviderRequest {
            method: request.method.to_string(),
            path: request.url.path().to_owned(),
            query: request.url.query().unwrap_or("").to_owned(),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: request.body.clone(),
        };
        let now_ms = self.started.elapsed().as_millis() as u64;
        let response = self
            .provider
            .handle(self.endpoint, &provider_request, now_ms);
        let mut template = ResponseTemplate::new(response.status);
        for (name, value) in &response.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        template = template.set_body_raw(response.body, response.content_type);
        if response.delay_ms > 0 {
            template = template.set_delay(Duration::from_millis(response.delay_ms));
        }
        template
    }
}
