//! Conformant variants of the platform, the dual of the defects: each differs from the
//! reference server only in something `docs/target-contract.md` leaves open, so the harness
//! must pass every scenario against it. Chosen with `reference-server --variant NAME`; each is a
//! set of [`Choices`].

use crate::choices::{
    Choices, ProviderConversation, RefreshPolicy, Wording, kebab_name, parse_named,
};

/// The reference's choices, talking to the provider as `conversation` says.
fn conversation(conversation: ProviderConversation) -> Choices {
    Choices {
        provider_conversation: conversation,
        ..Choices::reference()
    }
}
use serde::{Deserialize, Serialize};

/// One conformant variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Every callback message and card status worded otherwise.
    MessageWording,
    /// No `oauth_message` on the callback (it is optional): payloads without `message`.
    NoCallbackMessage,
    /// The connect URL at `/connect/{org}/{connector}`.
    ConnectPath,
    /// The redirect URI at `/integrations/oauth2/return` (registered so at the provider).
    RedirectPath,
    /// `prompt=consent&access_type=offline` on every authorization request.
    ExtraAuthorizationParameters,
    /// The session cookie named `platform_sid`, with `Max-Age` and `SameSite=Lax`.
    SessionCookie,
    /// The callback writes storage, posts to its opener, then posts on BroadcastChannel.
    ChannelOrder,
    /// The callback closes itself 1.5 s after delivering, not 0.1 s.
    CloseDelay,
    /// The callback closes itself at once after its deliveries (no wait; the spec sets none).
    CloseAtOnce,
    /// The card polls every second, with no backoff.
    PollSchedule,
    /// The status API answers with more fields (timestamps, scopes, provider).
    StatusExtraFields,
    /// The callback page has other markup and text.
    CallbackMarkup,
    /// `/dev/login` goes through one more platform page before landing.
    LoginHop,
    /// `window.open(url)` with no target name.
    OpenWithoutTarget,
    /// The client ID metadata document at `/.well-known/alumia/mcp-client` (its URL is the
    /// `client_id` with MCP authorization servers that take documents).
    ClientMetadataPath,
    /// An MCP connector discovers its server's authorization on every connect, not once.
    McpDiscoveryEveryConnect,
    /// `Cross-Origin-Opener-Policy: same-origin` on every page: no callback keeps its opener,
    /// BroadcastChannel, storage and polling resume the chat (the deployment declares it:
    /// `--target-opener-policy site-wide`).
    SiteWideCoop,
    /// The callback posts its payload as JSON text on BroadcastChannel and to its opener, as
    /// storage must carry it (the card reads either).
    PayloadsAsJsonText,
    /// Where the callback names no connection, its payloads say `connectionId: null`.
    ConnectionIdNullWhenNone,
    /// A refused replay of a redirect names its connection in the error callback (after that
    /// connection's own success callback).
    ReplayRefusalNamesItsConnection,
    /// The redirect URI answers with a page that forwards to the callback (its URL carries the
    /// code, and so does the Referer of its stylesheet's request) instead of a `302`.
    RedirectThroughAPage,
    /// A tool call refreshes only after the API answered `401`, never on the stored expiry
    /// (so an expired connection without a refresh token asks the API first).
    RefreshOnUnauthorizedOnly,
    /// A tool call refreshes 30 s before the stored expiry.
    RefreshEarly,
    /// A refresh that returns an access token already expired ends the tool call without
    /// trying the API with it.
    SkipsExpiredFreshToken,
    /// One API call right after the code exchange, to test the new connection.
    TestsNewConnection,
    /// A step-up reconnect revokes the replaced grant at the provider.
    RevokesReplacedGrant,
    /// No `/dev/clock` (the target contract makes it optional): a pause on the servers'
    /// clocks is waited for real, and the run says so.
    NoDevClock,
}

