//! A provider profile: how the harness gets through a real provider's pages (its login and
//! consent), as the OpenID suite's browser tasks do, and what that provider does that a
//! scenario's `[provider]` table can name. `harness run --target URL --provider URL
//! --provider-profile FILE` drives a team's own provider with it (`docs/remote.md`).
//!
//! ```toml
//! description = "panva/oidc-provider 9, development interactions: a login page, then consent."
//!
//! [behaviour]            # what the provider does, in the words of a scenario's [provider]
//! refresh_rotation = "rotate-with-reuse-detection"
//!
//! [[pages]]              # each page the provider may show, tried in order on every page
//! name = "login"
//! url = "/interaction/"                               # text the page's URL contains (optional)
//! shows = "input[name=login]"                         # CSS that tells this page
//! fill = { "input[name=login]" = "alumia-user" }     # CSS = text typed into it
//! allow = "button[type=submit]"                       # clicked to go on (consent: allow)
//! deny = "a[href$='/abort']"                          # clicked when the user denies
//! ```

use crate::scenario::{Scenario, Step};
use fake_provider::Faults;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One page of the provider's, told by a CSS selector, and what the user does on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePage {
    pub name: String,
    /// Text the page's URL contains (`/interaction/`, `/u/login`), as the OpenID suite's browser
    /// tasks match theirs; unset: any URL of the provider.
    #[serde(default)]
    pub url: Option<String>,
    /// A CSS selector present on this page only.
    pub shows: String,
    /// Text typed into fields before going on: CSS selector = text.
    #[serde(default)]
    pub fill: BTreeMap<String, String>,
    /// What is clicked to go on (on a consent page: to allow).
    pub allow: String,
    /// What is clicked when the user denies; unset: the page cannot deny.
    #[serde(default)]
    pub deny: Option<String>,
}

/// A real provider, as the harness drives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    pub description: String,
    /// What the provider does, in the fields of a scenario's `[provider]` table (unset fields:
    /// what the fake provider does by default).
    #[serde(default)]
    pub behaviour: Faults,
    pub pages: Vec<ProfilePage>,
    /// The file it was read from (for reports).
    #[serde(skip)]
    pub path: PathBuf,
}

/// How many of the provider's pages one consent may pass through before the harness gives up.
pub const MAX_PAGES: usize = 8;

