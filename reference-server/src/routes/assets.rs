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

pub async fn static_file(
    axum::extract::State(_state): axum::extract::State<crate::state::AppState>,
    Path(file): Path<String>,
) -> Response {
    #[cfg(feature = "defects")]
    if let Some(defect) = _state.settings().defect {
        let edits: Vec<_> = defect
            .script_edits()
            .iter()
            .filter(|(name, _, _)| *name == file)
            .collect();
        if let (false, Some(original)) = (edits.is_empty(), asset(&file)) {
            let mut body = original.to_owned();
            for (_, from, to) in edits {
                assert!(
                    body.contains(from),
                    "defect {defect:?}: {file} lacks {from:?}"
                );
                body = body.replace(from, to);
            }
            return (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                body,
            )
                .into_response();
        }
    }
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
