//! Settings: defaults, then a TOML file, then environment variables and flags.
//!
//! ```
//! use reference_server::Settings;
//! let settings = Settings::for_provider("http://localhost:9000/");
//! assert_eq!(settings.connectors.len(), 2);
//! assert_eq!(settings.connectors[0].name, "files");
//! ```

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One connector: a provider the platform can connect an org to, with its own OAuth client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// The short name used in URLs and by the agent (`files`, `calendar`).
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: String,
    /// The protected resource the agent's tool reads.
    pub api_url: String,
    pub scopes: Vec<String>,
    /// The provider's issuer identifier: an authorization response whose `iss` (RFC 9207)
    /// names another is refused. Unset: `iss` is not checked.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The provider sends `iss` in every authorization response (its RFC 8414 metadata says
    /// `authorization_response_iss_parameter_supported`): a response without one is refused
    /// (RFC 9207 §2.4).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_iss: bool,
    /// Parameters this provider wants on the authorization request beyond the contract's
    /// (`prompt = "consent"`, `access_type = "offline"`, `resource`, `audience`): a table of
    /// names and values. The contract's own parameters cannot be set here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub authorization_parameters: std::collections::BTreeMap<String, String>,
    /// The resource the tokens are for (RFC 8707): sent as `resource` on the authorization,
    /// token and refresh requests alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// How the tool reads `api_url`: a REST `GET` (`rest`), or an MCP server's `tools/call`
    /// over JSON-RPC (`mcp`).
    #[serde(default)]
    pub api_style: ApiStyle,
    /// How the client authenticates at the token and revocation endpoints (RFC 7591 §2): as
    /// registered, or as the provider wants it.
    #[serde(default)]
    pub token_auth_method: TokenAuthMethod,
}

/// How a client authenticates at the token endpoint (RFC 7591 §2, RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client id and secret.
    #[default]
    ClientSecretBasic,
    /// The id and secret as form fields.
    ClientSecretPost,
    /// A public client: its id in the form, no secret (PKCE proves the exchange).
    None,
}

impl TokenAuthMethod {
    /// The method named `name` in metadata or a registration answer.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// How a connector's tool asks its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiStyle {
    /// `GET api_url`, answered `{"items": [...]}`.
    #[default]
    Rest,
    /// A session with the MCP server at `api_url` (`initialize`, `tools/list`, then
    /// `tools/call` of the first tool it lists), answered with text content
    /// (`reference_server::mcp_session`).
    Mcp,
}

/// A connector that is an MCP server, known by its URL alone: its authorization server, the
/// endpoints and a registered client are found when an org first connects it
/// (`reference_server::mcp`), and kept per org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConnectorSettings {
    pub name: String,
    pub display_name: String,
    pub server_url: String,
    /// A client registered beforehand with the server's authorization server (MCP
    /// authorization, "Client Registration Approaches": used before a client ID metadata
    /// document or dynamic registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its secret; none for a public client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// The authorization request's parameters the platform itself sets (RFC 6749 §4.1.1, RFC 7636):
/// a connector's `authorization_parameters` may not replace them.
pub const CONTRACT_AUTHORIZATION_PARAMETERS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Everything the platform needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Socket address to listen on.
    pub bind: SocketAddr,
    /// The URL browsers use to reach the platform; `http://127.0.0.1:PORT` when unset.
    pub public_url: Option<String>,
    /// Where the SQLite database lives; a fresh temporary directory when unset.
    pub data_dir: Option<PathBuf>,
    /// Seed of the platform's own random values (session ids, state, PKCE); OS entropy when unset.
    pub seed: Option<u64>,
    /// How long a disconnect waits for the provider's revocation endpoint.
    #[serde(with = "millis")]
    pub revoke_timeout: Duration,
    /// How long the server waits for the provider's token endpoint.
    #[serde(with = "millis")]
    pub token_timeout: Duration,
    pub connectors: Vec<ConnectorSettings>,
    /// Connectors that are MCP servers, each known by its URL.
    pub mcp_connectors: Vec<McpConnectorSettings>,
    /// Where the public finds the platform's client ID metadata document (its `client_id` with
    /// servers that take those): a deployment behind a proxy publishes it at its HTTPS URL.
    /// The platform serves it at `/oauth/client-metadata.json`; unset, the public URL's.
    pub client_metadata_url: Option<String>,
    /// The `Cross-Origin-Opener-Policy` of the platform's pages (`unset`, `site-wide`,
    /// `callback-noopener-allow-popups`), as a deployment configures it; unset by default.
    pub opener_policy: Option<crate::OpenerPolicy>,
    /// The chat can be embedded in another site's frame: the session cookie is
    /// `SameSite=None; Secure; Partitioned` (CHIPS), so a frame keeps a session of its own,
    /// keyed by the embedding site, and a top-level tab keeps its own. Off by default.
    pub embeddable: bool,
    /// A deliberate defect, for the harness's detection matrix.
    pub defect: Option<crate::Defect>,
    /// Conformant variants, all at once, for the harness's specificity matrix.
    pub variants: Vec<crate::Variant>,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            data_dir: None,
            seed: None,
            revoke_timeout: Duration::from_secs(3),
            token_timeout: Duration::from_secs(30),
            connectors: Vec::new(),
            mcp_connectors: Vec::new(),
            client_metadata_url: None,
            opener_policy: None,
            embeddable: false,
            defect: None,
            variants: Vec::new(),
        }
    }
}

