//! Every secret the provider issued or received, and a search for them in any text.
//!
//! ```
//! use fake_provider::{SecretKind, SecretLedger};
//! let mut ledger = SecretLedger::default();
//! ledger.record(SecretKind::AccessToken, "at_abc123abc123abc123");
//! let page = "<p>token: at_abc123abc123abc123</p>";
//! assert_eq!(ledger.find_in(page).len(), 1);
//! ```

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

/// What kind of secret a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    ClientSecret,
    AuthorizationCode,
    AccessToken,
    RefreshToken,
    PkceVerifier,
}

impl SecretKind {
    /// The placeholder stem a redacted trace uses, e.g. `ACCESS_TOKEN` in `[ACCESS_TOKEN#1]`.
    pub fn placeholder_stem(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "CLIENT_SECRET",
            SecretKind::AuthorizationCode => "CODE",
            SecretKind::AccessToken => "ACCESS_TOKEN",
            SecretKind::RefreshToken => "REFRESH_TOKEN",
            SecretKind::PkceVerifier => "PKCE_VERIFIER",
        }
    }
}

/// One secret value with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Secret {
    pub kind: SecretKind,
    pub value: String,
}

/// How a secret was written where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Exact,
    UrlEncoded,
    Base64,
    JsonEscaped,
}

/// A secret found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFinding {
    pub kind: SecretKind,
    pub encoding: Encoding,
    /// Where in the text it starts (byte offset).
    pub offset: usize,
}

/// Secrets shorter than this are not searched for: they would match by chance.
pub const MIN_SEARCHABLE_LEN: usize = 8;

/// The set of secrets known so far, in the order they were first seen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecretLedger {
    secrets: Vec<Secret>,
}

impl SecretLedger {
    /// Remembers a secret; recording the same value twice keeps one entry.
    pub fn record(&mut self, kind: SecretKind, value: &str) {
        if value.is_empty() || self.secrets.iter().any(|s| s.value == value) {
            return;
        }
        self.secrets.push(Secret {
            kind,
            value: value.to_owned(),
        });
    }

    /// A ledger holding these secrets (for example read back from `GET /_admin/secrets`).
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut ledger = Self::default();
        for secret in secrets {
            ledger.record(secret.kind, &secret.value);
        }
        ledger
    }

    pub fn all(&self) -> &[Secret] {
        &self.secrets
    }

    /// Every known secret found in `text`, exact or URL-, base64- or JSON-escaped.
    pub fn find_in(&self, text: &str) -> Vec<SecretFinding> {
        let mut findings = Vec::new();
        for secret in &self.secrets {
            if secret.value.len() < MIN_SEARCHABLE_LEN {
                continue;
            }
            for (encoding, needle) in encoded_forms(&secret.value) {
                if let Some(offset) = text.find(&needle) {
                    findings.push(SecretFinding {
                        kind: secret.kind,
                        encoding,
                        offset,
                    });
                    break;
                }
            }
        }
        findings
    }
}

/// The forms in which a secret can appear in a text, most literal first.
fn encoded_forms(value: &str) -> Vec<(Encoding, String)> {
    let mut forms = vec![(Encoding::Exact, value.to_owned())];
    let url = url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    forms.push((Encoding::UrlEncoded, url.clone()));
    forms.push((Encoding::UrlEncoded, url.replace('+', "%20")));
    let json = serde_json::to_string(value).expect("a string serializes");
    forms.push((Encoding::JsonEscaped, json[1..json.len() - 1].to_owned()));
    // A secret inside a larger base64 text can start at any of three byte alignments; the
    // characters that encode only secret bytes are the same whatever surrounds them.
    for engine in [&STANDARD, &URL_SAFE] {
        for pad in 0..3usize {
            let mut bytes = vec![0u8; pad];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = engine.encode(&bytes);
            let skip = if pad == 0 { 0 } else { (pad * 8).div_ceil(6) };
            let whole_chars = ((pad + value.len()) / 3) * 4;
            if whole_chars > skip + 4 {
                forms.push((Encoding::Base64, encoded[skip..whole_chars].to_owned()));
            }
        }
    }
    forms.dedup_by(|a, b| a.1 == b.1);
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(value: &str) -> SecretLedger {
        let mut ledger = SecretLedger::default();
        ledger.record(SecretKind::RefreshToken, value);
        ledger
    }

    #[test]
    fn finds_a_secret_written_exactly() {
        let ledger = ledger_with("rt_secretvalue123");
        let found = ledger.find_in("x rt_secretvalue123 y");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].encoding, Encoding::Exact);
        assert_eq!(found[0].offset, 2);
    }

    #[test]
    fn finds_a_secret_url_encoded_and_json_escaped() {
        let ledger = ledger_with("s3cr/t+va\"lue");
        let url = "https://x/?t=s3cr%2Ft%2Bva%22lue";
        assert_eq!(ledger.find_in(url)[0].encoding, Encoding::UrlEncoded);
        let json = serde_json::json!({ "t": "s3cr/t+va\"lue" }).to_string();
        assert_eq!(ledger.find_in(&json)[0].encoding, Encoding::JsonEscaped);
    }

    #[test]
    fn finds_a_secret_inside_a_larger_base64_text_at_every_alignment() {
        let secret = "at_0123456789abcdefghij";
        let ledger = ledger_with(secret);
        for prefix in ["", "a", "ab", "abc", "{\"token\":\""] {
            let wrapped = STANDARD.encode(format!("{prefix}{secret}\"}}"));
            let found = ledger.find_in(&wrapped);
            assert_eq!(found.len(), 1, "prefix {prefix:?} in {wrapped}");
            assert_eq!(found[0].encoding, Encoding::Base64);
        }
    }

    #[test]
    fn does_not_report_text_that_only_resembles_a_secret() {
        let ledger = ledger_with("at_0123456789abcdefghij");
        assert!(
            ledger
                .find_in("at_0123456789abcdefghiJ at_012345")
                .is_empty()
        );
        let mut short = SecretLedger::default();
        short.record(SecretKind::ClientSecret, "abc");
        assert!(short.find_in("abc abc").is_empty());
    }
}
