//! The embedded default target: the fake provider and the reference server in-process, on
//! ephemeral loopback ports, the provider on another site (`localhost`) than the platform
//! (`127.0.0.1`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::deployment::embedded::EmbeddedStack;
//! let stack = EmbeddedStack::start(fake_provider::Faults::none(), 42).await?;
//! println!("sign in at {}", stack.login_url("alice", "acme", &harness::contract::chat_path("acme", "general")));
//! # Ok(()) }
//! ```

use crate::scenario::PlatformConfig;
use anyhow::Context;
use fake_provider::{ClientRegistration, FakeProvider, Faults};
use reference_server::{Application, DEFAULT_CLIENTS, Settings};
use url::Url;

/// A running provider and platform. Dropping it stops both.
pub struct EmbeddedStack {
    pub provider: FakeProvider,
    pub platform_url: Url,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl EmbeddedStack {
    /// Starts both on free loopback ports; every code, token and platform id derives from `seed`.
    pub async fn start(faults: Faults, seed: u64) -> anyhow::Result<Self> {
        Self::start_on(faults, seed, "127.0.0.1:0".parse()?).await
    }

    /// Same, with the platform on a chosen address.
    pub async fn start_on(
        faults: Faults,
        seed: u64,
        platform_bind: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        Self::start_with(faults, seed, platform_bind, None).await
    }

    /// Same, with the platform's routes changed first (a deliberately broken platform).
    pub async fn start_with(
        faults: Faults,
        seed: u64,
        platform_bind: std::net::SocketAddr,
        customize: Option<reference_server::RouterCustomizer>,
    ) -> anyhow::Result<Self> {
        Self::start_configured(
            faults,
            seed,
            platform_bind,
            customize,
            &PlatformConfig::default(),
        )
        .await
    }

    /// Same, with the platform configured as a scenario's `[platform]` says.
    pub async fn start_configured(
        faults: Faults,
        seed: u64,
        platform_bind: std::net::SocketAddr,
        customize: Option<reference_server::RouterCustomizer>,
        platform: &PlatformConfig,
    ) -> anyhow::Result<Self> {
        let provider = FakeProvider::builder()
            .seed(seed)
            .faults(faults)
            .start()
            .await
            .context("the fake provider could not start")?;
        let data_dir = tempfile::Builder::new()
            .prefix("alumia-harness-")
            .tempdir()?;
        let mut settings = Settings::for_provider(provider.public_url().as_str());
        settings.bind = platform_bind;
        settings.data_dir = Some(data_dir.path().to_owned());
        settings.seed = Some(seed);
        settings.opener_policy = Some(platform.opener_policy);
        settings.embeddable = platform.embeddable;
        let app = Application::build_with(settings, customize)
            .await
            .context("the reference server could not start")?;
        for (_, _, client_id, secret) in DEFAULT_CLIENTS {
            provider.rules().register_client(ClientRegistration::new(
                client_id,
                secret,
                &app.redirect_uri(),
            ));
        }
        let platform_url = app.url();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            provider,
            platform_url,
            stop: Some(stop),
            _data_dir: data_dir,
        })
    }

    /// The development sign-in URL that lands on `next`.
    pub fn login_url(&self, user: &str, org: &str, next: &str) -> Url {
        crate::contract::login_url(&self.platform_url, user, org, next)
    }
}

impl Drop for EmbeddedStack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
