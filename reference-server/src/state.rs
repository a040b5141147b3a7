//! What every handler shares: settings, database, entropy, the HTTP client and one OAuth
//! client per connector.

use crate::choices::Choices;
use crate::db::Database;
use crate::deviation::{Behaviour, Reference};
use crate::entropy::Entropy;
use crate::http::Http;
use crate::oauth::ConnectorClient;
use crate::settings::Settings;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    public_url: url::Url,
    db: Database,
    entropy: Entropy,
    http: Http,
    /// In the order the settings list them.
    connectors: Vec<Arc<ConnectorClient>>,
    /// What the contract leaves to the platform: the reference's, or a variant's.
    choices: Choices,
    /// One refresh at a time per connection: its turn, by connection id.
    refresh_turns: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How the platform behaves where a defect departs from the reference: chosen once, at
    /// start-up (`--defect`).
    behaviour: Box<dyn Behaviour>,
}

impl AppState {
    pub fn new(settings: Settings, public_url: url::Url, db: Database) -> anyhow::Result<Self> {
        let http = Http::network(settings.token_timeout)?;
        Self::with_http(settings, public_url, db, http)
    }

    /// Like [`AppState::new`], with the platform's outgoing requests going to `http`.
    pub fn with_http(
        settings: Settings,
        public_url: url::Url,
        db: Database,
        http: Http,
    ) -> anyhow::Result<Self> {
        let mut choices = crate::Variant::combined(&settings.variants);
        let behaviour: Box<dyn Behaviour> = match settings.defect {
            Some(defect) => Box::new(crate::defects::Deviant::new(defect)),
            None => Box::new(Reference),
        };
        if let Some(policy) = settings.opener_policy {
            choices.opener_policy = policy;
        }
        if settings.embeddable {
            choices.session_cookie_attributes = crate::choices::EMBEDDABLE_SESSION_COOKIE;
            choices.embeddable = true;
        }
        let redirect_uri = redirect_uri(&public_url, &choices)?;
        let connectors = settings
            .connectors
            .iter()
            .map(|c| ConnectorClient::new(c.clone(), &redirect_uri, &choices).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                entropy: Entropy::new(settings.seed),
                settings,
                public_url,
                db,
                http,
                connectors,
                choices,
                refresh_turns: std::sync::Mutex::default(),
                behaviour,
            }),
        })
    }

    /// How the platform behaves where a defect departs from the reference.
    pub fn behaviour(&self) -> &dyn Behaviour {
        self.inner.behaviour.as_ref()
    }

    /// Waits for this request's turn to refresh `connection_id`'s tokens: one refresh at a
    /// time per connection, so two requests that find the token expired never present the
    /// same refresh token twice (a reuse, to a provider that rotates them).
    pub async fn refresh_turn(&self, connection_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = self
            .inner
            .refresh_turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(connection_id.to_owned())
            .or_default()
            .clone();
        turn.lock_owned().await
    }

    pub fn choices(&self) -> &Choices {
        &self.inner.choices
    }

    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        redirect_uri(&self.inner.public_url, &self.inner.choices).expect("checked at start")
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The platform's clock (the database's).
    pub fn clock(&self) -> &crate::Clock {
        self.inner.db.clock()
    }

    pub fn entropy(&self) -> &Entropy {
        &self.inner.entropy
    }

    pub fn http(&self) -> &Http {
        &self.inner.http
    }

    /// Whether `name` is a connector of this platform (configured, or an MCP server).
    pub fn is_connector(&self, name: &str) -> bool {
        self.connector_names().iter().any(|(n, _)| n == name)
    }

    /// Every connector's name and display name, configured ones first, in settings order.
    pub fn connector_names(&self) -> Vec<(String, String)> {
        let configured = self
            .inner
            .connectors
            .iter()
            .map(|c| (c.settings.name.clone(), c.settings.display_name.clone()));
        let mcp = self
            .inner
            .settings
            .mcp_connectors
            .iter()
            .map(|c| (c.name.clone(), c.display_name.clone()));
        configured.chain(mcp).collect()
    }

    pub fn display_name(&self, name: &str) -> String {
        self.connector_names()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, display)| display)
            .unwrap_or_else(|| name.to_owned())
    }

    /// The URL of the MCP server `name` is, if it is an MCP connector.
    pub fn mcp_server_url(&self, name: &str) -> Option<String> {
        self.inner
            .settings
            .mcp_connectors
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.server_url.clone())
    }

    /// The configured connector `name`, the same for every org.
    pub fn configured(&self, name: &str) -> Option<&ConnectorClient> {
        self.inner
            .connectors
            .iter()
            .find(|c| c.settings.name == name)
            .map(|c| &**c)
    }

    /// The configured connectors' OAuth clients, in settings order.
    pub fn connectors(&self) -> &[Arc<ConnectorClient>] {
        &self.inner.connectors
    }

    /// The platform's origin, e.g. `http://127.0.0.1:8080`.
    pub fn origin(&self) -> String {
        self.inner.public_url.origin().ascii_serialization()
    }

    pub fn public_url(&self) -> &url::Url {
        &self.inner.public_url
    }
}

/// The redirect URI: the public URL with the choices' redirect path.
fn redirect_uri(public_url: &url::Url, choices: &Choices) -> anyhow::Result<String> {
    Ok(public_url
        .join(choices.redirect_path.trim_start_matches('/'))?
        .to_string())
}

/// An unexpected failure: logged in full, answered as a bare 500.
#[derive(Debug)]
pub struct AppError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;
