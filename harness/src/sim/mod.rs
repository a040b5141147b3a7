//! The deterministic simulation of the whole flow: no browser, virtual time, one seed.
//!
//! The server side is the real code (the reference server's router, the fake provider's
//! rules), the card's decisions are the real `card-decisions.js` in QuickJS, and the browser is
//! simulated in Rust ([`world`]). `proptest` generates browser capabilities, provider
//! behaviours and what the user does ([`case`]); a failure shrinks to a minimal case, printed
//! as a scenario file that replays it in real browsers.
//!
//! ```no_run
//! use harness::sim::{SimOptions, explore};
//! let options = SimOptions { seed: 1, cases: 100, broken: None, broken_server: None };
//! let report = explore(&options).unwrap();
//! assert!(report.counterexample.is_none());
//! ```

pub mod broken;
pub mod card;
pub mod case;
pub mod replay;
pub mod world;

use crate::scenario::{
    BrowserConfig, ChatExpectation, Expectation, Feature, OpenerMode, PlatformConfig, Scenario,
    Step, StorageMode,
};
use anyhow::Context as _;
pub use broken::{BrokenClient, BrokenServer};
use card::CardModule;
use case::{Case, Connector};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use serde::Serialize;
use std::cell::Cell;
pub use world::{FlowOutcome, SimViolation};

/// What `harness sim` explores.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub cases: u32,
    /// A deliberately broken chat client instead of the served one.
    pub broken: Option<BrokenClient>,
    /// A deliberately broken platform server instead of the reference one.
    pub broken_server: Option<BrokenServer>,
}

/// A minimal failing case, with what it broke and the scenario file that replays it.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    pub case: Case,
    pub violations: Vec<SimViolation>,
    /// A scenario file for `scenarios/`: the same case in real browsers.
    pub scenario: String,
    pub trace: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub seed: u64,
    pub cases: u32,
    /// Flows simulated, shrinking included.
    pub flows: u64,
    pub client: String,
    pub server: String,
    pub invariants: Vec<&'static str>,
    /// How the generated flows' chats ended (`resumed`, `error-shown`, ...), shrinking left out.
    pub endings: std::collections::BTreeMap<&'static str, u64>,
    /// The generated cases by connector (and what its MCP server does), shrinking left out.
    pub connectors: std::collections::BTreeMap<String, u64>,
    pub counterexample: Option<Counterexample>,
}

/// Runs flows: one QuickJS engine, one single-threaded runtime and one in-memory platform
/// for all of them (each flow starts from a reset).
pub struct Simulator {
    shared: world::Shared,
}

impl Simulator {
    /// The served client (or `broken`) against the reference server.
    pub fn new(broken: Option<BrokenClient>) -> anyhow::Result<Self> {
        Self::with(broken, None)
    }

    /// The served client (or `broken`) against the reference server (or `broken_server`).
    pub fn with(
        broken: Option<BrokenClient>,
        broken_server: Option<BrokenServer>,
    ) -> anyhow::Result<Self> {
        let module = match broken {
            Some(client) => CardModule::load(&client.module_source())?,
            None => CardModule::reference()?,
        };
        Ok(Self {
            shared: world::Shared::new(module, broken, broken_server.map(BrokenServer::defect))
                .context("the simulator's platform")?,
        })
    }

    /// Simulates one flow.
    pub fn run(&self, case: &Case) -> anyhow::Result<FlowOutcome> {
        Ok(world::World::new(case, &self.shared)?.run())
    }
}