impl Variant {
    pub const ALL: [Variant; 27] = [
        Variant::MessageWording,
        Variant::NoCallbackMessage,
        Variant::ConnectPath,
        Variant::RedirectPath,
        Variant::ExtraAuthorizationParameters,
        Variant::SessionCookie,
        Variant::ChannelOrder,
        Variant::CloseDelay,
        Variant::CloseAtOnce,
        Variant::PollSchedule,
        Variant::StatusExtraFields,
        Variant::CallbackMarkup,
        Variant::LoginHop,
        Variant::OpenWithoutTarget,
        Variant::ClientMetadataPath,
        Variant::McpDiscoveryEveryConnect,
        Variant::SiteWideCoop,
        Variant::PayloadsAsJsonText,
        Variant::ConnectionIdNullWhenNone,
        Variant::ReplayRefusalNamesItsConnection,
        Variant::RedirectThroughAPage,
        Variant::RefreshOnUnauthorizedOnly,
        Variant::RefreshEarly,
        Variant::SkipsExpiredFreshToken,
        Variant::TestsNewConnection,
        Variant::RevokesReplacedGrant,
        Variant::NoDevClock,
    ];

    pub fn name(self) -> String {
        kebab_name(&self)
    }

    pub fn parse(name: &str) -> anyhow::Result<Self> {
        parse_named(name, &Self::ALL, "variant")
    }

    /// The choices of several variants at once (each differs in other choices).
    pub fn combined(variants: &[Variant]) -> Choices {
        variants
            .iter()
            .fold(Choices::reference(), |choices, variant| {
                choices.and(variant.choices())
            })
    }

    /// The choices this variant makes.
    pub fn choices(self) -> Choices {
        let reference = Choices::reference();
        match self {
            Variant::MessageWording => Choices {
                wording: Wording::Reworded,
                script_edits: vec![(
                    "chat.js",
                    "waiting: \"Waiting for the sign-in to finish…\",",
                    "waiting: \"Finish signing in in the other tab.\",",
                )],
                ..reference
            },
            Variant::NoCallbackMessage => Choices {
                wording: Wording::Omitted,
                ..reference
            },
            Variant::ConnectPath => Choices {
                connect_route: "/connect/{org}/{connector}",
                ..reference
            },
            Variant::RedirectPath => Choices {
                redirect_path: "/integrations/oauth2/return",
                ..reference
            },
            Variant::ClientMetadataPath => Choices {
                client_metadata_path: "/.well-known/alumia/mcp-client",
                ..reference
            },
            Variant::McpDiscoveryEveryConnect => Choices {
                mcp_discovery_every_connect: true,
                ..reference
            },
            Variant::SiteWideCoop => Choices {
                opener_policy: crate::OpenerPolicy::SiteWide,
                ..reference
            },
            Variant::PayloadsAsJsonText => Choices {
                script_edits: vec![
                    (
                        "callback.js",
                        "    channel.postMessage(payload);\n",
                        "    channel.postMessage(JSON.stringify(payload));\n",
                    ),
                    (
                        "callback.js",
                        "window.opener.postMessage(payload, location.origin);",
                        "window.opener.postMessage(JSON.stringify(payload), location.origin);",
                    ),
                ],
                ..reference
            },
            Variant::RefreshOnUnauthorizedOnly => conversation(ProviderConversation {
                refresh: RefreshPolicy::OnUnauthorizedOnly,
                ..ProviderConversation::REFERENCE
            }),
            Variant::RefreshEarly => conversation(ProviderConversation {
                refresh: RefreshPolicy::Early { secs: 30 },
                ..ProviderConversation::REFERENCE
            }),
            Variant::SkipsExpiredFreshToken => conversation(ProviderConversation {
                skips_expired_fresh_token: true,
                ..ProviderConversation::REFERENCE
            }),
            Variant::TestsNewConnection => conversation(ProviderConversation {
                tests_new_connection: true,
                ..ProviderConversation::REFERENCE
            }),
            Variant::RevokesReplacedGrant => conversation(ProviderConversation {
                revokes_replaced_grant: true,
                ..ProviderConversation::REFERENCE
            }),
            Variant::RedirectThroughAPage => Choices {
                redirect_through_page: true,
                ..reference
            },
            Variant::ReplayRefusalNamesItsConnection => Choices {
                replay_refusal_names_connection: true,
                ..reference
            },
            Variant::ConnectionIdNullWhenNone => Choices {
                script_edits: vec![(
                    "callback.js",
                    "connectionId: params.get(\"connection_id\") || \"\"",
                    "connectionId: params.get(\"connection_id\") || null",
                )],
                ..reference
            },
            Variant::ExtraAuthorizationParameters => Choices {
                extra_authorization_parameters: &[
                    ("prompt", "consent"),
                    ("access_type", "offline"),
                ],
                ..reference
            },
            Variant::SessionCookie => Choices {
                session_cookie: "platform_sid",
                session_cookie_attributes: "Path=/; Max-Age=86400; SameSite=Lax; HttpOnly",
                ..reference
            },
            Variant::ChannelOrder => Choices {
                script_edits: vec![
                    ("callback.js", BROADCAST_BLOCK, ""),
                    (
                        "callback.js",
                        "  } catch (e) { /* opener gone or severed */ }\n",
                        concat!(
                            "  } catch (e) { /* opener gone or severed */ }\n\n",
                            "  try {\n",
                            "    var channel = new BroadcastChannel(CHANNEL_NAME);\n",
                            "    channel.postMessage(payload);\n",
                            "    channel.close();\n",
                            "    delivered.push(\"broadcast\");\n",
                            "  } catch (e) { /* BroadcastChannel missing or blocked */ }\n",
                        ),
                    ),
                ],
                ..reference
            },
            Variant::CloseDelay => Choices {
                callback_close_after_ms: 1500,
                ..reference
            },
            Variant::CloseAtOnce => Choices {
                callback_close_after_ms: 0,
                ..reference
            },
            Variant::PollSchedule => Choices {
                script_edits: vec![
                    (
                        "card-decisions.js",
                        "var POLL_FIRST_MS = 500;",
                        "var POLL_FIRST_MS = 1000;",
                    ),
                    (
                        "card-decisions.js",
                        "var POLL_MAX_MS = 3000;",
                        "var POLL_MAX_MS = 1000;",
                    ),
                ],
                ..reference
            },
            Variant::StatusExtraFields => Choices {
                status_extra_fields: true,
                ..reference
            },
            Variant::CallbackMarkup => Choices {
                callback_markup: true,
                ..reference
            },
            Variant::LoginHop => Choices {
                login_hop: true,
                ..reference
            },
            Variant::NoDevClock => Choices {
                dev_clock: false,
                ..reference
            },
            Variant::OpenWithoutTarget => Choices {
                script_edits: vec![
                    (
                        "chat.js",
                        "window.open(command.url, \"_blank\");",
                        "window.open(command.url);",
                    ),
                    (
                        "connectors.js",
                        "window.open(button.getAttribute(\"data-connect-url\"), \"_blank\");",
                        "window.open(button.getAttribute(\"data-connect-url\"));",
                    ),
                ],
                ..reference
            },
        }
    }
}

