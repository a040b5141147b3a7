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
//! let report = explore(&SimOptions { seed: 1, cases: 100, broken: None }).unwrap();
//! assert!(report.counterexample.is_none());
//! ```

pub mod card;
pub mod case;
pub mod replay;
pub mod world;

use anyhow::Context as _;
use card::CardModule;
use case::{Case, CoopHop, ProviderBehaviour};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use serde::Serialize;
use std::cell::Cell;
pub use world::{BrokenClient, FlowOutcome, SimViolation};

/// What `harness sim` explores.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub cases: u32,
    /// A deliberately broken chat client instead of the served one.
    pub broken: Option<BrokenClient>,
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
    pub invariants: Vec<&'static str>,
    /// How the generated flows' chats ended (`resumed`, `error-shown`, ...), shrinking left out.
    pub endings: std::collections::BTreeMap<&'static str, u64>,
    pub counterexample: Option<Counterexample>,
}

/// Runs flows: one QuickJS engine, one single-threaded runtime and one in-memory platform
/// for all of them (each flow starts from a reset).
pub struct Simulator {
    shared: world::Shared,
}

impl Simulator {
    pub fn new(broken: Option<BrokenClient>) -> anyhow::Result<Self> {
        let module = match broken {
            Some(client) => CardModule::load(&client.module_source())?,
            None => CardModule::reference()?,
        };
        Ok(Self {
            shared: world::Shared::new(module, broken).context("the simulator's platform")?,
        })
    }

    /// Simulates one flow.
    pub fn run(&self, case: &Case) -> anyhow::Result<FlowOutcome> {
        Ok(world::World::new(case, &self.shared)?.run())
    }
}

/// Explores `options.cases` generated flows from `options.seed`; the first failure is shrunk.
pub fn explore(options: &SimOptions) -> anyhow::Result<SimReport> {
    let simulator = Simulator::new(options.broken)?;
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
    let result = runner.run(&case::cases(), |case| {
        flows.set(flows.get() + 1);
        let outcome = simulator
            .run(&case)
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        if flows.get() <= u64::from(options.cases) {
            *endings.borrow_mut().entry(outcome.chat_ended).or_insert(0) += 1;
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
            // The scenario expects what the served client does in the same case.
            let expected = if options.broken.is_some() {
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
        invariants: crate::check::invariants::SIM_CHECKS.to_vec(),
        endings: endings.into_inner(),
        counterexample,
    })
}

/// The case as a scenario file: the same browser configuration, provider and steps.
pub fn scenario_file(
    case: &Case,
    outcome: &FlowOutcome,
    expected_chat: &str,
    options: &SimOptions,
) -> String {
    let first = outcome
        .violations
        .first()
        .map(|v| v.invariant)
        .unwrap_or("no invariant");
    let client = options
        .broken
        .map(|b| format!(" --broken-client {}", b.name()))
        .unwrap_or_default();
    let mut out = format!(
        "#:schema ../scenario.schema.json\ndescription = \"Found by `harness sim --seed {} --cases {}{client}` ({first}){}.\"\n",
        options.seed,
        options.cases,
        if case.duplicate_deliveries {
            "; the simulator also delivered every message twice"
        } else {
            ""
        }
    );
    let mut browser = Vec::new();
    if !case.broadcast_channel {
        browser.push("remove_features = [\"BroadcastChannel\"]".to_owned());
    }
    if !case.storage {
        browser.push("storage = \"throws\"".to_owned());
    }
    if case.noopener {
        browser.push("opener = \"noopener\"".to_owned());
    }
    if !browser.is_empty() {
        out.push_str(&format!("\n[browser]\n{}\n", browser.join("\n")));
    }
    let mut provider: Vec<String> = Vec::new();
    match case.coop {
        Some(CoopHop::ConsentPage) => {
            provider.push("coop_on_consent_page = \"same-origin\"".into())
        }
        Some(CoopHop::Redirect) => provider.push("coop_on_redirect = \"same-origin\"".into()),
        None => {}
    }
    match case.provider {
        ProviderBehaviour::Behaves => {}
        ProviderBehaviour::ErrorRedirect => provider.push(format!(
            "consent = {{ kind = \"error-redirect\", error = \"server_error\", description = {:?} }}",
            case.error_description
        )),
        ProviderBehaviour::TokenUnavailable => {
            provider.push("token_failure = \"server-error\"".into())
        }
        ProviderBehaviour::TokenInvalidGrant => {
            provider.push("token_failure = \"invalid-grant\"".into())
        }
        ProviderBehaviour::SlowToken => provider.push("token_delay_ms = 4000".into()),
    }
    if !provider.is_empty() {
        out.push_str(&format!("\n[provider]\n{}\n", provider.join("\n")));
    }
    for step in &outcome.steps {
        out.push_str(&format!("\n{step}\n"));
    }
    out.push_str("\n[[steps]]\ndo = \"pause\"\nms = 5000\n");
    out.push_str(&format!("\n[expect.chat]\nchat = \"{expected_chat}\"\n"));
    out
}

/// The report as `harness sim` prints it: the same seed and count print the same text.
pub fn render_report(report: &SimReport) -> String {
    let mut out = format!(
        "seed {}\nclient: {}\nflows simulated: {} ({} cases asked, shrinking included)\ninvariants checked: {}\n",
        report.seed,
        report.client,
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
