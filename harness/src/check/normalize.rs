//! Placeholders for what differs between runs (`[STATE#1]` sent and echoed stays `[STATE#1]`),
//! and the two layers' rules for a payload and a query string: what the normalized trace
//! (`check::trace`) and the simulator's trace write their lines with.

use crate::contract::Identity;
use fake_provider::SecretLedger;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Replaces volatile values by placeholders, numbering each kind in order of first sight.
pub struct Normalizer {
    /// The platform's origin, as the browser serializes it.
    pub platform_origin: String,
    exact: Vec<(String, String)>,
    kinds: Vec<(String, String)>,
    placeholders: Placeholders,
}

/// Numbered placeholders for values that differ between runs: the first connection id seen is
/// `[CONNECTION#1]`, the next another one `[CONNECTION#2]`, the same value always the same name.
/// Used by the traces of the browser tier and of the simulator.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    numbered: BTreeMap<String, String>,
    counters: BTreeMap<String, usize>,
}

impl Placeholders {
    /// The placeholder of `value`, of `kind` (`CONNECTION`, `QUEUED`, ...).
    pub fn name(&mut self, value: &str, kind: &str) -> String {
        if let Some(existing) = self.numbered.get(value) {
            return existing.clone();
        }
        let counter = self.counters.entry(kind.to_owned()).or_default();
        *counter += 1;
        let placeholder = format!("[{kind}#{counter}]");
        self.numbered.insert(value.to_owned(), placeholder.clone());
        placeholder
    }
}

/// Values that look random (ids, nonces) and have no known kind.
static OPAQUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z]{1,6}_[A-Za-z0-9_\-]{10,}|\b[A-Za-z0-9_\-]{20,}\b")
        .expect("a valid regex")
});

impl Normalizer {
    pub fn new(
        platform_origin: &str,
        provider_origin: &str,
        identity: &Identity,
        secrets: &SecretLedger,
    ) -> Self {
        let mut exact = Vec::new();
        for (origin, placeholder) in [
            (platform_origin, "[PLATFORM]"),
            (provider_origin, "[PROVIDER]"),
        ] {
            let origin = origin.trim_end_matches('/');
            let encoded: String = url::form_urlencoded::byte_serialize(origin.as_bytes()).collect();
            exact.push((origin.to_owned(), placeholder.to_owned()));
            exact.push((encoded, placeholder.to_owned()));
        }
        let mut normalizer = Self {
            platform_origin: platform_origin.trim_end_matches('/').to_owned(),
            exact,
            kinds: Vec::new(),
            placeholders: Placeholders::default(),
        };
        for secret in secrets.all() {
            normalizer.kinds.push((
                secret.value.clone(),
                secret.kind.placeholder_stem().to_owned(),
            ));
        }
        // Longest first, so that no value is replaced inside a longer one.
        normalizer
            .kinds
            .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        normalizer
            .exact
            .push((format!("/{}/", identity.org), "/[ORG]/".to_owned()));
        normalizer
            .exact
            .push((format!("org={}", identity.org), "org=[ORG]".to_owned()));
        normalizer
            .exact
            .push((format!("user={}", identity.user), "user=[USER]".to_owned()));
        normalizer
    }

    /// Replaces `value` by `placeholder` before anything else (another party's origin or
    /// names, which may contain this run's).
    pub fn add_exact_first(&mut self, value: &str, placeholder: &str) {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        self.exact
            .insert(0, (value.to_owned(), placeholder.to_owned()));
        if encoded != value {
            self.exact.insert(0, (encoded, placeholder.to_owned()));
        }
    }

    /// Teaches the normalizer that `value` is of `kind` (e.g. a state seen at the provider).
    pub fn learn(&mut self, value: &str, kind: &str) {
        if value.len() >= 6 && !self.kinds.iter().any(|(v, _)| v == value) {
            self.kinds.push((value.to_owned(), kind.to_owned()));
            self.kinds
                .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        }
    }

    fn placeholder(&mut self, value: &str, kind: &str) -> String {
        self.placeholders.name(value, kind)
    }

    pub fn apply(&mut self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, replacement) in &self.exact {
            out = out.replace(value.as_str(), replacement);
        }
        let kinds = self.kinds.clone();
        for (value, kind) in kinds {
            for form in [
                value.clone(),
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            ] {
                if out.contains(&form) {
                    let placeholder = self.placeholder(&value, &kind);
                    out = out.replace(&form, &placeholder);
                }
            }
        }
        let mut result = String::with_capacity(out.len());
        let mut last = 0;
        let matches: Vec<(usize, usize)> = OPAQUE
            .find_iter(&out)
            .map(|m| (m.start(), m.end()))
            .collect();
        for (start, end) in matches {
            let value = &out[start..end];
            if !value.chars().any(|c| c.is_ascii_digit())
                || !value.chars().any(|c| c.is_ascii_alphabetic())
            {
                continue;
            }
            result.push_str(&out[last..start]);
            let placeholder = self.placeholder(value, "ID");
            result.push_str(&placeholder);
            last = end;
        }
        result.push_str(&out[last..]);
        result
    }
}

/// A payload as one line. In the normative layer without its `message`, whose presence and
/// wording are the platform's choice, and, on an error, without its `connectionId`: whether an
/// error names its connection is the platform's choice too (target-contract.md §4, the
/// callback). A payload sent as a JSON string reads as the object it encodes.
pub(crate) fn payload_text(data: &Value, layer: Layer) -> String {
    match data {
        Value::Object(fields) => {
            let error = fields.get("result").and_then(Value::as_str) == Some("error");
            let parts: Vec<String> = fields
                .iter()
                .filter(|(k, _)| {
                    layer == Layer::Transcript
                        || !(*k == "message" || (error && *k == "connectionId"))
                })
                .map(|(k, v)| format!("{k}: {}", short(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(inner @ Value::Object(_)) => payload_text(&inner, layer),
            _ => format!("{:?}", abbreviated(s)),
        },
        other => other.to_string(),
    }
}

pub(crate) fn short(value: &Value) -> String {
    match value {
        Value::String(s) => abbreviated(s),
        other => abbreviated(&other.to_string()),
    }
}

/// A long value (an oversized forged message) as its start and its length.
pub(crate) fn abbreviated(text: &str) -> String {
    const LONGEST: usize = 200;
    let length = text.chars().count();
    if length <= LONGEST {
        return text.to_owned();
    }
    let start: String = text.chars().take(16).collect();
    format!("{start}… ({length} characters)")
}

/// Which trace: the normative facts only, or the whole transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Normative,
    Transcript,
}

/// The authorization request parameters the target contract names (section 2), with
/// `resource` (RFC 8707), which an MCP connector must send; any other is the platform's choice
/// (`prompt`, `access_type`, ...).
pub const NAMED_AUTHORIZATION_PARAMETERS: [&str; 8] = [
    "client_id",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "resource",
    "response_type",
    "scope",
    "state",
];

/// Query parameters, sorted, for a stable line; in the normative layer only those named in
/// the contract.
pub(crate) fn sorted_query(query: &str, layer: Layer) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(key, _)| {
            layer == Layer::Transcript || NAMED_AUTHORIZATION_PARAMETERS.contains(&key.as_str())
        })
        .map(|(key, value)| {
            // A scope is a set (RFC 6749 §3.3): in which order a platform lists it is its own.
            if layer == Layer::Normative && key == "scope" {
                let mut scopes: Vec<&str> = value.split_whitespace().collect();
                scopes.sort_unstable();
                let sorted = scopes.join(" ");
                (key, sorted)
            } else {
                (key, value)
            }
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}
