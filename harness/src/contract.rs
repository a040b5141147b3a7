//! The target contract (`docs/target-contract.md`) as code: every platform path, channel name
//! and storage key the harness knows. Nothing else in the harness names a platform path; a
//! test (`every_platform_path_the_harness_names_is_in_the_contract`) keeps this module and the
//! document in step.
//!
//! What the contract leaves to the platform is learnt from the target, never assumed: the
//! connect URL is what the connectors page opens ([`learn_connect_url`]), the redirect URI is
//! what the provider receives, the wording is whatever the pages say.
//!
//! ```
//! use harness::contract::{Identity, chat_path, connection_status_path};
//! let who = Identity { org: "acme".into(), user: "alice".into() };
//! assert_eq!(chat_path(&who.org, "main"), "/acme/chat/main");
//! assert_eq!(connection_status_path("acme", "c1"), "/api/orgs/acme/connections/c1");
//! ```

use fantoccini::{Client, Locator};
use serde_json::json;
use url::Url;

/// The identity a scenario runs under: its own org and user, so scenarios never share state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub org: String,
    pub user: String,
}

/// Development sign-in: `GET /dev/login?user=&org=&next=` (contract §3).
pub const LOGIN_PATH: &str = "/dev/login";
/// Moves the platform's clock ahead: `POST` JSON `{"advance_ms": N}` (virtual time; a
/// deployment without it has its pauses waited for real).
pub const CLOCK_PATH: &str = "/dev/clock";
/// The callback page the platform's redirect URI ends on (the spec's path, contract §4).
pub const CALLBACK_PATH: &str = "/auth/connector-callback";
/// The BroadcastChannel the callback posts on.
pub const CHANNEL_NAME: &str = "alumia-connector-oauth";
/// The localStorage key the callback writes.
pub const STORAGE_KEY: &str = "alumia:connector-oauth";

/// Path templates, as `docs/target-contract.md` spells them (the test reads these).
pub const PATH_TEMPLATES: [&str; 7] = [
    LOGIN_PATH,
    CLOCK_PATH,
    "/{org}/chat/{chat}",
    "/{org}/connectors",
    CALLBACK_PATH,
    "/api/orgs/{org}/connectors",
    "/api/orgs/{org}/connections/{id}",
];

/// What each step waits for on the platform: a step that does not get it in time stops the
/// run (`step` in the report). `docs/target-contract.md`, "What each step waits for", has one
/// row per entry, word for word (a test keeps them in step, and every selector a step names
/// is in the contract or among the harness's own pages, [`HARNESS_PAGE_SELECTORS`]).
pub const STEP_WAITS: [(&str, &str); 17] = [
    (
        "open-chat",
        "the sign-in (`/dev/login`, any number of the platform's own hops) lands on the chat, whose `<body>` gets `data-ready=\"true\"`; in another site's frame the same, inside the frame",
    ),
    (
        "open-connectors",
        "the same sign-in, landing on the connectors page with `body[data-ready=true]`",
    ),
    (
        "say",
        "`[data-testid=chat-input]` and `[data-testid=chat-send]`; then (unless `wait = false`) the message shown as one more `[data-testid=chat-message][data-role=user]` and the agent's response to it: one more `[data-testid=agent-answer]`, `[data-testid=connect-card]` (a reconnect prompt holds one) or `[data-testid=tool-error]`; any other markup the chat shows is free",
    ),
    (
        "connect",
        "a visible `[data-testid=connect-card-button]` (or `[data-testid=connect-<connector>]` on the connectors page) whose click or Enter calls `window.open` and opens a new tab",
    ),
    (
        "consent",
        "the provider's page in the tab (the fake provider's, or a profile's pages)",
    ),
    ("reload", "`body[data-ready=true]` after the reload"),
    (
        "go-back",
        "`body[data-ready=true]` after Back (loaded again or restored from the back/forward cache)",
    ),
    (
        "disconnect",
        "`[data-testid=disconnect-<connector>]`, then `[data-testid=connector-status-<connector>]` reading `revoked`",
    ),
    (
        "wait-for",
        "`answer`: one more `[data-testid=agent-answer]`; `card-error`: a visible `[data-testid=connect-card-error]`; `tool-error`: a `[data-testid=tool-error]`; `reconnect-prompt`: a `[data-testid=tool-error]` and a `[data-testid=reconnect-prompt]`; `tab-closed`: the tab closes itself; `consent-page`: the provider's page",
    ),
    (
        "expect-chat",
        "nothing: it reads the chat through the selectors of section 4 (a page with `[data-testid=chat-input]` is a chat)",
    ),
    (
        "forge-success",
        "the card's `[data-testid=connect-card]` with its `data-connection-id`, and a provider tab that kept its opener (a deployment that declares site-wide COOP has none: `precondition-failed`)",
    ),
    (
        "forge-messages",
        "the card's `[data-testid=connect-card]` with its `data-connection-id`",
    ),
    (
        "open-hostile-page",
        "the connect URL learnt at sign-in (section 4, What the harness learns)",
    ),
    (
        "redirect-from-another-session",
        "a second sign-in over HTTP (section 3) and the connect URL learnt at sign-in; the platform's redirects are followed",
    ),
    (
        "probe-another-org",
        "the status API (section 4) for another org's connection",
    ),
    (
        "replay-redirect",
        "a redirect to the platform's redirect URI seen earlier in the run",
    ),
    (
        "leave, close-tab, pause, provider-revokes, revisit-callback",
        "nothing of the platform",
    ),
];

