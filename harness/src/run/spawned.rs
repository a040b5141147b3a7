//! Platforms the harness starts as processes and drives through `--target`, as a team drives
//! its deployment: the reference server's known-bad and conformant builds (the two-sided
//! matrix), and the platform written in another stack (`interop/python-platform`). Each
//! configuration the cases need (`[platform]`) gets its own server and its own fake provider;
//! each server says where it listens and which redirect URI to register.
//!
//! A server announces itself on its first lines of output, either as the reference server
//! does (`reference-server listening on URL`, `redirect URI to register at the provider: URL`)
//! or as one JSON line, `{"listening": URL, "redirect_uri": URL}`.

use crate::check::verdict::ScenarioResult;
use crate::deployment::process::{KillOnDrop, server_data_dir};
use crate::run::options::{RunOptions, shard_of};
use crate::run::pool::SessionPool;
use crate::run::suite::{Progress, run_in};
use crate::scenario::{PlatformConfig, discover};
use fake_provider::{ClientRegistration, FakeProvider};
use reference_server::{DEFAULT_CLIENTS, OpenerPolicy};
use std::io::BufRead;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

/// What a spawned server is started with.
pub struct ServerFlags<'a> {
    /// A defect of the reference server's catalogue.
    pub defect: Option<&'a str>,
    /// Variants of the reference server's catalogue.
    pub variants: &'a [String],
    /// The fake provider's URL.
    pub provider: &'a str,
    /// `--opener-policy NAME`, where the configuration has one.
    pub opener_policy: Option<&'a str>,
    /// `--embeddable`, for a chat other sites may frame.
    pub embeddable: bool,
    /// Where the server keeps its database: a directory the harness removes once the server
    /// is stopped (a server killed mid-run cannot remove a temporary one of its own).
    pub data_dir: &'a std::path::Path,
}

/// Starts a server on `127.0.0.1:0` with its stdout piped, announcing itself as the module
/// doc says.
pub type Spawn<'a> = &'a dyn Fn(&ServerFlags<'_>) -> anyhow::Result<Child>;

/// A platform started as processes: how, and what it declares of itself.
pub struct SpawnedPlatform<'a> {
    /// How reports name it (`defect x`, `variant y`, `python platform`).
    pub label: String,
    pub defect: Option<String>,
    pub variants: Vec<String>,
    /// What the deployment is configured as where a case leaves it open (its opener policy,
    /// whether it has the MCP connector, whether other sites may frame its chat).
    pub declared: PlatformConfig,
    pub spawn: Spawn<'a>,
}

/// Runs the scenarios of `pattern` against `platform` in the engines of `base` (Chromium unless
/// it names others): one server and one fake
/// provider per configuration the cases need (a case's `[platform]`, and what the platform
/// declares where the case leaves it open), each case told what its server is
/// (`RunOptions::target_platform`). The browser sessions come from `pool`, which the caller
/// closes.
pub async fn run_on(
    platform: &SpawnedPlatform<'_>,
    pattern: &str,
    base: &RunOptions,
    pool: &Arc<SessionPool>,
    progress: &'static dyn Progress,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut groups: Vec<(PlatformConfig, Vec<String>)> = Vec::new();
    for file in discover(&base.scenarios_root, pattern)? {
        if base
            .shard
            .is_some_and(|(k, n)| shard_of(&file.id.0, n) != k)
        {
            continue;
        }
        let configuration = configured(&file.scenario.platform, &platform.declared);
        match groups.iter_mut().find(|(c, _)| *c == configuration) {
            Some((_, ids)) => ids.push(file.id.0),
            None => groups.push((configuration, vec![file.id.0])),
        }
    }
    let mut results = Vec::new();
    for (configuration, ids) in &groups {
        results.extend(
            run_configured(
                platform,
                configuration,
                &ids.join(","),
                base,
                pool,
                progress,
            )
            .await?,
        );
    }
    Ok(results)
}

/// The configuration a case runs against: what it needs, and what the platform declares where
/// the case leaves it open.
fn configured(needs: &PlatformConfig, declared: &PlatformConfig) -> PlatformConfig {
    PlatformConfig {
        opener_policy: match needs.opener_policy {
            OpenerPolicy::Unset => declared.opener_policy,
            needed => needed,
        },
        mcp_connector: needs.mcp_connector || declared.mcp_connector,
        embeddable: needs.embeddable || declared.embeddable,
    }
}

/// One server of `platform`, configured as `configuration`, and its run of `pattern`.
async fn run_configured(
    platform: &SpawnedPlatform<'_>,
    configuration: &PlatformConfig,
    pattern: &str,
    base: &RunOptions,
    pool: &Arc<SessionPool>,
    progress: &'static dyn Progress,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let provider = FakeProvider::builder().seed(base.seed).start().await?;
    let provider_url = provider.public_url().to_string();
    let data_dir = server_data_dir()?;
    let flags = ServerFlags {
        defect: platform.defect.as_deref(),
        variants: &platform.variants,
        provider: &provider_url,
        opener_policy: (configuration.opener_policy != OpenerPolicy::Unset)
            .then(|| configuration.opener_policy.name()),
        embeddable: configuration.embeddable,
        data_dir: data_dir.path(),
    };
    let mut child = KillOnDrop((platform.spawn)(&flags)?);
    let (platform_url, redirect_uri) = read_announcement(&mut child.0, &platform.label).await?;
    for (_, _, id, secret) in DEFAULT_CLIENTS {
        provider
            .rules()
            .register_client(ClientRegistration::new(id, secret, &redirect_uri));
    }
    let options = RunOptions {
        target: Some(platform_url.parse()?),
        provider: Some(provider.public_url().clone()),
        target_platform: configuration.clone(),
        jobs: 1,
        pattern: pattern.to_owned(),
        accept: false,
        run_id: platform.label.replace(' ', "-"),
        ..base.clone()
    };
    Ok(run_in(&options, pool.clone(), progress).await?.0)
}

/// Reads the server's URL and redirect URI from its first lines of output (20 s at most),
/// then keeps reading the rest so its output never blocks it.
pub(crate) async fn read_announcement(
    child: &mut Child,
    label: &str,
) -> anyhow::Result<(String, String)> {
    let stdout = child.stdout.take().ok_or_else(|| {
        anyhow::anyhow!("the server of {label} was started without a piped stdout")
    })?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut url, mut redirect) = (None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(reference_server::LISTENING) {
                url = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix(reference_server::REDIRECT_URI) {
                redirect = Some(rest.trim().to_owned());
            } else if let Ok(announced) = serde_json::from_str::<serde_json::Value>(&line) {
                url = announced["listening"].as_str().map(str::to_owned);
                redirect = announced["redirect_uri"].as_str().map(str::to_owned);
            }
            if url.is_some() && redirect.is_some() {
                break;
            }
        }
        let _ = sender.send(url.zip(redirect));
        for _ in lines {}
    });
    match tokio::time::timeout(Duration::from_secs(20), receiver).await {
        Ok(Ok(Some(announced))) => Ok(announced),
        Ok(_) => anyhow::bail!(
            "the server of {label} exited without saying where it listens (its `{}` line, or a JSON line with listening and redirect_uri)",
            reference_server::LISTENING
        ),
        Err(_) => anyhow::bail!("the server of {label} said nothing within 20 s"),
    }
}
