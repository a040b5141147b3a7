//! The page scripts and style, compiled into the binary.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const ASSETS: [(&str, &str, &str); 5] = [
    (
        "card-decisions.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/card-decisions.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/chat.js"),
    ),
    (
        "callback.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/callback.js"),
    ),
    (
        "connectors.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/connectors.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
];

/// The source of a page script or style by file name (`callback.js`).
pub fn asset(name: &str) -> Option<&'static str> {
    ASSETS
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, _, body)| *body)
}

pub async fn static_file(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
