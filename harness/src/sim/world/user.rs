//! The user: says something, clicks connect, and does the case's actions in turn.

use super::*;

impl World<'_> {
    pub(super) fn say(&mut self) {
        let text = self.case.connector.request();
        let answer =
            self.platform_request("POST", &self.messages_path(), Some(json!({ "text": text })));
        self.said += 1;
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let kinds: Vec<&str> = body["messages"]
            .as_array()
            .map(|list| list.iter().filter_map(|m| m["kind"].as_str()).collect())
            .unwrap_or_default();
        self.note(format!("[chat] says \"{text}\" -> {}", kinds.join(", ")));
        if self.revoked_since_allow
            && !(kinds.contains(&"tool-error") && kinds.contains(&"reconnect-card"))
        {
            self.violation(
                REVOCATION,
                format!(
                    "after the revocation the tool call gave {}",
                    kinds.join(", ")
                ),
            );
        }
        // The first tool call after a revocation surfaces it (as the browser tier checks).
        self.revoked_since_allow = false;
        let tab = self.chat_tab();
        self.render(tab, &body["messages"]);
        self.steps.push(Step::Say {
            text: text.into(),
            tab: "chat".into(),
            wait: true,
        });
    }

    pub(super) fn click_connect(&mut self) -> bool {
        let Some((card, phase)) = self.open_card() else {
            return false;
        };
        let opened_before = self.tabs.len();
        let action = if phase == "failed" {
            "retry"
        } else {
            "connect"
        };
        let tab = self.chat_tab();
        self.dispatch(tab, card, json!({"type": "user", "action": action}), true);
        if self.tabs.len() > opened_before {
            let name = self.tabs[self.tabs.len() - 1].name.clone();
            self.steps.push(Step::Connect {
                tab: "chat".into(),
                connector: None,
                opens: name,
                by: Activation::Click,
                unless_answered: false,
            });
        }
        true
    }

    pub(super) fn act(&mut self, action: Action) {
        match action {
            Action::Consent { allow } => {
                let Some(tab) = (0..self.tabs.len()).rev().find(|&t| {
                    !self.tabs[t].closed && matches!(self.tabs[t].page, Page::Consent { .. })
                }) else {
                    return;
                };
                let Page::Consent { request } = self.tabs[tab].page.clone() else {
                    return;
                };
                let decision = if allow { "allow" } else { "deny" };
                let name = self.tabs[tab].name.clone();
                self.note(format!("[{name}] the user clicks {decision}"));
                self.steps.push(Step::Consent {
                    decision: if allow {
                        Decision::Allow
                    } else {
                        Decision::Deny
                    },
                    tab: name,
                    after_ms: None,
                });
                if allow {
                    self.revoked_since_allow = false;
                }
                // The page is gone once the form is sent (the next one may take a while).
                self.tabs[tab].page = Page::Other;
                let url = self.provider_url.join("consent").expect("a URL");
                let body = format!("request={request}&decision={decision}").into_bytes();
                let response = self.provider_call("POST", &url, body);
                self.sever_if_coop(tab, &response);
                if let Some(location) = header(&response, "location")
                    && let Ok(next) = url.join(location)
                {
                    self.navigate(tab, next, false);
                }
            }
            Action::CloseProviderTab => {
                let Some(tab) = (0..self.tabs.len())
                    .rev()
                    .find(|&t| !self.tabs[t].closed && self.tabs[t].name.starts_with("provider"))
                else {
                    return;
                };
                self.tabs[tab].closed = true;
                let name = self.tabs[tab].name.clone();
                self.note(format!("[{name}] closed by the user"));
                self.steps.push(Step::CloseTab { tab: name });
            }
            Action::ReloadChat => {
                let tab = self.chat_tab();
                self.tabs[tab].generation += 1;
                self.note("[chat] reloaded".into());
                self.open_chat(tab);
                self.steps.push(Step::Reload {
                    tab: "chat".into(),
                    hard: false,
                });
            }
            Action::Retry => {
                self.click_connect();
            }
            Action::Wait { ms } => {
                self.steps.push(Step::Pause {
                    ms: u64::from(ms),
                    clock: crate::scenario::PauseClock::Real,
                });
                let until = self.now() + u64::from(ms);
                self.run_until(until);
            }
            Action::Disconnect => {
                let answer =
                    self.platform_request("GET", &contract::connectors_api_path(ORG), None);
                let list: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                let name = self.case.connector.name();
                let Some(connector) = list["connectors"]
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["name"] == name))
                    .cloned()
                else {
                    return;
                };
                if connector["status"] != "connected" && connector["status"] != "pending" {
                    return;
                }
                let id = connector["connectionId"].as_str().unwrap_or("").to_owned();
                let before_seq = self.provider_seq();
                let answer = self.platform_request(
                    "POST",
                    &paths::fill(paths::DISCONNECT, &[("org", ORG), ("id", &id)]),
                    Some(json!({})),
                );
                self.disconnects
                    .push(crate::check::credentials::Disconnected {
                        connector: name.into(),
                        was_connected: connector["status"] == "connected",
                        before_seq,
                        after_seq: self.provider_seq(),
                    });
                let shown = self.id(&id, "CONNECTION");
                self.note(format!(
                    "[connectors] disconnects {shown} -> {}",
                    answer.status
                ));
                if connector["status"] == "connected" {
                    self.revoked_since_allow = true;
                }
                if !self.connectors_open {
                    self.connectors_open = true;
                    self.steps.push(Step::OpenConnectors {
                        tab: "connectors".into(),
                    });
                }
                self.steps.push(Step::Disconnect {
                    connector: name.into(),
                    tab: "connectors".into(),
                });
            }
            Action::ProviderRevokes => {
                let count = self.provider.revoke_all_grants(None);
                self.note(format!("[provider] revokes {count} grant(s)"));
                if count > 0 {
                    self.revoked_since_allow = true;
                }
                self.steps.push(Step::ProviderRevokes);
            }
            Action::Say => self.say(),
            Action::SecondChatTab => {
                if self.tabs.iter().any(|t| t.name == "chat-2") {
                    return;
                }
                let tab = self.new_tab("chat-2".into(), None);
                self.note("[chat-2] opens the same chat".into());
                self.open_chat(tab);
                self.steps.push(Step::OpenChat {
                    tab: "chat-2".into(),
                    chat: CHAT.into(),
                    embedded: false,
                });
            }
            Action::ForgedSuccess => {
                // The provider's page (another origin) posts to its opener, the chat.
                let Some(from) = (0..self.tabs.len()).rev().find(|&t| {
                    let tab = &self.tabs[t];
                    !tab.closed
                        && !tab.severed
                        && tab.opener == Some(self.chat_tab())
                        && matches!(tab.page, Page::Consent { .. })
                }) else {
                    return;
                };
                let Some((card, _)) = self.open_card() else {
                    return;
                };
                let tab = self.chat_tab();
                let Some(current) = self.card(tab, card) else {
                    return;
                };
                let generation = self.tabs[tab].generation;
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::Deliver {
                        tab,
                        generation,
                        channel: "opener",
                        origin: self.provider_url.origin().ascii_serialization(),
                        data: json!({"result": "success", "connectionId": current.connection_id}),
                    },
                );
                let name = self.tabs[from].name.clone();
                self.note(format!("[{name}] posts a forged success to the chat"));
                self.steps.push(Step::ForgeSuccess {
                    tab: name,
                    chat: "chat".into(),
                });
            }
        }
    }

    /// Runs the whole flow: sign in, open the chat, say, connect, the case's actions, settle.
    pub fn run(mut self) -> FlowOutcome {
        let login = format!(
            "{}?user={USER}&org={ORG}&next={}",
            contract::LOGIN_PATH,
            contract::chat_path(ORG, CHAT)
        );
        self.platform_request("GET", &login, None);
        let chat = self.new_tab("chat".into(), None);
        self.open_chat(chat);
        self.steps.push(Step::OpenChat {
            tab: "chat".into(),
            chat: CHAT.into(),
            embedded: false,
        });
        self.say();
        self.click_connect();
        let after_connect = self.now() + AFTER_ACTION_MS;
        self.run_until(after_connect);
        for action in self.case.actions.clone() {
            self.act(action);
            let until = self.now() + AFTER_ACTION_MS;
            self.run_until(until);
        }
        let settle = self.now() + SETTLE_MS;
        self.run_until(settle);
        self.finish()
    }
}
