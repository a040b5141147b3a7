//! The page scripts and style, compiled into the binary.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const ASSETS: [(&str, &str, &str); 6] = [
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
        "sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/sw.js"),
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

/// `/static/{file}`: the page script or style, with the edits of the platform's choices (a
/// variant) or of its defect applied.
pub async fn static_file(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    Path(file): Path<String>,
) -> Response {
    let Some((_, content_type, original)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let edits = state.choices().all_script_edits().into_iter().chain(
        crate::hooks::script_edits(&state)
            .iter()
            .map(|(name, from, to)| (*name, (*from).to_owned(), (*to).to_owned())),
    );
    let mut body = (*original).to_owned();
    for (_, from, to) in edits.filter(|(name, _, _)| *name == file) {
        assert!(body.contains(&from), "{file} lacks {from:?}");
        body = body.replace(&from, &to);
    }
    let mut response = ([(header::CONTENT_TYPE, *content_type)], body).into_response();
    if file == "sw.js" {
        // A worker served from /static/ may control every page of the origin.
        response.headers_mut().insert(
            header::HeaderName::from_static("service-worker-allowed"),
            header::HeaderValue::from_static("/"),
        );
    }
    response
}
