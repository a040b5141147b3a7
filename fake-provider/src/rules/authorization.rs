//! The authorization endpoint and consent (codes, PKCE), and the server's metadata.

use super::*;

/// PKCE S256: BASE64URL(SHA256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(super) fn is_pkce_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

pub(super) fn with_query(base: &str, params: &[(&str, &str)]) -> Url {
    let mut url = Url::parse(base).expect("registered redirect URIs are absolute URLs");
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            query.append_pair(key, value);
        }
    }
    url
}

impl State {
    pub(super) fn authorize(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let query = request.query_pairs();
        let get = |key: &str| query.get(key).map(String::as_str).unwrap_or("");
        if let Err(why) = self.learn_client_from_its_document(get("client_id")) {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page("Client metadata document refused", &why),
                ),
                format!("rejected: {why}"),
            );
        }
        let Some(client) = self.clients.get(get("client_id")).cloned() else {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page("Unknown client", "client_id is not registered."),
                ),
                "rejected: unknown client_id",
            );
        };
        let redirect_uri = get("redirect_uri");
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Redirect URI mismatch",
                        "redirect_uri does not exactly match a registered URI.",
                    ),
                ),
                "rejected: redirect_uri mismatch",
            );
        }
        let state = get("state");
        let iss = self.iss();
        let redirect_error = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if !state.is_empty() {
                params.push(("state", state));
            }
            if let Some(iss) = &iss {
                params.push(("iss", iss));
            }
            decided(
                ProviderResponse::redirect(with_query(redirect_uri, &params)),
                format!("redirected with {error}: {description}"),
            )
        };
        if get("response_type") != "code" {
            return redirect_error("unsupported_response_type", "response_type must be code");
        }
        if state.is_empty() {
            return redirect_error("invalid_request", "state is required");
        }
        let challenge = get("code_challenge");
        if challenge.is_empty() {
            return redirect_error("invalid_request", "PKCE code_challenge is required");
        }
        if get("code_challenge_method") != "S256" {
            return redirect_error("invalid_request", "code_challenge_method must be S256");
        }
        if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
            return redirect_error("invalid_request", "code_challenge is not a S256 challenge");
        }
        let resource = query.get("resource").cloned();
        if let Some(resource) = &resource {
            if self.faults.mcp.refuses_resource {
                return redirect_error("invalid_target", "this server does not take resource");
            }
            if !crate::mcp::is_resource_indicator(resource) {
                return redirect_error(
                    "invalid_target",
                    "resource must be an absolute URI without a fragment",
                );
            }
        }
        match self.faults.consent.clone() {
            ConsentFault::AskUser => {}
            ConsentFault::Denied => {
                return decided(
                    ProviderResponse::redirect(self.authorization_response(
                        redirect_uri,
                        &[("error", "access_denied"), ("state", state)],
                    )),
                    "consent denied (fault)",
                );
            }
            ConsentFault::ErrorRedirect { error, description } => {
                return redirect_error(&error, &description);
            }
        }
        let scope = get("scope").to_owned();
        let request = AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            code_challenge: challenge.to_owned(),
            scope: scope.clone(),
            resource,
            decided: false,
        };
        if self.faults.remembers_consent
            && self
                .remembered
                .contains(&(client.client_id.clone(), scope.clone()))
        {
            let location = self.issue_code(&request, now_ms);
            return decided(
                ProviderResponse::redirect(location),
                "consent remembered, code issued",
            );
        }
        let request_id = self.mint.next("req_");
        self.authorization_requests
            .insert(request_id.clone(), request);
        let page = consent_page::consent_page(&client.name, &scope, &request_id);
        let mut response = ProviderResponse::html(200, page);
        if let Some(coop) = self.faults.coop_on_consent_page {
            response = response.with_header(coop.header());
        }
        if let Some(policy) = &self.faults.csp_on_consent_page {
            response = response.with_header(("content-security-policy", policy));
        }
        decided(response, "consent page shown")
    }

    pub(super) fn consent(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let form = request.form_pairs();
        let request_id = form.get("request").cloned().unwrap_or_default();
        let Some(pending) = self.authorization_requests.get_mut(&request_id) else {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Unknown request",
                        "This consent request does not exist.",
                    ),
                ),
                "rejected: unknown consent request",
            );
        };
        if pending.decided {
            return decided(
                ProviderResponse::html(
                    400,
                    consent_page::error_page(
                        "Already decided",
                        "This consent request was already answered.",
                    ),
                ),
                "rejected: consent request already decided",
            );
        }
        pending.decided = true;
        let pending = pending.clone();
        let (location, outcome) = match form.get("decision").map(String::as_str) {
            Some("allow") => {
                self.remembered
                    .insert((pending.client_id.clone(), pending.scope.clone()));
                (
                    self.issue_code(&pending, now_ms),
                    "consent given, code issued",
                )
            }
            _ => (
                self.authorization_response(
                    &pending.redirect_uri,
                    &[("error", "access_denied"), ("state", &pending.state)],
                ),
                "consent denied by the user",
            ),
        };
        let mut response = ProviderResponse::redirect(location);
        if let Some(coop) = self.faults.coop_on_redirect {
            response = response.with_header(coop.header());
        }
        decided(response, outcome)
    }

    /// Issues a code for an allowed request; returns the redirect URI that carries it.
    pub(super) fn issue_code(&mut self, request: &AuthorizationRequest, now_ms: u64) -> Url {
        let code = self.mint.next("code_");
        self.ledger.record(SecretKind::AuthorizationCode, &code);
        self.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scope: request.scope.clone(),
                resource: request.resource.clone(),
                issued_at_ms: now_ms,
                presented: false,
                issued_tokens: Vec::new(),
            },
        );
        self.authorization_response(
            &request.redirect_uri,
            &[("code", &code), ("state", &request.state)],
        )
    }

    /// Its authorization server metadata (RFC 8414), with the endpoints it serves and whether
    /// its authorization responses carry `iss` (RFC 9207 §3), as the faults say.
    pub(super) fn metadata(&self) -> serde_json::Value {
        let base = crate::mcp::issuer(&self.public_url);
        let issuer = match self.faults.mcp.metadata_names_another_issuer {
            true => "https://another-issuer.example",
            false => base,
        };
        let mut metadata = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "revocation_endpoint": format!("{base}/revoke"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["files.read", "calendar.read", crate::mcp::SCOPE],
            "authorization_response_iss_parameter_supported":
                self.faults.iss_in_response != IssInResponse::Absent,
        });
        let known_by = self.faults.mcp.clients_known_by;
        if known_by.registration() {
            metadata["registration_endpoint"] =
                format!("{base}{}", crate::mcp::REGISTRATION_PATH).into();
        }
        if known_by.metadata_documents() {
            metadata["client_id_metadata_document_supported"] = true.into();
            metadata["token_endpoint_auth_methods_supported"] =
                serde_json::json!(["client_secret_basic", "client_secret_post", "none"]);
        }
        metadata
    }

    /// The `iss` the authorization response carries, as the faults say (RFC 9207).
    pub(super) fn iss(&self) -> Option<String> {
        match self.faults.iss_in_response {
            IssInResponse::Absent => None,
            IssInResponse::Correct => Some(crate::mcp::issuer(&self.public_url).to_owned()),
            IssInResponse::OfAnotherProvider => Some("https://another-provider.example".to_owned()),
        }
    }

    /// The redirect back to the client with `params`, and `iss` when the provider sends it.
    pub(super) fn authorization_response(
        &self,
        redirect_uri: &str,
        params: &[(&str, &str)],
    ) -> Url {
        let iss = self.iss();
        let mut all = params.to_vec();
        if let Some(iss) = &iss {
            all.push(("iss", iss));
        }
        with_query(redirect_uri, &all)
    }

    /// A client this server does not know yet whose `client_id` is the URL of its metadata
    /// document, when the faults take those: fetched, checked and kept as a public client.
    pub(super) fn learn_client_from_its_document(&mut self, client_id: &str) -> Result<(), String> {
        if self.clients.contains_key(client_id)
            || !self.faults.mcp.clients_known_by.metadata_documents()
            || !crate::metadata_document::is_document_client_id(client_id)
        {
            return Ok(());
        }
        let url = Url::parse(client_id).map_err(|e| e.to_string())?;
        let fetched = (self.fetcher.0)(&url);
        let client = crate::metadata_document::client_from_document(client_id, fetched)?;
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }
}
