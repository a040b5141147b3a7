//! `harness`: the conformance harness's command line.

use clap::{Parser, Subcommand};
use harness::stack::EmbeddedStack;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Conformance harness for Alumia's OAuth connector flow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the fake provider and the reference platform, print the URL to open, and serve
    /// until interrupted.
    Demo {
        /// Address of the platform (the provider takes any free port on localhost).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Seed of every code, token and id.
        #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Demo { bind, seed } => {
            let stack = EmbeddedStack::start_on(fake_provider::Faults::none(), seed, bind).await?;
            println!("fake provider: {}", stack.provider.public_url());
            println!("platform:      {}", stack.platform_url);
            println!();
            println!("Open this URL, ask \u{201c}list my files\u{201d}, connect, and allow:");
            println!(
                "  {}",
                stack.login_url("alice", "acme", "/acme/chat/general")
            );
            println!("(seed {seed}; Ctrl-C stops both)");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
    }
}
