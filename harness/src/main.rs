//! `harness`: the conformance harness's command line.

use clap::{Parser, Subcommand};

/// The simulator allocates many small short-lived values: mimalloc serves them faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use harness::contract::Engine;
use harness::deployment::embedded::EmbeddedStack;
use harness::run::options::{RunOptions, default_artifacts};
use harness::run::suite::{Console, run};
use harness::scenario::{default_root, discover};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Conformance harness for Alumia's OAuth connector flow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run scenarios in a real browser and check every invariant.
    Run(harness::run::options::RunArgs),
    /// Render the reports of an earlier run from its JSON report (`harness run --json FILE`):
    /// the HTML report (into target/harness/report/ unless --html or --junit says otherwise)
    /// and JUnit XML.
    Report {
        /// The JSON report of the run.
        results: PathBuf,
        /// Write the HTML report (index.html) into this folder.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write a JUnit XML report.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Measure the suite's wall time (fresh and reused sessions) and the baseline against its
    /// floor; prints a Markdown table for BENCHMARKS.md.
    Bench {
        /// Runs of the baseline and of its floor (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Engines to measure (the first also gives the floor): a list or all.
        #[arg(long, default_value = "chromium")]
        engine: String,
        /// Also measure the suite through this running Selenium Grid (its URL, with a
        /// trailing slash).
        #[arg(long)]
        grid: Option<String>,
        #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
        seed: u64,
    },
    /// Run the suite N times with the same seed and count, per scenario and engine, the runs
    /// that were not as expected and why: how far one run's verdict can be trusted.
    Soak {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Engines: a list (chromium,firefox,webkit) or all.
        #[arg(long, default_value = "chromium")]
        engine: String,
        /// Browser sessions at once.
        #[arg(short = 'j', long = "jobs", default_value_t = 1)]
        jobs: usize,
        /// A glob over scenario ids (several separated by commas).
        #[arg(long, default_value = "*")]
        scenario: String,
        #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
        seed: u64,
        /// Also write the rows as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Folder of the scenario files.
        #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = default_root())]
        scenarios: PathBuf,
        /// Folder of the snapshots.
        #[arg(long, env = "HARNESS_SNAPSHOTS", default_value_os_t = harness::check::snapshot::default_root())]
        snapshots: PathBuf,
    },
    /// The two-sided matrix: every scenario against each known-bad reference server (`--defect
    /// NAME`: some scenario must fail, naming a check) and against each conformant variant
    /// (`--variant NAME`: every scenario must pass), then all variants at once. SERVER is the
    /// reference-server binary (`cargo build -p reference-server`).
    Defects {
        /// The reference-server binary, each defect and variant run as its own process.
        #[arg(long, default_value_os_t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/reference-server"))]
        server: PathBuf,
        /// Print every defect, what it breaks and the scenario and check that catch it, then
        /// exit (no server needed).
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        request: harness::run::defects::MatrixRequest,
    },
    /// A platform as the client the MCP conformance suite tests: starts it with a connector
    /// `notes` that is the MCP server at SERVER, plays its user in headless Chromium (sign in,
    /// ask for the notes, connect as often as the chat asks), prints how the chat ended
    /// (`answered: ...` with the tool's answer) and exits 0 once the flow ran to its end. The
    /// suite runs it: `conformance client --command "harness mcp-client" --scenario ID`.
    McpClient {
        /// The platform's command line; `{url}` is the MCP server's URL, `{client_id}` and
        /// `{client_secret}` a client the scenario registered beforehand (empty when none),
        /// `{client_metadata_url}` the client ID the suite expects of a client metadata
        /// document, `{data_dir}` an empty directory removed once the platform is stopped (for
        /// its database, if it keeps one). It must print where it listens (as
        /// `reference-server` does, or a JSON line `{"listening": URL, ...}`). Default: the
        /// `reference-server` beside this binary.
        #[arg(long)]
        platform: Option<String>,
        /// The MCP server's URL (the suite passes it last).
        server: url::Url,
    },
    /// Simulate the flow with no browser, in virtual time, from one seed: generated browser
    /// capabilities, provider behaviours and user actions against the real server code and the
    /// real card decisions (QuickJS). The same seed and count print the same report.
    Sim {
        #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
        seed: u64,
        /// Cases to generate (shrinking a failure runs more flows).
        #[arg(long, default_value_t = 1000)]
        cases: u32,
        /// Also write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Simulate a deliberately broken chat client instead of the served one.
        #[arg(long, value_enum)]
        broken_client: Option<harness::sim::BrokenClient>,
        /// Simulate a deliberately broken platform server instead of the reference one.
        #[arg(long, value_enum)]
        broken_server: Option<harness::sim::BrokenServer>,
        /// Print the flows per second on one thread to stderr (timing is not in the report).
        #[arg(long)]
        measure: bool,
    },
    /// Print the JSON Schema of scenario files (committed as scenarios/scenario.schema.json),
    /// or with --markdown the reference of every key, step and value (docs/scenario-reference.md).
    Schema {
        #[arg(long)]
        markdown: bool,
    },
    /// List the scenarios with their descriptions.
    List {
        #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = default_root())]
        scenarios: PathBuf,
    },
    /// Write a new scenario file from a commented template, or from a close case, and print
    /// the commands that run it and accept its snapshot.
    New {
        /// The new scenario's id: <group>/<name>.
        id: String,
        /// Start from this scenario instead of the template.
        #[arg(long)]
        from: Option<String>,
        #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = default_root())]
        scenarios: PathBuf,
    },
    /// Say in words what a scenario does: browser configuration, provider behaviour, steps,
    /// expected outcome per engine, invariants.
    Explain {
        /// A scenario id (`harness list` shows them).
        id: String,
        #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = default_root())]
        scenarios: PathBuf,
    },
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

/// Errors are printed as a cause chain (`error: ...: caused by ...`), without a backtrace.
fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run_cli()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run_cli() -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Run(args) => {
            let (options, reports) = args.options()?;
            let (results, suite) = run(&options, &Console).await?;
            reports.write(&results, options.seed, &suite.pool.setups())?;
            Ok(if results.iter().all(|r| r.as_expected()) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Report {
            results,
            html,
            junit,
        } => {
            let (results, seed) = harness::report::read_json(&results)?;
            let html = match (&html, &junit) {
                (None, None) => Some(harness::report::default_report_dir()),
                _ => html,
            };
            let reports = harness::report::Reports {
                json: None,
                junit,
                html,
            };
            reports.write(&results, seed, &[])?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Bench {
            runs,
            engine,
            grid,
            seed,
        } => {
            let options = RunOptions {
                engines: Engine::parse_list(&engine)?,
                seed,
                webdriver: grid,
                ..RunOptions::default()
            };
            let report = harness::run::bench::bench(&options, runs.max(1)).await?;
            println!("\n{report}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Soak {
            runs,
            engine,
            jobs,
            scenario,
            seed,
            json,
            scenarios,
            snapshots,
        } => {
            let options = RunOptions {
                scenarios_root: scenarios,
                snapshots_root: snapshots,
                engines: Engine::parse_list(&engine)?,
                jobs: jobs.max(1),
                pattern: scenario,
                seed,
                artifacts: default_artifacts().join("soak"),
                ..RunOptions::default()
            };
            let started = std::time::Instant::now();
            let rows = harness::run::soak::soak(&options, runs.max(1)).await?;
            println!("\n{}", harness::run::soak::table(&rows));
            println!(
                "{runs} run(s) in {:.0} s, seed {seed}",
                started.elapsed().as_secs_f64()
            );
            if let Some(path) = json {
                std::fs::write(
                    &path,
                    serde_json::to_string_pretty(&serde_json::json!({
                        "seed": seed, "runs": runs, "rows": rows,
                    }))?,
                )
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            Ok(if rows.iter().all(|r| r.unexpected == 0) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::New {
            id,
            from,
            scenarios,
        } => {
            let path = harness::authoring::new_scenario(&scenarios, &id, from.as_deref())?;
            // As the user would type it: `scenarios/channels/x.toml` from the repository's
            // root, not `/repo/harness/../scenarios/channels/x.toml`.
            let path = path.canonicalize().unwrap_or(path);
            let path = std::env::current_dir()
                .ok()
                .and_then(|here| path.strip_prefix(here).ok().map(|p| p.to_owned()))
                .unwrap_or(path);
            println!("wrote {}", path.display());
            println!(
                "1. edit it: describe the case, set [browser] and [provider], adjust the steps"
            );
            println!("2. see what it does:   cargo run -p harness -- explain {id}");
            println!("3. run it:             cargo run -p harness -- run --scenario '{id}'");
            println!("   (it fails the first time: its snapshot does not exist yet)");
            println!(
                "4. accept its trace:   cargo run -p harness -- run --scenario '{id}' --accept"
            );
            println!(
                "5. commit {}, snapshots/{id}.snap and snapshots/{id}.reference.snap (both written by --accept); cargo test runs it in every engine",
                path.display()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Explain { id, scenarios } => {
            let file = discover(&scenarios, &id)?
                .into_iter()
                .find(|f| f.id.0 == id)
                .ok_or_else(|| {
                    anyhow::anyhow!("no scenario {id:?} (hint: `harness list` shows the ids)")
                })?;
            print!("{}", harness::authoring::explain(&file));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Defects { list: true, .. } => {
            print!("{}", harness::run::defects::catalogue_text());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Defects {
            server,
            list: _,
            request,
        } => {
            let holds = harness::run::defects::against_server(&server, request).await?;
            Ok(if holds {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Sim {
            seed,
            cases,
            json,
            broken_client,
            broken_server,
            measure,
        } => {
            let options = harness::sim::SimOptions {
                seed,
                cases,
                broken: broken_client,
                broken_server,
            };
            let started = std::time::Instant::now();
            // The simulator runs its own single-threaded runtime: off this async one.
            let report = std::thread::spawn(move || harness::sim::explore(&options))
                .join()
                .map_err(|_| anyhow::anyhow!("the simulation panicked"))??;
            let elapsed = started.elapsed();
            print!("{}", harness::sim::render_report(&report));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            if measure {
                eprintln!(
                    "{} flows in {:.2} s: {:.0} flows per second on one thread",
                    report.flows,
                    elapsed.as_secs_f64(),
                    report.flows as f64 / elapsed.as_secs_f64()
                );
            }
            Ok(if report.counterexample.is_none() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::McpClient { platform, server } => {
            use harness::run::mcp_client::{ANSWERED, ScenarioContext, reference_template};
            let context = ScenarioContext::from_env()?;
            let template = match platform {
                Some(template) => template,
                None => {
                    let beside = std::env::current_exe()?
                        .parent()
                        .map(|dir| dir.join("reference-server"))
                        .filter(|path| path.is_file())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "no reference-server beside this binary (hint: cargo build -p reference-server, or pass --platform 'COMMAND {{url}}')"
                            )
                        })?;
                    reference_template(&beside, &context)
                }
            };
            // The suite judges the wire; the chat's end is printed for a reader (and kept in
            // the suite's stdout.txt), and the exit status says the flow ran to its end.
            match harness::run::mcp_client::run(&template, &server, &context).await? {
                harness::run::mcp_client::Ended::Answered(answer) => {
                    println!("{ANSWERED} {answer}");
                }
                harness::run::mcp_client::Ended::NotAnswered(shown) => {
                    println!("not answered; the chat shows: {shown}");
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Schema { markdown } => {
            if markdown {
                print!("{}", harness::scenario::reference::markdown());
            } else {
                print!("{}", harness::scenario::json_schema());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::List { scenarios } => {
            let files = discover(&scenarios, "*")?;
            let width = files.iter().map(|f| f.id.0.len()).max().unwrap_or(0);
            for file in files {
                println!("{:<width$}  {}", file.id.0, file.scenario.description);
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Demo { bind, seed } => {
            let stack = EmbeddedStack::start_on(fake_provider::Faults::none(), seed, bind).await?;
            println!("fake provider: {}", stack.provider.public_url());
            println!("platform:      {}", stack.platform_url);
            println!();
            println!("Open this URL, ask \u{201c}list my files\u{201d}, connect, and allow:");
            println!(
                "  {}",
                stack.login_url(
                    "alice",
                    "acme",
                    &harness::contract::chat_path("acme", "general")
                )
            );
            println!("(seed {seed}; Ctrl-C stops both)");
            tokio::signal::ctrl_c().await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
