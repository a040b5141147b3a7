//! The browser model: tabs and their openers, navigation, COOP severing the opener, the callback
//! page's channels (opener, BroadcastChannel, storage), and the event loop in virtual time.

use super::*;

impl World<'_> {
    pub(super) fn new_tab(&mut self, name: String, opener: Option<usize>) -> usize {
        self.tabs.push(Tab {
            name,
            page: Page::Blank,
            opener,
            severed: false,
            closed: false,
            generation: 0,
        });
        self.tabs.len() - 1
    }

    pub(super) fn sever_if_coop(&mut self, tab: usize, response: &ProviderResponse) {
        if header(response, "cross-origin-opener-policy")
            .is_some_and(|v| v.starts_with("same-origin"))
            && self.tabs[tab].opener.is_some()
            && !self.tabs[tab].severed
        {
            self.tabs[tab].severed = true;
            let name = self.tabs[tab].name.clone();
            self.note(format!("[{name}] COOP severs the opener"));
        }
    }

    pub(super) fn navigate(&mut self, tab: usize, mut url: Url, delayed: bool) {
        for _ in 0..10 {
            if self.tabs[tab].closed {
                return;
            }
            if url.origin() == self.platform_url.origin() {
                if url.path() == paths::REDIRECT
                    && !delayed
                    && self.case.provider == ProviderBehaviour::SlowToken
                {
                    // The exchange inside this request takes the token endpoint's delay.
                    self.seq += 1;
                    let at = self.now() + 4_000;
                    self.queue
                        .insert((at, self.seq), Event::Navigate { tab, url });
                    return;
                }
                let answer = self.platform_request("GET", &Self::path_of(&url), None);
                if (300..400).contains(&answer.status)
                    && let Some(location) = answer.location
                    && let Ok(next) = url.join(&location)
                {
                    url = next;
                    continue;
                }
                if contract::is_callback(&url) {
                    self.callback_loaded(tab, url);
                } else {
                    self.tabs[tab].page = Page::Other;
                    let name = self.tabs[tab].name.clone();
                    self.note(format!(
                        "[{name}] shows a platform page ({})",
                        answer.status
                    ));
                }
                return;
            }
            let response = self.provider_call("GET", &url, Vec::new());
            self.sever_if_coop(tab, &response);
            if (300..400).contains(&response.status)
                && let Some(location) = header(&response, "location")
                && let Ok(next) = url.join(location)
            {
                url = next;
                continue;
            }
            let name = self.tabs[tab].name.clone();
            let body = String::from_utf8_lossy(&response.body).into_owned();
            match fake_provider::consent_request_id(&body) {
                Some(request) => {
                    self.tabs[tab].page = Page::Consent {
                        request: request.to_owned(),
                    };
                    self.note(format!("[{name}] shows the consent page"));
                }
                None => {
                    self.tabs[tab].page = Page::Other;
                    self.note(format!(
                        "[{name}] shows a provider page ({})",
                        response.status
                    ));
                }
            }
            return;
        }
    }

    /// The callback page (callback.js): the result on three guarded channels, then close.
    pub(super) fn callback_loaded(&mut self, tab: usize, url: Url) {
        self.tabs[tab].page = Page::Callback;
        let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let mut payload = json!({
            "result": if pairs.get("oauth_result").map(String::as_str) == Some("success") { "success" } else { "error" },
            "connectionId": pairs.get("connection_id").cloned().unwrap_or_default(),
        });
        if let Some(message) = pairs.get("oauth_message").filter(|m| !m.is_empty()) {
            payload["message"] = json!(message);
        }
        let name = self.tabs[tab].name.clone();
        let shown = self.id(
            pairs.get("connection_id").map(String::as_str).unwrap_or(""),
            "CONNECTION",
        );
        self.note(format!(
            "[{name}] callback {} for {shown}",
            payload["result"].as_str().unwrap_or("")
        ));
        self.callback_urls.push(url);
        let copies = if self.case.duplicate_deliveries { 2 } else { 1 };
        let origin = self.platform_url.origin().ascii_serialization();
        // BroadcastChannel carries the object, a storage event its text.
        let channels = [
            (self.case.broadcast_channel, "broadcast", payload.clone()),
            (self.case.storage, "storage", json!(payload.to_string())),
        ];
        for other in 0..self.tabs.len() {
            if other == tab || self.tabs[other].closed {
                continue;
            }
            for _ in 0..copies {
                let generation = self.tabs[other].generation;
                for (live, channel, data) in &channels {
                    if !live {
                        continue;
                    }
                    let delay = self.latency();
                    self.schedule(
                        delay,
                        Event::Deliver {
                            tab: other,
                            generation,
                            channel,
                            origin: origin.clone(),
                            data: data.clone(),
                        },
                    );
                }
            }
        }
        if let Some(opener) = self.tabs[tab].opener
            && !self.tabs[tab].severed
            && !self.tabs[opener].closed
        {
            for _ in 0..copies {
                let delay = self.latency();
                let generation = self.tabs[opener].generation;
                self.schedule(
                    delay,
                    Event::Deliver {
                        tab: opener,
                        generation,
                        channel: "opener",
                        origin: origin.clone(),
                        data: payload.clone(),
                    },
                );
            }
        }
        // Opened by window.open, so script may close it.
        self.schedule(100, Event::Close { tab });
    }

    pub(super) fn fire(&mut self, event: Event) {
        let live = |tabs: &[Tab], tab: usize, generation: u64| {
            !tabs[tab].closed && tabs[tab].generation == generation
        };
        match event {
            Event::Deliver {
                tab,
                generation,
                channel,
                origin,
                data,
            } => {
                if !live(&self.tabs, tab, generation) {
                    return;
                }
                let listens = channel == "opener"
                    || self.broken.is_none_or(BrokenClient::listens_beyond_opener);
                let Page::Chat { cards } = &self.tabs[tab].page else {
                    return;
                };
                if !listens {
                    return;
                }
                let count = cards.len();
                let name = self.tabs[tab].name.clone();
                let shown = self.id(data_connection(&data).as_str(), "CONNECTION");
                self.note(format!(
                    "[{name}] receives on {channel} from {origin}: {shown}"
                ));
                for card in 0..count {
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "channel", "channel": channel, "origin": origin, "data": data}),
                        false,
                    );
                }
            }
            Event::Timer {
                tab,
                generation,
                card,
                timer,
            } => {
                if live(&self.tabs, tab, generation)
                    && self.card(tab, card).is_some_and(|c| c.timer == timer)
                {
                    self.dispatch(tab, card, json!({"type": "timer", "name": "poll"}), false);
                }
            }
            Event::FetchStatus {
                tab,
                generation,
                card,
            } => {
                let Some(current) = self.live_card(tab, generation, card) else {
                    return;
                };
                let (status, body) = self.connection_status(&current.connection_id);
                let event = if status == 200 {
                    json!({"type": "poll-answer", "status": body["status"], "message": body["message"]})
                } else {
                    json!({"type": "poll-failed"})
                };
                self.dispatch(tab, card, event, false);
            }
            Event::Resend {
                tab,
                generation,
                card,
            } => {
                let Some(current) = self.live_card(tab, generation, card) else {
                    return;
                };
                let count = self
                    .resend_requests
                    .entry((tab, current.queued_id.clone()))
                    .or_default();
                *count += 1;
                let count = *count;
                let queued = self.id(&current.queued_id, "QUEUED");
                let name = self.tabs[tab].name.clone();
                if count > 1 {
                    self.violation(
                        RESEND_AT_MOST_ONCE,
                        format!("the card in [{name}] asked to re-send {queued} {count} times"),
                    );
                }
                let answer = self.platform_request(
                    "POST",
                    &paths::fill(
                        paths::RESEND,
                        &[("org", ORG), ("chat", CHAT), ("id", &current.queued_id)],
                    ),
                    Some(json!({})),
                );
                self.note(format!("[{name}] re-sends {queued} -> {}", answer.status));
                let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                if answer.status == 200 {
                    self.render(tab, &body["messages"]);
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "resend-answer", "ok": true, "resent": body["resent"]}),
                        false,
                    );
                } else {
                    self.dispatch(
                        tab,
                        card,
                        json!({"type": "resend-answer", "ok": false}),
                        false,
                    );
                }
            }
            Event::ReloadMessages { tab, generation } => {
                if live(&self.tabs, tab, generation) {
                    let answer = self.platform_request("GET", &self.messages_path(), None);
                    let messages: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                    self.render(tab, &messages["messages"]);
                }
            }
            Event::Navigate { tab, url } => self.navigate(tab, url, true),
            Event::Close { tab } => {
                if !self.tabs[tab].closed {
                    self.tabs[tab].closed = true;
                    let name = self.tabs[tab].name.clone();
                    self.note(format!("[{name}] closed itself"));
                }
            }
        }
    }

    pub(super) fn run_until(&mut self, until: u64) {
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > until {
                break;
            }
            let event = self.queue.remove(&(at, seq)).expect("the first event");
            self.now.store(at, Ordering::SeqCst);
            self.fire(event);
        }
        self.now.store(until.max(self.now()), Ordering::SeqCst);
    }
}
