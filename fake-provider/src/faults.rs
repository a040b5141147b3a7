//! Faults chosen per run: how the provider misbehaves.
//!
//! ```
//! use fake_provider::{Coop, Faults};
//! use std::time::Duration;
//! let faults = Faults::none()
//!     .coop_on_redirect(Coop::SameOrigin)
//!     .token_delay(Duration::from_millis(1500));
//! assert_eq!(faults.token_delay_ms, 1500);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A `Cross-Origin-Opener-Policy` the provider sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Coop {
    /// `same-origin`: severs the opener.
    SameOrigin,
    /// `same-origin-allow-popups`: severs the opener of a page it did not open.
    SameOriginAllowPopups,
    /// `Cross-Origin-Opener-Policy-Report-Only: same-origin`: reports, severs nothing.
    ReportOnly,
}

impl Coop {
    /// The header name and value to send.
    pub fn header(self) -> (&'static str, &'static str) {
        match self {
            Coop::SameOrigin => ("cross-origin-opener-policy", "same-origin"),
            Coop::SameOriginAllowPopups => {
                ("cross-origin-opener-policy", "same-origin-allow-popups")
            }
            Coop::ReportOnly => ("cross-origin-opener-policy-report-only", "same-origin"),
        }
    }
}

/// What the authorization endpoint does instead of asking the user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ConsentFault {
    /// Show the consent page and do what the user clicks.
    #[default]
    AskUser,
    /// Answer every request with `error=access_denied`, as if the user had declined.
    Denied,
    /// Redirect with an error of the provider's own, such as `server_error`.
    ErrorRedirect { error: String, description: String },
}

/// How the token endpoint fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenFailure {
    /// HTTP 503 with a `temporarily_unavailable` error body.
    ServerError,
    /// HTTP 400 `invalid_grant` for every grant.
    InvalidGrant,
}

/// What the token endpoint does with a refresh token it answered (RFC 9700 §4.14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshRotation {
    /// The same refresh token serves again and again.
    #[default]
    Off,
    /// Each refresh answers a new refresh token; the one used is refused from then on.
    Rotate,
    /// As `rotate`, and a refresh token used a second time revokes the whole grant (every
    /// token issued from the same authorization), as Auth0, Okta and oidc-provider do.
    RotateWithReuseDetection,
}

/// Whether the authorization response names the provider (`iss`, RFC 9207).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IssInResponse {
    /// No `iss` parameter (a provider without RFC 9207).
    #[default]
    Absent,
    /// `iss` is this provider's issuer identifier (its public URL without the final slash).
    Correct,
    /// `iss` names another provider: what a client sees in a mix-up attack.
    OfAnotherProvider,
}

/// Which resource the MCP server's protected resource metadata (RFC 9728) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceInMetadata {
    /// The MCP server's own URL, as RFC 9728 §3.3 demands.
    #[default]
    ThisServer,
    /// Another server's: a client must not authorize for it (MCP authorization, "resource
    /// metadata validation").
    AnotherServer,
}

/// What the provider does for an MCP server (`/mcp`) and its clients.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct McpFaults {
    /// The resource the protected resource metadata names.
    pub resource_in_metadata: ResourceInMetadata,
    /// The authorization server refuses any `resource` parameter with `invalid_target`
    /// (sentry-for-ai #59).
    pub refuses_resource: bool,
    /// Dynamic client registration (RFC 7591) answers `invalid_client_metadata`.
    pub registration_refused: bool,
    /// A scope the MCP server needs beyond `mcp.tools` (a step-up): a token without it is
    /// answered 403 `insufficient_scope` naming the scopes.
    pub step_up_scope: Option<String>,
    /// The authorization server's metadata names another issuer than the one the resource
    /// metadata points at (RFC 8414 §3.3: the client must stop).
    pub metadata_names_another_issuer: bool,
    /// How the authorization server gets to know a client it has no registration for.
    pub clients_known_by: ClientsKnownBy,
}

/// How an authorization server gets to know a client (MCP authorization 2025-11-25, Client
/// Registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientsKnownBy {
    /// Dynamic client registration (RFC 7591) at `registration_endpoint`.
    #[default]
    Registration,
    /// Client ID metadata documents only (`client_id_metadata_document_supported`, no
    /// `registration_endpoint`), as Tableau's hosted MCP server (cloudflare-os #1296).
    MetadataDocument,
    /// Either: the metadata advertises both.
    Either,
}

impl ClientsKnownBy {
    pub fn registration(self) -> bool {
        self != ClientsKnownBy::MetadataDocument
    }

    pub fn metadata_documents(self) -> bool {
        self != ClientsKnownBy::Registration
    }
}

/// How the token response spells `token_type` (RFC 6749 §5.1: case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenType {
    /// `bearer`
    #[default]
    Lowercase,
    /// `Bearer`, as oidc-provider, Auth0 and Okta answer.
    Capitalized,
    /// `BEARER`
    Uppercase,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Lowercase => "bearer",
            TokenType::Capitalized => "Bearer",
            TokenType::Uppercase => "BEARER",
        }
    }
}

/// The shape of the protected API's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApiAnswer {
    /// `{"client": .., "items": [..]}`, the shape the connectors read.
    #[default]
    Items,
    /// `{"client": .., "data": {"entries": [..]}}`: another version of the API, which a
    /// connector must not read as an empty list.
    UnexpectedShape,
}

