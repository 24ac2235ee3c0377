//! Issue 13, item 3: the operators' web console, in a real browser. The real `ledger`,
//! `exceptions` and `ingress` binaries run over real NATS and SQLite with a separate
//! operator token; a signed PortOne capture for an order with too little stock makes an
//! `oversold` exception. Then:
//! - without a session, `/console/` sends the browser to the login form; the merchant API's
//!   token does not log in when an operator token is set, a bearer header is not a
//!   session, and the session cookie is `HttpOnly; SameSite=Strict; Path=/console` and
//!   holds no token;
//! - a logged-in POST without the session's CSRF token, with another site's `Origin`, or
//!   with `Sec-Fetch-Site: cross-site` is refused (403) and changes nothing;
//! - Debian's headless Chromium, driven by `scripts/browser/console.mjs` (playwright-core),
//!   logs in, opens the queue, opens the exception, resolves it with an actor and a
//!   reason, sees the new state, and visits the order, SKU and status pages, writing a
//!   PNG per page;
//! - the JSON API then shows the exception resolved by that actor; the evidence typed in
//!   the browser (markup) is shown escaped; logins are limited per source (429); no role
//!   logged the operator token or the session cookie.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::http::{Client, portone_webhook};
use e2e::procs::{Role, free_port, wait_status};
use testkit::{Backend, TestDatabase};

