//! The platform's outgoing HTTP (token exchange, refresh, revocation, the protected API):
//! over the network with reqwest, or, for the simulator, handed to an in-process function (no
//! sockets, no wall clock), so the simulated flow runs this very server code.

use oauth2::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Answers one request in-process.
pub type InMemoryTransport = Arc<dyn Fn(HttpRequest) -> HttpResponse + Send + Sync>;

/// Where the platform's requests to the provider go.
#[derive(Clone)]
pub enum Http {
    Network(oauth2::reqwest::Client),
    InMemory(InMemoryTransport),
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("no answer in time")]
    Timeout,
    #[error("could not be reached")]
    Unreachable,
}

impl Http {
    /// The network client: no redirects (a token endpoint that redirects must not send the
    /// code elsewhere), and `timeout` for every request.
    pub fn network(timeout: Duration) -> anyhow::Result<Self> {
        Ok(Http::Network(
            oauth2::reqwest::ClientBuilder::new()
                .redirect(oauth2::reqwest::redirect::Policy::none())
                .timeout(timeout)
                .build()?,
        ))
    }

    /// Sends `request`, waiting at most `timeout` (default: the client's); in-process answers
    /// come at once.
    pub async fn send(
        &self,
        request: HttpRequest,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, HttpError> {
        self.send_until(request, timeout, |_| false).await
    }

    /// As [`Http::send`], but the body is read only until `enough` says what came is enough
    /// (a stream of server-sent events a server keeps open after the answer), or it ends.
    pub async fn send_until(
        &self,
        request: HttpRequest,
        timeout: Option<Duration>,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<HttpResponse, HttpError> {
        match self {
            Http::InMemory(transport) => Ok(transport(request)),
            Http::Network(client) => {
                let mut outgoing = oauth2::reqwest::Request::try_from(request)
                    .map_err(|_| HttpError::Unreachable)?;
                if timeout.is_some() {
                    *outgoing.timeout_mut() = timeout;
                }
                let response = client.execute(outgoing).await.map_err(|error| {
                    if error.is_timeout() {
                        HttpError::Timeout
                    } else {
                        HttpError::Unreachable
                    }
                })?;
                let mut builder = oauth2::http::Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    builder = builder.header(name, value);
                }
                let mut response = response;
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|error| {
                    if error.is_timeout() {
                        HttpError::Timeout
                    } else {
                        HttpError::Unreachable
                    }
                })? {
                    body.extend_from_slice(&chunk);
                    if enough(&body) {
                        break;
                    }
                }
                builder.body(body).map_err(|_| HttpError::Unreachable)
            }
        }
    }
}

/// `oauth2`'s client: a named type (an async closure inside an axum handler is not `Send`
/// enough).
pub struct OauthHttp<'a>(pub &'a Http);

impl<'c> oauth2::AsyncHttpClient<'c> for OauthHttp<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.0.send(request, None))
    }
}