/// Every fault of one run. `Faults::none()` is a well-behaved provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub consent: ConsentFault,
    pub token_delay_ms: u64,
    pub token_failure: Option<TokenFailure>,
    pub coop_on_consent_page: Option<Coop>,
    pub coop_on_redirect: Option<Coop>,
    pub token_lifetime_secs: u64,
    pub revoke_endpoint_fails: bool,
    /// How long the protected API holds each answer (decided when the request arrives, so a
    /// call in flight when the grant is revoked still gets its answer).
    pub api_delay_ms: u64,
    /// A `Content-Security-Policy` sent with the consent page, such as `form-action 'self'`:
    /// Chromium and WebKit then refuse the redirect back to the platform that follows the
    /// form's POST (metamcp #170, everruns #2918).
    pub csp_on_consent_page: Option<String>,
    /// Once the user allowed a client a scope, a later authorization request for them is
    /// answered at once with a code, without the consent page (as Google and GitHub do).
    /// Forgotten when the faults are set again (a new run).
    pub remembers_consent: bool,
    /// Refresh-token rotation, and reuse detection.
    pub refresh_rotation: RefreshRotation,
    /// `iss` in the authorization response (RFC 9207).
    pub iss_in_response: IssInResponse,
    /// The shape of the protected API's answer.
    pub api_answer: ApiAnswer,
    /// Token responses carry no refresh token, as providers answer unless asked in their own
    /// way (Google without `access_type=offline`, oidc-provider without `offline_access` and
    /// `prompt=consent`): the connection lasts as long as its access token.
    pub withholds_refresh_token: bool,
    /// A scope the protected API needs beyond the resource's own (a step-up, such as
    /// `files.write`): a token without it is answered 403 `insufficient_scope`, with the
    /// scopes needed in `WWW-Authenticate` (RFC 6750 §3.1).
    pub api_requires_scope: Option<String>,
    /// How the token response spells `token_type`.
    pub token_type: TokenType,
    /// How long the API still accepts an access token after it expired, as many providers do
    /// (clock skew): a client may not rely on the first `401` coming at `expires_in`.
    pub access_token_grace_secs: u64,
    /// The MCP server and its authorization (`[provider.mcp]`).
    pub mcp: McpFaults,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            consent: ConsentFault::AskUser,
            token_delay_ms: 0,
            token_failure: None,
            coop_on_consent_page: None,
            coop_on_redirect: None,
            token_lifetime_secs: 3600,
            revoke_endpoint_fails: false,
            api_delay_ms: 0,
            csp_on_consent_page: None,
            remembers_consent: false,
            refresh_rotation: RefreshRotation::Off,
            iss_in_response: IssInResponse::Absent,
            api_answer: ApiAnswer::Items,
            withholds_refresh_token: false,
            api_requires_scope: None,
            token_type: TokenType::Lowercase,
            access_token_grace_secs: 0,
            mcp: McpFaults::default(),
        }
    }
}

impl Faults {
    /// A provider that behaves.
    pub fn none() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn api_requires_scope(mut self, scope: &str) -> Self {
        self.api_requires_scope = Some(scope.to_owned());
        self
    }

    #[must_use]
    pub fn withholds_refresh_token(mut self) -> Self {
        self.withholds_refresh_token = true;
        self
    }

    #[must_use]
    pub fn consent_denied(mut self) -> Self {
        self.consent = ConsentFault::Denied;
        self
    }

    #[must_use]
    pub fn error_redirect(mut self, error: &str, description: &str) -> Self {
        self.consent = ConsentFault::ErrorRedirect {
            error: error.to_owned(),
            description: description.to_owned(),
        };
        self
    }

    #[must_use]
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay_ms = delay.as_millis() as u64;
        self
    }

    #[must_use]
    pub fn token_fails_with(mut self, failure: TokenFailure) -> Self {
        self.token_failure = Some(failure);
        self
    }

    #[must_use]
    pub fn coop_on_consent_page(mut self, coop: Coop) -> Self {
        self.coop_on_consent_page = Some(coop);
        self
    }

    #[must_use]
    pub fn coop_on_redirect(mut self, coop: Coop) -> Self {
        self.coop_on_redirect = Some(coop);
        self
    }

    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime_secs = lifetime.as_secs();
        self
    }

    #[must_use]
    pub fn revoke_endpoint_fails(mut self) -> Self {
        self.revoke_endpoint_fails = true;
        self
    }

    #[must_use]
    pub fn csp_on_consent_page(mut self, policy: &str) -> Self {
        self.csp_on_consent_page = Some(policy.to_owned());
        self
    }

    #[must_use]
    pub fn iss_in_response(mut self, iss: IssInResponse) -> Self {
        self.iss_in_response = iss;
        self
    }

    #[must_use]
    pub fn refresh_rotation(mut self, rotation: RefreshRotation) -> Self {
        self.refresh_rotation = rotation;
        self
    }

    #[must_use]
    pub fn remembers_consent(mut self) -> Self {
        self.remembers_consent = true;
        self
    }

    #[must_use]
    pub fn api_delay(mut self, delay: Duration) -> Self {
        self.api_delay_ms = delay.as_millis() as u64;
        self
    }
}
