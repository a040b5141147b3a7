//! What the rules decided about one request, as its log entry carries it: typed where a check
//! reads it (a code reused, a refresh token presented again, a resource left out), in words
//! otherwise. Its `Display` is the log's words, the text transcripts show.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// Tokens issued for a code; `resource_left_out` when the authorization named a resource
    /// and the token request did not (issued all the same, as lenient servers do).
    CodeExchanged { resource_left_out: bool },
    /// A code presented a second time (RFC 6749 §4.1.2): refused, and what it issued revoked.
    CodeReused,
    /// An access token issued for a refresh token; `resource_left_out` as above (the token
    /// then has no audience).
    Refreshed { resource_left_out: bool },
    /// A refresh token presented again after the provider rotated it; `revoked_tokens` when
    /// reuse detection revoked the grant's tokens.
    RefreshReused { revoked_tokens: Option<usize> },
    /// A refresh refused for another reason (unknown, revoked, another client's, missing).
    RefreshRefused { words: String },
    /// A token request that named another resource than its authorization (RFC 8707 §2.2).
    ResourceDiffers { refresh: bool },
    /// A call of the MCP server without a token: the discovery probe, not an API call.
    NoBearerToken,
    /// Anything no check reads, in the log's words.
    Other { words: String },
}

impl Outcome {
    /// A refresh the provider was asked for, whatever it answered.
    pub fn is_refresh(&self) -> bool {
        matches!(
            self,
            Outcome::Refreshed { .. }
                | Outcome::RefreshReused { .. }
                | Outcome::RefreshRefused { .. }
                | Outcome::ResourceDiffers { refresh: true }
        )
    }

    /// A refresh that reached the refresh token's rotation: answered, or refused as reused.
    pub fn is_rotation(&self) -> bool {
        matches!(
            self,
            Outcome::Refreshed { .. } | Outcome::RefreshReused { .. }
        )
    }

    /// A token request that left out or changed the resource its authorization named.
    pub fn breaks_the_resource(&self) -> bool {
        matches!(
            self,
            Outcome::CodeExchanged {
                resource_left_out: true
            } | Outcome::Refreshed {
                resource_left_out: true
            } | Outcome::ResourceDiffers { .. }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::CodeExchanged {
                resource_left_out: false,
            } => f.write_str("issued tokens for a code"),
            Outcome::CodeExchanged {
                resource_left_out: true,
            } => f.write_str("issued tokens for a code, without the authorization's resource"),
            Outcome::CodeReused => f.write_str(
                "invalid_grant: code already used; the tokens it issued are revoked",
            ),
            Outcome::Refreshed {
                resource_left_out: false,
            } => f.write_str("issued an access token for a refresh token"),
            Outcome::Refreshed {
                resource_left_out: true,
            } => f.write_str(
                "issued an access token for a refresh token, without the authorization's resource (no audience)",
            ),
            Outcome::RefreshReused {
                revoked_tokens: Some(revoked),
            } => write!(
                f,
                "invalid_grant: refresh token reused: it was rotated before, reuse detected, the grant is revoked ({revoked} tokens)"
            ),
            Outcome::RefreshReused {
                revoked_tokens: None,
            } => f.write_str(
                "invalid_grant: refresh token reused: it was rotated, the one answered last serves",
            ),
            Outcome::ResourceDiffers { refresh: false } => {
                f.write_str("invalid_target: resource differs from the authorization request's")
            }
            Outcome::ResourceDiffers { refresh: true } => {
                f.write_str("invalid_target: resource differs from the authorization's")
            }
            Outcome::NoBearerToken => f.write_str("rejected: no bearer token"),
            Outcome::RefreshRefused { words } | Outcome::Other { words } => f.write_str(words),
        }
    }
}

impl From<&str> for Outcome {
    fn from(words: &str) -> Self {
        Outcome::Other {
            words: words.to_owned(),
        }
    }
}

impl From<String> for Outcome {
    fn from(words: String) -> Self {
        Outcome::Other { words }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_refresh_is_a_refresh_but_no_rotation_and_the_words_stay_the_logs() {
        let unknown = Outcome::RefreshRefused {
            words: "invalid_grant: unknown refresh token".into(),
        };
        assert!(unknown.is_refresh() && !unknown.is_rotation());
        assert_eq!(unknown.to_string(), "invalid_grant: unknown refresh token");
        let reused = Outcome::RefreshReused {
            revoked_tokens: Some(3),
        };
        assert!(reused.is_rotation() && !reused.breaks_the_resource());
        assert!(
            reused
                .to_string()
                .contains("the grant is revoked (3 tokens)")
        );
        // The log's JSON names the kind, so a harness reading another process's log types it.
        let json = serde_json::to_string(&reused).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), reused);
    }
}
