//! `fake-provider serve`: the provider on its own, for a deployment elsewhere to point at.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fake_provider::{ClientRegistration, FakeProvider, Faults};
use std::net::SocketAddr;

#[derive(Parser)]
#[command(
    name = "fake-provider",
    about = "An OAuth 2.0 provider for conformance tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the provider until interrupted.
    ///
    /// Repeat --client-id/--client-secret/--redirect-uri (in that order) to register
    /// several clients, or register them later with `POST /_admin/clients`. Faults are set
    /// with --faults-json or later with `PUT /_admin/faults`.
    Serve {
        /// Socket address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// URL browsers and the platform use to reach this provider (default http://localhost:PORT).
        #[arg(long)]
        public_url: Option<String>,
        #[arg(long = "client-id")]
        client_ids: Vec<String>,
        #[arg(long = "client-secret")]
        client_secrets: Vec<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Seed of every code and token.
        #[arg(long, env = "HARNESS_SEED", default_value_t = 0)]
        seed: u64,
        /// Faults as JSON, e.g. '{"coop_on_redirect":"same-origin"}'.
        #[arg(long)]
        faults_json: Option<String>,
    },
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
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve {
        bind,
        public_url,
        client_ids,
        client_secrets,
        redirect_uris,
        seed,
        faults_json,
    } = Cli::parse().command;
    if client_ids.len() != client_secrets.len() || client_ids.len() != redirect_uris.len() {
        bail!(
            "got {} --client-id, {} --client-secret and {} --redirect-uri: give one of each per client",
            client_ids.len(),
            client_secrets.len(),
            redirect_uris.len()
        );
    }
    let faults = match faults_json {
        Some(json) => serde_json::from_str::<Faults>(&json)
            .context("--faults-json is not a valid fault set (see fake_provider::Faults)")?,
        None => Faults::none(),
    };
    let mut builder = FakeProvider::builder().bind(bind).seed(seed).faults(faults);
    if let Some(url) = &public_url {
        builder = builder.public_url(url);
    }
    for ((id, secret), redirect) in client_ids.iter().zip(&client_secrets).zip(&redirect_uris) {
        builder = builder.client(ClientRegistration::new(id, secret, redirect));
    }
    let provider = builder.start().await?;
    println!("fake-provider listening on {}", provider.address());
    println!("public URL: {}", provider.public_url());
    println!("authorize:  {}", provider.authorize_url());
    println!("token:      {}", provider.token_url());
    println!("revoke:     {}", provider.revoke_url());
    println!("api:        {}", provider.api_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