impl ProviderProfile {
    /// Reads and checks a profile; errors name the file, the line and what is allowed.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the provider profile {}: {e} (hint: interop/oidc-provider/profile.toml is an example)",
                path.display()
            )
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let mut profile: ProviderProfile = toml::from_str(text).map_err(|error| {
            let line = crate::scenario::toml_error_line(&error, text);
            anyhow::anyhow!(
                "provider profile {}: {line}{}\nhint: a profile has description, [behaviour] (the keys of a scenario's [provider]) and [[pages]] with name, url, shows, fill, allow and deny; interop/oidc-provider/profile.toml is an example",
                path.display(),
                error.message()
            )
        })?;
        if profile.pages.is_empty() {
            anyhow::bail!(
                "provider profile {}: no [[pages]] (hint: name at least the consent page: its `shows` selector and the `allow` button)",
                path.display()
            );
        }
        profile.path = path.to_owned();
        Ok(profile)
    }

    /// Why `scenario` cannot run against this provider, if it cannot: it needs a behaviour
    /// the profile does not declare, or the fake provider's admin API.
    pub fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        let of = |faults: &Faults| match serde_json::to_value(faults) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => unreachable!("faults serialize to an object"),
        };
        let (wanted, declared, default) = (
            of(&scenario.provider),
            of(&self.behaviour),
            of(&Faults::none()),
        );
        let mismatches: Vec<String> = wanted
            .iter()
            .filter(|(key, value)| {
                default.get(*key) != Some(value) && declared.get(*key) != Some(value)
            })
            .map(|(key, value)| {
                format!(
                    "{key} = {value} (the profile says {})",
                    declared
                        .get(key)
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect();
        if !mismatches.is_empty() {
            return Some(format!(
                "needs a provider behaviour the profile {} does not declare: {}; this case runs against the fake provider",
                self.path.display(),
                mismatches.join(", ")
            ));
        }
        let admin: Vec<&str> = scenario
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::ProviderRevokes => Some("provider-revokes"),
                Step::RedirectFromAnotherSession { .. } => Some("redirect-from-another-session"),
                Step::ReplayRedirect { .. } => Some("replay-redirect"),
                _ => None,
            })
            .collect();
        if let Some(step) = admin.first() {
            return Some(format!(
                "the step {step} needs the fake provider's admin API (its request log or grant revocation), which a real provider does not offer"
            ));
        }
        None
    }

    /// Whether `url` is one `page` may be at (its `url` text in it, or no `url` given).
    pub fn is_at(page: &ProfilePage, url: &str) -> bool {
        page.url.as_deref().is_none_or(|part| url.contains(part))
    }

    /// What is clicked on `page`: its allow, or for a denying user its deny (or why it has none).
    pub fn click_for<'a>(&self, page: &'a ProfilePage, allow: bool) -> Result<&'a str, String> {
        match (allow, &page.deny) {
            (true, _) => Ok(&page.allow),
            (false, Some(deny)) => Ok(deny),
            (false, None) => Err(format!(
                "the provider profile {} gives the page {} no `deny`: the user cannot deny there",
                self.path.display(),
                page.name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        Scenario::parse("case.toml", text).unwrap()
    }

    const PROFILE: &str = r#"
description = "a provider"
[behaviour]
refresh_rotation = "rotate"
token_delay_ms = 1500
[[pages]]
name = "consent"
shows = "form"
allow = "button"
"#;

    #[test]
    fn a_case_runs_when_every_fault_it_sets_is_a_behaviour_the_profile_declares() {
        let profile = ProviderProfile::parse(Path::new("p.toml"), PROFILE).unwrap();
        let steps = "[[steps]]\ndo = \"open-chat\"\n";
        let plain = scenario(&format!("description = \"d\"\n{steps}"));
        assert_eq!(profile.cannot_run(&plain), None);
        let declared = scenario(&format!(
            "description = \"d\"\n[provider]\nrefresh_rotation = \"rotate\"\n{steps}"
        ));
        assert_eq!(profile.cannot_run(&declared), None);
        let other = scenario(&format!(
            "description = \"d\"\n[provider]\nrefresh_rotation = \"rotate-with-reuse-detection\"\n{steps}"
        ));
        let reason = profile.cannot_run(&other).unwrap();
        assert!(reason.contains("refresh_rotation"), "{reason}");
        assert!(reason.contains("p.toml"), "{reason}");
        let revoking = scenario(&format!(
            "description = \"d\"\n{steps}[[steps]]\ndo = \"provider-revokes\"\n"
        ));
        let reason = profile.cannot_run(&revoking).unwrap();
        assert!(reason.contains("provider-revokes"), "{reason}");
    }

    #[test]
    fn a_page_with_a_url_is_only_that_page_at_such_a_url() {
        let profile = ProviderProfile::parse(
            Path::new("p.toml"),
            "description = \"d\"\n[[pages]]\nname = \"a\"\nurl = \"/interaction/\"\nshows = \"form\"\nallow = \"b\"\n[[pages]]\nname = \"c\"\nshows = \"form\"\nallow = \"b\"\n",
        )
        .unwrap();
        let (with_url, any) = (&profile.pages[0], &profile.pages[1]);
        assert!(ProviderProfile::is_at(
            with_url,
            "https://p.example/interaction/x1"
        ));
        assert!(!ProviderProfile::is_at(
            with_url,
            "https://p.example/u/login"
        ));
        assert!(ProviderProfile::is_at(any, "https://p.example/u/login"));
        assert_eq!(profile.click_for(with_url, true), Ok("b"));
        let no_deny = profile.click_for(with_url, false).unwrap_err();
        assert!(no_deny.contains("no `deny`"), "{no_deny}");
    }

    #[test]
    fn a_bad_profile_names_the_file_the_line_and_a_hint() {
        let error = ProviderProfile::parse(
            Path::new("mine.toml"),
            "description = \"x\"\n[[pages]]\nname = \"a\"\nshows = \"b\"\nallow = \"c\"\nclick = \"d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("mine.toml"), "{error}");
        assert!(error.contains("line 6"), "{error}");
        assert!(error.contains("hint"), "{error}");
        let empty =
            ProviderProfile::parse(Path::new("mine.toml"), "description = \"x\"\npages = []\n")
                .unwrap_err()
                .to_string();
        assert!(empty.contains("no [[pages]]"), "{empty}");
    }
}
