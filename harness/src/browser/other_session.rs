//! Another browser session, played by the harness over plain HTTP with its own cookie jar:
//! another user, member of another org, signed in through the target contract's
//! `/dev/login`. Hostile steps use it to obtain what only another session can have (a
//! platform redirect carrying its code and state, a pending connection of another org).

use crate::contract::{self, Identity};
use anyhow::{Context, anyhow, bail};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use url::Url;

pub struct OtherSession {
    pub identity: Identity,
    platform: Url,
    http: reqwest::Client,
}

impl OtherSession {
    /// Signs in as `identity` at `login` (the target's `/dev/login` URL for it), following the
    /// platform's own redirects until a page answers.
    pub async fn sign_in(platform: &Url, identity: Identity, login: Url) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let session = Self {
            identity,
            platform: platform.clone(),
            http,
        };
        let (response, url) = session
            .follow_platform_redirects(login.clone())
            .await
            .with_context(|| format!("another session signing in at {login}"))?;
        if !response.status().is_success() {
            bail!(
                "another session signing in at {login} ended on {url} with {} (see docs/target-contract.md, test users)",
                response.status()
            );
        }
        Ok(session)
    }

    /// GETs `url`, following redirects while they stay on the platform's origin (at most ten):
    /// the last answer and its URL. A redirect to another origin is an answer.
    async fn follow_platform_redirects(
        &self,
        mut url: Url,
    ) -> anyhow::Result<(reqwest::Response, Url)> {
        for _ in 0..10 {
            let response = self.http.get(url.clone()).send().await?;
            if !response.status().is_redirection() {
                return Ok((response, url));
            }
            let next = Self::location(&response, &url)?;
            if next.origin() != self.platform.origin() {
                return Ok((response, url));
            }
            url = next;
        }
        bail!("more than ten redirects from {url}")
    }

    fn location(response: &reqwest::Response, base: &Url) -> anyhow::Result<Url> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                anyhow!(
                    "{} answered {} without a Location",
                    response.url(),
                    response.status()
                )
            })?;
        Ok(base.join(location)?)
    }

    /// Opens the platform's connect URL (`template`, learnt from the connectors page, with
    /// `{org}` for the org), which starts a sign-in and creates a pending connection: returns
    /// the provider's authorization URL the platform redirects to.
    pub async fn start_connect(&self, template: &str) -> anyhow::Result<Url> {
        let url: Url = contract::connect_url_for(template, &self.identity.org).parse()?;
        let (response, last) = self.follow_platform_redirects(url.clone()).await?;
        if !response.status().is_redirection() {
            bail!(
                "another session opening {url} got {} at {last} instead of a redirect to the provider",
                response.status()
            );
        }
        Self::location(&response, &last)
    }

    /// Allows at the provider's consent page for `authorize`: returns the platform redirect
    /// URL (with the code and state) the provider sends the browser to.
    pub async fn consent(&self, authorize: &Url) -> anyhow::Result<Url> {
        let page = self
            .http
            .get(authorize.clone())
            .send()
            .await?
            .text()
            .await?;
        let request = fake_provider::consent_request_id(&page)
            .ok_or_else(|| anyhow!("the provider's page at {authorize} has no consent form"))?
            .to_owned();
        let consent = authorize.join("/consent")?;
        let response = self
            .http
            .post(consent.clone())
            .form(&[("request", request.as_str()), ("decision", "allow")])
            .send()
            .await?;
        if response.status() != StatusCode::FOUND && !response.status().is_redirection() {
            bail!(
                "the provider answered the consent with {}",
                response.status()
            );
        }
        Self::location(&response, &consent)
    }

    /// `(status, connection id)` of the other org's latest connection of `connector`.
    pub async fn connector_status(&self, connector: &str) -> anyhow::Result<(String, String)> {
        let url = contract::platform_url(
            &self.platform,
            &contract::connectors_api_path(&self.identity.org),
        );
        let answer: serde_json::Value = self
            .http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let entry = answer["connectors"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["name"] == connector))
            .ok_or_else(|| anyhow!("{url} lists no connector {connector:?}"))?;
        Ok((
            entry["status"].as_str().unwrap_or("").to_owned(),
            entry["connectionId"].as_str().unwrap_or("").to_owned(),
        ))
    }

    /// `(HTTP status, body)` of the status API for one of this session's connections.
    pub async fn connection_status(&self, connection: &str) -> anyhow::Result<(u16, String)> {
        let url = contract::platform_url(
            &self.platform,
            &contract::connection_status_path(&self.identity.org, connection),
        );
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }
}
