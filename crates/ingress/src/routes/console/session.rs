//! Who may use the console, and that a form was posted by the console itself: the login
//! form, the session cookie, the CSRF proof of every state-changing form, the one-shot
//! notice cookie, and the headers every console answer carries.
//!
//! A browser cannot send a bearer header by itself, so the operator types the token once
//! into the login form (`STOCKLEDGER_OPERATOR_TOKEN`, or the merchant API token when that
//! is unset), compared in constant time like the API's ([`auth::token_matches`]). The
//! cookie then holds an expiry and an HMAC-SHA256 of it keyed by the token, never the
//! token: it is good until it expires or the token changes, and it is
//! `HttpOnly; SameSite=Strict; Path=/console`. Logging out clears it in the browser; a
//! copied cookie stays good until its expiry (the server keeps no sessions), so
//! [`SESSION_TTL`] is short.
//!
//! A state-changing form (an action, logging out) must pass two checks before it is read:
//! the browser says it came from this site (`Sec-Fetch-Site: same-origin`, and an `Origin`
//! whose host is the request's `Host`; a header that is absent is not held against it, for
//! older clients), and it carries the session's CSRF token, an HMAC of the session cookie
//! keyed by the operator token, written into every form the console renders. `SameSite=Strict`
//! already keeps the cookie off a cross-site request; the two checks hold without it. The
//! login form has no session yet, so it gets the origin check only.

use std::time::Duration;

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use config::Secret;
use hmac::{Hmac, Mac};
use maud::{Markup, html};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::view;
use crate::AppState;
use crate::routes::auth;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stockledger_console";
/// The one-shot notice cookie: the result of the last action, shown once on the page the
/// action redirected to.
pub const NOTICE_COOKIE: &str = "stockledger_console_notice";
/// The path both cookies are limited to.
pub const COOKIE_PATH: &str = "/console";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long a notice waits to be shown (a redirect follows at once).
pub const NOTICE_TTL: Duration = Duration::from_secs(60);
/// The longest notice kept, in bytes of text (the cookie holds it hex-encoded, twice this).
pub const NOTICE_MAX_BYTES: usize = 1000;
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// What the HMACs are keyed for: the session cookie and the CSRF token never coincide.
const SESSION_CONTEXT: &str = "stockledger console session v1";
const CSRF_CONTEXT: &str = "stockledger console csrf v1";

/// A logged-in request: what its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    /// This session's CSRF token (hex).
    pub csrf: String,
}

/// The token the console is behind: the operator token when set, else the API token.
fn operator_secret(state: &AppState) -> &Secret {
    state
        .settings
        .operator_token
        .as_ref()
        .unwrap_or(&state.settings.api_token)
}

/// HMAC-SHA256 of `context` and `message` keyed by the operator token, in hex.
fn mac(secret: &Secret, context: &str, message: &str) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    m.update(context.as_bytes());
    m.update(b"\0");
    m.update(message.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn now_ms() -> i64 {
    crate::publish::now().0
}

/// A new session cookie's value: `<expiry ms>.<mac>`.
fn new_session(secret: &Secret) -> String {
    let ttl = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    let expires = now_ms().saturating_add(ttl).to_string();
    let tag = mac(secret, SESSION_CONTEXT, &expires);
    format!("{expires}.{tag}")
}

/// The session a cookie value proves, if it does: its MAC matches and it has not expired.
fn check_session(secret: &Secret, value: &str) -> Option<Session> {
    let (expires, tag) = value.split_once('.')?;
    let at: i64 = expires.parse().ok()?;
    let expected = mac(secret, SESSION_CONTEXT, expires);
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
        return None;
    }
    if at <= now_ms() {
        return None;
    }
    Some(Session {
        csrf: mac(secret, CSRF_CONTEXT, value),
    })
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A `Set-Cookie` value for one of the console's cookies.
fn set_cookie(name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    );
    // Names and values are ours: hex, digits and dots.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Lets a request through with a valid session (its [`Session`] in the extensions); sends a
/// browser without one to the login form, and refuses any other method with 401.
pub async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let session = cookie(req.headers(), SESSION_COOKIE)
        .and_then(|v| check_session(operator_secret(&state), v));
    match session {
        Some(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        None if req.method() == Method::GET || req.method() == Method::HEAD => {
            Redirect::to("/console/login").into_response()
        }
        None => view::error_page(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "Log in to the console first.",
        ),
    }
}

/// Why a posted form is refused before it is read.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Some("the form was not sent by this site (Sec-Fetch-Site)");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return Some("the form was not sent by this site (Origin)");
        }
    }
    None
}

