//! The chat page, a mirror of `chat.js`: it renders the messages, feeds events to the real
//! card decision module (QuickJS) and runs the commands it answers with.

use super::*;

impl World<'_> {
    pub(super) fn messages_path(&self) -> String {
        paths::fill(paths::MESSAGES, &[("org", ORG), ("chat", CHAT)])
    }

    pub(super) fn render(&mut self, tab: usize, messages: &Value) {
        let Some(list) = messages.as_array() else {
            return;
        };
        let mut created = Vec::new();
        for message in list {
            let kind = message["kind"].as_str().unwrap_or("");
            if kind == "tool-error" {
                // The revocation is surfaced (by a re-send's tool call, say).
                self.revoked_since_allow = false;
            }
            if (kind == "connect-card" || kind == "reconnect-card")
                && message["queuedState"] == "waiting"
            {
                let queued_id = message["queuedId"].as_str().unwrap_or("").to_owned();
                let Page::Chat { cards } = &self.tabs[tab].page else {
                    return;
                };
                if cards.iter().any(|c| c.queued_id == queued_id) {
                    continue;
                }
                let connection_id = message["connectionId"].as_str().unwrap_or("").to_owned();
                let options = json!({
                    "connectionId": connection_id,
                    "startUrl": message["startUrl"],
                    "origin": self.platform_url.origin().ascii_serialization(),
                });
                self.next_card += 1;
                let key = self.next_card;
                if let Err(error) = self.module.initial(key, &options) {
                    self.violation(CHAT_RESUMED, format!("{error:#}"));
                    continue;
                }
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards.push(Card {
                        queued_id,
                        connection_id,
                        key,
                        view: "idle".into(),
                        timer: 0,
                    });
                    created.push(cards.len() - 1);
                }
            }
        }
        for card in created {
            self.dispatch(tab, card, json!({"type": "start"}), false);
        }
    }

    pub(super) fn open_chat(&mut self, tab: usize) {
        self.tabs[tab].page = Page::Chat { cards: Vec::new() };
        let answer = self.platform_request("GET", &self.messages_path(), None);
        let messages: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        self.render(tab, &messages["messages"]);
    }

    pub(super) fn chat_tab(&self) -> usize {
        0
    }

    pub(super) fn dispatch(&mut self, tab: usize, card: usize, event: Value, gesture: bool) {
        let Page::Chat { cards } = &self.tabs[tab].page else {
            return;
        };
        let Some(current) = cards.get(card).cloned() else {
            return;
        };
        let commands = match self.module.decide(current.key, &event) {
            Ok(commands) => commands,
            Err(error) => {
                self.violation(CHAT_RESUMED, format!("{error:#}"));
                return;
            }
        };
        let foreign = event["type"] == "channel"
            && event["origin"] != json!(self.platform_url.origin().ascii_serialization());
        if foreign && commands.iter().any(|c| c["type"] != "ignored") {
            self.violation(
                FOREIGN_ORIGIN_IGNORED,
                format!(
                    "a {} message from {} made the card do {}",
                    event["channel"].as_str().unwrap_or(""),
                    event["origin"].as_str().unwrap_or(""),
                    Value::Array(commands.clone())
                ),
            );
        }
        let server_said_connected =
            event["type"] == "poll-answer" && event["status"] == "connected";
        if !server_said_connected && commands.iter().any(|c| c["type"] == "resend") {
            let queued = self.id(&current.queued_id, "QUEUED");
            self.violation(
                RESEND_ONLY_WHEN_CONNECTED,
                format!("the card asked to re-send {queued} on {event}, not on its server saying connected"),
            );
        }
        for command in commands {
            self.run_command(tab, card, &command, gesture);
        }
    }

    pub(super) fn run_command(&mut self, tab: usize, card: usize, command: &Value, gesture: bool) {
        let generation = self.tabs[tab].generation;
        match command["type"].as_str().unwrap_or("") {
            "open" => {
                if !gesture {
                    self.note("[chat] window.open outside a click: the popup is blocked".into());
                    return;
                }
                let count = self
                    .tabs
                    .iter()
                    .filter(|t| t.name.starts_with("provider"))
                    .count();
                let name = if count == 0 {
                    "provider".to_owned()
                } else {
                    format!("provider-{}", count + 1)
                };
                let opener = if self.case.noopener { None } else { Some(tab) };
                let new = self.new_tab(name.clone(), opener);
                let url = command["url"].as_str().unwrap_or("");
                self.note(format!(
                    "[chat] window.open, tab [{name}] ({})",
                    if opener.is_some() {
                        "with opener"
                    } else {
                        "no opener"
                    }
                ));
                if let Ok(url) = self.platform_url.join(url) {
                    self.navigate(new, url, false);
                }
            }
            "show" => {
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].view = command["view"].as_str().unwrap_or("").to_owned();
                }
            }
            "poll" => {
                let after = command["afterMs"].as_u64().unwrap_or(500);
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].timer += 1;
                    let timer = cards[card].timer;
                    self.schedule(
                        after,
                        Event::Timer {
                            tab,
                            generation,
                            card,
                            timer,
                        },
                    );
                }
            }
            "fetch-status" => {
                if let Page::Chat { cards } = &mut self.tabs[tab].page {
                    cards[card].timer += 1;
                }
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::FetchStatus {
                        tab,
                        generation,
                        card,
                    },
                );
            }
            "resend" => {
                let delay = self.latency();
                self.schedule(
                    delay,
                    Event::Resend {
                        tab,
                        generation,
                        card,
                    },
                );
            }
            "reload-messages" => {
                let delay = self.latency();
                self.schedule(delay, Event::ReloadMessages { tab, generation });
            }
            _ => {}
        }
    }

    pub(super) fn card(&self, tab: usize, card: usize) -> Option<Card> {
        match &self.tabs[tab].page {
            Page::Chat { cards } => cards.get(card).cloned(),
            _ => None,
        }
    }

    /// The card, if its tab is still open and has not been reloaded since `generation`.
    pub(super) fn live_card(&self, tab: usize, generation: u64, card: usize) -> Option<Card> {
        let page = &self.tabs[tab];
        if page.closed || page.generation != generation {
            return None;
        }
        self.card(tab, card)
    }

    /// The latest card of the chat that is not settled, and its phase.
    pub(super) fn open_card(&self) -> Option<(usize, String)> {
        let Page::Chat { cards } = &self.tabs[self.chat_tab()].page else {
            return None;
        };
        cards.iter().enumerate().rev().find_map(|(index, card)| {
            let phase = self.module.phase(card.key).ok()?;
            (phase != "done" && phase != "resending").then_some((index, phase))
        })
    }
}
