//! The consent step against a real provider: through its pages, as its profile tells them.

use super::*;
use crate::deployment::profile::{MAX_PAGES, ProfilePage, ProviderProfile};

impl Run<'_> {
    /// The profile's page the current tab shows, waited for (up to the step timeout); `None`
    /// once the tab has closed or left the provider.
    pub(super) async fn profile_page<'p>(
        &self,
        profile: &'p ProviderProfile,
        tab: &str,
    ) -> Result<Option<&'p ProfilePage>, StepError> {
        let current = &self.tabs.handle(tab)?;
        let provider_origin = self.target.provider.public_url().origin();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if !self.windows().await?.contains(current) {
                return Ok(None);
            }
            let url = match self.client.current_url().await {
                Ok(url) => url,
                // Closed between the two questions (a callback page closes itself).
                Err(_) if !self.windows().await?.contains(current) => return Ok(None),
                Err(error) => {
                    return Err(StepError::Failed(format!("read the tab's URL: {error}")));
                }
            };
            if url.origin() != provider_origin {
                return Ok(None);
            }
            for page in profile
                .pages
                .iter()
                .filter(|page| ProviderProfile::is_at(page, url.as_str()))
            {
                match self.count(&page.shows).await {
                    Ok(0) => {}
                    Ok(_) => return Ok(Some(page)),
                    Err(_) if !self.windows().await?.contains(current) => return Ok(None),
                    // Between two documents: asked again on the next round.
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                return Err(StepError::Timeout(format!(
                    "none of the pages of the provider profile {} ({}) showed at {} within {STEP_TIMEOUT:?} (hint: check each page's `shows` selector against the provider's page; the screenshot is among the artifacts)",
                    profile.path.display(),
                    profile
                        .pages
                        .iter()
                        .map(|p| match &p.url {
                            Some(part) => format!("{}: {} at a URL with {part}", p.name, p.shows),
                            None => format!("{}: {}", p.name, p.shows),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    url.path()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Goes through the provider's pages (sign-in, consent, whatever the profile names) until
    /// the tab leaves the provider or closes: fills each page's fields and clicks its allow
    /// (or, denying, its deny). `after_ms`: the user reads the first page that long first.
    pub(super) async fn consent_through_profile(
        &mut self,
        profile: &ProviderProfile,
        tab: &str,
        decision: Decision,
        after_ms: Option<u64>,
    ) -> Result<(), StepError> {
        let mut passed: Vec<String> = Vec::new();
        while let Some(page) = self.profile_page(profile, tab).await? {
            if passed.len() == MAX_PAGES {
                return Err(StepError::Failed(format!(
                    "the provider showed {MAX_PAGES} pages without letting the user go ({}): the profile {} does not lead through it",
                    passed.join(" -> "),
                    profile.path.display()
                )));
            }
            if passed.is_empty()
                && let Some(ms) = after_ms
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            for (css, text) in &page.fill {
                let field = self.wait_css(css).await?;
                cmd(field.clear().await, &format!("clear {css}"))?;
                cmd(field.send_keys(text).await, &format!("type into {css}"))?;
            }
            let css = profile
                .click_for(page, decision == Decision::Allow)
                .map_err(StepError::Failed)?;
            let button = self.wait_css(css).await?;
            self.consent_at = Some(Instant::now());
            cmd(
                button.click().await,
                &format!("click {css} on {}", page.name),
            )?;
            passed.push(page.name.clone());
            // The page is replaced (or the tab closed) before the next one is looked for.
            self.poll_until(
                &format!("the provider's {} page to go", page.name),
                || async { Ok(button.is_displayed().await.is_err()) },
            )
            .await?;
        }
        Ok(())
    }
}