/// The selectors of pages the harness or the fake provider serves (a third origin's pages,
/// the consent page): not the platform's, so not in the contract.
pub const HARNESS_PAGE_SELECTORS: [&str; 9] = [
    "[data-testid=hostile-open]",
    "[data-testid=hostile-received]",
    "[data-testid=embedder]",
    "[data-testid=embedded-chat]",
    "[data-testid=elsewhere]",
    "[data-testid=consent-page]",
    "[data-testid=consent-allow]",
    "[data-testid=consent-deny]",
    "[data-testid=connect-{name}]",
];

/// The scope each connector's grants carry (contract §2: `files`, `calendar`; the MCP
/// connector `notes` asks for its server's scope); `None` for a connector the contract does
/// not name.
pub fn connector_scope(connector: &str) -> Option<&'static str> {
    match connector {
        "files" => Some("files.read"),
        "calendar" => Some("calendar.read"),
        "notes" => Some(fake_provider::MCP_SCOPE),
        _ => None,
    }
}

/// `path` (a contract path, from the site's root) on the platform at `platform`, which may
/// live under a base path (`https://staging.example/alumia/`).
pub fn platform_url(platform: &Url, path: &str) -> Url {
    platform
        .join(path.trim_start_matches('/'))
        .expect("a contract path joins a base URL")
}

/// Whether `url` is the callback page.
pub fn is_callback(url: &Url) -> bool {
    url.path().ends_with(CALLBACK_PATH)
}

/// The chat page (contract §4).
pub fn chat_path(org: &str, chat: &str) -> String {
    format!("/{org}/chat/{chat}")
}

/// The connectors page (contract §4).
pub fn connectors_path(org: &str) -> String {
    format!("/{org}/connectors")
}

/// The connectors list of the status API: `{"connectors": [{name, status, connectionId}]}`.
pub fn connectors_api_path(org: &str) -> String {
    format!("/api/orgs/{org}/connectors")
}

/// One connection's status: `{"status": ...}`, 404 for another org's connection.
pub fn connection_status_path(org: &str, connection: &str) -> String {
    format!("/api/orgs/{org}/connections/{connection}")
}

/// The sign-in URL that makes `user` a member of `org` and lands on `next`.
pub fn login_url(platform: &Url, user: &str, org: &str, next: &str) -> Url {
    let mut url = platform_url(platform, LOGIN_PATH);
    url.query_pairs_mut()
        .append_pair("user", user)
        .append_pair("org", org)
        .append_pair("next", next);
    url
}

/// Whether `url` is a page of the contract on the platform: a chat, the connectors page or
/// the callback. Other platform documents (an interstitial at the connect URL, an error
/// page) are the platform's own business.
pub fn contract_page(url: &Url, org: &str) -> Option<&'static str> {
    let path = url.path();
    if is_callback(url) {
        return Some("callback");
    }
    if path.ends_with(&connectors_path(org)) {
        return Some("connectors");
    }
    let chat_prefix = format!("/{org}/chat/");
    let chat = path.rsplit_once(&chat_prefix).map(|(_, chat)| chat);
    match chat {
        Some(chat) if !chat.is_empty() && !chat.contains('/') => Some("chat"),
        _ => None,
    }
}

/// The connect URL of `connector`, learnt from the target: on the connectors page (the current
/// document), the harness replaces `window.open` for a moment, clicks
/// `[data-testid=connect-<connector>]` as a user would and keeps the URL the page asked to
/// open, opening nothing. Returns it with `org` replaced by `{org}`, so another org's
/// session can use it.
pub async fn learn_connect_url(
    client: &Client,
    org: &str,
    connector: &str,
) -> anyhow::Result<String> {
    let css = format!("[data-testid=connect-{connector}]");
    client
        .execute(
            "window.__alumiaHarnessOpened = null; \
             window.__alumiaHarnessOpen = window.open; \
             window.open = function (url) { \
               window.__alumiaHarnessOpened = String(new URL(String(url), location.href)); \
               return null; };",
            vec![],
        )
        .await?;
    let button = client.find(Locator::Css(&css)).await.map_err(|_| {
        anyhow::anyhow!("the connectors page shows no {css} (docs/target-contract.md §4)")
    })?;
    button.click().await?;
    let opened = client
        .execute(
            "var opened = window.__alumiaHarnessOpened; \
             window.open = window.__alumiaHarnessOpen; \
             return opened;",
            vec![json!(null)],
        )
        .await?;
    let Some(url) = opened.as_str() else {
        anyhow::bail!(
            "clicking {css} on the connectors page did not call window.open at once (docs/target-contract.md §4: window.open(url) in the click handler itself)"
        );
    };
    Ok(url.replace(org, "{org}"))
}

