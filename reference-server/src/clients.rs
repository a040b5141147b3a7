//! The OAuth client of each connector for an org: a configured connector's, the same for
//! every org, or an MCP server's, found (`crate::mcp`) and registered on the org's first
//! connect and stored per org and connector. What stops one is a typed [`DiscoveryError`],
//! shown on the card in its own words.

use crate::mcp::DiscoveryError;
use crate::oauth::ConnectorClient;
use crate::state::{AppResult, AppState};
use std::sync::Arc;

/// The name the platform gives itself to authorization servers.
const CLIENT_NAME: &str = "Alumia";

/// The OAuth client of `name` for `org`: a configured connector's, or the MCP connector's
/// the org registered when it first connected it (none before that).
pub fn client(state: &AppState, org: &str, name: &str) -> AppResult<Option<Arc<ConnectorClient>>> {
    if let Some(client) = state.connectors().iter().find(|c| c.settings.name == name) {
        return Ok(Some(client.clone()));
    }
    let Some(settings) = stored_client(state, org, name)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(ConnectorClient::new(
        settings,
        &state.redirect_uri(),
        state.choices(),
    )?)))
}

/// The client an org registered with an MCP connector's authorization server, as stored.
fn stored_client(
    state: &AppState,
    org: &str,
    name: &str,
) -> AppResult<Option<crate::settings::ConnectorSettings>> {
    let Some(stored) = state.db().mcp_client(org, name)? else {
        return Ok(None);
    };
    let settings = serde_json::from_str(&stored)
        .map_err(|e| anyhow::anyhow!("stored MCP client of {name}: {e}"))?;
    Ok(Some(settings))
}

/// As [`client`], finding and registering an MCP connector's client first if the
/// org has none (`crate::mcp`): `Err` says, in words safe to show, why it could not.
pub async fn client_or_register(
    state: &AppState,
    org: &str,
    name: &str,
) -> AppResult<Option<Result<Arc<ConnectorClient>, DiscoveryError>>> {
    let mcp = state
        .settings()
        .mcp_connectors
        .iter()
        .find(|c| c.name == name);
    if let Some(client) = client(state, org, name)?
        && (mcp.is_none() || crate::hooks::reuses_registration(state))
    {
        if let Some(mcp) = mcp
            && state.choices().mcp_discovery_every_connect
            && let Err(error) = crate::mcp::discover(state.http(), &mcp.server_url).await
        {
            return Ok(Some(Err(error)));
        }
        return Ok(Some(Ok(client)));
    }
    let Some(mcp) = mcp else {
        return Ok(None);
    };
    let found = match crate::mcp::discover(state.http(), &mcp.server_url).await {
        Ok(found) => found,
        Err(error) => return Ok(Some(Err(error))),
    };
    // A client registered beforehand, else a client ID metadata document where the server
    // takes one (MCP authorization 2025-11-25 prefers it to registration), else dynamic
    // registration.
    let registered = if let Some(client_id) = &mcp.client_id {
        crate::mcp::RegisteredClient {
            client_id: client_id.clone(),
            client_secret: mcp.client_secret.clone(),
            token_endpoint_auth_method: mcp.client_secret.is_none().then(|| "none".into()),
        }
    } else if found.metadata_documents && crate::hooks::uses_metadata_documents(state) {
        crate::mcp::RegisteredClient {
            client_id: client_metadata_url(state),
            client_secret: None,
            token_endpoint_auth_method: Some("none".into()),
        }
    } else {
        match crate::mcp::register(state.http(), &found, &state.redirect_uri(), CLIENT_NAME).await {
            Ok(registered) => registered,
            Err(error) => return Ok(Some(Err(error))),
        }
    };
    let token_auth_method =
        registered.auth_method(crate::mcp::auth_method_for(&found.token_auth_methods));
    let settings = crate::settings::ConnectorSettings {
        name: mcp.name.clone(),
        display_name: mcp.display_name.clone(),
        client_id: registered.client_id,
        client_secret: registered.client_secret.unwrap_or_default(),
        authorize_url: found.authorization_endpoint,
        token_url: found.token_endpoint,
        revoke_url: found.revocation_endpoint.unwrap_or_default(),
        api_url: mcp.server_url.clone(),
        scopes: found.scopes,
        issuer: Some(found.issuer),
        // RFC 9207 §2.4: a server that says it sends `iss` must send it.
        requires_iss: found.iss_supported,
        authorization_parameters: Default::default(),
        resource: Some(crate::hooks::mcp_resource(state, found.resource)),
        api_style: crate::settings::ApiStyle::Mcp,
        token_auth_method,
    };
    let stored = serde_json::to_string(&settings)
        .map_err(|e| anyhow::anyhow!("MCP client of {name}: {e}"))?;
    state.db().store_mcp_client(org, name, &stored)?;
    tracing::info!(connector = %name, "MCP server found and client registered");
    Ok(client(state, org, name)?.map(Ok))
}

/// After an MCP server refused a connection's tokens: when its metadata now names another
/// authorization server, the org's client of the previous one is forgotten, so the next
/// connect registers with the new one (MCP authorization, SEP-2352: a client's credentials
/// belong to the authorization server that issued them).
pub async fn forget_client_if_moved(state: &AppState, org: &str, name: &str) -> AppResult<()> {
    let Some(server_url) = state.mcp_server_url(name) else {
        return Ok(());
    };
    let Some(stored) = stored_client(state, org, name)? else {
        return Ok(());
    };
    if let Ok(found) = crate::mcp::discover(state.http(), &server_url).await
        && stored.issuer.as_deref() != Some(found.issuer.as_str())
    {
        tracing::info!(connector = %name, "the MCP server's authorization server changed: registering anew");
        state.db().forget_mcp_client(org, name)?;
    }
    Ok(())
}

/// The URL of the platform's client ID metadata document: its `client_id` with servers
/// that take those.
pub fn client_metadata_url(state: &AppState) -> String {
    if let Some(url) = &state.settings().client_metadata_url {
        return url.clone();
    }
    state
        .public_url()
        .join(state.choices().client_metadata_path.trim_start_matches('/'))
        .expect("a path joins")
        .to_string()
}

/// The platform's client ID metadata document: a public client (no shared secret can be
/// set up this way; PKCE proves the exchange), named as in its registrations.
pub fn client_metadata_document(state: &AppState) -> serde_json::Value {
    serde_json::json!({
        "client_id": client_metadata_url(state),
        "client_name": CLIENT_NAME,
        "redirect_uris": [state.redirect_uri()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}
