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

    /// The OAuth client of `name` for `org`: a configured connector's, or the MCP connector's
    /// the org registered when it first connected it (none before that).
    pub fn client(&self, org: &str, name: &str) -> AppResult<Option<Arc<ConnectorClient>>> {
        if let Some(client) = self
            .inner
            .connectors
            .iter()
            .find(|c| c.settings.name == name)
        {
            return Ok(Some(client.clone()));
        }
        let Some(stored) = self.db().mcp_client(org, name)? else {
            return Ok(None);
        };
        let settings: crate::settings::ConnectorSettings = serde_json::from_str(&stored)
            .map_err(|e| anyhow::anyhow!("stored MCP client of {name}: {e}"))?;
        Ok(Some(Arc::new(ConnectorClient::new(
            settings,
            &self.redirect_uri(),
            &self.inner.choices,
        )?)))
    }

    /// As [`AppState::client`], finding and registering an MCP connector's client first if the
    /// org has none (`crate::mcp`): `Err` says, in words safe to show, why it could not.
    pub async fn client_or_register(
        &self,
        org: &str,
        name: &str,
    ) -> AppResult<Option<Result<Arc<ConnectorClient>, String>>> {
        let mcp = self
            .inner
            .settings
            .mcp_connectors
            .iter()
            .find(|c| c.name == name);
        if let Some(client) = self.client(org, name)?
            && (mcp.is_none() || crate::hooks::reuses_registration(self))
        {
            if let Some(mcp) = mcp
                && self.inner.choices.mcp_discovery_every_connect
                && let Err(error) = crate::mcp::discover(self.http(), &mcp.server_url).await
            {
                return Ok(Some(Err(error.to_string())));
            }
            return Ok(Some(Ok(client)));
        }
        let Some(mcp) = mcp else {
            return Ok(None);
        };
        let found = match crate::mcp::discover(self.http(), &mcp.server_url).await {
            Ok(found) => found,
            Err(error) => return Ok(Some(Err(error.to_string()))),
        };
        // A client registered beforehand, else a client ID metadata document where the server
        // takes one (MCP authorization 2025-11-25 prefers it to registration), else dynamic
        // registration.
        let registered = if let Some(client_id) = &mcp.client_id {
            crate::mcp::RegisteredClient {
                client_id: client_id.clone(),
                client_secret: mcp.client_secret.clone(),
                token_endpoint_auth_method: mcp.client_secret.is_none().then(|| "none".into()),
            }
        } else if found.metadata_documents && crate::hooks::uses_metadata_documents(self) {
            crate::mcp::RegisteredClient {
                client_id: self.client_metadata_url(),
                client_secret: None,
                token_endpoint_auth_method: Some("none".into()),
            }
        } else {
            match crate::mcp::register(self.http(), &found, &self.redirect_uri(), CLIENT_NAME).await
            {
                Ok(registered) => registered,
                Err(error) => return Ok(Some(Err(error.to_string()))),
            }
        };
        let token_auth_method =
            registered.auth_method(crate::mcp::auth_method_for(&found.token_auth_methods));
        let settings = crate::settings::ConnectorSettings {
            name: mcp.name.clone(),
            display_name: mcp.display_name.clone(),
            client_id: registered.client_id,
            client_secret: registered.client_secret.unwrap_or_default(),
            authorize_url: found.authorization_endpoint,
            token_url: found.token_endpoint,
            revoke_url: found.revocation_endpoint.unwrap_or_default(),
            api_url: mcp.server_url.clone(),
            scopes: found.scopes,
            issuer: Some(found.issuer),
            // RFC 9207 §2.4: a server that says it sends `iss` must send it.
            requires_iss: found.iss_supported,
            authorization_parameters: Default::default(),
            resource: Some(crate::hooks::mcp_resource(self, found.resource)),
            api_style: crate::settings::ApiStyle::Mcp,
            token_auth_method,
        };
        let stored = serde_json::to_string(&settings)
            .map_err(|e| anyhow::anyhow!("MCP client of {name}: {e}"))?;
        self.db().store_mcp_client(org, name, &stored)?;
        tracing::info!(connector = %name, "MCP server found and client registered");
        Ok(self.client(org, name)?.map(Ok))
    }

    /// After an MCP server refused a connection's tokens: when its metadata now names another
    /// authorization server, the org's client of the previous one is forgotten, so the next
    /// connect registers with the new one (MCP authorization, SEP-2352: a client's credentials
    /// belong to the authorization server that issued them).
    pub async fn forget_client_if_moved(&self, org: &str, name: &str) -> AppResult<()> {
        let Some(server_url) = self.mcp_server_url(name) else {
            return Ok(());
        };
        let Some(stored) = self.db().mcp_client(org, name)? else {
            return Ok(());
        };
        let stored: crate::settings::ConnectorSettings = serde_json::from_str(&stored)
            .map_err(|e| anyhow::anyhow!("stored MCP client of {name}: {e}"))?;
        if let Ok(found) = crate::mcp::discover(self.http(), &server_url).await
            && stored.issuer.as_deref() != Some(found.issuer.as_str())
        {
            tracing::info!(connector = %name, "the MCP server's authorization server changed: registering anew");
            self.db().forget_mcp_client(org, name)?;
        }
        Ok(())
    }

    /// The URL of the platform's client ID metadata document: its `client_id` with servers
    /// that take those.
    pub fn client_metadata_url(&self) -> String {
        if let Some(url) = &self.inner.settings.client_metadata_url {
            return url.clone();
        }
        self.inner
            .public_url
            .join(
                self.inner
                    .choices
                    .client_metadata_path
                    .trim_start_matches('/'),
            )
            .expect("a path joins")
            .to_string()
    }

    /// The platform's client ID metadata document: a public client (no shared secret can be
    /// set up this way; PKCE proves the exchange), named as in its registrations.
    pub fn client_metadata_document(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.client_metadata_url(),
            "client_name": CLIENT_NAME,
            "redirect_uris": [self.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    /// The platform's origin, e.g. `http://127.0.0.1:8080`.
    pub fn origin(&self) -> String {
        self.inner.public_url.origin().ascii_serialization()
    }

    pub fn public_url(&self) -> &url::Url {
        &self.inner.public_url
    }
}

/// The name the platform gives itself to authorization servers.
const CLIENT_NAME: &str = "Alumia";

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