/// The console's login token (the merchant API keeps `e2e::TEST_API_TOKEN`).
const OPERATOR_TOKEN: &str = "op-SECRET-console-5e1f";
/// The longest the browser run may take (the script bounds itself below this).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest `npm ci` may take when the browser folder has no `node_modules`.
const NPM_TIMEOUT: Duration = Duration::from_secs(180);
/// Debian's Chromium, the only browser the test drives.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The pages the browser script photographs.
const PAGES: &[&str] = &[
    "login",
    "queue",
    "exception-open",
    "exception",
    "order",
    "stock",
    "status",
];
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A client that does not follow redirects (the test reads them) and gives up after 10 s.
fn no_redirects() -> reqwest::Client {
    ingress::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `npm ci` in `scripts/browser` when its `node_modules` is missing, bounded.
async fn browser_deps(dir: &Path) {
    if dir.join("node_modules/playwright-core").exists() {
        return;
    }
    let mut npm = tokio::process::Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(NPM_TIMEOUT, npm.output())
        .await
        .expect("npm ci finishes in time")
        .expect("npm runs (install Node.js: apt-get install -y nodejs npm)");
    assert!(
        out.status.success(),
        "npm ci in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the first `Set-Cookie` for `name` (`name=value`, attributes after).
fn set_cookie<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// An `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |t: &str| {
        t.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The CSRF token written into a console page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resolves_an_exception_in_the_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)"
    );
    let browser_dir = workspace_root().join("scripts/browser");
    browser_deps(&browser_dir).await;

    let nats_url = testkit::shared_nats_url().await.unwrap();
    let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let env = vec![
        ("STOCKLEDGER_HTTP_ADDR", addr.clone()),
        (
            "STOCKLEDGER_LEDGER_METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        ),
        (
            "STOCKLEDGER_EXCEPTIONS_METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("STOCKLEDGER_NATS_URL", nats_url),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            testkit::unique_name("console"),
        ),
        ("STOCKLEDGER_DATABASE_URL", db.url().to_owned()),
        ("STOCKLEDGER_API_TOKEN", e2e::TEST_API_TOKEN.to_owned()),
        ("STOCKLEDGER_OPERATOR_TOKEN", OPERATOR_TOKEN.to_owned()),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY",
            e2e::TEST_PORTONE_SECRET.to_owned(),
        ),
        ("STOCKLEDGER_CONFIRMATION_DEADLINE", "5s".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let ledger = Role::spawn("ledger", None, &env);
    // Both would migrate a new SQLite file at once otherwise ("database is locked").
    e2e::procs::wait_output(&ledger, "ledger starting", Duration::from_secs(15)).await;
    let exceptions = Role::spawn("exceptions", None, &env);
    e2e::procs::wait_output(
        &exceptions,
        "exception consumer starting",
        Duration::from_secs(15),
    )
    .await;
    let ingress = Role::spawn("ingress", None, &env);
    let base = format!("http://{addr}");
    assert!(
        wait_status(&base, "/readyz", 200, Duration::from_secs(30)).await,
        "the ingress is not ready:\n{}",
        ingress.output()
    );

    // An oversold capture: 1 in stock, an order for 2, paid.
    let client = Client::new(&base);
    client.receive("mug-console", 1, "po-console-1").await;
    client
        .register("order-console-1", "mug-console", 2, "30")
        .await;
    let (status, body) = client
        .post(
            "/webhooks/portone",
            portone_webhook("pp-console-1", "order-console-1", "Success", "30"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + e2e::wait::WAIT_MAX;
    let id = loop {
        let (_, body) = client
            .api(
                reqwest::Method::GET,
                "/v1/exceptions?state=open&reason=oversold",
                None,
            )
            .await;
        if let Some(found) = body["exceptions"][0]["id"].as_str() {
            break found.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no oversold exception: {body}\nledger:\n{}",
            ledger.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Without a session: to the login form. A bearer header is not a session.
    let http = no_redirects();
    for req in [
        http.get(format!("{base}/console/")),
        http.get(format!("{base}/console/exceptions/{id}"))
            .bearer_auth(OPERATOR_TOKEN),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(r.headers()["location"], "/console/login");
    }
    let r = http
        .post(format!("{base}/console/exceptions/{id}/resolve"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("actor", "x"), ("reason", "y")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a POST without a session");
    let r = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // The merchant API's token does not open the console when an operator token is set.
    let r = http
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("token", e2e::TEST_API_TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(set_cookie(&r, "stockledger_console").is_none());
    let r = http
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("token", OPERATOR_TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie_header = set_cookie(&r, "stockledger_console").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie_header.contains(attribute), "{cookie_header}");
    }
    assert!(!cookie_header.contains(OPERATOR_TOKEN));
    let cookie = cookie_header.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{base}/console/exceptions/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());

    // State-changing POSTs without the CSRF proof are refused.
    let form = [("actor", "mallory"), ("reason", "forged")];
    let with_csrf = [
        ("actor", "mallory"),
        ("reason", "forged"),
        ("csrf", csrf.as_str()),
    ];
    let forged = [
        http.post(format!("{base}/console/exceptions/{id}/dismiss"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form)),
        http.post(format!("{base}/console/exceptions/{id}/dismiss"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("actor", "mallory"),
                ("reason", "forged"),
                ("csrf", "00"),
            ])),
        http.post(format!("{base}/console/exceptions/{id}/dismiss"))
            .header("cookie", &cookie)
            .header("origin", "http://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&with_csrf)),
        http.post(format!("{base}/console/exceptions/{id}/dismiss"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&with_csrf)),
    ];
    for req in forged {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{}", r.text().await.unwrap());
    }
    let (_, body) = client
        .api(reqwest::Method::GET, &format!("/v1/exceptions/{id}"), None)
        .await;
    assert_eq!(body["state"], "open", "nothing changed: {body}");

    // The browser.
    let shots = std::env::temp_dir().join(testkit::unique_name("console_shots"));
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = tokio::process::Command::new("node");
    node.arg(browser_dir.join("console.mjs"))
        .arg(&base)
        .arg(OPERATOR_TOKEN)
        .arg(&shots)
        .arg(&id)
        .kill_on_drop(true);
    let out = tokio::time::timeout(BROWSER_TIMEOUT, node.output())
        .await
        .expect("the browser run finishes in time")
        .expect("node runs (apt-get install -y nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}\ningress:\n{}",
        String::from_utf8_lossy(&out.stderr),
        ingress.output()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (seen["state_before"].as_str(), seen["state_after"].as_str()),
        (Some("open"), Some("resolved")),
        "{seen}"
    );
    for name in PAGES {
        let png = std::fs::read(shots.join(format!("{name}.png")))
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(
            png.starts_with(PNG_MAGIC) && png.len() > 1000,
            "{name}.png is not a PNG"
        );
    }
    if let Some(keep) = std::env::var_os("STOCKLEDGER_CONSOLE_SHOTS") {
        for name in PAGES {
            std::fs::copy(
                shots.join(format!("{name}.png")),
                Path::new(&keep).join(format!("{name}.png")),
            )
            .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&shots);

    // The JSON API agrees: resolved, by the browser's actor, and only by it.
    let (status, body) = client
        .api(reqwest::Method::GET, &format!("/v1/exceptions/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "resolved", "{body}");
    let actions = body["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{body}");
    assert_eq!(
        (actions[0]["action"].as_str(), actions[0]["actor"].as_str()),
        (Some("resolve"), Some("console:e2e"))
    );
    // The evidence typed in the browser is text on the page, never markup.
    let page = http
        .get(format!("{base}/console/exceptions/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("&lt;b&gt;not markup&lt;/b&gt;"), "{page}");
    assert!(!page.contains("<b>not markup"));
    // It says what the exception concerns: the order, and the SKU and location short.
    for shown in [
        "order-console-1",
        "<dt>SKU</dt><dd><a href=\"/console/stock/mug-console\">mug-console</a></dd>",
        "<dt>location</dt><dd>main</dd>",
    ] {
        assert!(page.contains(shown), "{shown} not on the page:\n{page}");
    }

    // Guessing the token is limited per source: 429 after the burst.
    let mut limited = false;
    for _ in 0..=ingress::routes::console::LOGIN_ATTEMPTS.burst {
        let r = http
            .post(format!("{base}/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", "guess")]))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status().as_u16(), 401);
    }
    assert!(limited, "login attempts are limited");

    let session_value = cookie.split_once('=').unwrap().1;
    for role in [&ledger, &exceptions, &ingress] {
        let log = role.output();
        assert!(
            !log.contains(OPERATOR_TOKEN),
            "{} logged the token",
            role.name
        );
        assert!(
            !log.contains(session_value),
            "{} logged the session",
            role.name
        );
    }
}
