//! One line per step, for `harness explain`, traces and failure reports.

use super::*;

/// One line per step, for traces and failure reports.
pub fn describe_step(step: &Step) -> String {
    match step {
        Step::OpenChat {
            tab,
            chat,
            embedded,
        } => format!(
            "open-chat {chat} in [{tab}]{}",
            if *embedded {
                ", in a frame of another site"
            } else {
                ""
            }
        ),
        Step::Leave { tab } => format!("leave [{tab}] for another site"),
        Step::GoBack { tab } => format!("go back in [{tab}]"),
        Step::OpenConnectors { tab } => format!("open-connectors in [{tab}]"),
        Step::Say { text, tab, wait } => {
            if *wait {
                format!("say {text:?} in [{tab}]")
            } else {
                format!("say {text:?} in [{tab}], not waiting for the reply")
            }
        }
        Step::Connect {
            tab,
            connector,
            opens,
            by,
            unless_answered,
        } => {
            let how = match by {
                Activation::Click => "",
                Activation::Keyboard => " by keyboard (Enter)",
                Activation::CtrlClick => " by Ctrl+click (a background tab)",
                Activation::ShiftClick => " by Shift+click (a new window)",
            };
            let unless = if *unless_answered {
                ", unless the chat has answered"
            } else {
                ""
            };
            match connector {
                Some(c) => format!("connect {c} from [{tab}]{how}, opening [{opens}]{unless}"),
                None => {
                    format!("connect from the card in [{tab}]{how}, opening [{opens}]{unless}")
                }
            }
        }
        Step::Consent {
            decision,
            tab,
            after_ms,
        } => {
            let name = if *decision == Decision::Allow {
                "allow"
            } else {
                "deny"
            };
            match after_ms {
                Some(ms) => format!("consent {name} in [{tab}] after {ms} ms of thought"),
                None => format!("consent {name} in [{tab}]"),
            }
        }
        Step::CloseTab { tab } => format!("close-tab [{tab}]"),
        Step::Reload { tab, hard: false } => format!("reload [{tab}]"),
        Step::Reload { tab, hard: true } => format!("hard-reload [{tab}] (no cache)"),
        Step::Disconnect { connector, tab } => format!("disconnect {connector} in [{tab}]"),
        Step::ProviderRevokes => "provider-revokes".to_owned(),
        Step::RevisitCallback { tab } => format!("revisit-callback in [{tab}]"),
        Step::WaitFor { condition, tab } => {
            let name = serde_json::to_value(condition)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("wait-for {name} in [{tab}]")
        }
        // The same words for either clock: to the platform and the provider the time passed.
        Step::Pause { ms, .. } => format!("pause {ms} ms"),
        Step::ForgeSuccess { tab, chat } => {
            format!("forge-success from [{tab}] to the opener, naming [{chat}]'s connection")
        }
        Step::OpenHostilePage {
            tab,
            opens,
            popup,
            connector,
        } => match opens {
            HostileOpens::Callback => format!(
                "open-hostile-page in [{tab}] (another site), which opens the last callback URL as [{popup}]"
            ),
            HostileOpens::Connect => format!(
                "open-hostile-page in [{tab}] (another site), which starts connecting {connector} as [{popup}]"
            ),
        },
        Step::ForgeMessages {
            from,
            chat,
            payload,
        } => {
            let what = match payload {
                ForgedPayload::CardConnection => "a success naming [chat]'s connection",
                ForgedPayload::OtherConnection => "a success naming another connection",
                ForgedPayload::Malformed => "7 malformed messages",
                ForgedPayload::Oversized => "an oversized success (20 000-character message)",
            };
            format!(
                "forge-messages: {} from [{from}] on BroadcastChannel and localStorage, and by postMessage in [{chat}]",
                what.replace("[chat]", &format!("[{chat}]"))
            )
        }
        Step::ExpectChat { tab, state } => {
            let name = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("expect-chat {name} in [{tab}]")
        }
        Step::RedirectFromAnotherSession { tab, connector } => format!(
            "redirect-from-another-session: another session signs in to {connector}, its redirect URL opens in [{tab}]"
        ),
        Step::ProbeAnotherOrg {
            tab,
            callback_tab,
            connector,
        } => format!(
            "probe-another-org: from [{tab}], ask about another org's pending {connector} connection; open the callback naming it in [{callback_tab}]"
        ),
        Step::ReplayRedirect { tab } => {
            format!("replay-redirect: the last redirect URL (code and state) again in [{tab}]")
        }
    }
}
