//! What the harness drives: a platform (embedded reference server, or a deployment elsewhere
//! given by `--target`) and the fake provider it is configured against (embedded, or a
//! `fake-provider serve` given by `--provider`, controlled through its `/_admin/` endpoints;
//! or a real provider given by `--provider` with `--provider-profile`, driven through its pages).

pub mod embedded;
pub mod process;
pub mod profile;

use crate::deployment::embedded::EmbeddedStack;
use crate::deployment::profile::ProviderProfile;
use crate::scenario::PlatformConfig;
use anyhow::{Context, bail};
use fake_provider::{Faults, GrantState, LoggedRequest, Provider, Secret, SecretLedger, Violation};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Control of the fake provider for one run.
#[derive(Clone)]
pub enum ProviderControl {
    /// In this process.
    Embedded(Provider),
    /// A `fake-provider serve` elsewhere, through its admin endpoints.
    Remote { url: Url, http: reqwest::Client },
    /// A real provider, driven through its pages as its profile says: no faults to set, and
    /// none of its requests or the secrets it issued are visible to the harness.
    Profiled {
        url: Url,
        profile: Arc<ProviderProfile>,
    },
}

impl ProviderControl {
    pub fn remote(url: Url) -> Self {
        ProviderControl::Remote {
            url,
            http: reqwest::Client::new(),
        }
    }

    pub fn public_url(&self) -> Url {
        match self {
            ProviderControl::Embedded(provider) => provider.public_url(),
            ProviderControl::Remote { url, .. } | ProviderControl::Profiled { url, .. } => {
                url.clone()
            }
        }
    }

    /// The profile a real provider is driven with; `None` for the fake provider.
    pub fn profile(&self) -> Option<&ProviderProfile> {
        match self {
            ProviderControl::Profiled { profile, .. } => Some(profile),
            _ => None,
        }
    }

    async fn admin_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let ProviderControl::Remote { url, http } = self else {
            unreachable!("admin calls are for remote providers")
        };
        let endpoint = url.join(path)?;
        let response = http
            .get(endpoint.clone())
            .send()
            .await
            .with_context(|| format!("the fake provider at {endpoint} cannot be reached (hint: is `fake-provider serve` running there?)"))?;
        if !response.status().is_success() {
            bail!(
                "{endpoint} answered {}: is this a fake-provider?",
                response.status()
            );
        }
        Ok(response.json().await?)
    }

    pub async fn set_faults(&self, faults: &Faults) -> anyhow::Result<()> {
        match self {
            ProviderControl::Embedded(provider) => provider.set_faults(faults.clone()),
            // The cases it cannot play were skipped before (ProviderProfile::cannot_run).
            ProviderControl::Profiled { .. } => {}
            ProviderControl::Remote { url, http } => {
                let endpoint = url.join("_admin/faults")?;
                let response = http
                    .put(endpoint.clone())
                    .json(faults)
                    .send()
                    .await
                    .with_context(|| {
                        format!("the fake provider at {endpoint} cannot be reached")
                    })?;
                if !response.status().is_success() {
                    bail!("{endpoint} refused the faults: {}", response.status());
                }
            }
        }
        Ok(())
    }

    pub async fn secrets(&self) -> anyhow::Result<SecretLedger> {
        match self {
            ProviderControl::Embedded(provider) => Ok(provider.secrets()),
            ProviderControl::Remote { .. } => Ok(SecretLedger::from_secrets(
                self.admin_get::<Vec<Secret>>("_admin/secrets").await?,
            )),
            // What the browser saw of it is added by the run (the codes in the redirects).
            ProviderControl::Profiled { .. } => Ok(SecretLedger::default()),
        }
    }

    pub async fn requests(&self) -> anyhow::Result<Vec<LoggedRequest>> {
        match self {
            ProviderControl::Embedded(provider) => Ok(provider.request_log()),
            ProviderControl::Remote { .. } => self.admin_get("_admin/requests").await,
            ProviderControl::Profiled { .. } => Ok(Vec::new()),
        }
    }

    /// Every grant the provider issued and what of it is still live (no token values): over
    /// HTTP for the embedded provider too, so that liveness is judged on the provider's own
    /// clock.
    pub async fn grants(&self) -> anyhow::Result<Vec<GrantState>> {
        match self {
            ProviderControl::Embedded(provider) => {
                let endpoint = provider.public_url().join("_admin/grants")?;
                Ok(reqwest::get(endpoint)
                    .await?
                    .error_for_status()?
                    .json()
                    .await?)
            }
            ProviderControl::Remote { .. } => self.admin_get("_admin/grants").await,
            ProviderControl::Profiled { .. } => Ok(Vec::new()),
        }
    }

    /// The `seq` of the last request the provider logged (0 before any).
    pub async fn last_seq(&self) -> anyhow::Result<u64> {
        Ok(self.requests().await?.last().map_or(0, |r| r.seq))
    }

    pub async fn violations(&self) -> anyhow::Result<Vec<Violation>> {
        match self {
            ProviderControl::Embedded(provider) => Ok(provider.violations()),
            ProviderControl::Remote { .. } => self.admin_get("_admin/violations").await,
            ProviderControl::Profiled { .. } => Ok(Vec::new()),
        }
    }

    /// Why the harness cannot move this provider's clock, where it cannot.
    fn keeps_own_clock(&self) -> Option<String> {
        self.profile().map(|profile| {
            format!(
                "a real provider (profile {}) keeps its own clock",
                profile.path.display()
            )
        })
    }

    /// Moves the clock the provider judges lifetimes by ahead (`POST /_admin/clock`); why
    /// not, where it cannot.
    pub async fn advance_clock(&self, by: Duration) -> Result<(), String> {
        match self {
            ProviderControl::Embedded(provider) => {
                provider.advance_clock(by);
                Ok(())
            }
            ProviderControl::Remote { url, http } => {
                let endpoint = url.join("_admin/clock").map_err(|e| e.to_string())?;
                post_clock(http, endpoint, by).await
            }
            ProviderControl::Profiled { .. } => {
                Err(self.keeps_own_clock().expect("a real provider's reason"))
            }
        }
    }

    pub async fn revoke_all_grants(&self) -> anyhow::Result<()> {
        match self {
            ProviderControl::Embedded(provider) => {
                provider.revoke_all_grants(None);
            }
            ProviderControl::Remote { url, http } => {
                let endpoint = url.join("_admin/revoke-grants")?;
                http.post(endpoint).send().await?.error_for_status()?;
            }
            ProviderControl::Profiled { profile, .. } => bail!(
                "a real provider (profile {}) cannot be told to revoke its grants",
                profile.path.display()
            ),
        }
        Ok(())
    }
}

