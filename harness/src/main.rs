//! `harness`: the conformance harness's command line.

use clap::{Parser, Subcommand};

/// The simulator allocates many small short-lived values: mimalloc serves them faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use harness::contract::Engine;
use harness::deployment::embedded::EmbeddedStack;
use harness::run::defects::Subject;
use harness::run::options::RunOptions;
use harness::run::spawned::ServerFlags;
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
    Run {
        /// A deployment to test instead of the embedded reference server.
        #[arg(long)]
        target: Option<url::Url>,
        /// The fake provider the --target deployment is configured against (`fake-provider serve`),
        /// or, with --provider-profile, the real provider it is configured against.
        #[arg(long)]
        provider: Option<url::Url>,
        /// A real provider's profile (TOML: its pages and what it does): --provider is then
        /// driven through its own pages; cases that need the fake provider are skipped, with
        /// the reason (docs/remote.md).
        #[arg(long, requires = "provider")]
        provider_profile: Option<PathBuf>,
        /// Browser engines: chromium, firefox, webkit, a comma-separated list, or all.
        #[arg(long, default_value = "chromium")]
        engine: String,
        /// How many browser sessions run at once.
        #[arg(short = 'j', long = "jobs", default_value_t = 1)]
        jobs: usize,
        /// Run shard K of N (e.g. 2/3): a stable subset, for splitting CI.
        #[arg(long)]
        shard: Option<String>,
        /// Stop at the first scenario whose outcome is not the expected one.
        #[arg(long)]
        fail_fast: bool,
        /// Glob over scenario ids (`channels/*`).
        #[arg(long, default_value = "*")]
        scenario: String,
        /// Seed of every random choice (default: from the clock, printed).
        #[arg(long, env = "HARNESS_SEED")]
        seed: Option<u64>,
        /// Use a running WebDriver endpoint instead of spawning a driver.
        #[arg(long)]
        webdriver: Option<String>,
        /// Write a JSON report.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a JUnit XML report.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a self-contained HTML report (index.html) into this folder.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Where failed scenarios keep their artifacts.
        #[arg(long, default_value_os_t = default_artifacts())]
        artifacts: PathBuf,
        /// Write the snapshots of new or changed traces (embedded target only).
        #[arg(long)]
        accept: bool,
        /// A fresh browser session for every scenario instead of one shared session.
        #[arg(long)]
        fresh_session: bool,
        /// A baseline of known failures (TOML, [[known-failure]] id reason [engine]): listed
        /// failures do not fail the run, a listed entry that passes now does (docs/verdicts.md).
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Run a scenario that is not as expected again, up to N times, each with a fresh
        /// browser. One that then passes is reported `flaky`, which fails the run unless
        /// --allow-flaky. Default: no retry.
        #[arg(long, default_value_t = 0)]
        retries: usize,
        /// A `flaky` outcome does not fail the run.
        #[arg(long)]
        allow_flaky: bool,
        /// With --target: the Cross-Origin-Opener-Policy your deployment is configured with
        /// (unset, site-wide, callback-noopener-allow-popups). Cases whose [platform] asks for
        /// it run; cases that ask for another are skipped, with the reason.
        #[arg(long, requires = "target")]
        target_opener_policy: Option<String>,
        /// With --target: your deployment has a connector `notes` that is the provider's MCP
        /// server (`{provider}/mcp`, known by its URL). Cases whose [platform] asks for it run;
        /// without this flag they are skipped, with the reason.
        #[arg(long, requires = "target")]
        target_mcp_connector: bool,
        /// With --target: your deployment's chat keeps a session inside another site's frame
        /// (a partitioned session cookie). Cases whose [platform] asks for it run; without
        /// this flag they are skipped, with the reason.
        #[arg(long, requires = "target")]
        target_embeddable: bool,
        /// Folder of the scenario files.
        #[arg(long, env = "HARNESS_SCENARIOS", default_value_os_t = default_root())]
        scenarios: PathBuf,
        /// Folder of the snapshots.
        #[arg(long, env = "HARNESS_SNAPSHOTS", default_value_os_t = harness::check::snapshot::default_root())]
        snapshots: PathBuf,
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
        /// Only these defects (default: every one the server lists, unless --variant is given).
        #[arg(long = "defect")]
        defects: Vec<String>,
        /// Only these variants (default: every one the server lists, unless --defect is given).
        #[arg(long = "variant")]
        variants: Vec<String>,
        /// Run every scenario against each defect (the full matrix) instead of stopping at the
        /// first that catches it. Variants always run every scenario.
        #[arg(long)]
        full: bool,
        /// Only these scenarios (globs over ids, comma-separated).
        #[arg(long, default_value = "*")]
        scenario: String,
        #[arg(long, env = "HARNESS_SEED", default_value_t = 1)]
        seed: u64,
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
        /// document. It must print where it listens (as `reference-server` does, or a JSON line
        /// `{"listening": URL, ...}`). Default: the `reference-server` beside this binary.
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

fn default_artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/harness")
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(1)
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
        Command::Run {
            target,
            provider,
            provider_profile,
            engine,
            jobs,
            shard,
            fail_fast,
            scenario,
            seed,
            webdriver,
            json,
            junit,
            html,
            artifacts,
            accept,
            fresh_session,
            expect,
            retries,
            allow_flaky,
            target_opener_policy,
            target_mcp_connector,
            target_embeddable,
            scenarios,
            snapshots,
        } => {
            let seed = seed.unwrap_or_else(clock_seed);
            let run_id = if target.is_some() {
                format!("{:x}", clock_seed())
            } else {
                String::new()
            };
            let options = RunOptions {
                scenarios_root: scenarios,
                snapshots_root: snapshots,
                pattern: scenario,
                engines: Engine::parse_list(&engine)?,
                jobs: jobs.max(1),
                shard: shard
                    .as_deref()
                    .map(harness::run::options::parse_shard)
                    .transpose()?,
                fail_fast,
                seed,
                target,
                provider,
                provider_profile,
                webdriver,
                artifacts,
                accept,
                run_id,
                reuse_session: !fresh_session,
                expectations: expect,
                retries,
                allow_flaky,
                target_platform: harness::scenario::PlatformConfig {
                    opener_policy: target_opener_policy
                        .as_deref()
                        .map(reference_server::OpenerPolicy::parse)
                        .transpose()?
                        .unwrap_or_default(),
                    mcp_connector: target_mcp_connector,
                    embeddable: target_embeddable,
                },
            };
            let (results, suite) = run(&options, &Console).await?;
            let reports = harness::report::Reports { json, junit, html };
            reports.write(&results, options.seed, &suite.pool.setups())?;
            let all_expected = results.iter().all(|r| r.as_expected());
            Ok(if all_expected {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
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
            defects,
            variants,
            full,
            scenario,
            seed,
        } => {
            let list = |flag: &str| -> anyhow::Result<Vec<String>> {
                let listed = std::process::Command::new(&server)
                    .arg(flag)
                    .output()
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot run the reference server {}: {e} (hint: `cargo build -p reference-server`, or --server PATH)",
                            server.display()
                        )
                    })?;
                anyhow::ensure!(
                    listed.status.success(),
                    "{} {flag} failed (hint: build it with `cargo build -p reference-server`)",
                    server.display()
                );
                Ok(String::from_utf8_lossy(&listed.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect())
            };
            let (defects, variants) = match (defects.is_empty(), variants.is_empty()) {
                (true, true) => (list("--list-defects")?, list("--list-variants")?),
                _ => (defects, variants),
            };
            let mut subjects: Vec<Subject> = defects
                .iter()
                .map(|d| Subject::defect(d, &scenario))
                .collect();
            subjects.extend(
                variants
                    .iter()
                    .map(|v| Subject::variants(&[v.as_str()], &scenario)),
            );
            if variants.len() > 1 {
                let all: Vec<&str> = variants.iter().map(String::as_str).collect();
                subjects.push(Subject::variants(&all, &scenario));
            }
            let spawn = |flags: &ServerFlags<'_>| -> anyhow::Result<std::process::Child> {
                let mut command = std::process::Command::new(&server);
                command.args(["--bind", "127.0.0.1:0", "--provider-url", flags.provider]);
                if let Some(defect) = flags.defect {
                    command.args(["--defect", defect]);
                }
                for variant in flags.variants {
                    command.args(["--variant", variant]);
                }
                if let Some(policy) = flags.opener_policy {
                    command.args(["--opener-policy", policy]);
                }
                if flags.embeddable {
                    command.arg("--embeddable");
                }
                Ok(command
                    .env("RUST_LOG", "error")
                    .stdout(std::process::Stdio::piped())
                    .spawn()?)
            };
            let options = RunOptions {
                fail_fast: !full,
                seed,
                artifacts: default_artifacts().join("matrix"),
                ..RunOptions::default()
            };
            let rows = harness::run::defects::matrix(&subjects, &spawn, &options).await?;
            println!("\n{}", harness::run::defects::table(&rows));
            Ok(if rows.iter().all(|r| r.holds()) {
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
