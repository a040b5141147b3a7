//! Finding an MCP server's authorization from its URL alone, against the fake provider over
//! HTTP: each check that must stop discovery before any authorization request.

use fake_provider::{FakeProvider, Faults, ResourceInMetadata};
use reference_server::Http;
use reference_server::mcp::{DiscoveryError, canonical_resource, discover, register};

async fn provider(faults: Faults) -> FakeProvider {
    FakeProvider::builder()
        .faults(faults)
        .start()
        .await
        .unwrap()
}

fn http() -> Http {
    Http::network(std::time::Duration::from_secs(10)).unwrap()
}

fn server_url(provider: &FakeProvider) -> String {
    provider.public_url().join("mcp").unwrap().to_string()
}

#[tokio::test]
async fn discovery_reads_the_challenge_then_both_metadata_and_registration_gives_a_usable_client() {
    let provider = provider(Faults::none()).await;
    let base = provider
        .public_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let found = discover(&http(), &server_url(&provider)).await.unwrap();
    assert_eq!(found.resource, format!("{base}/mcp"));
    assert_eq!(found.issuer, base);
    assert_eq!(found.authorization_endpoint, format!("{base}/authorize"));
    assert_eq!(found.token_endpoint, format!("{base}/token"));
    assert_eq!(found.scopes, ["mcp.tools"]);
    let client = register(
        &http(),
        &found,
        "http://127.0.0.1:9/oauth/redirect",
        "Alumia",
    )
    .await
    .unwrap();
    assert!(
        !provider
            .rules()
            .secrets()
            .find_in(client.client_secret.as_deref().unwrap())
            .is_empty(),
        "the provider knows the secret it issued"
    );
    let mut authorize = url::Url::parse(&found.authorization_endpoint).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:9/oauth/redirect")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            &fake_provider::pkce_challenge(&"v".repeat(43)),
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &found.resource);
    let page = reqwest::get(authorize).await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the registered client may ask for consent"
    );
}

#[tokio::test]
async fn discovery_stops_before_any_authorization_on_a_foreign_resource_or_issuer() {
    let mut faults = Faults::none();
    faults.mcp.resource_in_metadata = ResourceInMetadata::AnotherServer;
    let foreign_resource = provider(faults).await;
    let error = discover(&http(), &server_url(&foreign_resource))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DiscoveryError::ResourceMismatch { .. }),
        "{error}"
    );

    let mut faults = Faults::none();
    faults.mcp.metadata_names_another_issuer = true;
    let foreign_issuer = provider(faults).await;
    let error = discover(&http(), &server_url(&foreign_issuer))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DiscoveryError::IssuerMismatch { .. }),
        "{error}"
    );
    for stopped in [&foreign_resource, &foreign_issuer] {
        assert!(
            !stopped
                .rules()
                .request_log()
                .iter()
                .any(|r| r.path == "/authorize" || r.path == "/register"),
            "nothing was asked of the provider after the mismatch"
        );
    }

    // No protected resource metadata anywhere: a server of the 2025-03-26 revision, whose
    // origin is its authorization server (its metadata found at the root).
    let legacy = provider(Faults::none()).await;
    let at = legacy.public_url().join("token").unwrap();
    let found = discover(&http(), at.as_ref()).await.unwrap();
    assert_eq!(found.issuer, at.origin().ascii_serialization());
    assert_eq!(
        found.authorization_endpoint,
        format!("{}/authorize", at.origin().ascii_serialization())
    );
    assert!(found.scopes.is_empty(), "no scope was named: {found:?}");

    let mut faults = Faults::none();
    faults.mcp.registration_refused = true;
    let closed = provider(faults).await;
    let found = discover(&http(), &server_url(&closed)).await.unwrap();
    let error = register(
        &http(),
        &found,
        "http://127.0.0.1:9/oauth/redirect",
        "Alumia",
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        DiscoveryError::RegistrationRefused("invalid_client_metadata".into())
    );
}

#[test]
fn the_canonical_resource_drops_the_fragment_and_a_final_slash_after_a_path() {
    assert_eq!(
        canonical_resource("https://mcp.example/mcp/"),
        "https://mcp.example/mcp"
    );
    assert_eq!(
        canonical_resource("https://mcp.example/mcp#x"),
        "https://mcp.example/mcp"
    );
    assert_eq!(
        canonical_resource("https://mcp.example/"),
        "https://mcp.example/"
    );
}

#[test]
fn a_resource_covers_its_own_url_and_those_below_it_on_its_origin() {
    use reference_server::mcp::covers;
    assert!(covers("https://mcp.example/mcp", "https://mcp.example/mcp"));
    assert!(covers(
        "https://mcp.example/mcp/",
        "https://mcp.example/mcp"
    ));
    assert!(covers("https://mcp.example", "https://mcp.example/mcp"));
    assert!(covers("https://mcp.example/", "https://mcp.example/mcp"));
    assert!(!covers("https://mcp.example/mc", "https://mcp.example/mcp"));
    assert!(!covers(
        "https://mcp.example/other",
        "https://mcp.example/mcp"
    ));
    assert!(!covers(
        "https://mcp.example.evil",
        "https://mcp.example/mcp"
    ));
    assert!(!covers(
        "https://another.example/mcp",
        "https://mcp.example/mcp"
    ));
}
