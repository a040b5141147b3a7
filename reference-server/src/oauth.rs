//! The platform's OAuth client for one connector: authorization URL (state + PKCE S256),
//! server-side code exchange and refresh through `oauth2`, RFC 7009 revocation and the
//! protected API call. Error texts never carry a token, code or secret.

use crate::choices::Choices;
use crate::http::{Http, HttpError, OauthHttp};
use crate::settings::{ApiStyle, ConnectorSettings, TokenAuthMethod};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use std::time::Duration;

type Oauth = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What a successful token response gave.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
    pub scope: String,
}

/// Why a token request failed, in words safe to show and log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the grant (`invalid_grant` and the like).
    #[error("the provider refused the grant: {0}")]
    Refused(String),
    /// The provider could not be reached or answered something unusable.
    #[error("the provider's token endpoint failed: {0}")]
    Unavailable(String),
}

/// What the protected API answered.
#[derive(Debug)]
pub enum ApiOutcome {
    Served(serde_json::Value),
    /// 401: the token is not (or no longer) accepted.
    Unauthorized,
    /// 403 `insufficient_scope` (RFC 6750 §3.1): the token lacks a scope the resource needs;
    /// the scopes it names in `WWW-Authenticate`, if it names them.
    InsufficientScope(Vec<String>),
    Failed(String),
}

pub struct ConnectorClient {
    pub settings: ConnectorSettings,
    oauth: Oauth,
    /// Parameters beyond those the contract names (a conformant variant's choice; the
    /// connector's own `authorization_parameters` come from its settings).
    extra_authorization_parameters: &'static [(&'static str, &'static str)],
}

