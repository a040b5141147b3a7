//! What the user does in the browser: open the chat in another site's frame, say something,
//! click connect, answer the consent page, disconnect; and the waits a step names.

use super::super::*;
use crate::check::observation::DisconnectMark;
use fantoccini::actions::{
    Actions, InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::elements::Element;
use fantoccini::key::Key;

impl Run<'_> {
    /// The chat in a frame of another site's page, signed in there as that site's user would.
    pub(super) async fn open_embedded_chat(
        &mut self,
        tab: &str,
        chat: &str,
        org: &str,
    ) -> Result<(), StepError> {
        self.tab_for(tab).await?;
        // The frame keeps a session of its own (keyed by the embedding site): it signs
        // in there, as a user of the embedding site would, and lands on the chat.
        let chat_path = contract::chat_path(org, chat);
        let login = self
            .target
            .login_url(&self.identity.user, &self.identity.org, &chat_path);
        let page = self.third_origin().await?.embedding_page();
        cmd(
            self.client.goto(&page).await,
            "open another site's page that embeds the chat",
        )?;
        self.wait_css("[data-testid=embedder]").await?;
        cmd(
            self.client
                .execute(
                    "document.querySelector('[data-testid=embedded-chat]').src = arguments[0]",
                    vec![json!(login.as_str())],
                )
                .await,
            "point the embedding page's frame at the chat",
        )?;
        self.tabs.framed.insert(tab.to_owned());
        self.name_the_frame(tab).await?;
        self.switch(tab).await?;
        match self.wait_css("body[data-ready=true]").await {
            Ok(_) => Ok(()),
            Err(precondition @ StepError::Precondition(_)) => Err(precondition),
            Err(StepError::Timeout(what) | StepError::Failed(what)) => {
                Err(StepError::Failed(format!(
                    "the chat in another site's frame did not reach a ready page ({what}): does the platform keep a session inside a third-party frame? (see docs/browsers.md, embedded chat)"
                )))
            }
        }
    }

    /// Types `text` and sends it; with `wait`, until the chat shows it and the agent's response.
    pub(super) async fn say(&mut self, text: &str, tab: &str, wait: bool) -> Result<(), StepError> {
        self.switch(tab).await?;
        let user_messages = "[data-testid=chat-message][data-role=user]";
        // The agent's response to a message: an answer, a connect card (a reconnect
        // prompt holds one) or a tool error (target-contract.md, What each step waits
        // for).
        let responses =
            "[data-testid=agent-answer], [data-testid=connect-card], [data-testid=tool-error]";
        let before = (
            self.count(user_messages).await?,
            self.count(responses).await?,
        );
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
        *self.said.entry(tab.to_owned()).or_default() += 1;
        if !wait {
            return Ok(());
        }
        self.poll_until(
            "the chat to show the message and the agent's response to it",
            || async {
                Ok(self.count(user_messages).await? > before.0
                    && self.count(responses).await? > before.1)
            },
        )
        .await
    }

    /// Clicks (or presses Enter on) the connect button, and waits for the tab it opens.
    pub(super) async fn connect(
        &mut self,
        tab: &str,
        connector: &Option<String>,
        opens: &str,
        by: &Activation,
        unless_answered: bool,
    ) -> Result<(), StepError> {
        self.switch(tab).await?;
        if unless_answered && self.count("[data-testid=agent-answer]").await? > 0 {
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
                    Activation::CtrlClick => self.click_holding(button, Key::Control).await?,
                    Activation::ShiftClick => self.click_holding(button, Key::Shift).await?,
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

    /// Clicks `button` with `modifier` held down (WebDriver actions: the key goes down, the
    /// mouse moves to the button and clicks, the key comes up), as a user who opens a link in
    /// a background tab or a new window.
    async fn click_holding(&self, button: &Element, modifier: Key) -> Result<(), StepError> {
        let key = KeyActions::new("modifier".into())
            .then(KeyAction::Down {
                value: modifier.into(),
            })
            .pause(Duration::ZERO)
            .pause(Duration::ZERO)
            .then(KeyAction::Up {
                value: modifier.into(),
            });
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: button.clone(),
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
            .pause(Duration::ZERO);
        cmd(
            self.client
                .perform_actions(Actions::from(key).and(mouse))
                .await,
            &format!("click connect holding {modifier:?}"),
        )?;
        cmd(self.client.release_actions().await, "release the keys")
    }

    /// Answers the consent page (after `after_ms`, a user who thinks first).
    pub(super) async fn consent(
        &mut self,
        decision: Decision,
        tab: &str,
        after_ms: Option<u64>,
    ) -> Result<(), StepError> {
        self.switch(tab).await?;
        if let Some(profile) = self.target.provider.profile() {
            return self
                .consent_through_profile(profile, tab, decision, after_ms)
                .await;
        }
        let css = match decision {
            Decision::Allow => "[data-testid=consent-allow]",
            Decision::Deny => "[data-testid=consent-deny]",
        };
        let button = self.wait_css(css).await?;
        if let Some(ms) = after_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.consent_at = Some(Instant::now());
        cmd(button.click().await, "click the consent button")
    }

    /// Clicks disconnect on the connectors page and waits for `revoked`, marking where the
    /// provider's log stood before and after.
    pub(super) async fn disconnect(&mut self, connector: &str, tab: &str) -> Result<(), StepError> {
        self.switch(tab).await?;
        let button = self
            .wait_css(&format!("[data-testid=disconnect-{connector}]"))
            .await?;
        let before_seq = self.provider_seq().await?;
        let status_before = self.connector_status(connector).await?;
        cmd(button.click().await, "click disconnect")?;
        let status = format!("[data-testid=connector-status-{connector}]");
        self.poll_until("the connector to show revoked", || async {
            let element = self.wait_css(&status).await?;
            Ok(element.text().await.unwrap_or_default().trim() == "revoked")
        })
        .await?;
        let after_seq = self.provider_seq().await?;
        self.observation.disconnects.push(DisconnectMark {
            tab: tab.to_owned(),
            connector: connector.to_owned(),
            status_before,
            before_seq,
            after_seq,
        });
        Ok(())
    }

    /// Waits for what `condition` names in `tab`.
    pub(super) async fn wait_for(
        &mut self,
        condition: &Condition,
        tab: &str,
    ) -> Result<(), StepError> {
        match condition {
            Condition::TabClosed => {
                if self.gone.iter().any(|t| t == tab) && !self.tabs.by_name.contains_key(tab) {
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
                    && !self.gone.iter().any(|t| t == tab)
                {
                    self.gone.push(tab.to_owned());
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
                self.answers_seen.insert(tab.to_owned(), now);
                if let Some(at) = self.consent_at {
                    self.observation
                        .resume_latencies_ms
                        .push(at.elapsed().as_millis() as u64);
                }
                Ok(())
            }
            Condition::ConsentPage => {
                self.switch(tab).await?;
                if let Some(profile) = self.target.provider.profile() {
                    return self.profile_page(profile, tab).await.map(|_| ());
                }
                self.wait_css("[data-testid=consent-page]")
                    .await
                    .map(|_| ())
            }
            Condition::CardError => {
                self.switch(tab).await?;
                self.poll_until(&format!("the card error in tab {tab}"), || async {
                    Ok(visible_count(self.client, "[data-testid=connect-card-error]").await? > 0)
                })
                .await
            }
            Condition::ToolError => {
                self.switch(tab).await?;
                self.poll_until(&format!("a tool error in tab {tab}"), || async {
                    Ok(self.count("[data-testid=tool-error]").await? > 0)
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
        }
    }
}
