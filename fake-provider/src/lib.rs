//! An OAuth 2.0 authorization server for conformance tests.
//!
//! The rules (authorization requests, consent, single-use codes bound to client, redirect URI
//! and PKCE verifier, tokens, RFC 7009 revocation, a protected API) are plain Rust in
//! [`Provider`]; [`FakeProvider`] puts a wiremock `MockServer` in front of them. Faults are
//! chosen per run with [`Faults`]. Every secret issued or received is in a [`SecretLedger`],
//! so a checker can search any text for it. Codes and tokens derive from a seed.
//!
//! ```no_run
//! # async fn demo() {
//! use fake_provider::{ClientRegistration, Coop, FakeProvider, Faults};
//! let provider = FakeProvider::builder()
//!     .client(ClientRegistration::new("files-client", "s3cret-files", "http://127.0.0.1:8080/oauth/redirect"))
//!     .faults(Faults::none().coop_on_redirect(Coop::SameOrigin))
//!     .start()
//!     .await
//!     .unwrap();
//! let leaked = provider.rules().secrets().find_in("some page text");
//! assert!(leaked.is_empty());
//! # }
//! ```

mod consent_page;
mod faults;
mod mcp;
mod metadata_document;
mod mint;
mod outcome;
mod rules;
mod secrets;
mod server;

pub use consent_page::{consent_request_id, escape_html};
pub use faults::{
    ApiAnswer, ClientsKnownBy, ConsentFault, Coop, Faults, IssInResponse, McpFaults,
    RefreshRotation, ResourceInMetadata, TokenFailure, TokenType,
};
pub use mcp::SCOPE as MCP_SCOPE;
pub use metadata_document::{
    DocumentFetcher, cannot_fetch_documents_of, client_from_document, fetch_over_loopback,
    is_document_client_id,
};
pub use mint::Mint;
pub use outcome::Outcome;
pub use rules::{
    ClientRegistration, Endpoint, GrantState, LoggedRequest, Provider, ProviderConfig,
    ProviderRequest, ProviderResponse, Violation, pkce_challenge,
};
pub use secrets::{Encoding, Secret, SecretFinding, SecretKind, SecretLedger};
pub use server::{FakeProvider, FakeProviderBuilder, StartError};
