//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, MCP
//! authorization 2025-11-25): a client whose `client_id` is a URL is described by the JSON
//! document at that URL, which the authorization server fetches when it first meets the client.
//! The provider fetches it over loopback only (the harness's platforms listen there), without
//! following redirects (§5 of the draft), and takes it only if it names itself and a public
//! client (no shared secret can be established this way).

use crate::rules::ClientRegistration;
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How the provider gets a document: `GET url`, answered `(status, body)`, or why it could not.
/// The server fetches over loopback ([`fetch_over_loopback`]); the simulator asks its platform
/// in-process.
pub type DocumentFetcher = Arc<dyn Fn(&Url) -> Result<(u16, Vec<u8>), String> + Send + Sync>;

/// The most of a document the provider reads.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `client_id` is one a metadata document describes: an `https` URL with a path (or
/// `http` on a loopback host or a `.test` name (RFC 6761), where the harness and its simulator
/// run platforms), no fragment, no credentials.
pub fn is_document_client_id(client_id: &str) -> bool {
    let Ok(url) = Url::parse(client_id) else {
        return false;
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => is_loopback(&url) || url.host_str().is_some_and(|h| h.ends_with(".test")),
        _ => false,
    };
    scheme_ok
        && url.path() != "/"
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

/// Why the fake provider cannot fetch a client ID metadata document a platform at `platform`
/// serves, if it cannot: it fetches over plain HTTP on loopback only.
pub fn cannot_fetch_documents_of(platform: &Url) -> Option<String> {
    (platform.scheme() != "http" || !is_loopback(platform)).then(|| {
        format!(
            "the fake provider fetches client ID metadata documents over plain HTTP on loopback only, and {platform} is not there (run the case against a deployment on this machine)"
        )
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// `GET url` over a plain socket to a loopback address (HTTP/1.0, so the server closes the
/// connection after the body): no redirect is followed, nothing leaves the machine.
pub fn fetch_over_loopback(url: &Url) -> Result<(u16, Vec<u8>), String> {
    if let Some(why) = cannot_fetch_documents_of(url) {
        return Err(why);
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let address = (host.trim_matches(|c| c == '[' || c == ']'), port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, FETCH_TIMEOUT)
        .map_err(|e| format!("{url}: cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(FETCH_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(FETCH_TIMEOUT)))
        .map_err(|e| format!("{url}: {e}"))?;
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    write!(
        stream,
        "GET {target} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{url}: cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take((MAX_DOCUMENT_BYTES + 8 * 1024) as u64)
        .read_to_end(&mut answer)
        .map_err(|e| format!("{url}: cannot read the answer: {e}"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{url}: the answer is not HTTP"))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("{url}: the answer has no status line"))?;
    Ok((status, answer[split + 4..].to_vec()))
}

/// The fields of a client ID metadata document the provider reads (RFC 7591 §2 client
/// metadata, plus `client_id`).
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// The client the document fetched for `client_id` describes, or why it is refused (in words
/// the error page and the request log show).
pub fn client_from_document(
    client_id: &str,
    fetched: Result<(u16, Vec<u8>), String>,
) -> Result<ClientRegistration, String> {
    let (status, body) = fetched?;
    if status != 200 {
        return Err(format!(
            "the client ID metadata document answered {status} (redirects are not followed)"
        ));
    }
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the client ID metadata document is over {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    let document: Document = serde_json::from_slice(&body)
        .map_err(|e| format!("the client ID metadata document is not client metadata: {e}"))?;
    if document.client_id != client_id {
        return Err(format!(
            "the client ID metadata document names client_id {:?}, not its own URL",
            document.client_id
        ));
    }
    if document.redirect_uris.is_empty() {
        return Err("the client ID metadata document lists no redirect_uris".into());
    }
    if document.client_secret.is_some() {
        return Err("the client ID metadata document carries a client_secret".into());
    }
    match document.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method {other:?}: a client known by its metadata document has no shared secret (none)"
            ));
        }
    }
    let mut client = ClientRegistration::new(client_id, "", "");
    client.redirect_uris = document.redirect_uris;
    client.name = document.client_name.unwrap_or_else(|| client_id.to_owned());
    client.public = true;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(value: serde_json::Value) -> Result<(u16, Vec<u8>), String> {
        Ok((200, value.to_string().into_bytes()))
    }

    const ID: &str = "http://127.0.0.1:9/oauth/client-metadata.json";

    #[test]
    fn a_document_naming_itself_and_a_public_client_is_taken() {
        let client = client_from_document(
            ID,
            document(serde_json::json!({
                "client_id": ID,
                "client_name": "Alumia",
                "redirect_uris": ["http://127.0.0.1:9/oauth/redirect"],
                "token_endpoint_auth_method": "none",
            })),
        )
        .unwrap();
        assert!(client.public);
        assert_eq!(client.name, "Alumia");
        assert_eq!(client.redirect_uris, ["http://127.0.0.1:9/oauth/redirect"]);
    }

    #[test]
    fn documents_that_do_not_describe_a_public_client_of_that_url_are_refused() {
        let redirect = ["http://127.0.0.1:9/oauth/redirect"];
        for (value, why) in [
            (
                serde_json::json!({ "client_id": "http://127.0.0.1:9/other.json", "redirect_uris": redirect }),
                "not its own URL",
            ),
            (
                serde_json::json!({ "client_id": ID, "redirect_uris": [] }),
                "no redirect_uris",
            ),
            (
                serde_json::json!({ "client_id": ID, "redirect_uris": redirect, "token_endpoint_auth_method": "client_secret_basic" }),
                "no shared secret",
            ),
            (
                serde_json::json!({ "client_id": ID, "redirect_uris": redirect, "client_secret": "s" }),
                "carries a client_secret",
            ),
        ] {
            let error = client_from_document(ID, document(value)).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
        let error = client_from_document(ID, Ok((302, Vec::new()))).unwrap_err();
        assert!(error.contains("302"), "{error}");
    }

    #[test]
    fn only_https_urls_with_a_path_or_loopback_http_are_document_client_ids() {
        assert!(is_document_client_id(
            "https://platform.example/client.json"
        ));
        assert!(is_document_client_id(ID));
        assert!(is_document_client_id("http://localhost:8080/client.json"));
        assert!(!is_document_client_id("https://platform.example/"));
        assert!(!is_document_client_id(
            "http://platform.example/client.json"
        ));
        assert!(is_document_client_id("http://platform.test/client.json"));
        assert!(!is_document_client_id("dcr_0001"));
        assert!(!is_document_client_id("https://platform.example/c.json#x"));
    }

    #[test]
    fn documents_are_fetched_from_platforms_on_loopback_over_http_only() {
        let at = |url: &str| cannot_fetch_documents_of(&Url::parse(url).unwrap());
        assert_eq!(at("http://127.0.0.1:8080/"), None);
        assert_eq!(at("http://[::1]:8080/"), None);
        assert!(at("https://127.0.0.1:8443/").is_some());
        let why = at("https://staging.example/").unwrap();
        assert!(why.contains("https://staging.example/"), "{why}");
        let refused = fetch_over_loopback(&Url::parse("http://platform.example/c.json").unwrap());
        assert!(refused.unwrap_err().contains("loopback only"));
    }
}
