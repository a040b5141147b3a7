//! `harness mcp-client SERVER_URL`: a platform, as the client the MCP conformance suite tests.
//! The suite (`@modelcontextprotocol/conformance client --command "harness mcp-client"`)
//! starts an MCP server (and its authorization server) for each of its client scenarios and
//! runs this command with the server's URL. The command starts the platform with a connector
//! `notes` that is that server (`--platform` is the command line, `{url}` the server's URL),
//! then plays its user in headless Chromium through the target contract alone: signs in, asks
//! for the notes, connects from the card as often as the chat asks (an authorization server of
//! the suite approves at once), and waits for the agent's answer. It prints how the chat ended
//! (`answered: ...` when it shows the tool's answer) and exits 0 once the flow ran to its end;
//! what the suite judges is what the platform did on the wire.
//!
//! ```sh
//! harness mcp-client --platform 'reference-server --bind 127.0.0.1:0 --mcp-server notes={url}' \
//!     http://localhost:3000/mcp
//! ```

use crate::browser::webdriver::{DriverProcess, Session};
use crate::contract::{self, Engine};
use crate::deployment::process::{KillOnDrop, server_data_dir};
use anyhow::{Context, bail};
use fantoccini::{Client, Locator};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use url::Url;

/// How many times the user connects from a card before giving up (a server that asks for
/// more scope each time must not make the user loop).
const CONNECTS: usize = 3;
/// How long a step waits for the chat.
const WAIT: Duration = Duration::from_secs(20);

/// How the command's output starts when the chat showed the tool's answer.
pub const ANSWERED: &str = "answered:";

/// How the chat ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The agent's answer, from the tool.
    Answered(String),
    /// No answer: what the chat shows instead.
    NotAnswered(String),
}

/// The client ID the suite's `auth/basic-cimd` expects from a client that publishes a client ID
/// metadata document (its authorization server does not fetch it): where the platform says its
/// document is, with `--client-metadata-url`.
pub const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// What a scenario of the suite gives its client beyond the server's URL
/// (`MCP_CONFORMANCE_CONTEXT`, JSON): a client registered beforehand, for `auth/pre-registration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ScenarioContext {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl ScenarioContext {
    /// The context in `MCP_CONFORMANCE_CONTEXT`, if the suite set one.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("MCP_CONFORMANCE_CONTEXT") {
            Ok(json) => serde_json::from_str(&json).with_context(|| {
                format!("MCP_CONFORMANCE_CONTEXT is not the suite's context JSON: {json}")
            }),
            Err(_) => Ok(Self::default()),
        }
    }
}

/// The reference platform's command line: `reference_server` with the MCP server as connector
/// `notes`, the suite's client metadata URL, and the client the scenario registered
/// beforehand, if any.
pub fn reference_template(reference_server: &std::path::Path, context: &ScenarioContext) -> String {
    let mut template = format!(
        "{} --bind 127.0.0.1:0 --data-dir '{{data_dir}}' --mcp-server notes={{url}} --client-metadata-url {{client_metadata_url}}",
        reference_server.display()
    );
    if context.client_id.is_some() {
        template.push_str(" --mcp-client notes={client_id}:{client_secret}");
    }
    template
}

/// The platform's command line for the MCP server at `url`: `{url}`, `{client_id}`,
/// `{client_secret}` (empty when the scenario gives none), `{client_metadata_url}` and
/// `{data_dir}` (an empty directory the harness removes once the platform is stopped) replaced.
pub fn platform_command(
    template: &str,
    url: &Url,
    context: &ScenarioContext,
    data_dir: &std::path::Path,
) -> String {
    template
        .replace("{data_dir}", &data_dir.display().to_string())
        .replace("{url}", url.as_str())
        .replace(
            "{client_id}",
            context.client_id.as_deref().unwrap_or_default(),
        )
        .replace(
            "{client_secret}",
            context.client_secret.as_deref().unwrap_or_default(),
        )
        .replace("{client_metadata_url}", CLIENT_METADATA_URL)
}

