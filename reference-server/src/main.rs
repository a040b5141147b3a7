//! `reference-server`: runs the reference platform.

use anyhow::Context;
use clap::Parser;
use reference_server::{Application, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The reference Alumia platform. Settings come from --config FILE (TOML), then environment
/// variables, then flags.
#[derive(Parser)]
#[command(name = "reference-server")]
struct Cli {
    /// A TOML settings file (keys: bind, public_url, data_dir, seed, revoke_timeout,
    /// token_timeout, client_metadata_url, opener_policy, embeddable, [[connectors]],
    /// [[mcp_connectors]]).
    #[arg(long, env = "ALUMIA_CONFIG")]
    config: Option<PathBuf>,
    /// Socket address to listen on.
    #[arg(long, env = "ALUMIA_BIND")]
    bind: Option<SocketAddr>,
    /// The URL browsers use to reach the platform.
    #[arg(long, env = "ALUMIA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Base URL of the OAuth provider: sets the files and calendar connectors' authorize,
    /// token, revoke and api URLs under it.
    #[arg(long, env = "ALUMIA_PROVIDER_URL")]
    provider_url: Option<String>,
    /// A connector that is an MCP server, known by its URL alone: NAME=URL (repeatable). It
    /// replaces a connector of that name (`notes=https://mcp.example/mcp`).
    #[arg(long = "mcp-server", value_name = "NAME=URL")]
    mcp_servers: Vec<String>,
    /// A client registered beforehand with an MCP connector's authorization server:
    /// NAME=CLIENT_ID or NAME=CLIENT_ID:SECRET (repeatable; `notes=alumia:s3cret`).
    #[arg(long = "mcp-client", value_name = "NAME=CLIENT_ID[:SECRET]")]
    mcp_clients: Vec<String>,
    /// Where the public finds the platform's client ID metadata document (default: under the
    /// public URL).
    #[arg(long, env = "ALUMIA_CLIENT_METADATA_URL")]
    client_metadata_url: Option<String>,
    /// Where the SQLite database lives (default: a fresh temporary directory).
    #[arg(long, env = "ALUMIA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Seed of the platform's random values.
    #[arg(long, env = "HARNESS_SEED")]
    seed: Option<u64>,
    #[arg(long, env = "ALUMIA_FILES_CLIENT_ID")]
    files_client_id: Option<String>,
    #[arg(long, env = "ALUMIA_FILES_CLIENT_SECRET", hide_env_values = true)]
    files_client_secret: Option<String>,
    #[arg(long, env = "ALUMIA_CALENDAR_CLIENT_ID")]
    calendar_client_id: Option<String>,
    #[arg(long, env = "ALUMIA_CALENDAR_CLIENT_SECRET", hide_env_values = true)]
    calendar_client_secret: Option<String>,
    /// The Cross-Origin-Opener-Policy of the platform's pages: unset (default), site-wide
    /// (`same-origin` on every page) or callback-noopener-allow-popups.
    #[arg(long, env = "ALUMIA_OPENER_POLICY")]
    opener_policy: Option<String>,
    /// The chat can be embedded in another site's frame: the session cookie becomes
    /// `SameSite=None; Secure; Partitioned` (CHIPS).
    #[arg(long, env = "ALUMIA_EMBEDDABLE")]
    embeddable: bool,
    /// A deliberate defect, for the harness's detection matrix: the server breaks a promise of
    /// the flow on purpose (never in a deployment; it says so when it starts).
    #[arg(long)]
    defect: Option<String>,
    /// Print the names of the defects and exit.
    #[arg(long)]
    list_defects: bool,
    /// A conformant variant, for the harness's specificity matrix: differs from the reference
    /// only where the target contract leaves it open.
    /// Repeat it for several at once.
    #[arg(long = "variant", conflicts_with = "defect")]
    variants: Vec<String>,
    /// Print the names of the variants and exit.
    #[arg(long)]
    list_variants: bool,
}

impl Cli {
    fn settings(self) -> anyhow::Result<Settings> {
        let mut settings = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(url) = &self.provider_url {
            settings.set_provider(url);
        }
        for pair in &self.mcp_servers {
            let (name, url) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "--mcp-server {pair:?}: expected NAME=URL (hint: --mcp-server notes=https://mcp.example/mcp)"
                )
            })?;
            url::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("--mcp-server {pair:?}: {url:?} is not a URL: {e}"))?;
            settings.mcp_connectors.retain(|c| c.name != name);
            let mut display_name = name.to_owned();
            display_name[..1].make_ascii_uppercase();
            settings
                .mcp_connectors
                .push(reference_server::McpConnectorSettings {
                    name: name.to_owned(),
                    display_name,
                    server_url: url.to_owned(),
                    client_id: None,
                    client_secret: None,
                });
        }
        for pair in &self.mcp_clients {
            let hint = "hint: --mcp-client notes=CLIENT_ID:SECRET, after --mcp-server notes=URL";
            let (name, client) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--mcp-client {pair:?}: expected NAME=CLIENT_ID[:SECRET] ({hint})")
            })?;
            let connector = settings
                .mcp_connectors
                .iter_mut()
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    anyhow::anyhow!("--mcp-client {pair:?}: no MCP connector {name:?} ({hint})")
                })?;
            let (id, secret) = match client.split_once(':') {
                Some((id, secret)) => (id, Some(secret.to_owned())),
                None => (client, None),
            };
            if id.is_empty() {
                anyhow::bail!("--mcp-client {pair:?}: the client id is empty ({hint})");
            }
            connector.client_id = Some(id.to_owned());
            connector.client_secret = secret.filter(|s| !s.is_empty());
        }
        if let Some(url) = &self.client_metadata_url {
            url::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("--client-metadata-url {url:?} is not a URL: {e}"))?;
            settings.client_metadata_url = Some(url.clone());
        }
        if let Some(bind) = self.bind {
            settings.bind = bind;
        }
        if self.public_url.is_some() {
            settings.public_url = self.public_url;
        }
        if self.data_dir.is_some() {
            settings.data_dir = self.data_dir;
        }
        if self.seed.is_some() {
            settings.seed = self.seed;
        }
        if let Some(name) = &self.opener_policy {
            settings.opener_policy = Some(reference_server::OpenerPolicy::parse(name)?);
        }
        if self.embeddable {
            settings.embeddable = true;
        }
        if let Some(name) = &self.defect {
            settings.defect = Some(reference_server::Defect::parse(name)?);
        }
        for name in &self.variants {
            settings
                .variants
                .push(reference_server::Variant::parse(name)?);
        }
        for (name, id, secret) in [
            ("files", self.files_client_id, self.files_client_secret),
            (
                "calendar",
                self.calendar_client_id,
                self.calendar_client_secret,
            ),
        ] {
            let connector = settings.connectors.iter_mut().find(|c| c.name == name);
            match connector {
                Some(connector) => {
                    if let Some(id) = id {
                        connector.client_id = id;
                    }
                    if let Some(secret) = secret {
                        connector.client_secret = secret;
                    }
                }
                None if id.is_some() || secret.is_some() => anyhow::bail!(
                    "--{name}-client-id/--{name}-client-secret given, but no {name} connector is configured (hint: pass --provider-url)"
                ),
                None => {}
            }
        }
        Ok(settings)
    }
}

/// Errors are printed as a cause chain, without a backtrace.
fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,reference_server=info".into()),
        )
        .init();
    let cli = Cli::parse();
    if cli.list_defects {
        for defect in reference_server::Defect::ALL {
            println!("{}", defect.name());
        }
        return Ok(());
    }
    if cli.list_variants {
        for variant in reference_server::Variant::ALL {
            println!("{}", variant.name());
        }
        return Ok(());
    }
    let settings = cli.settings()?;
    if let Some(defect) = settings.defect {
        tracing::warn!(
            "running with the defect {}: this server breaks a promise of the flow on purpose ({}), for the harness's detection matrix; never deploy it so",
            defect.name(),
            defect.what_it_breaks()
        );
    }
    let app = Application::build(settings)
        .await
        .context("the reference server could not start")?;
    app.announce();
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
