//! Client authentication, the token endpoint (codes, refreshes, rotation), revocation and
//! the grants they make.

use super::*;

impl State {
    /// Client authentication by HTTP Basic or by form fields (RFC 6749 §2.3.1); a public client
    /// names itself with `client_id` alone.
    pub(super) fn authenticate_client(
        &mut self,
        request: &ProviderRequest,
        form: &BTreeMap<String, String>,
    ) -> Result<ClientRegistration, Box<Decision>> {
        let basic = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Basic "))
            .map(|encoded| {
                let decoded = STANDARD.decode(encoded.trim()).unwrap_or_default();
                let text = String::from_utf8_lossy(&decoded).into_owned();
                let (id, secret) = text.split_once(':').unwrap_or((&text, ""));
                let unescape = |s: &str| {
                    url::form_urlencoded::parse(format!("v={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (unescape(id), unescape(secret))
            });
        let in_form = form.get("client_secret").is_some();
        let (client_id, secret) = match (basic, in_form) {
            (Some(_), true) => {
                return Err(Box::new(rejected(
                    400,
                    "invalid_request",
                    "client authenticated by two methods at once",
                )));
            }
            (Some(pair), false) => pair,
            (None, true) => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
            (None, false) => match form.get("client_id").and_then(|id| self.clients.get(id)) {
                Some(client) if client.public => return Ok(client.clone()),
                _ => {
                    return Err(Box::new(unauthenticated(
                        "client authentication is required",
                    )));
                }
            },
        };
        self.ledger.record(SecretKind::ClientSecret, &secret);
        match self.clients.get(&client_id) {
            Some(client) if client.client_secret == secret => Ok(client.clone()),
            _ => Err(Box::new(unauthenticated(
                "unknown client or wrong client secret",
            ))),
        }
    }

    pub(super) fn token(&mut self, request: &ProviderRequest, now_ms: u64) -> Decision {
        let delay_ms = self.faults.token_delay_ms;
        let mut decision = self.token_without_delay(request, now_ms);
        decision.response.delay_ms = delay_ms;
        decision
    }

    pub(super) fn token_without_delay(
        &mut self,
        request: &ProviderRequest,
        now_ms: u64,
    ) -> Decision {
        let form = request.form_pairs();
        if let Some(code) = form.get("code") {
            self.ledger.record(SecretKind::AuthorizationCode, code);
        }
        if let Some(verifier) = form.get("code_verifier") {
            self.ledger.record(SecretKind::PkceVerifier, verifier);
        }
        if let Some(refresh) = form.get("refresh_token") {
            self.ledger.record(SecretKind::RefreshToken, refresh);
        }
        let client = match self.authenticate_client(request, &form) {
            Ok(client) => client,
            Err(decision) => return *decision,
        };
        match self.faults.token_failure {
            Some(TokenFailure::ServerError) => {
                return rejected(
                    503,
                    "temporarily_unavailable",
                    "the token endpoint is failing (fault)",
                );
            }
            Some(TokenFailure::InvalidGrant) => {
                return rejected(400, "invalid_grant", "the grant is refused (fault)");
            }
            None => {}
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.exchange_code(&client, &form, now_ms),
            Some("refresh_token") => self.refresh(&client, &form, now_ms),
            Some(other) => rejected(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported"),
            ),
            None => rejected(400, "invalid_request", "grant_type is required"),
        }
    }

    pub(super) fn exchange_code(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let Some(code) = form.get("code") else {
            return rejected(400, "invalid_request", "code is required");
        };
        let Some(grant) = self.codes.get_mut(code) else {
            return rejected(400, "invalid_grant", "unknown code");
        };
        if grant.client_id != client.client_id {
            return rejected(
                400,
                "invalid_grant",
                "the code was issued to another client",
            );
        }
        if grant.presented {
            // RFC 6749 §4.1.2: a reused code revokes what it issued.
            let issued = std::mem::take(&mut grant.issued_tokens);
            for token in &issued {
                self.revoke_token(token);
            }
            let grant = issued.first().and_then(|token| self.grant_of(token));
            return rejected(
                400,
                "invalid_grant",
                "code already used; the tokens it issued are revoked",
            )
            .logged_as(Outcome::CodeReused)
            .for_grant(grant);
        }
        grant.presented = true;
        if now_ms.saturating_sub(grant.issued_at_ms) > CODE_LIFETIME_MS {
            return rejected(400, "invalid_grant", "code expired");
        }
        if form.get("redirect_uri") != Some(&grant.redirect_uri) {
            return rejected(
                400,
                "invalid_grant",
                "redirect_uri differs from the authorization request",
            );
        }
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        if !is_pkce_verifier(verifier) {
            return rejected(
                400,
                "invalid_grant",
                "code_verifier is missing or malformed",
            );
        }
        if pkce_challenge(verifier) != grant.code_challenge {
            return rejected(
                400,
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            );
        }
        // RFC 8707 §2.2: the token request's resource is the authorization's (mcp-remote #218).
        if let Some(asked) = form.get("resource") {
            if self.faults.mcp.refuses_resource {
                return rejected(400, "invalid_target", "this server does not take resource");
            }
            if grant.resource.as_ref() != Some(asked) {
                return rejected(
                    400,
                    "invalid_target",
                    "resource differs from the authorization request's",
                )
                .logged_as(Outcome::ResourceDiffers { refresh: false });
            }
        }
        let (scope, resource) = (grant.scope.clone(), grant.resource.clone());
        // Issued all the same, as lenient servers do; the log says what was left out.
        let outcome = Outcome::CodeExchanged {
            resource_left_out: resource.is_some() && !form.contains_key("resource"),
        };
        let (response, access, refresh) =
            self.issue_tokens(&client.client_id, &scope, resource, None, now_ms);
        let grant = self.grant_of(&access);
        if let Some(code_grant) = self.codes.get_mut(code) {
            code_grant.issued_tokens = vec![access, refresh];
        }
        decided(response, outcome).for_grant(grant)
    }

    pub(super) fn refresh(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let grant = form
            .get("refresh_token")
            .and_then(|token| self.grant_of(token));
        let mut decision = self.refresh_unlogged(client, form, now_ms);
        // Every refresh is typed as one, whatever the rules answered.
        if let Outcome::Other { words } = &mut decision.outcome {
            decision.outcome = Outcome::RefreshRefused {
                words: std::mem::take(words),
            };
        }
        decision.for_grant(grant)
    }

    pub(super) fn refresh_unlogged(
        &mut self,
        client: &ClientRegistration,
        form: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Decision {
        let Some(token) = form.get("refresh_token") else {
            return rejected(400, "invalid_request", "refresh_token is required");
        };
        let Some(grant) = self.refresh_tokens.get(token) else {
            return rejected(400, "invalid_grant", "unknown refresh token");
        };
        if grant.client_id != client.client_id {
            return rejected(
                400,
                "invalid_grant",
                "the refresh token was issued to another client",
            );
        }
        if grant.revoked {
            return rejected(400, "invalid_grant", "the refresh token is revoked");
        }
        let (scope, family) = (grant.scope.clone(), grant.family.clone());
        // A refresh names its resource again, or its access token has no audience (as strict
        // servers answer): a client that drops it gets a token the MCP server refuses.
        let resource = match form.get("resource") {
            None => None,
            Some(asked) if grant.resource.as_ref() == Some(asked) => Some(asked.clone()),
            Some(_) => {
                return rejected(
                    400,
                    "invalid_target",
                    "resource differs from the authorization's",
                )
                .logged_as(Outcome::ResourceDiffers { refresh: true });
            }
        };
        if grant.rotated {
            if self.faults.refresh_rotation == RefreshRotation::RotateWithReuseDetection {
                let revoked = self.revoke_family(&family);
                return rejected(
                    400,
                    "invalid_grant",
                    &format!(
                        "refresh token reused: it was rotated before, reuse detected, the grant is revoked ({revoked} tokens)"
                    ),
                )
                .logged_as(Outcome::RefreshReused {
                    revoked_tokens: Some(revoked),
                });
            }
            return rejected(
                400,
                "invalid_grant",
                "refresh token reused: it was rotated, the one answered last serves",
            )
            .logged_as(Outcome::RefreshReused {
                revoked_tokens: None,
            });
        }
        let kept = match self.faults.refresh_rotation {
            RefreshRotation::Off => Some(token.clone()),
            RefreshRotation::Rotate | RefreshRotation::RotateWithReuseDetection => {
                if let Some(grant) = self.refresh_tokens.get_mut(token) {
                    grant.rotated = true;
                }
                None
            }
        };
        let authorized = self
            .refresh_tokens
            .get(token)
            .and_then(|g| g.resource.clone());
        let (response, _, refresh) = self.issue_tokens_in(
            &client.client_id,
            &scope,
            resource,
            kept,
            Some(family),
            now_ms,
        );
        let outcome = Outcome::Refreshed {
            resource_left_out: authorized.is_some() && !form.contains_key("resource"),
        };
        // A rotated refresh token keeps the authorization's resource, whatever this refresh named.
        if let Some(grant) = self.refresh_tokens.get_mut(&refresh) {
            grant.resource = authorized;
        }
        decided(response, outcome)
    }

    /// Mints an access token and a refresh token for a new authorization, and answers them.
    pub(super) fn issue_tokens(
        &mut self,
        client_id: &str,
        scope: &str,
        resource: Option<String>,
        existing_refresh: Option<String>,
        now_ms: u64,
    ) -> (ProviderResponse, String, String) {
        self.issue_tokens_in(client_id, scope, resource, existing_refresh, None, now_ms)
    }

    /// Mints an access token (and a refresh token unless one is being kept, in `family` when
    /// it rotates from one) and answers them.
    pub(super) fn issue_tokens_in(
        &mut self,
        client_id: &str,
        scope: &str,
        resource: Option<String>,
        existing_refresh: Option<String>,
        family: Option<String>,
        now_ms: u64,
    ) -> (ProviderResponse, String, String) {
        let access = self.mint.next("at_");
        self.ledger.record(SecretKind::AccessToken, &access);
        // The grant: the kept refresh token's, the family's it rotates from, or a new one.
        let known = existing_refresh
            .as_ref()
            .and_then(|token| self.refresh_tokens.get(token))
            .or_else(|| {
                family
                    .as_ref()
                    .and_then(|family| self.refresh_tokens.values().find(|g| g.family == *family))
            })
            .map(|g| g.grant);
        let grant = known.unwrap_or_else(|| {
            let id = self.grants.len() as u64 + 1;
            self.grants.insert(
                id,
                GrantOrigin {
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    issued_seq: self.handling_seq,
                },
            );
            id
        });
        let given = !self.faults.withholds_refresh_token;
        let refresh = existing_refresh.unwrap_or_else(|| {
            let refresh = self.mint.next("rt_");
            self.ledger.record(SecretKind::RefreshToken, &refresh);
            self.refresh_tokens.insert(
                refresh.clone(),
                RefreshGrant {
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    resource: resource.clone(),
                    revoked: false,
                    access_tokens: Vec::new(),
                    family: family.clone().unwrap_or_else(|| refresh.clone()),
                    rotated: false,
                    grant,
                    given,
                },
            );
            refresh
        });
        let lifetime = self.faults.token_lifetime_secs;
        self.access_tokens.insert(
            access.clone(),
            AccessGrant {
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                resource,
                expires_at_ms: now_ms + lifetime * 1000,
                revoked: false,
                grant,
            },
        );
        if let Some(grant) = self.refresh_tokens.get_mut(&refresh) {
            grant.access_tokens.push(access.clone());
        }
        let mut body = serde_json::json!({
            "access_token": access,
            "token_type": self.faults.token_type.as_str(),
            "expires_in": lifetime,
            "refresh_token": refresh,
            "scope": scope,
        });
        if self.faults.withholds_refresh_token {
            body.as_object_mut()
                .expect("an object")
                .remove("refresh_token");
        }
        (ProviderResponse::json(200, body), access, refresh)
    }

    /// Revokes an access or refresh token; a refresh token takes its access tokens with it.
    pub(super) fn revoke_token(&mut self, token: &str) -> usize {
        if let Some(grant) = self.access_tokens.get_mut(token) {
            grant.revoked = true;
            return 1;
        }
        let Some(grant) = self.refresh_tokens.get_mut(token) else {
            return 0;
        };
        grant.revoked = true;
        let access_tokens = grant.access_tokens.clone();
        for access in &access_tokens {
            if let Some(access_grant) = self.access_tokens.get_mut(access) {
                access_grant.revoked = true;
            }
        }
        1 + access_tokens.len()
    }

    /// Revokes every refresh token of an authorization and every access token issued with
    /// them (reuse detection).
    pub(super) fn revoke_family(&mut self, family: &str) -> usize {
        let tokens: Vec<String> = self
            .refresh_tokens
            .iter()
            .filter(|(_, g)| g.family == family && !g.revoked)
            .map(|(t, _)| t.clone())
            .collect();
        tokens.iter().map(|t| self.revoke_token(t)).sum()
    }

    /// The grant a token (access or refresh) belongs to, if the provider issued it.
    pub(super) fn grant_of(&self, token: &str) -> Option<u64> {
        self.access_tokens
            .get(token)
            .map(|g| g.grant)
            .or_else(|| self.refresh_tokens.get(token).map(|g| g.grant))
    }

    /// Every grant, and what of it is still live at `now_ms`.
    pub(super) fn grants(&self, now_ms: u64) -> Vec<GrantState> {
        let grace_ms = self.faults.access_token_grace_secs * 1000;
        self.grants
            .iter()
            .map(|(id, origin)| GrantState {
                id: *id,
                client_id: origin.client_id.clone(),
                scope: origin.scope.clone(),
                issued_seq: origin.issued_seq,
                live_access_tokens: self
                    .access_tokens
                    .values()
                    .filter(|g| g.grant == *id && !g.revoked && now_ms < g.expires_at_ms + grace_ms)
                    .count(),
                live_refresh_token: self
                    .refresh_tokens
                    .values()
                    .any(|g| g.grant == *id && g.given && !g.revoked && !g.rotated),
            })
            .collect()
    }

    pub(super) fn revoke_all_grants(&mut self, client_id: Option<&str>) -> usize {
        let refresh: Vec<String> = self
            .refresh_tokens
            .iter()
            .filter(|(_, g)| !g.revoked && client_id.is_none_or(|id| g.client_id == id))
            .map(|(t, _)| t.clone())
            .collect();
        let access: Vec<String> = self
            .access_tokens
            .iter()
            .filter(|(_, g)| !g.revoked && client_id.is_none_or(|id| g.client_id == id))
            .map(|(t, _)| t.clone())
            .collect();
        for token in refresh.iter().chain(&access) {
            self.revoke_token(token);
        }
        refresh.len() + access.len()
    }

    pub(super) fn revoke(&mut self, request: &ProviderRequest) -> Decision {
        let form = request.form_pairs();
        if let Some(token) = form.get("token") {
            let kind = if token.starts_with("rt_") {
                SecretKind::RefreshToken
            } else {
                SecretKind::AccessToken
            };
            self.ledger.record(kind, token);
        }
        let grant = form.get("token").and_then(|token| self.grant_of(token));
        self.revoke_unlogged(request, &form).for_grant(grant)
    }

    pub(super) fn revoke_unlogged(
        &mut self,
        request: &ProviderRequest,
        form: &BTreeMap<String, String>,
    ) -> Decision {
        let client = match self.authenticate_client(request, form) {
            Ok(client) => client,
            Err(decision) => return *decision,
        };
        if self.faults.revoke_endpoint_fails {
            return rejected(
                503,
                "temporarily_unavailable",
                "the revocation endpoint is failing (fault)",
            );
        }
        let Some(token) = form.get("token").cloned() else {
            return rejected(400, "invalid_request", "token is required");
        };
        let owner = self
            .access_tokens
            .get(&token)
            .map(|g| g.client_id.clone())
            .or_else(|| self.refresh_tokens.get(&token).map(|g| g.client_id.clone()));
        match owner {
            None => decided(
                ProviderResponse::json(200, serde_json::json!({})),
                "revoke of an unknown token (accepted, RFC 7009)",
            ),
            Some(owner) if owner != client.client_id => rejected(
                400,
                "unauthorized_client",
                "the token was issued to another client",
            ),
            Some(_) => {
                let count = self.revoke_token(&token);
                decided(
                    ProviderResponse::json(200, serde_json::json!({})),
                    format!("revoked {count} token(s)"),
                )
            }
        }
    }
}
