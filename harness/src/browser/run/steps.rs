//! The steps of a scenario, one arm each: what the user (or an attacker) does in the browser.

use super::*;

impl Run<'_> {
    pub(super) async fn step(&mut self, step: &Step) -> Result<(), StepError> {
        let org = self.identity.org.clone();
        match step {
            Step::OpenChat { tab, chat } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::chat_path(&org, chat)).await
            }
            Step::OpenConnectors { tab } => {
                self.tab_for(tab).await?;
                self.goto_ready(&contract::connectors_path(&org)).await
            }
            Step::Say { text, tab, wait } => {
                self.switch(tab).await?;
                let before = self.count("[data-testid=chat-message]").await?;
                let input = self.wait_css("[data-testid=chat-input]").await?;
                cmd(input.send_keys(text).await, "type the message")?;
                cmd(
                    self.client
                        .find(Locator::Css("[data-testid=chat-send]"))
                        .await,
                    "find [data-testid=chat-send]",
                )?
                .click()
                .await
                .map_err(|e| StepError::Failed(format!("click send: {e}")))?;
                *self.said.entry(tab.clone()).or_default() += 1;
                if !wait {
                    return Ok(());
                }
                self.poll_until("the chat to answer the message", || async {
                    Ok(self.count("[data-testid=chat-message]").await? >= before + 2)
                })
                .await
            }
            Step::Connect {
                tab,
                connector,
                opens,
                by,
                unless_answered,
            } => {
                self.switch(tab).await?;
                if *unless_answered && self.count("[data-testid=agent-answer]").await? > 0 {
                    self.step_note = Some("the chat has answered".into());
                    return Ok(());
                }
                let events_before = self.recorder.events().len();
                let windows_before = self.windows().await?;
                let css = match connector {
                    Some(name) => format!("[data-testid=connect-{name}]"),
                    None => "[data-testid=connect-card-button]".to_owned(),
                };
                self.wait_css(&css).await?;
                let buttons = cmd(
                    self.client.find_all(Locator::Css(&css)).await,
                    "find connect buttons",
                )?;
                let mut clicked = false;
                for button in buttons.iter().rev() {
                    if button.is_displayed().await.unwrap_or(false) {
                        match by {
                            Activation::Click => cmd(button.click().await, "click connect")?,
                            // Element Send Keys focuses the button, then presses Enter on it.
                            Activation::Keyboard => cmd(
                                button.send_keys(ENTER_KEY).await,
                                "press Enter on the connect button",
                            )?,
                        }
                        clicked = true;
                        break;
                    }
                }
                if !clicked {
                    return Err(StepError::Failed(format!("no visible {css} to click")));
                }
                self.await_new_tab(events_before, &windows_before, opens, &css)
                    .await
            }
            Step::Consent {
                decision,
                tab,
                after_ms,
            } => {
                self.switch(tab).await?;
                let css = match decision {
                    Decision::Allow => "[data-testid=consent-allow]",
                    Decision::Deny => "[data-testid=consent-deny]",
                };
                let button = self.wait_css(css).await?;
                if let Some(ms) = after_ms {
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                }
                self.consent_at = Some(Instant::now());
                cmd(button.click().await, "click the consent button")
            }
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
            Step::Reload { tab } => {
                self.switch(tab).await?;
                cmd(self.client.refresh().await, "reload")?;
                self.answers_seen.insert(tab.clone(), 0);
                self.wait_css("body[data-ready=true]").await.map(|_| ())
            }
            Step::Disconnect { connector, tab } => {
                self.switch(tab).await?;
                let button = self
                    .wait_css(&format!("[data-testid=disconnect-{connector}]"))
                    .await?;
                cmd(button.click().await, "click disconnect")?;
                let status = format!("[data-testid=connector-status-{connector}]");
                self.poll_until("the connector to show revoked", || async {
                    let element = self.wait_css(&status).await?;
                    Ok(element.text().await.unwrap_or_default().trim() == "revoked")
                })
                .await
            }
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
            Step::WaitFor { condition, tab } => match condition {
                Condition::TabClosed => {
                    if self.gone.contains(tab) && !self.tabs.by_name.contains_key(tab) {
                        return Ok(());
                    }
                    let handle = self.tabs.handle(tab)?;
                    let deadline = Instant::now() + STEP_TIMEOUT;
                    while self.windows().await?.contains(&handle) {
                        if Instant::now() > deadline {
                            return Err(StepError::Timeout(format!(
                                "tab {tab} did not close within {STEP_TIMEOUT:?}"
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    if let Recorder::Proxy(_) = self.recorder
                        && !self.gone.contains(tab)
                    {
                        self.gone.push(tab.clone());
                    }
                    self.tabs.by_name.remove(tab);
                    Ok(())
                }
                Condition::Answer => {
                    self.switch(tab).await?;
                    let seen = self.answers_seen.get(tab).copied().unwrap_or(0);
                    self.poll_until(&format!("an agent answer in tab {tab}"), || async {
                        Ok(self.count("[data-testid=agent-answer]").await? > seen)
                    })
                    .await?;
                    let now = self.count("[data-testid=agent-answer]").await?;
                    self.answers_seen.insert(tab.clone(), now);
                    if let Some(at) = self.consent_at {
                        self.observation
                            .resume_latencies_ms
                            .push(at.elapsed().as_millis() as u64);
                    }
                    Ok(())
                }
                Condition::ConsentPage => {
                    self.switch(tab).await?;
                    self.wait_css("[data-testid=consent-page]")
                        .await
                        .map(|_| ())
                }
                Condition::CardError => {
                    self.switch(tab).await?;
                    self.poll_until(&format!("the card error in tab {tab}"), || async {
                        Ok(
                            visible_count(self.client, "[data-testid=connect-card-error]").await?
                                > 0,
                        )
                    })
                    .await
                }
                Condition::ReconnectPrompt => {
                    self.switch(tab).await?;
                    self.poll_until(
                        &format!("a tool error and a reconnect prompt in tab {tab}"),
                        || async {
                            Ok(self.count("[data-testid=tool-error]").await? > 0
                                && self.count("[data-testid=reconnect-prompt]").await? > 0)
                        },
                    )
                    .await
                }
            },
            Step::ForgeSuccess { tab, chat } => {
                let connection = self.card_connection(chat).await?;
                self.switch(tab).await?;
                let posted = cmd(
                    self.client
                        .execute(
                            "if (!window.opener) { return false; } \
                             window.opener.postMessage({ result: 'success', connectionId: arguments[0] }, '*'); \
                             return true;",
                            vec![json!(connection)],
                        )
                        .await,
                    "post the forged message",
                )?;
                if posted != json!(true) {
                    return Err(StepError::Failed(format!(
                        "tab {tab} has no opener to post to"
                    )));
                }
                Ok(())
            }
            Step::Pause { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(())
            }
            Step::OpenHostilePage {
                tab,
                opens,
                popup,
                connector,
            } => {
                let url = match opens {
                    HostileOpens::Callback => self.last_callback_url.clone().ok_or_else(|| {
                        StepError::Failed("no callback page was loaded before".into())
                    })?,
                    HostileOpens::Connect => {
                        contract::connect_url_for(self.connect_url_template(connector)?, &org)
                    }
                };
                let page = self.third_origin().await?.opener_page();
                self.tab_for(tab).await?;
                cmd(self.client.goto(&page).await, "open the hostile page")?;
                if !self.observation.hostile_pages.iter().any(|p| &p.tab == tab) {
                    self.observation.hostile_pages.push(HostilePage {
                        tab: tab.clone(),
                        received: None,
                    });
                }
                let button = self.wait_css("[data-testid=hostile-open]").await?;
                cmd(
                    self.client
                        .execute(
                            "document.body.setAttribute('data-open', arguments[0]);",
                            vec![json!(url)],
                        )
                        .await,
                    "tell the hostile page what to open",
                )?;
                let events_before = self.recorder.events().len();
                let windows_before = self.windows().await?;
                cmd(button.click().await, "click the hostile page's button")?;
                self.await_new_tab(
                    events_before,
                    &windows_before,
                    popup,
                    "the hostile page's button",
                )
                .await
            }
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
            } => {
                let connection = self.card_connection(chat).await?;
                let payloads = forged_payloads(*payload, &connection);
                for data in &payloads {
                    self.observation.forged_payloads.push(data.clone());
                    self.observation
                        .forged_payloads
                        .push(json!(storage_text(data)));
                }
                self.switch(from).await?;
                cmd(
                    self.client
                        .execute(
                            "var name = arguments[1], key = arguments[2]; \
                             arguments[0].forEach(function (data) { \
                               try { var channel = new BroadcastChannel(name); channel.postMessage(data); channel.close(); } catch (e) {} \
                               try { localStorage.setItem(key, typeof data === 'string' ? data : JSON.stringify(data)); } catch (e) {} \
                             }); return true;",
                            vec![
                                json!(payloads),
                                json!(contract::CHANNEL_NAME),
                                json!(contract::STORAGE_KEY),
                            ],
                        )
                        .await,
                    "forge messages on BroadcastChannel and localStorage",
                )?;
                self.switch(chat).await?;
                cmd(
                    self.client
                        .execute(
                            "arguments[0].forEach(function (data) { window.postMessage(data, location.origin); }); return true;",
                            vec![json!(payloads)],
                        )
                        .await,
                    "forge messages with postMessage",
                )?;
                // Let every delivery and the card's confirmation with its server happen.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(())
            }
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
                let template = self.connect_url_template(connector)?.to_owned();
                let other = self.other_session().await?;
                let authorize = other
                    .start_connect(&template)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let redirect = other
                    .consent(&authorize)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let before = self.provider_requests().await?.len();
                self.tab_for(tab).await?;
                cmd(
                    self.client.goto(redirect.as_str()).await,
                    "open the other session's redirect",
                )?;
                let tokens_issued = self
                    .provider_requests()
                    .await?
                    .iter()
                    .skip(before)
                    .filter(|r| r.path == "/token" && r.status == 200)
                    .count();
                let other = self.other_session().await?;
                let (status, _) = other
                    .connector_status(connector)
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                self.observation
                    .cross_session_redirects
                    .push(CrossSessionRedirect {
                        tab: tab.clone(),
                        tokens_issued,
                        other_session_status: status,
                    });
                Ok(())
            }
            Step::ProbeAnotherOrg {
                tab,
                callback_tab,
                connector,
            } => {
                let template = self.connect_url_template(connector)?.to_owned();
                let other = self.other_session().await?;
                let failed = |e: anyhow::Error| StepError::Failed(format!("{e:#}"));
                other.start_connect(&template).await.map_err(failed)?;
                let (_, connection) = other.connector_status(connector).await.map_err(failed)?;
                let other_org = other.identity.org.clone();
                self.switch(tab).await?;
                for path in [
                    contract::connection_status_path(&org, &connection),
                    contract::connection_status_path(&other_org, &connection),
                    contract::connectors_api_path(&other_org),
                ] {
                    let url = contract::platform_url(&self.target.platform, &path);
                    let answer = cmd(
                        self.client
                            .execute_async(
                                "var done = arguments[arguments.length - 1]; \
                                 fetch(arguments[0], { credentials: 'same-origin', headers: { accept: 'application/json' } }) \
                                   .then(function (r) { return r.text().then(function (t) { done({ status: r.status, body: t }); }); }) \
                                   .catch(function (e) { done({ status: 0, body: String(e) }); });",
                                vec![json!(url.as_str())],
                            )
                            .await,
                        "ask the platform from the page",
                    )?;
                    self.observation.other_org_probes.push(OtherOrgProbe {
                        what: format!("GET {path}"),
                        by_its_member: false,
                        status: answer["status"].as_u64().unwrap_or(0) as u16,
                        body: answer["body"].as_str().unwrap_or("").to_owned(),
                        connection_id: connection.clone(),
                    });
                }
                let mut callback =
                    contract::platform_url(&self.target.platform, contract::CALLBACK_PATH);
                callback
                    .query_pairs_mut()
                    .append_pair("oauth_result", "success")
                    .append_pair("connection_id", &connection)
                    .append_pair("oauth_message", "Connected to Files.");
                self.tab_for(callback_tab).await?;
                cmd(
                    self.client.goto(callback.as_str()).await,
                    "open the callback naming the other org's connection",
                )?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let other = self.other_session().await?;
                let (status, body) = other.connection_status(&connection).await.map_err(failed)?;
                self.observation.other_org_probes.push(OtherOrgProbe {
                    what: format!(
                        "GET {}",
                        contract::connection_status_path(&other_org, &connection)
                    ),
                    by_its_member: true,
                    status,
                    body,
                    connection_id: connection,
                });
                Ok(())
            }
            Step::ReplayRedirect { tab } => {
                let requests = self.provider_requests().await?;
                let authorize = requests
                    .iter()
                    .rev()
                    .find(|r| r.path == "/authorize")
                    .ok_or_else(|| StepError::Failed("no sign-in reached the provider".into()))?;
                let pairs: BTreeMap<String, String> =
                    url::form_urlencoded::parse(authorize.query.as_bytes())
                        .into_owned()
                        .collect();
                let secrets = self
                    .target
                    .provider
                    .secrets()
                    .await
                    .map_err(|e| StepError::Failed(format!("{e:#}")))?;
                let code = secrets
                    .all()
                    .iter()
                    .rev()
                    .find(|s| s.kind == fake_provider::SecretKind::AuthorizationCode)
                    .map(|s| s.value.clone())
                    .ok_or_else(|| StepError::Failed("the provider issued no code".into()))?;
                let (Some(redirect_uri), Some(state)) =
                    (pairs.get("redirect_uri"), pairs.get("state"))
                else {
                    return Err(StepError::Failed(
                        "the last authorization request has no redirect_uri or state".into(),
                    ));
                };
                let mut url = url::Url::parse(redirect_uri)
                    .map_err(|e| StepError::Failed(format!("redirect_uri: {e}")))?;
                url.query_pairs_mut()
                    .append_pair("code", &code)
                    .append_pair("state", state);
                self.tab_for(tab).await?;
                cmd(
                    self.client.goto(url.as_str()).await,
                    "open the platform's redirect URL again",
                )
            }
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

/// The messages a `forge-messages` step sends.
fn forged_payloads(payload: ForgedPayload, card: &str) -> Vec<serde_json::Value> {
    match payload {
        ForgedPayload::CardConnection => vec![json!({ "result": "success", "connectionId": card })],
        ForgedPayload::OtherConnection => {
            vec![json!({ "result": "success", "connectionId": "conn-of-someone-else" })]
        }
        ForgedPayload::Malformed => vec![
            json!("success"),
            json!("{\"result\": \"success\", \"connectionId\":"),
            json!([card]),
            json!({ "result": "success" }),
            json!({ "result": "success", "connectionId": card, "token": "forged" }),
            json!({ "result": "connected", "connectionId": card }),
            json!({ "result": "success", "connectionId": 42 }),
        ],
        ForgedPayload::Oversized => vec![json!({
            "result": "success",
            "connectionId": card,
            "message": "A".repeat(20_000),
        })],
    }
}

/// How a payload is written to localStorage: strings as they are, the rest as JSON.
fn storage_text(data: &serde_json::Value) -> String {
    match data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