impl ConnectorClient {
    pub fn new(
        settings: ConnectorSettings,
        redirect_uri: &str,
        choices: &Choices,
    ) -> anyhow::Result<Self> {
        let mut oauth = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(AuthUrl::new(settings.authorize_url.clone())?)
            .set_token_uri(TokenUrl::new(settings.token_url.clone())?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned())?);
        // A public client (known by its metadata document) names itself in the form instead.
        if !settings.client_secret.is_empty() && settings.token_auth_method != TokenAuthMethod::None
        {
            oauth = oauth.set_client_secret(ClientSecret::new(settings.client_secret.clone()));
        }
        if settings.token_auth_method == TokenAuthMethod::ClientSecretPost {
            oauth = oauth.set_auth_type(oauth2::AuthType::RequestBody);
        }
        Ok(Self {
            settings,
            oauth,
            extra_authorization_parameters: choices.extra_authorization_parameters,
        })
    }

    /// The provider's authorization URL for one attempt, asking for the connector's scopes and
    /// `more` (the ones a resource asked for, space-separated).
    pub fn authorization_url(&self, state: &str, verifier: &str, more: &str) -> url::Url {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            verifier.to_owned(),
        ));
        let state = state.to_owned();
        let mut request = self
            .oauth
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(challenge);
        let mut scopes: Vec<&str> = self.settings.scopes.iter().map(String::as_str).collect();
        for scope in more.split_whitespace() {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        for scope in scopes {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        for (name, value) in self.extra_authorization_parameters {
            request = request.add_extra_param(*name, *value);
        }
        for (name, value) in &self.settings.authorization_parameters {
            request = request.add_extra_param(name.as_str(), value.as_str());
        }
        if let Some(resource) = &self.settings.resource {
            request = request.add_extra_param("resource", resource.as_str());
        }
        request.url().0
    }

    pub async fn exchange_code(
        &self,
        http: &Http,
        code: &str,
        verifier: &str,
    ) -> Result<TokenSet, TokenError> {
        let mut request = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        if let Some(resource) = &self.settings.resource {
            request = request.add_extra_param("resource", resource.as_str());
        }
        let response = request
            .request_async(&OauthHttp(http))
            .await
            .map_err(describe_token_error)?;
        Ok(self.token_set(&response))
    }

    /// Refreshes the tokens; with `name_resource`, naming the connector's `resource` again
    /// (RFC 8707 §2.2).
    pub async fn refresh(
        &self,
        http: &Http,
        refresh_token: &str,
        name_resource: bool,
    ) -> Result<TokenSet, TokenError> {
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let mut request = self.oauth.exchange_refresh_token(&refresh_token);
        if let Some(resource) = self.settings.resource.as_ref().filter(|_| name_resource) {
            request = request.add_extra_param("resource", resource.as_str());
        }
        let response = request
            .request_async(&OauthHttp(http))
            .await
            .map_err(describe_token_error)?;
        Ok(self.token_set(&response))
    }

    fn token_set(&self, response: &oauth2::basic::BasicTokenResponse) -> TokenSet {
        TokenSet {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            expires_in: response.expires_in(),
            scope: response
                .scopes()
                .map(|scopes| {
                    scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| self.settings.scopes.join(" ")),
        }
    }

    /// RFC 7009 revocation, posted by hand: `oauth2`'s `revoke_token` refuses non-https URLs.
    pub async fn revoke(
        &self,
        http: &Http,
        token: &str,
        hint: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        let mut request = oauth2::http::Request::post(&self.settings.revoke_url).header(
            oauth2::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        if self.settings.client_secret.is_empty()
            || self.settings.token_auth_method == TokenAuthMethod::None
        {
            // A public client names itself (RFC 7009 §2.1, RFC 6749 §2.3).
            form.push(("client_id", &self.settings.client_id));
        } else if self.settings.token_auth_method == TokenAuthMethod::ClientSecretPost {
            form.push(("client_id", &self.settings.client_id));
            form.push(("client_secret", &self.settings.client_secret));
        } else {
            let credentials = format!(
                "{}:{}",
                form_encode(&self.settings.client_id),
                form_encode(&self.settings.client_secret)
            );
            request = request.header(
                oauth2::http::header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(credentials.as_bytes())),
            );
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = request
            .body(body.into_bytes())
            .map_err(|_| "the revocation URL is not usable".to_owned())?;
        match http.send(request, Some(timeout)).await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "the revocation endpoint answered {}",
                response.status()
            )),
            Err(HttpError::Timeout) => Err(format!(
                "the revocation endpoint did not answer within {timeout:?}"
            )),
            Err(HttpError::Unreachable) => {
                Err("the revocation endpoint could not be reached".to_owned())
            }
        }
    }

    pub async fn call_api(&self, http: &Http, access_token: &str) -> ApiOutcome {
        if self.settings.api_style == ApiStyle::Mcp {
            // A session with the MCP server: initialize, then the tool it lists.
            return crate::mcp_session::call_tool(
                http,
                &self.settings.api_url,
                Some(access_token),
                None,
            )
            .await;
        }
        let request = oauth2::http::Request::get(&self.settings.api_url).body(Vec::new());
        let (Ok(mut request), Ok(bearer)) = (
            request,
            oauth2::http::HeaderValue::from_str(&format!("Bearer {access_token}")),
        ) else {
            return ApiOutcome::Failed("the API URL is not usable".into());
        };
        request
            .headers_mut()
            .insert(oauth2::http::header::AUTHORIZATION, bearer);
        match http.send(request, Some(Duration::from_secs(10))).await {
            Ok(response) if response.status() == 401 => ApiOutcome::Unauthorized,
            Ok(response)
                if response.status() == 403
                    && bearer_error(response.headers()) == Some("insufficient_scope") =>
            {
                ApiOutcome::InsufficientScope(bearer_scopes(response.headers()))
            }
            Ok(response) if response.status().is_success() => {
                match serde_json::from_slice(response.body()) {
                    Ok(body) => ApiOutcome::Served(body),
                    Err(_) => ApiOutcome::Failed(
                        "the provider's API answered something unreadable".into(),
                    ),
                }
            }
            Ok(response) => {
                ApiOutcome::Failed(format!("the provider's API answered {}", response.status()))
            }
            Err(_) => ApiOutcome::Failed("the provider's API could not be reached".into()),
        }
    }
}

/// A `WWW-Authenticate: Bearer` challenge's parameters (RFC 6750 §3), by name.
pub(crate) fn bearer_parameter<'a>(
    headers: &'a oauth2::http::HeaderMap,
    name: &str,
) -> Option<&'a str> {
    let challenge = headers
        .get(oauth2::http::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    let parameters = challenge.trim().strip_prefix("Bearer")?;
    parameters.split(',').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

fn bearer_error(headers: &oauth2::http::HeaderMap) -> Option<&str> {
    bearer_parameter(headers, "error")
}

fn bearer_scopes(headers: &oauth2::http::HeaderMap) -> Vec<String> {
    bearer_parameter(headers, "scope")
        .map(|scope| scope.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// RFC 6749 §2.3.1: client credentials in HTTP Basic are form-urlencoded first.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn describe_token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> TokenError {
    match error {
        RequestTokenError::ServerResponse(response) => match response.error() {
            oauth2::basic::BasicErrorResponseType::Extension(code)
                if code == "temporarily_unavailable" || code == "server_error" =>
            {
                TokenError::Unavailable(code.clone())
            }
            other => TokenError::Refused(other.to_string()),
        },
        RequestTokenError::Request(_) => {
            TokenError::Unavailable("the token endpoint could not be reached".to_owned())
        }
        RequestTokenError::Parse(_, _) => {
            TokenError::Unavailable("the token response was not understood".to_owned())
        }
        RequestTokenError::Other(_) => TokenError::Unavailable(
            "the token endpoint answered an error without a body".to_owned(),
        ),
    }
}