/// Whether a posted form came from the console: same site, with this session's CSRF
/// token. `Some` is the page to answer instead (403).
pub fn form_refusal(
    headers: &HeaderMap,
    session: &Session,
    csrf: Option<&str>,
) -> Option<Response> {
    if let Some(why) = cross_site(headers) {
        return Some(view::error_page(StatusCode::FORBIDDEN, "Refused", why));
    }
    let presented = csrf.unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return Some(view::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "the form did not carry this session's CSRF token; reload the page and try again",
        ));
    }
    None
}

/// `GET /console/login`.
pub async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let body: Markup = html! {
        h1 { "stockledger console" }
        @if let Some(e) = error { p.notice.error { (e) } }
        form method="post" action="/console/login" {
            label { "Operator token " input type="password" name="token" autocomplete="current-password" required; }
            " "
            button type="submit" { "Log in" }
        }
        p.muted { "The token is STOCKLEDGER_OPERATOR_TOKEN, or the merchant API token when that is not set." }
    };
    view::page(status, "Log in", None, body)
}

/// The login form's body.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: Option<String>,
}

/// `POST /console/login`: the right token sets the session cookie and goes to the queue.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Some(why) = cross_site(&headers) {
        return view::error_page(StatusCode::FORBIDDEN, "Refused", why);
    }
    let presented = form.ok().and_then(|f| f.0.token).unwrap_or_default();
    let secret = operator_secret(&state);
    if !auth::token_matches(presented.trim(), secret.expose()) {
        return login_page(StatusCode::UNAUTHORIZED, Some("The token is not valid."));
    }
    let mut response = Redirect::to("/console/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &new_session(secret), SESSION_TTL),
    );
    response
}

/// The logout form's body.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /console/logout`: clears the session cookie.
pub async fn logout(
    headers: HeaderMap,
    axum::Extension(session): axum::Extension<Session>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|f| f.0.csrf);
    if let Some(refused) = form_refusal(&headers, &session, csrf.as_deref()) {
        return refused;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Duration::ZERO),
    );
    response
}

/// Whether a notice reports success or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Done,
    Error,
}

/// A redirect (303) to `to` that leaves `text` to be shown there once.
pub fn redirect_with_notice(to: &str, kind: NoticeKind, text: &str) -> Response {
    let mut end = text.len().min(NOTICE_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = match kind {
        NoticeKind::Done => "d",
        NoticeKind::Error => "e",
    };
    let value = format!("{prefix}{}", hex::encode(&text.as_bytes()[..end]));
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(NOTICE_COOKIE, &value, NOTICE_TTL),
    );
    response
}

/// The notice left for this request, if any, and the header that clears it.
pub fn take_notice(headers: &HeaderMap) -> Option<(NoticeKind, String, HeaderValue)> {
    let value = cookie(headers, NOTICE_COOKIE)?;
    let kind = match value.get(..1)? {
        "d" => NoticeKind::Done,
        "e" => NoticeKind::Error,
        _ => return None,
    };
    let bytes = hex::decode(value.get(1..)?).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Some((kind, text, set_cookie(NOTICE_COOKIE, "", Duration::ZERO)))
}

/// Headers on every console answer: never cached, never framed, no script at all, forms
/// only to this site, the referrer only within it (`no-referrer` would make a browser send
/// `Origin: null` with every form, which the CSRF check refuses).
pub async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_session_is_good_only_with_the_same_token_and_unchanged() {
        let secret = Secret::new("op-token");
        let value = new_session(&secret);
        assert!(!value.contains("op-token"));
        let s = check_session(&secret, &value).unwrap();
        assert_eq!(s.csrf.len(), 64);
        assert!(check_session(&Secret::new("other"), &value).is_none());
        let (expires, tag) = value.split_once('.').unwrap();
        let later = format!("{}.{tag}", expires.parse::<i64>().unwrap() + 1);
        assert!(check_session(&secret, &later).is_none());
        let past = "1000";
        let forged = format!("{past}.{}", mac(&secret, SESSION_CONTEXT, past));
        assert!(check_session(&secret, &forged).is_none(), "expired");
        assert!(check_session(&secret, "garbage").is_none());
    }

    #[test]
    fn cross_site_forms_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("ops.example:8080"));
        assert_eq!(cross_site(&h), None);
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://ops.example:8080"),
        );
        assert_eq!(cross_site(&h), None);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h).is_some());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h).is_some());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h).is_some());
    }

    #[test]
    fn cookies_and_notices_round_trip() {
        let r = redirect_with_notice("/console/", NoticeKind::Error, "no <b>such</b>; thing");
        let set = r
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(set.contains("HttpOnly; SameSite=Strict"));
        let value = set.split(';').next().unwrap().to_owned();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {value}")).unwrap(),
        );
        let (kind, text, _) = take_notice(&h).unwrap();
        assert_eq!(
            (kind, text.as_str()),
            (NoticeKind::Error, "no <b>such</b>; thing")
        );
    }
}