/// Explores `options.cases` generated flows from `options.seed`; the first failure is shrunk.
pub fn explore(options: &SimOptions) -> anyhow::Result<SimReport> {
    let simulator = Simulator::with(options.broken, options.broken_server)?;
    let config = Config {
        cases: options.cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(options.seed),
        failure_persistence: None,
        max_shrink_iters: 4_096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let flows = Cell::new(0u64);
    let endings = std::cell::RefCell::new(std::collections::BTreeMap::new());
    let connectors = std::cell::RefCell::new(std::collections::BTreeMap::new());
    let result = runner.run(&case::cases(), |case| {
        flows.set(flows.get() + 1);
        let outcome = simulator
            .run(&case)
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        if flows.get() <= u64::from(options.cases) {
            *endings.borrow_mut().entry(outcome.chat_ended).or_insert(0) += 1;
            *connectors
                .borrow_mut()
                .entry(case.connector.label())
                .or_insert(0) += 1;
        }
        match outcome.violations.first() {
            Some(violation) => Err(TestCaseError::fail(format!(
                "{}: {}",
                violation.invariant, violation.detail
            ))),
            None => Ok(()),
        }
    });
    let counterexample = match result {
        Ok(()) => None,
        Err(TestError::Abort(reason)) => anyhow::bail!("the simulation stopped: {reason}"),
        Err(TestError::Fail(_, case)) => {
            let outcome = simulator.run(&case)?;
            // The scenario expects what the served client and the reference server do in the
            // same case.
            let expected = if options.broken.is_some() || options.broken_server.is_some() {
                Simulator::new(None)?.run(&case)?.chat_ended
            } else {
                outcome.chat_ended
            };
            Some(Counterexample {
                scenario: scenario_file(&case, &outcome, expected, options),
                violations: outcome.violations.clone(),
                trace: outcome.trace.clone(),
                case,
            })
        }
    };
    Ok(SimReport {
        seed: options.seed,
        cases: options.cases,
        flows: flows.get(),
        client: options
            .broken
            .map(|b| format!("broken: {}", b.name()))
            .unwrap_or_else(|| "served card-decisions.js".into()),
        server: options
            .broken_server
            .map(|b| format!("broken: {}", b.name()))
            .unwrap_or_else(|| "the reference server".into()),
        invariants: crate::check::invariants::simulator_check_ids().collect(),
        endings: endings.into_inner(),
        connectors: connectors.into_inner(),
        counterexample,
    })
}

/// The case as a scenario: the same browser configuration, provider and steps, expecting
/// `expected_chat` of the chat.
pub fn scenario_for(
    case: &Case,
    outcome: &FlowOutcome,
    expected_chat: &str,
    options: &SimOptions,
) -> Scenario {
    let first = outcome
        .violations
        .first()
        .map(|v| v.invariant)
        .unwrap_or("no invariant");
    let mut client = options
        .broken
        .map(|b| format!(" --broken-client {}", b.name()))
        .unwrap_or_default();
    if let Some(server) = options.broken_server {
        client.push_str(&format!(" --broken-server {}", server.name()));
    }
    let description = format!(
        "Found by `harness sim --seed {} --cases {}{client}` ({first}){}.",
        options.seed,
        options.cases,
        if case.duplicate_deliveries {
            "; the simulator also delivered every message twice"
        } else {
            ""
        }
    );
    let browser = BrowserConfig {
        remove_features: if case.broadcast_channel {
            Vec::new()
        } else {
            vec![Feature::BroadcastChannel]
        },
        storage: if case.storage {
            StorageMode::Available
        } else {
            StorageMode::Throws
        },
        opener: if case.noopener {
            OpenerMode::Noopener
        } else {
            OpenerMode::Keep
        },
        latency: None,
    };
    let provider = world::faults_for(case);
    let mut steps = outcome.steps.clone();
    steps.push(Step::Pause {
        ms: 5000,
        clock: crate::scenario::PauseClock::Real,
    });
    let expected: ChatExpectation = serde_json::from_value(serde_json::json!(expected_chat))
        .expect("the simulator ends a chat in a state scenario files can expect");
    Scenario {
        description,
        browser,
        provider,
        platform: PlatformConfig {
            mcp_connector: matches!(case.connector, Connector::Notes(_)),
            ..PlatformConfig::default()
        },
        steps,
        expect: Expectation {
            chat: [("chat".to_owned(), expected)].into(),
            ..Expectation::default()
        },
        mcp_conformance: Vec::new(),
    }
}

/// The case as a scenario file's text (see [`scenario_for`]).
pub fn scenario_file(
    case: &Case,
    outcome: &FlowOutcome,
    expected_chat: &str,
    options: &SimOptions,
) -> String {
    let scenario = scenario_for(case, outcome, expected_chat, options);
    format!("#:schema ../scenario.schema.json\n{}", scenario.to_file())
}

/// The report as `harness sim` prints it: the same seed and count print the same text.
pub fn render_report(report: &SimReport) -> String {
    let mut out = format!(
        "seed {}\nclient: {}\nserver: {}\nflows simulated: {} ({} cases asked, shrinking included)\ninvariants checked: {}\n",
        report.seed,
        report.client,
        report.server,
        report.flows,
        report.cases,
        report.invariants.join(", ")
    );
    let endings: Vec<String> = report
        .endings
        .iter()
        .map(|(ending, count)| format!("{ending} {count}"))
        .collect();
    out.push_str(&format!("chats ended: {}\n", endings.join(", ")));
    let connectors: Vec<String> = report
        .connectors
        .iter()
        .map(|(connector, count)| format!("{connector} {count}"))
        .collect();
    out.push_str(&format!("connectors: {}\n", connectors.join(", ")));
    match &report.counterexample {
        None => out.push_str("counterexample: none\n"),
        Some(found) => {
            out.push_str("counterexample (shrunk):\n");
            out.push_str(&format!("  case: {:?}\n", found.case));
            for violation in &found.violations {
                out.push_str(&format!(
                    "  violation {}: {}\n",
                    violation.invariant, violation.detail
                ));
            }
            out.push_str("  trace:\n");
            for line in &found.trace {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str(&format!(
                "  replay it in real browsers: save this as scenarios/sim/found-{}.toml, then `cargo run -p harness -- run --scenario sim/found-{} --accept`:\n",
                report.seed, report.seed
            ));
            for line in found.scenario.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}
