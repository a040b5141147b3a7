//! The platform's HTML. Every page is static markup plus scripts from `/static/`: the
//! content security policy allows no inline script, and every dynamic text is escaped.

use crate::db::ConnectionStatus;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn layout(title: &str, body_attributes: &str, content: &str, scripts: &[&str]) -> String {
    let scripts: String = scripts
        .iter()
        .map(|s| format!("<script src=\"/static/{s}\"></script>\n"))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · Alumia</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\n\
         <body {body_attributes}>\n{content}\n{scripts}</body></html>\n",
        title = escape(title),
    )
}

fn org_nav(org: &str, user: &str) -> String {
    let org = escape(org);
    format!(
        "<header><nav><a href=\"/{org}/connectors\" data-testid=\"nav-connectors\">Connectors</a>\
         <a href=\"/{org}/chat/general\" data-testid=\"nav-chat\">Chat</a>\
         <span data-testid=\"signed-in-as\">{user}</span></nav></header>",
        user = escape(user),
    )
}

pub fn login_page() -> String {
    layout(
        "Sign in",
        "",
        "<main><h1>Development sign-in</h1>\
         <form method=\"get\" action=\"/dev/login\">\
         <label>User <input name=\"user\" value=\"alice\" data-testid=\"login-user\"></label>\
         <label>Org <input name=\"org\" value=\"acme\" data-testid=\"login-org\"></label>\
         <input type=\"hidden\" name=\"next\" value=\"/acme/chat/general\">\
         <button type=\"submit\" data-testid=\"login-submit\">Sign in</button></form></main>",
        &[],
    )
}

/// One row of the connectors page.
pub struct ConnectorRow<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub status: Option<ConnectionStatus>,
    pub connection_id: Option<&'a str>,
    /// The path its connect button opens.
    pub connect_path: String,
}

pub fn connectors_page(org: &str, user: &str, rows: &[ConnectorRow<'_>]) -> String {
    let org_escaped = escape(org);
    let rows: String = rows
        .iter()
        .map(|row| {
            let name = escape(row.name);
            let status = row
                .status
                .map(ConnectionStatus::as_str)
                .unwrap_or("not connected");
            let connected = row.status == Some(ConnectionStatus::Connected);
            // A pending sign-in can be cancelled: disconnecting it refuses its redirect.
            let removable = connected || row.status == Some(ConnectionStatus::Pending);
            format!(
                "<tr data-testid=\"connector-{name}\"><th>{display}</th>\
                 <td data-testid=\"connector-status-{name}\">{status}</td><td>\
                 <button type=\"button\" data-testid=\"connect-{name}\" \
                 data-connect-url=\"{connect}\"{connect_hidden}>Connect</button>\
                 <button type=\"button\" data-testid=\"disconnect-{name}\" data-disconnect \
                 data-connection-id=\"{id}\"{disconnect_hidden}>Disconnect</button></td></tr>",
                display = escape(row.display_name),
                connect = escape(&row.connect_path),
                connect_hidden = if connected { " hidden" } else { "" },
                disconnect_hidden = if removable { "" } else { " hidden" },
                id = escape(row.connection_id.unwrap_or("")),
            )
        })
        .collect();
    layout(
        "Connectors",
        &format!("data-org=\"{org_escaped}\" data-page=\"connectors\""),
        &format!(
            "{nav}<main><h1>Connectors of {org_escaped}</h1>\
             <table data-testid=\"connectors\"><tbody>{rows}</tbody></table></main>",
            nav = org_nav(org, user)
        ),
        &["connectors.js"],
    )
}

pub fn chat_page(org: &str, chat: &str, user: &str) -> String {
    layout(
        "Chat",
        &format!(
            "data-org=\"{}\" data-chat=\"{}\" data-page=\"chat\"",
            escape(org),
            escape(chat)
        ),
        &format!(
            "{nav}<main><h1>Chat</h1>\
             <ul class=\"messages\" data-testid=\"chat-messages\"></ul>\
             <form data-testid=\"chat-form\">\
             <input name=\"text\" autocomplete=\"off\" placeholder=\"Ask something, e.g. list my files\" data-testid=\"chat-input\">\
             <button type=\"submit\" data-testid=\"chat-send\">Send</button></form></main>",
            nav = org_nav(org, user)
        ),
        &["card-decisions.js", "chat.js"],
    )
}

/// The callback page: the result as text, and the hint shown if the browser refuses to
/// close the tab. `other_markup` gives a variant's page (other structure and text).
pub fn callback_page(success: bool, message: &str, other_markup: bool) -> String {
    if other_markup {
        return callback_page_other_markup(success, message);
    }
    let heading = if success {
        "Connected"
    } else {
        "The connection did not complete"
    };
    layout(
        heading,
        &format!(
            "data-page=\"callback\" data-result=\"{}\"",
            if success { "success" } else { "error" }
        ),
        &format!(
            "<main><h1 data-testid=\"callback-result\">{heading}</h1>\
             <p data-testid=\"callback-message\">{message}</p>\
             <p data-testid=\"callback-close-hint\" hidden>You can close this tab and return to Alumia.</p></main>",
            message = escape(message),
        ),
        &["callback.js"],
    )
}

fn callback_page_other_markup(success: bool, message: &str) -> String {
    let (title, icon) = if success {
        ("All done", "✓")
    } else {
        ("Something went wrong", "!")
    };
    layout(
        title,
        &format!(
            "data-page=\"oauth-return\" class=\"{}\"",
            if success { "ok" } else { "failed" }
        ),
        &format!(
            "<div class=\"card\"><span aria-hidden=\"true\">{icon}</span>\
             <h2>{title}</h2><div role=\"status\"><span>{message}</span></div>\
             <footer><small data-testid=\"callback-close-hint\" hidden>This window can be closed now; your chat continues where you left it.</small></footer></div>",
            message = escape(message),
        ),
        &["callback.js"],
    )
}

/// A page at the redirect URI that forwards the browser to `location` (a meta refresh, and a
/// link for a browser that ignores it): what platforms whose redirect URI renders a page do.
pub fn forwarding_page(location: &str) -> String {
    let location = escape(location);
    layout(
        "Finishing the sign-in",
        "data-page=\"forwarding\"",
        &format!(
            "<meta http-equiv=\"refresh\" content=\"0;url={location}\">\
             <main><p>Finishing the sign-in… <a href=\"{location}\">Continue</a></p></main>"
        ),
        &[],
    )
}

pub fn error_page(title: &str, detail: &str) -> String {
    layout(
        title,
        "data-page=\"error\"",
        &format!(
            "<main><h1 data-testid=\"error-title\">{}</h1><p data-testid=\"error-detail\">{}</p></main>",
            escape(title),
            escape(detail)
        ),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_page_shows_the_message_as_text() {
        for other_markup in [false, true] {
            let page = callback_page(false, "<img src=x onerror=alert(1)>", other_markup);
            assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
            assert!(!page.contains("<img"));
        }
    }
}
