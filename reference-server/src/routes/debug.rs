//! What the `token-in-subresource-url` defect serves (`Behaviour::serves_token_stylesheet`): a
//! stylesheet whose background image URL carries the connection's access token, and the image.

use crate::deviation::{TOKEN_PIXEL_PATH, TOKEN_STYLESHEET_PATH};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

pub fn routes(routes: Router<AppState>) -> Router<AppState> {
    routes
        .route(TOKEN_STYLESHEET_PATH, get(connection_style))
        .route(
            TOKEN_PIXEL_PATH,
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
}

#[derive(Deserialize)]
struct StyleQuery {
    connection: Option<String>,
}

async fn connection_style(
    State(state): State<AppState>,
    Query(query): Query<StyleQuery>,
) -> impl IntoResponse {
    let token = query
        .connection
        .and_then(|id| state.db().credentials(&id).ok().flatten())
        .map(|c| c.access_token)
        .unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        format!("body {{ background-image: url(\"{TOKEN_PIXEL_PATH}?token={token}\"); }}"),
    )
}