/// The client ids and secrets the two default connectors use unless told otherwise.
pub const DEFAULT_CLIENTS: [(&str, &str, &str, &str); 2] = [
    ("files", "Files", "alumia-files", "files-client-secret-0001"),
    (
        "calendar",
        "Calendar",
        "alumia-calendar",
        "calendar-client-secret-0002",
    ),
];

impl Settings {
    /// The `files` and `calendar` connectors, both against one provider at `provider_url`
    /// (its `authorize`, `token`, `revoke` and `api/<name>` paths), with the default clients,
    /// and the `notes` connector, the MCP server at its `mcp` path.
    /// The platform listens on any free loopback port.
    pub fn for_provider(provider_url: &str) -> Self {
        let mut settings = Settings::default();
        settings.set_provider(provider_url);
        settings
    }

    /// Points every default connector at a provider base URL.
    pub fn set_provider(&mut self, provider_url: &str) {
        let base = if provider_url.ends_with('/') {
            provider_url.to_owned()
        } else {
            format!("{provider_url}/")
        };
        self.connectors = DEFAULT_CLIENTS
            .iter()
            .map(|(name, display, id, secret)| ConnectorSettings {
                name: (*name).to_owned(),
                display_name: (*display).to_owned(),
                client_id: (*id).to_owned(),
                client_secret: (*secret).to_owned(),
                authorize_url: format!("{base}authorize"),
                token_url: format!("{base}token"),
                revoke_url: format!("{base}revoke"),
                api_url: format!("{base}api/{name}"),
                scopes: vec![format!("{name}.read")],
                issuer: Some(base.trim_end_matches('/').to_owned()),
                authorization_parameters: Default::default(),
                requires_iss: false,
                resource: None,
                api_style: ApiStyle::Rest,
                token_auth_method: TokenAuthMethod::ClientSecretBasic,
            })
            .collect();
        self.mcp_connectors = vec![McpConnectorSettings {
            name: "notes".into(),
            display_name: "Notes".into(),
            server_url: format!("{base}mcp"),
            client_id: None,
            client_secret: None,
        }];
    }

    /// Reads a TOML settings file; errors name the file and the line.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read settings file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "settings file {}: {e}hint: the allowed keys are bind, public_url, data_dir, seed, \
                 revoke_timeout, token_timeout, client_metadata_url, opener_policy, embeddable, \
                 [[connectors]] and [[mcp_connectors]] tables",
                path.display()
            )
        })
    }

    pub fn connector(&self, name: &str) -> Option<&ConnectorSettings> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// Checks what a person could get wrong; the error says which setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.connectors.is_empty() && self.mcp_connectors.is_empty() {
            anyhow::bail!(
                "no connectors are configured (hint: pass --provider-url URL or --mcp-server NAME=URL, or list [[connectors]] or [[mcp_connectors]] in the settings file)"
            );
        }
        for connector in &self.connectors {
            for (what, value) in [
                ("authorize_url", &connector.authorize_url),
                ("token_url", &connector.token_url),
                ("revoke_url", &connector.revoke_url),
                ("api_url", &connector.api_url),
            ] {
                url::Url::parse(value).map_err(|e| {
                    anyhow::anyhow!(
                        "connector {}: {what} {value:?} is not a URL: {e}",
                        connector.name
                    )
                })?;
            }
            if let Some(name) = connector
                .authorization_parameters
                .keys()
                .find(|name| CONTRACT_AUTHORIZATION_PARAMETERS.contains(&name.as_str()))
            {
                anyhow::bail!(
                    "connector {}: authorization_parameters sets {name:?}, which the platform sets itself (hint: the scopes go in `scopes`; the others are the flow's own: {})",
                    connector.name,
                    CONTRACT_AUTHORIZATION_PARAMETERS.join(", ")
                );
            }
        }
        if let Some(url) = &self.public_url {
            url::Url::parse(url).map_err(|e| anyhow::anyhow!("public_url {url:?}: {e}"))?;
        }
        Ok(())
    }
}
