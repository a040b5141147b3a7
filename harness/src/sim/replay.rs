//! Scenario files the simulator can express, as cases: the differential test runs them in
//! the simulator and compares with the traces real Chromium recorded in `snapshots/`.

use super::case::{Action, Case, Connector, CoopHop, McpServer, ProviderBehaviour, TokenLifetime};
use crate::scenario::{Decision, Feature, OpenerMode, PlatformConfig, Scenario, Step};
use fake_provider::{ConsentFault, Coop, Faults, McpFaults, TokenFailure};

/// The case a scenario describes, or why the simulator cannot express it.
pub fn case_from_scenario(scenario: &Scenario) -> Result<Case, String> {
    let browser = &scenario.browser;
    if browser.latency.is_some() {
        return Err("a slow origin ([browser] latency) is not modelled".into());
    }
    let mcp_connector = PlatformConfig {
        mcp_connector: true,
        ..PlatformConfig::default()
    };
    if !scenario.platform.is_default() && scenario.platform != mcp_connector {
        return Err("a platform configuration the simulator does not model".into());
    }
    let provider = provider_behaviour(&scenario.provider)?;
    let token_lifetime = TokenLifetime::ALL
        .into_iter()
        .find(|lifetime| lifetime.secs() == scenario.provider.token_lifetime_secs)
        .ok_or("a token lifetime the simulator does not model")?;
    let mcp_server = mcp_server(&scenario.provider.mcp)?;
    let mut steps = scenario.steps.iter();
    let opening = (steps.next(), steps.next(), steps.next());
    let (
        Some(Step::OpenChat {
            tab,
            chat,
            embedded: false,
        }),
        Some(Step::Say {
            tab: said_in,
            text: first_message,
            ..
        }),
        Some(Step::Connect {
            tab: from,
            connector: None,
            opens,
            // The simulator's user activates it; by click or by key is the browsers' business.
            ..
        }),
    ) = opening
    else {
        return Err("it does not start with open-chat, say, connect".into());
    };
    if tab != "chat" || chat != "main" || said_in != "chat" || from != "chat" || opens != "provider"
    {
        return Err("it names other tabs or chats than the simulator's".into());
    }
    let connector = if first_message == Connector::Files.request() {
        Connector::Files
    } else if scenario.platform.mcp_connector
        && first_message == Connector::Notes(mcp_server).request()
    {
        Connector::Notes(mcp_server)
    } else {
        return Err("its first message needs no connector the simulator models".into());
    };
    if connector == Connector::Files && scenario.provider.mcp != McpFaults::default() {
        return Err("MCP faults for a connector that is not the MCP server".into());
    }
    let coop = match (
        scenario.provider.coop_on_consent_page,
        scenario.provider.coop_on_redirect,
    ) {
        (None | Some(Coop::ReportOnly), None | Some(Coop::ReportOnly)) => None,
        (Some(Coop::SameOrigin), None) => Some(CoopHop::ConsentPage),
        (None, Some(Coop::SameOrigin)) => Some(CoopHop::Redirect),
        _ => return Err("a COOP the simulator does not model".into()),
    };
    let mut actions = Vec::new();
    for step in steps {
        match step {
            Step::Consent { decision, .. } => actions.push(Action::Consent {
                allow: *decision == Decision::Allow,
            }),
            Step::CloseTab { tab } if tab.starts_with("provider") => {
                actions.push(Action::CloseProviderTab)
            }
            // A hard reload is a reload here: the model has no cache and no service worker.
            Step::Reload { tab, .. } if tab == "chat" => actions.push(Action::ReloadChat),
            Step::Connect {
                tab,
                connector: None,
                unless_answered: false,
                ..
            } if tab == "chat" => actions.push(Action::Retry),
            // The simulated world has one clock: a pause of the servers' clocks is a pause.
            Step::Pause { ms, .. } => actions.push(Action::Wait {
                ms: (*ms).min(u64::from(u16::MAX)) as u16,
            }),
            // Waits and checks change nothing in the world; the simulator runs on after each step.
            Step::WaitFor { .. } | Step::OpenConnectors { .. } | Step::ExpectChat { .. } => {}
            Step::Disconnect {
                connector: name, ..
            } if name == connector.name() => actions.push(Action::Disconnect),
            Step::ProviderRevokes => actions.push(Action::ProviderRevokes),
            Step::Say {
                tab,
                wait: true,
                text,
            } if tab == "chat" && text == connector.request() => actions.push(Action::Say),
            Step::ForgeSuccess { chat, .. } if chat == "chat" => {
                actions.push(Action::ForgedSuccess)
            }
            other => return Err(format!("the step {} is not modelled", other.name())),
        }
    }
    let error_description = match &scenario.provider.consent {
        ConsentFault::ErrorRedirect { description, .. } => description.clone(),
        _ => "down".into(),
    };
    Ok(Case {
        connector,
        token_lifetime,
        error_description,
        broadcast_channel: !browser.remove_features.contains(&Feature::BroadcastChannel),
        storage: browser.storage.writes_at_top_level(),
        noopener: browser.opener == OpenerMode::Noopener,
        coop,
        provider,
        duplicate_deliveries: false,
        actions,
        seed: 0,
    })
}

fn provider_behaviour(faults: &Faults) -> Result<ProviderBehaviour, String> {
    let plain = Faults {
        consent: ConsentFault::AskUser,
        token_delay_ms: 0,
        token_failure: None,
        coop_on_consent_page: None,
        coop_on_redirect: None,
        token_lifetime_secs: Faults::none().token_lifetime_secs,
        mcp: McpFaults::default(),
        ..faults.clone()
    };
    if plain != Faults::none() {
        return Err("provider faults the simulator does not model".into());
    }
    Ok(
        match (&faults.consent, faults.token_failure, faults.token_delay_ms) {
            (ConsentFault::AskUser, None, 0) => ProviderBehaviour::Behaves,
            (ConsentFault::ErrorRedirect { error, .. }, None, 0) if error == "server_error" => {
                ProviderBehaviour::ErrorRedirect
            }
            (ConsentFault::AskUser, Some(TokenFailure::ServerError), 0) => {
                ProviderBehaviour::TokenUnavailable
            }
            (ConsentFault::AskUser, Some(TokenFailure::InvalidGrant), 0) => {
                ProviderBehaviour::TokenInvalidGrant
            }
            (ConsentFault::AskUser, None, 4_000) => ProviderBehaviour::SlowToken,
            _ => return Err("provider faults the simulator does not model".into()),
        },
    )
}

/// The MCP server's behaviour `faults` describe, if the simulator models it.
fn mcp_server(faults: &McpFaults) -> Result<McpServer, String> {
    McpServer::ALL
        .into_iter()
        .find(|&server| super::world::mcp_faults(server) == *faults)
        .ok_or_else(|| "MCP faults the simulator does not model".into())
}
