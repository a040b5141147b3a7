//! The servers of the world: the reference server's router and the fake provider's rules, both
//! called in-process (no socket), the platform's outgoing HTTP routed to the flow's provider.

use super::*;

/// What every flow shares: the engine, the runtime and the platform (reset per flow), and
/// the slot the platform's outgoing requests find the flow's provider in.
pub struct Shared {
    pub module: CardModule,
    pub runtime: tokio::runtime::Runtime,
    pub platform: reference_server::InMemoryPlatform,
    pub(super) provider: Arc<Mutex<Option<Provider>>>,
    pub(super) now: Arc<AtomicU64>,
    pub broken: Option<BrokenClient>,
}

impl Shared {
    pub fn new(
        module: CardModule,
        broken: Option<BrokenClient>,
        defect: Option<reference_server::Defect>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let slot: Arc<Mutex<Option<Provider>>> = Arc::new(Mutex::new(None));
        let now = Arc::new(AtomicU64::new(0));
        let transport = {
            let slot = slot.clone();
            let now = now.clone();
            Arc::new(move |request: reference_server::oauth2::HttpRequest| {
                let (parts, body) = request.into_parts();
                let url = Url::parse(&parts.uri.to_string())
                    .unwrap_or_else(|_| Url::parse(PROVIDER).expect("a URL"));
                let headers = parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_ascii_lowercase(),
                            v.to_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect();
                let request = provider_request(parts.method.as_str(), &url, headers, body);
                let provider = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .expect("a flow's provider");
                let answer = provider.handle(
                    Endpoint::route(parts.method.as_str(), url.path()),
                    &request,
                    EPOCH_MS + now.load(Ordering::SeqCst),
                );
                let mut builder = reference_server::oauth2::http::Response::builder()
                    .status(answer.status)
                    .header("content-type", answer.content_type);
                for (name, value) in &answer.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.body(answer.body).expect("a response")
            }) as reference_server::InMemoryTransport
        };
        let settings = reference_server::Settings {
            defect,
            ..reference_server::Settings::for_provider(PROVIDER)
        };
        let platform = reference_server::InMemoryPlatform::new(
            settings,
            Url::parse(PLATFORM)?,
            reference_server::Http::InMemory(transport),
        )?;
        Ok(Self {
            module,
            runtime,
            platform,
            provider: slot,
            now,
            broken,
        })
    }
}

/// The provider's faults in `case`: the one mapping from a case to `[provider]`, for the
/// simulated flow and for the scenario file that replays it.
pub fn faults_for(case: &Case) -> Faults {
    let mut faults = Faults::none();
    match case.provider {
        ProviderBehaviour::Behaves => {}
        ProviderBehaviour::ErrorRedirect => {
            faults.consent = ConsentFault::ErrorRedirect {
                error: "server_error".into(),
                description: case.error_description.clone(),
            }
        }
        ProviderBehaviour::TokenUnavailable => {
            faults.token_failure = Some(TokenFailure::ServerError)
        }
        ProviderBehaviour::TokenInvalidGrant => {
            faults.token_failure = Some(TokenFailure::InvalidGrant)
        }
        ProviderBehaviour::SlowToken => faults.token_delay_ms = 4_000,
    }
    match case.coop {
        Some(CoopHop::ConsentPage) => {
            faults.coop_on_consent_page = Some(fake_provider::Coop::SameOrigin)
        }
        Some(CoopHop::Redirect) => faults.coop_on_redirect = Some(fake_provider::Coop::SameOrigin),
        None => {}
    }
    faults.token_lifetime_secs = case.token_lifetime.secs();
    if let Connector::Notes(server) = case.connector {
        faults.mcp = mcp_faults(server);
    }
    faults
}

/// The MCP faults of `server`.
pub fn mcp_faults(server: McpServer) -> fake_provider::McpFaults {
    let mut faults = fake_provider::McpFaults::default();
    match server {
        McpServer::Behaves => {}
        McpServer::NamesAnotherResource => {
            faults.resource_in_metadata = fake_provider::ResourceInMetadata::AnotherServer
        }
        McpServer::NamesAnotherIssuer => faults.metadata_names_another_issuer = true,
        McpServer::RegistrationRefused => faults.registration_refused = true,
        McpServer::RefusesResource => faults.refuses_resource = true,
        McpServer::StepUp => faults.step_up_scope = Some(STEP_UP_SCOPE.into()),
        McpServer::MetadataDocumentOnly => {
            faults.clients_known_by = fake_provider::ClientsKnownBy::MetadataDocument
        }
    }
    faults
}

/// How the flow's provider fetches a client ID metadata document: a `GET` to the in-process
/// platform's router (the provider calls it while the browser, not the platform, is waiting).
pub(super) fn document_fetcher(
    platform: axum::Router,
    runtime: tokio::runtime::Handle,
) -> fake_provider::DocumentFetcher {
    Arc::new(move |url: &Url| {
        let platform_origin = Url::parse(PLATFORM).expect("a URL").origin();
        if url.origin() != platform_origin {
            return Err(format!("{url} is not on the simulated platform"));
        }
        let request = axum::http::Request::get(World::path_of(url))
            .header("host", "platform.test")
            .header("accept", "application/json")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let router = platform.clone();
        runtime.block_on(async move {
            let response = router.oneshot(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body.to_vec()))
        })
    })
}

pub(super) fn provider_request(
    method: &str,
    url: &Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> ProviderRequest {
    ProviderRequest {
        method: method.to_owned(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or("").to_owned(),
        headers,
        body,
    }
}

pub(super) fn header<'r>(response: &'r ProviderResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl World<'_> {
    pub(super) fn platform_request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.platform_clock.set((EPOCH_MS + self.now()) as i64);
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "platform.test")
            .header("accept", "application/json");
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie.as_str());
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("a request");
        let router = self.platform.clone();
        let (status, location, set_cookie, body) = self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("the router answers");
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let location = header("location");
            let set_cookie = header("set-cookie");
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (
                status,
                location,
                set_cookie,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        });
        if let Some(cookie) = set_cookie
            && let Some(pair) = cookie.split(';').next()
        {
            self.cookie = Some(pair.to_owned());
        }
        Answer {
            status,
            location,
            body,
        }
    }

    pub(super) fn provider_call(
        &mut self,
        method: &str,
        url: &Url,
        body: Vec<u8>,
    ) -> ProviderResponse {
        let headers = if body.is_empty() {
            Vec::new()
        } else {
            vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )]
        };
        let request = provider_request(method, url, headers, body);
        self.provider.handle(
            Endpoint::route(method, url.path()),
            &request,
            EPOCH_MS + self.now(),
        )
    }

    pub(super) fn path_of(url: &Url) -> String {
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub(super) fn connection_status(&mut self, connection: &str) -> (u16, Value) {
        let answer = self.platform_request(
            "GET",
            &contract::connection_status_path(ORG, connection),
            None,
        );
        (
            answer.status,
            serde_json::from_str(&answer.body).unwrap_or(Value::Null),
        )
    }
}