/// A platform to drive and the provider behind it.
pub struct Target {
    pub platform: Url,
    pub provider: ProviderControl,
    /// Whether the platform is the embedded reference server (snapshots may be written).
    pub embedded: bool,
    /// How the deployment is configured, as it declared (`--target-*`) or as the embedded
    /// reference server was started (the scenario's `[platform]`).
    pub configuration: PlatformConfig,
    _stack: Option<EmbeddedStack>,
}

impl Target {
    /// The embedded default: a fresh provider and reference server.
    pub async fn embedded(
        seed: u64,
        customize: Option<reference_server::RouterCustomizer>,
    ) -> anyhow::Result<Self> {
        Self::embedded_for(&PlatformConfig::default(), seed, customize).await
    }

    /// The same, with the reference server configured as a scenario's `[platform]` says.
    pub async fn embedded_for(
        platform: &PlatformConfig,
        seed: u64,
        customize: Option<reference_server::RouterCustomizer>,
    ) -> anyhow::Result<Self> {
        let stack = EmbeddedStack::start_configured(
            Faults::none(),
            seed,
            "127.0.0.1:0".parse()?,
            customize,
            platform,
        )
        .await?;
        Ok(Self {
            platform: stack.platform_url.clone(),
            provider: ProviderControl::Embedded(stack.provider.rules().clone()),
            embedded: true,
            configuration: platform.clone(),
            _stack: Some(stack),
        })
    }

    /// A deployment elsewhere, configured against the fake provider at `provider`, and as
    /// `configuration` declares.
    pub async fn remote(
        platform: Url,
        provider: Url,
        configuration: PlatformConfig,
    ) -> anyhow::Result<Self> {
        let control = ProviderControl::remote(provider.clone());
        control
            .violations()
            .await
            .with_context(|| format!("--provider {provider} does not answer as a fake provider"))?;
        let health = reqwest::Client::new().get(platform.clone()).send().await;
        if let Err(error) = health {
            bail!(
                "the target {platform} cannot be reached: {error} (hint: is the deployment up, and is the URL right?)"
            );
        }
        Ok(Self {
            platform,
            provider: control,
            embedded: false,
            configuration,
            _stack: None,
        })
    }

    /// A deployment elsewhere, configured against a real provider at `provider` that the
    /// harness drives through its pages as `profile` says.
    pub async fn remote_profiled(
        platform: Url,
        provider: Url,
        profile: ProviderProfile,
        configuration: PlatformConfig,
    ) -> anyhow::Result<Self> {
        for (what, url) in [("--provider", &provider), ("the target", &platform)] {
            if let Err(error) = reqwest::Client::new().get(url.clone()).send().await {
                bail!(
                    "{what} {url} cannot be reached: {error} (hint: is it up, and is the URL right?)"
                );
            }
        }
        Ok(Self {
            platform,
            provider: ProviderControl::Profiled {
                url: provider,
                profile: Arc::new(profile),
            },
            embedded: false,
            configuration,
            _stack: None,
        })
    }

    /// Moves the platform's clock (`POST /dev/clock`, target contract §3) and the provider's
    /// ahead by `by`, instead of waiting: both, or neither (a provider that cannot is asked
    /// nothing of the platform), with why not.
    pub async fn advance_clocks(&self, by: Duration) -> Result<(), String> {
        if let Some(why) = self.provider.keeps_own_clock() {
            return Err(format!("the provider: {why}"));
        }
        let endpoint = crate::contract::platform_url(&self.platform, crate::contract::CLOCK_PATH);
        post_clock(&reqwest::Client::new(), endpoint, by)
            .await
            .map_err(|why| format!("the platform: {why}"))?;
        self.provider
            .advance_clock(by)
            .await
            .map_err(|why| format!("the provider: {why}"))
    }

    /// The target contract's sign-in URL for a test user.
    pub fn login_url(&self, user: &str, org: &str, next: &str) -> Url {
        crate::contract::login_url(&self.platform, user, org, next)
    }
}

/// `POST {"advance_ms": N}` to a clock endpoint; why not, where it is not answered with a
/// success.
async fn post_clock(http: &reqwest::Client, endpoint: Url, by: Duration) -> Result<(), String> {
    let response = http
        .post(endpoint.clone())
        .json(&serde_json::json!({ "advance_ms": by.as_millis() as u64 }))
        .send()
        .await
        .map_err(|e| format!("{endpoint} cannot be reached: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{endpoint} answered {}", response.status()));
    }
    Ok(())
}
