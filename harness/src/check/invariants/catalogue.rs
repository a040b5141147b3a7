//! The one list of the verdict's checks. The browser's checks, the simulator's, the JSON
//! report's catalogue, `harness explain` and the written-rules test all read it; the order is
//! the order reports name them in.

use super::{Check, Rule, Tier};
use super::{chat, disconnect, isolation, layers, payload, provider_log, secrets, simulator, tabs};

/// How a check of the catalogue is judged.
pub enum Entry {
    /// After every browser run, by its [`Check`].
    EachRun(&'static dyn Check),
    /// Elsewhere: by the simulator's world (`sim::world`), or by the snapshot comparison.
    Elsewhere(&'static Rule),
}

impl Entry {
    pub fn rule(&self) -> &'static Rule {
        match self {
            Entry::EachRun(check) => check.rule(),
            Entry::Elsewhere(rule) => rule,
        }
    }
}

/// Every check of the verdict, browser and simulator.
pub static CATALOGUE: &[Entry] = &[
    Entry::EachRun(&secrets::NoSecretVisible),
    Entry::EachRun(&payload::PayloadShape),
    Entry::EachRun(&tabs::OpenedAsTab),
    Entry::Elsewhere(&simulator::RESEND_AT_MOST_ONCE_RULE),
    Entry::EachRun(&chat::ResendOnlyWhenConnected),
    Entry::Elsewhere(&simulator::FOREIGN_ORIGIN_IGNORED_RULE),
    Entry::EachRun(&chat::ChatResumed),
    Entry::EachRun(&chat::Revocation),
    Entry::Elsewhere(&simulator::NO_DUPLICATE_CONNECTION_RULE),
    Entry::EachRun(&tabs::CallbackClosed),
    Entry::EachRun(&isolation::ProviderNeverGetsPlatformAuth),
    Entry::EachRun(&payload::MessageAsText),
    Entry::EachRun(&isolation::HostileReceivesNothing),
    Entry::EachRun(&isolation::RedirectBoundToSession),
    Entry::EachRun(&isolation::OrgIsolation),
    Entry::EachRun(&provider_log::SingleExchange),
    Entry::EachRun(&provider_log::RefreshSingleFlight),
    Entry::EachRun(&payload::ChannelsComplete),
    Entry::EachRun(&tabs::OpenedInGesture),
    Entry::EachRun(&provider_log::ResourceConsistent),
    Entry::EachRun(&provider_log::BoundedRetries),
    Entry::EachRun(&provider_log::RegistrationReused),
    Entry::EachRun(&disconnect::REVOKED_AT_PROVIDER_CHECK),
    Entry::EachRun(&disconnect::UNUSED_AFTER_DISCONNECT_CHECK),
    Entry::EachRun(&super::authorization_request::PkceAndState),
    Entry::Elsewhere(&layers::NORMATIVE_TRACE_RULE),
    Entry::Elsewhere(&layers::REFERENCE_TRANSCRIPT_RULE),
];

/// Every rule of the catalogue, in order.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    CATALOGUE.iter().map(Entry::rule)
}

/// The catalogue entry of `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    rules().find(|rule| rule.id == id)
}

/// Whether `id` names a check of the catalogue (an invariant or a snapshot layer), as
/// opposed to a failed step or a provider contract violation.
pub fn is_check(id: &str) -> bool {
    rule(id).is_some()
}

/// The checks judged after every browser run, in order.
pub fn browser_checks() -> impl Iterator<Item = &'static dyn Check> {
    CATALOGUE.iter().filter_map(|entry| match entry {
        Entry::EachRun(check) if check.rule().tier != Tier::Simulator => Some(*check),
        _ => None,
    })
}

/// The ids of the checks judged after every browser run, in order.
pub fn browser_check_ids() -> impl Iterator<Item = &'static str> {
    browser_checks().map(|check| check.rule().id)
}

/// Whether `id` names a check judged after every browser run.
pub fn is_browser_check(id: &str) -> bool {
    browser_check_ids().any(|check| check == id)
}

/// The ids of the checks the simulator judges, in the order its reports name them.
pub fn simulator_check_ids() -> impl Iterator<Item = &'static str> {
    rules()
        .filter(|rule| matches!(rule.tier, Tier::Simulator | Tier::Both))
        .map(|rule| rule.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_id_is_named_once_and_each_tier_gets_the_checks_of_its_tier() {
        let ids: Vec<&str> = rules().map(|rule| rule.id).collect();
        let distinct: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "an id twice in {ids:?}");
        // A check judged elsewhere in the browser tier is a snapshot layer, and every other
        // browser-tier rule has a judgement.
        let browser: BTreeSet<&str> = browser_check_ids().collect();
        let elsewhere_in_browser: BTreeSet<&str> = CATALOGUE
            .iter()
            .filter_map(|entry| match entry {
                Entry::Elsewhere(rule) if rule.tier != Tier::Simulator => Some(rule.id),
                _ => None,
            })
            .collect();
        assert_eq!(
            elsewhere_in_browser,
            [layers::NORMATIVE_TRACE, layers::REFERENCE_TRANSCRIPT].into()
        );
        assert!(browser.is_disjoint(&elsewhere_in_browser));
        assert!(simulator_check_ids().all(|id| rule(id).is_some_and(|r| r.tier != Tier::Browser)));
    }
}
