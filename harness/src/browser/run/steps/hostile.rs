//! The hostile steps: what an attacker does (a page of another origin, forged messages, another
//! session's redirect, another org's connection, a replayed redirect).

use super::super::*;

impl Run<'_> {
    pub(super) async fn forge_success(&mut self, tab: &str, chat: &str) -> Result<(), StepError> {
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
        if posted != json!(true)
            && self.target.configuration.opener_policy == reference_server::OpenerPolicy::SiteWide
        {
            return Err(StepError::Precondition(format!(
                "tab {tab} has no opener to post a forgery from: the deployment sends Cross-Origin-Opener-Policy same-origin on every page (opener_policy = \"site-wide\"), which severs every opener its pages give, so no page of another origin holds the chat"
            )));
        }
        if posted != json!(true) {
            return Err(StepError::Failed(format!(
                "tab {tab} has no opener to post to"
            )));
        }
        Ok(())
    }

    pub(super) async fn open_hostile_page(
        &mut self,
        tab: &str,
        opens: HostileOpens,
        popup: &str,
        connector: &str,
    ) -> Result<(), StepError> {
        let org = self.identity.org.clone();
        let url = match opens {
            HostileOpens::Callback => self
                .last_callback_url
                .clone()
                .ok_or_else(|| StepError::Failed("no callback page was loaded before".into()))?,
            HostileOpens::Connect => {
                contract::connect_url_for(self.connect_url_template(connector)?, &org)
            }
        };
        let page = self.third_origin().await?.opener_page();
        self.tab_for(tab).await?;
        cmd(self.client.goto(&page).await, "open the hostile page")?;
        if !self.observation.hostile_pages.iter().any(|p| p.tab == tab) {
            self.observation.hostile_pages.push(HostilePage {
                tab: tab.to_owned(),
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

    pub(super) async fn forge_messages(
        &mut self,
        from: &str,
        chat: &str,
        payload: ForgedPayload,
    ) -> Result<(), StepError> {
        let connection = self.card_connection(chat).await?;
        let payloads = forged_payloads(payload, &connection);
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

    pub(super) async fn redirect_from_another_session(
        &mut self,
        tab: &str,
        connector: &str,
    ) -> Result<(), StepError> {
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
                tab: tab.to_owned(),
                tokens_issued,
                other_session_status: status,
            });
        Ok(())
    }

    pub(super) async fn probe_another_org(
        &mut self,
        tab: &str,
        callback_tab: &str,
        connector: &str,
    ) -> Result<(), StepError> {
        let org = self.identity.org.clone();
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
        let mut callback = contract::platform_url(&self.target.platform, contract::CALLBACK_PATH);
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

    pub(super) async fn replay_redirect(&mut self, tab: &str) -> Result<(), StepError> {
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
        let (Some(redirect_uri), Some(state)) = (pairs.get("redirect_uri"), pairs.get("state"))
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
