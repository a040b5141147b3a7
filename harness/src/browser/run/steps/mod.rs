//! The steps of a scenario, one arm each: what the user (or an attacker) does in the browser.

mod hostile;
mod profiled;
mod user;

use super::*;
use crate::browser::webdriver::ReloadWith;

impl Run<'_> {
    pub(super) async fn step(&mut self, step: &Step) -> Result<(), StepError> {
        let org = self.identity.org.clone();
        match step {
            Step::OpenChat {
                tab,
                chat,
                embedded: false,
            } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::chat_path(&org, chat)).await
            }
            Step::OpenChat {
                tab,
                chat,
                embedded: true,
            } => self.open_embedded_chat(tab, chat, &org).await,
            Step::OpenConnectors { tab } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::connectors_path(&org)).await
            }
            Step::Say { text, tab, wait } => self.say(text, tab, *wait).await,
            Step::Connect {
                tab,
                connector,
                opens,
                by,
                unless_answered,
            } => {
                self.connect(tab, connector, opens, by, *unless_answered)
                    .await
            }
            Step::Consent {
                decision,
                tab,
                after_ms,
            } => self.consent(*decision, tab, *after_ms).await,
            Step::CloseTab { tab } => {
                self.switch(tab).await?;
                cmd(self.client.close_window().await, "close the tab")?;
                self.observation.closed_by_user.push(tab.clone());
                if let Recorder::Proxy(_) = self.recorder {
                    self.gone.push(tab.clone());
                }
                self.tabs.by_name.remove(tab);
                if let Some(other) = self.tabs.by_name.values().next().cloned() {
                    cmd(
                        self.client.switch_to_window(other).await,
                        "switch after closing",
                    )?;
                }
                Ok(())
            }
            Step::Reload { tab, hard } => {
                self.switch(tab).await?;
                match self.engine.reload_with(*hard) {
                    ReloadWith::Refresh => cmd(self.client.refresh().await, "reload")?,
                    ReloadWith::Bidi { ignore_cache } => {
                        let context = String::from(self.tabs.handle(tab)?);
                        let reloaded = self
                            .recorder
                            .reload(&context, ignore_cache)
                            .await
                            .map_err(|e| StepError::Failed(format!("reload: {e:#}")))?;
                        if !reloaded && ignore_cache {
                            return Err(StepError::Failed(format!(
                                "a hard reload in {} needs BiDi, and this session has none",
                                self.engine.name()
                            )));
                        }
                        if !reloaded {
                            cmd(self.client.refresh().await, "reload")?;
                        }
                    }
                }
                self.answers_seen.insert(tab.clone(), 0);
                self.wait_css("body[data-ready=true]").await.map(|_| ())
            }
            Step::Disconnect { connector, tab } => self.disconnect(connector, tab).await,
            Step::ProviderRevokes => self
                .target
                .provider
                .revoke_all_grants()
                .await
                .map_err(|e| StepError::Failed(format!("provider revocation: {e}"))),
            Step::RevisitCallback { tab } => {
                let url = self.last_callback_url.clone().ok_or_else(|| {
                    StepError::Failed("no callback page was loaded before".into())
                })?;
                self.tab_for(tab).await?;
                cmd(self.client.goto(&url).await, "open the callback again")
            }
            Step::WaitFor { condition, tab } => self.wait_for(condition, tab).await,
            Step::ForgeSuccess { tab, chat } => self.forge_success(tab, chat).await,
            Step::Pause { ms, clock } => {
                self.pause(*ms, *clock).await;
                Ok(())
            }
            Step::OpenHostilePage {
                tab,
                opens,
                popup,
                connector,
            } => self.open_hostile_page(tab, *opens, popup, connector).await,
            Step::Leave { tab } => {
                self.switch(tab).await?;
                let page = self.third_origin().await?.elsewhere_page();
                cmd(self.client.goto(&page).await, "go to another site")?;
                self.wait_css("[data-testid=elsewhere]").await.map(|_| ())
            }
            Step::GoBack { tab } => {
                self.switch(tab).await?;
                cmd(self.client.back().await, "go back")?;
                // Restored from the back/forward cache or loaded again: either way its answers
                // are counted from here.
                self.answers_seen.insert(tab.clone(), 0);
                self.wait_css("body[data-ready=true]").await.map(|_| ())
            }
            Step::ForgeMessages {
                from,
                chat,
                payload,
            } => self.forge_messages(from, chat, *payload).await,
            Step::ExpectChat { tab, state } => {
                self.switch(tab).await?;
                let read = read_chat(self.client, self.said.get(tab).copied().unwrap_or(0))
                    .await
                    .ok_or_else(|| StepError::Failed(format!("tab {tab} shows no chat")))?;
                self.observation.chat_checks.push(ChatCheck {
                    step: format!(
                        "{}. {}",
                        self.observation.steps.len() + 1,
                        describe_step(step)
                    ),
                    tab: tab.clone(),
                    expected: *state,
                    state: read,
                });
                Ok(())
            }
            Step::RedirectFromAnotherSession { tab, connector } => {
                self.redirect_from_another_session(tab, connector).await
            }
            Step::ProbeAnotherOrg {
                tab,
                callback_tab,
                connector,
            } => self.probe_another_org(tab, callback_tab, connector).await,
            Step::ReplayRedirect { tab } => self.replay_redirect(tab).await,
        }
    }

    /// The connection of the connect card in the chat tab `chat`.
    async fn card_connection(&self, chat: &str) -> Result<String, StepError> {
        self.switch(chat).await?;
        let card = self.wait_css("[data-testid=connect-card]").await?;
        cmd(
            card.attr("data-connection-id").await,
            "read the card's connection",
        )?
        .ok_or_else(|| StepError::Failed("the card has no data-connection-id".into()))
    }

    /// The status API's status of `connector`'s latest connection, asked with this browser's
    /// cookies over plain HTTP (the page sees nothing of it).
    async fn connector_status(&self, connector: &str) -> Result<String, StepError> {
        let failed = |e: String| StepError::Failed(format!("read the status API: {e}"));
        let cookies = cmd(
            self.client.get_all_cookies().await,
            "read the platform's cookies",
        )?;
        let cookie = cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let url = contract::platform_url(
            &self.target.platform,
            &contract::connectors_api_path(&self.identity.org),
        );
        let answer: serde_json::Value = reqwest::Client::new()
            .get(url)
            .header(reqwest::header::COOKIE, cookie)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?
            .json()
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(answer["connectors"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["name"] == connector))
            .and_then(|c| c["status"].as_str())
            .unwrap_or("none")
            .to_owned())
    }

    /// Where the provider's log stands now.
    async fn provider_seq(&self) -> Result<u64, StepError> {
        self.target
            .provider
            .last_seq()
            .await
            .map_err(|e| StepError::Failed(format!("read the provider's requests: {e:#}")))
    }

    async fn provider_requests(&self) -> Result<Vec<fake_provider::LoggedRequest>, StepError> {
        self.target
            .provider
            .requests()
            .await
            .map_err(|e| StepError::Failed(format!("read the provider's requests: {e:#}")))
    }

    /// The connect URL of `connector` learnt at sign-in (with `{org}` for the org).
    fn connect_url_template(&self, connector: &str) -> Result<&str, StepError> {
        self.connect_urls
            .get(connector)
            .map(String::as_str)
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "the connect URL of {connector} was not learnt at sign-in"
                ))
            })
    }

    /// The other browser session, signed in on first use as another user of another org.
    async fn other_session(&mut self) -> Result<&OtherSession, StepError> {
        if self.other.is_none() {
            let identity = Identity {
                org: format!("{}-other", self.identity.org),
                user: format!("{}-other", self.identity.user),
            };
            let login = self.target.login_url(&identity.user, &identity.org, "/");
            let session = OtherSession::sign_in(&self.target.platform, identity.clone(), login)
                .await
                .map_err(|e| StepError::Failed(format!("{e:#}")))?;
            self.observation.other_identity = Some(identity);
            self.other = Some(session);
        }
        Ok(self.other.as_ref().expect("just signed in"))
    }

    /// Names the tab's chat frame by the tab's name, and its top-level page (another site's)
    /// `<tab> (embedder)`: what the recorder reports from the frame is the chat's.
    async fn name_the_frame(&mut self, tab: &str) -> Result<(), StepError> {
        let handle = String::from(self.tabs.handle(tab)?);
        if let Recorder::Bidi(bidi) = self.recorder {
            let tree = bidi
                .command(
                    "browsingContext.getTree",
                    json!({ "root": handle, "maxDepth": 1 }),
                )
                .await
                .map_err(|e| StepError::Failed(format!("list the frames of tab {tab}: {e:#}")))?;
            let frame = tree["contexts"][0]["children"][0]["context"]
                .as_str()
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "tab {tab} shows no frame where the chat should be embedded"
                    ))
                })?;
            self.tabs.ever.insert(handle, format!("{tab} (embedder)"));
            self.tabs.ever.insert(frame.to_owned(), tab.to_owned());
        }
        Ok(())
    }

    /// The harness's third origin (hostile pages, another site), started on first use.
    async fn third_origin(&mut self) -> Result<&HostileOrigin, StepError> {
        if self.hostile.is_none() {
            let hostile = HostileOrigin::start()
                .await
                .map_err(|e| StepError::Failed(format!("start the third origin: {e:#}")))?;
            self.observation.hostile_origin = Some(hostile.origin.clone());
            self.hostile = Some(hostile);
        }
        Ok(self.hostile.as_ref().expect("started above"))
    }
}

impl Run<'_> {
    /// Lets `ms` pass: on every clock, or on the servers' alone where both take it (the
    /// browser's time does not pass); else waited for real, and noted.
    async fn pause(&mut self, ms: u64, clock: PauseClock) {
        let by = Duration::from_millis(ms);
        if clock == PauseClock::Servers {
            match self.target.advance_clocks(by).await {
                Ok(()) => return,
                Err(why) => self.notes.push(format!(
                    "pause {ms} ms on the servers' clocks waited for real instead: {why} (docs/target-contract.md, virtual time)"
                )),
            }
        }
        tokio::time::sleep(by).await;
    }
}