/// The callback's BroadcastChannel block, as `static/callback.js` has it.
const BROADCAST_BLOCK: &str = concat!(
    "  try {\n",
    "    var channel = new BroadcastChannel(CHANNEL_NAME);\n",
    "    channel.postMessage(payload);\n",
    "    channel.close();\n",
    "    delivered.push(\"broadcast\");\n",
    "  } catch (e) { /* BroadcastChannel missing or blocked */ }\n\n",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_edit_of_a_variant_applies_to_the_served_script() {
        for variant in Variant::ALL {
            for (file, from, _) in variant.choices().script_edits {
                let script = crate::asset(file).unwrap();
                assert!(script.contains(from), "{variant:?}: {file} lacks {from:?}");
            }
        }
    }

    #[test]
    fn all_variants_at_once_edit_the_scripts_without_conflict() {
        let choices = Variant::combined(&Variant::ALL);
        for file in [
            "callback.js",
            "chat.js",
            "connectors.js",
            "card-decisions.js",
        ] {
            let mut body = crate::asset(file).unwrap().to_owned();
            for (_, from, to) in choices.script_edits.iter().filter(|(f, _, _)| *f == file) {
                assert!(
                    body.contains(from),
                    "{file} lacks {from:?} once the others applied"
                );
                body = body.replace(from, to);
            }
        }
        assert!(choices.login_hop && choices.callback_markup && choices.status_extra_fields);
    }

    #[test]
    fn every_variant_differs_from_the_reference() {
        for variant in Variant::ALL {
            assert_ne!(variant.choices(), Choices::reference(), "{variant:?}");
        }
    }
}
