//! `POST /dev/clock`: moves the platform's clock ahead (target contract §3, virtual time), so
//! a scenario about a token's expiry does not sleep through its lifetime. A development route,
//! like `/dev/login`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockAdvance {
    advance_ms: u64,
}

pub async fn advance(
    State(state): State<AppState>,
    body: Result<Json<ClockAdvance>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(ClockAdvance { advance_ms })) => {
            state.clock().advance(Duration::from_millis(advance_ms));
            Json(serde_json::json!({ "now_ms": state.clock().now_ms() })).into_response()
        }
        Err(rejection) => (
            StatusCode::BAD_REQUEST,
            format!("{rejection} (send JSON {{\"advance_ms\": N}})"),
        )
            .into_response(),
    }
}
