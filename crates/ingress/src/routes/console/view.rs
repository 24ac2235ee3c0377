//! The console's page frame and small formatting helpers: one layout with a navigation bar
//! and an inline style sheet, times and ages, links with escaped path segments. Every value
//! goes through maud's `(…)`, which escapes it: evidence, reasons and details are text an
//! attacker may have written.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Timestamp;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::CSRF_FIELD;

/// The whole style sheet, inline: no file to serve, nothing fetched.
const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
nav{background:#1f2933;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
nav a{color:#fff;text-decoration:none;font-weight:600}
nav form{display:inline;margin:0}
nav input{width:9em}
main{padding:16px}
h1{font-size:20px;margin:0 0 12px}
h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
pre{background:#fff;border:1px solid #d9dde3;padding:8px;overflow:auto;max-height:30em;white-space:pre-wrap;word-break:break-all}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;background:#fff;border:1px solid #d9dde3;padding:8px}
dt{font-weight:600}
dd{margin:0}
.notice{padding:8px;border:1px solid;margin:0 0 12px}
.done{background:#e7f6ea;border-color:#7cc489}
.error{background:#fdecea;border-color:#e08b84}
.muted{color:#5f6b7a}
.state-open{color:#b42318;font-weight:600}
.state-retrying{color:#b54708;font-weight:600}
.state-resolved{color:#067647;font-weight:600}
.ok{color:#067647;font-weight:600}
.bad{color:#b42318;font-weight:600}
form.action label{display:block;margin:4px 0}
form.action input,form.action textarea{width:40em;max-width:100%}
button{margin:4px 4px 0 0}
";

/// A time the store keeps (Unix ms) as RFC 3339 UTC.
pub fn time(ms: i64) -> String {
    contract::wire_time::format(Timestamp(ms))
}

/// How long ago `ms` was, from `now` (Unix ms), in its two largest units: `3d 4h`, `5m 2s`.
pub fn age(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// `text` as one URL path segment: everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console path of an exception, an order, a SKU.
pub fn exception_href(id: &str) -> String {
    format!("/console/exceptions/{}", segment(id))
}
pub fn order_href(order_ref: &str) -> String {
    format!("/console/orders/{}", segment(order_ref))
}
pub fn stock_href(sku: &str) -> String {
    format!("/console/stock/{}", segment(sku))
}

/// A page: the frame (navigation with the lookups and, when logged in, logout) around
/// `body`, answered with `status`. `csrf` is the session's token (`None` on the login page).
pub fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · stockledger console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/console/" { "Exception queue" }
                    a href="/console/status" { "Status" }
                    @if let Some(csrf) = csrf {
                        form method="get" action="/console/orders" {
                            input name="order_ref" placeholder="order ref" aria-label="order ref";
                            button type="submit" { "Order" }
                        }
                        form method="get" action="/console/stock" {
                            input name="sku" placeholder="SKU" aria-label="SKU";
                            button type="submit" { "Stock" }
                        }
                        form method="post" action="/console/logout" {
                            input type="hidden" name=(CSRF_FIELD) value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page that only says what went wrong.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        None,
        html! {
            h1 { (title) }
            p.notice.error { (message) }
            p { a href="/console/" { "Back to the exception queue" } }
        },
    )
}

/// The class that colours an exception state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "open" => "state-open",
        "retrying" => "state-retrying",
        "resolved" => "state-resolved",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_segments() {
        assert_eq!(age(0, 5_000), "5s");
        assert_eq!(age(0, 125_000), "2m 5s");
        assert_eq!(age(0, 3_725_000), "1h 2m");
        assert_eq!(age(0, 90_000_000), "1d 1h");
        assert_eq!(age(10, 0), "0s");
        assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
    }

    #[test]
    fn text_is_escaped() {
        let r = page(
            StatusCode::OK,
            "<t>",
            Some("c"),
            html! { p { ("<script>alert(1)</script>") } },
        );
        assert_eq!(r.status(), StatusCode::OK);
        let m = html! { p { ("<script>\"&") } }.into_string();
        assert_eq!(m, "<p>&lt;script&gt;&quot;&amp;</p>");
    }
}