/// A connect URL learnt by [`learn_connect_url`], for `org`.
pub fn connect_url_for(template: &str, org: &str) -> String {
    template.replace("{org}", org)
}

/// A browser engine the harness can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Engine {
    /// Chromium through chromedriver.
    Chromium,
    /// Firefox ESR through geckodriver.
    Firefox,
    /// WebKitGTK's MiniBrowser through WebKitWebDriver, on an Xvfb display.
    Webkit,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::Webkit];

    /// The engines' names, in the order of [`Engine::ALL`].
    pub const NAMES: [&'static str; 3] = ["chromium", "firefox", "webkit"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// One engine name.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Engine::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                let close = Engine::ALL
                    .into_iter()
                    .map(|e| e.name())
                    .filter(|known| strsim::levenshtein(known, &name.to_ascii_lowercase()) <= 2)
                    .map(|known| format!(" (did you mean {known:?}?)"))
                    .next()
                    .unwrap_or_default();
                anyhow::anyhow!(
                    "unknown engine {name:?}{close} (allowed: chromium, firefox, webkit, all)"
                )
            })
    }

    /// A comma-separated list of engines, or `all`.
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<Self>> {
        if list == "all" {
            return Ok(Engine::ALL.to_vec());
        }
        let mut engines = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let engine = Engine::parse(name)?;
            if !engines.contains(&engine) {
                engines.push(engine);
            }
        }
        if engines.is_empty() {
            anyhow::bail!("--engine is empty (allowed: chromium, firefox, webkit, all)");
        }
        Ok(engines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contract_pages_are_contract_pages() {
        let page =
            |path: &str| contract_page(&Url::parse(&format!("http://p{path}")).unwrap(), "acme");
        assert_eq!(page("/acme/chat/main"), Some("chat"));
        assert_eq!(page("/acme/connectors"), Some("connectors"));
        assert_eq!(
            page("/auth/connector-callback?oauth_result=error"),
            Some("callback")
        );
        assert_eq!(page("/acme/connectors/files/connect"), None);
        assert_eq!(page("/other/chat/main"), None);
        assert_eq!(page("/acme/chat/main/extra"), None);
    }

    #[test]
    fn a_learnt_connect_url_serves_another_org() {
        let template = "http://p/acme/connectors/files/connect".replace("acme", "{org}");
        assert_eq!(
            connect_url_for(&template, "acme-other"),
            "http://p/acme-other/connectors/files/connect"
        );
    }

    /// Every platform path the harness's sources name is one of the contract's: path-like
    /// literals outside this module fail the test with the file and line.
    #[test]
    fn every_platform_path_the_harness_names_is_in_the_contract() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let document = std::fs::read_to_string(root.join("../docs/target-contract.md")).unwrap();
        for template in PATH_TEMPLATES {
            assert!(
                document.contains(template),
                "docs/target-contract.md does not list {template}, which harness/src/contract.rs names"
            );
        }
        // Literals that look like platform paths: the reference server's route shapes.
        let shapes = [
            "/api/orgs",
            "/connectors",
            "/chat/",
            "/oauth/",
            "/auth/",
            "/dev/login",
            "/connect",
        ];
        let mut found = Vec::new();
        let mut files = Vec::new();
        collect_rust_files(&root.join("src"), &mut files);
        for file in files {
            if file.ends_with("contract.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for literal in code.split('"').skip(1).step_by(2) {
                    // A path the harness could open: absolute, or relative to the target, or
                    // templated by org (scenario ids such as `connectors/x` are not).
                    let path_like = literal.starts_with('/')
                        || literal.starts_with("api/")
                        || literal.starts_with("dev/")
                        || literal.contains("{org}");
                    if path_like && shapes.iter().any(|shape| literal.contains(shape)) {
                        found.push(format!("{}:{}: {literal:?}", file.display(), number + 1));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "harness code names platform paths outside harness/src/contract.rs (use its functions, or learn the URL from the target):\n{}",
            found.join("\n")
        );
    }

    fn collect_rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect_rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