/// Runs the client flow against the platform `template` starts for `server`.
pub async fn run(template: &str, server: &Url, context: &ScenarioContext) -> anyhow::Result<Ended> {
    let data_dir = server_data_dir()?;
    let command = platform_command(template, server, context, data_dir.path());
    let mut platform = KillOnDrop(
        Command::new("sh")
            .args(["-c", &format!("exec {command}")])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start the platform: {command}"))?,
    );
    let (platform_url, _) =
        crate::run::spawned::read_announcement(&mut platform.0, &command).await?;
    let platform_url: Url = platform_url.parse()?;
    let driver = DriverProcess::spawn(Engine::Chromium)?;
    let session = Session::start(Engine::Chromium, &driver.url).await?;
    let ended = play(&session.client, &platform_url).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
    ended
}

/// The user's part: sign in, ask, connect while the chat asks for it, read the answer.
async fn play(client: &Client, platform: &Url) -> anyhow::Result<Ended> {
    let (user, org) = ("conformance-user", "conformance");
    let login = contract::login_url(platform, user, org, &contract::chat_path(org, "main"));
    client.goto(login.as_str()).await?;
    wait_for(client, "the chat to be ready", "body[data-ready=true]").await?;
    let home = client.window().await?;
    let input = client
        .find(Locator::Css("[data-testid=chat-input]"))
        .await?;
    input.send_keys("list my notes").await?;
    client
        .find(Locator::Css("[data-testid=chat-send]"))
        .await?
        .click()
        .await?;
    wait_until(client, "the agent's response", |now| {
        now.answers + now.cards + now.tool_errors > 0
    })
    .await?;
    for _ in 0..CONNECTS {
        let now = counts(client).await?;
        if now.answers > 0 {
            break;
        }
        let buttons = client
            .find_all(Locator::Css("[data-testid=connect-card-button]"))
            .await?;
        let mut visible = None;
        for button in buttons.into_iter().rev() {
            if button.is_displayed().await.unwrap_or(false) {
                visible = Some(button);
                break;
            }
        }
        let Some(button) = visible else { break };
        button.click().await?;
        // The provider's tab comes and goes (the suite's authorization server approves at
        // once); the chat answers, shows an error, or asks again.
        let seen = now;
        let _ = wait_until(client, "the chat to resume", |now| {
            now.answers > seen.answers
                || now.card_errors > seen.card_errors
                || now.cards > seen.cards
        })
        .await;
        // A card that shows an error ends the flow: the platform refused what came back.
        let refused = counts(client).await?.card_errors > seen.card_errors;
        for handle in client.windows().await? {
            if handle != home {
                let _ = client.switch_to_window(handle).await;
                let _ = client.close_window().await;
            }
        }
        client.switch_to_window(home.clone()).await?;
        if refused {
            break;
        }
    }
    let shown: serde_json::Value = client
        .execute(
            "const texts = s => Array.from(document.querySelectorAll(s)).map(e => e.textContent.trim()); \
             return { answers: texts('[data-testid=agent-answer]'), \
                      errors: texts('[data-testid=tool-error]').concat(texts('[data-testid=connect-card-error]').filter(t => t)) };",
            vec![],
        )
        .await?;
    Ok(match shown["answers"].as_array().and_then(|a| a.last()) {
        Some(answer) => Ended::Answered(answer.as_str().unwrap_or_default().to_owned()),
        None => Ended::NotAnswered(shown["errors"].to_string()),
    })
}

/// What the chat shows, counted through the contract's selectors.
#[derive(Debug, Clone, Default)]
struct Counts {
    answers: u64,
    cards: u64,
    tool_errors: u64,
    card_errors: u64,
}

async fn counts(client: &Client) -> anyhow::Result<Counts> {
    let state = client
        .execute(
            "const n = s => document.querySelectorAll(s).length; \
             return { answers: n('[data-testid=agent-answer]'), cards: n('[data-testid=connect-card]'), \
                      toolErrors: n('[data-testid=tool-error]'), \
                      cardErrors: Array.from(document.querySelectorAll('[data-testid=connect-card-error]')).filter(e => !e.hidden).length };",
            vec![],
        )
        .await?;
    let count = |key: &str| state[key].as_u64().unwrap_or(0);
    Ok(Counts {
        answers: count("answers"),
        cards: count("cards"),
        tool_errors: count("toolErrors"),
        card_errors: count("cardErrors"),
    })
}

async fn wait_until(
    client: &Client,
    what: &str,
    done: impl Fn(&Counts) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        if done(&counts(client).await?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for(client: &Client, what: &str, css: &str) -> anyhow::Result<()> {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("{what}: {css} did not appear within {WAIT:?}"))?;
    Ok(())
}
