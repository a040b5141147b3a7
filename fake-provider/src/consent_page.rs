//! The provider's HTML: the consent page and its error page. No script: a plain form.

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
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

/// The consent form's hidden `request` field, as `consent_page` writes it: what a client that
/// is not a browser (a test, the simulator, another session) posts back to `/consent`.
pub fn consent_request_id(page: &str) -> Option<&str> {
    page.split("name=\"request\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
}

pub fn consent_page(client_name: &str, scope: &str, request_id: &str) -> String {
    let scopes: String = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| format!("<li data-testid=\"consent-scope\">{}</li>", escape_html(s)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {client}</title></head>
<body>
<main data-testid="consent-page">
<h1><span data-testid="consent-client">{client}</span> wants to access your account</h1>
<p>It asks for:</p>
<ul>{scopes}</ul>
<form method="post" action="/consent">
<input type="hidden" name="request" value="{request}">
<button type="submit" name="decision" value="allow" data-testid="consent-allow">Allow</button>
<button type="submit" name="decision" value="deny" data-testid="consent-deny">Deny</button>
</form>
</main>
</body></html>
"#,
        client = escape_html(client_name),
        request = escape_html(request_id),
    )
}

pub fn error_page(title: &str, detail: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main data-testid="provider-error"><h1>{title}</h1><p>{detail}</p></main></body></html>
"#,
        title = escape_html(title),
        detail = escape_html(detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_page_escapes_the_client_name_and_scopes() {
        let page = consent_page("<b>x</b>", "files.read <i>", "req_1");
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(page.contains("&lt;i&gt;"));
        assert!(!page.contains("<b>x"));
        assert!(page.contains(r#"data-testid="consent-allow""#));
        assert!(page.contains(r#"data-testid="consent-deny""#));
    }
}
