//! Issue 16, items 6 to 8, as an attacker or an operator meets them over HTTP
//! (`docs/decisions.md` §31): money is exact or refused, a repeated JSON key is refused, a
//! write must be JSON, text fields with NUL, escapes or no bound are refused naming the
//! field on SQLite and PostgreSQL, and a database that refuses connections or was dropped
//! is a 503 that names neither the database nor the driver's text. Plus a property test:
//! arbitrary bodies on every write never get a 5xx.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase};

/// The bound of every request of these tests: a fault must be answered, not hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A world on `backend` (the shared one is SQLite only).
async fn world_on(backend: Backend) -> World {
    let mut world = World::shared().await;
    if backend == Backend::Postgres {
        let db = TestDatabase::new(Backend::Postgres).await.unwrap();
        world.store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap();
        world.db = db;
    }
    world
}

/// A merchant API call with raw bytes and an optional `Content-Type`.
async fn send(
    ingress: &Ingress,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = ingress
        .http
        .request(method, ingress.url(path))
        .bearer_auth(TOKEN)
        .timeout(REQUEST_TIMEOUT)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))),
    )
}

async fn json_call(ingress: &Ingress, method: Method, path: &str, body: Value) -> (u16, Value) {
    send(
        ingress,
        method,
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

fn assert_names(status: u16, reply: &Value, field: &str, context: &str) {
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("malformed")),
        "{context} → {reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("`{field}`")),
        "{context}: the message names `{field}`: {reply}"
    );
}

fn order(amount: &str, currency: &str) -> Value {
    json!({"lines": [{"sku": "sku-a", "location": "main", "quantity": 1}], "amount": amount, "currency": currency})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_is_exact_or_refused_never_rounded() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let _ledger = world.run_ledger().await;
    for (amount, currency) in [
        // The issue's two: stored as 20.000… and 0 before.
        ("19.99999999999999999999999999999", "USD"),
        ("0.0000000000000000000000000000001", "USD"),
        // More decimal places than the currency's minor unit.
        ("10.001", "USD"),
        ("100.5", "KRW"),
        ("1.5", "JPY"),
        ("1.0005", "KWD"),
        // More digits than the decimal holds, in the integer part.
        ("99999999999999999999999999999999", "USD"),
    ] {
        let (status, reply) = json_call(
            &ingress,
            Method::PUT,
            "/v1/orders/m-1",
            order(amount, currency),
        )
        .await;
        assert_names(status, &reply, "amount", &format!("{amount} {currency}"));
    }
    assert!(world.events().await.is_empty(), "nothing was published");

    // What the currency allows is stored exactly as sent.
    for (order_ref, amount, currency) in [
        ("m-usd", "19.99", "USD"),
        ("m-bhd", "1.005", "BHD"),
        ("m-krw", "15000", "KRW"),
        ("m-krw0", "15000.00", "KRW"),
    ] {
        let (status, reply) = json_call(
            &ingress,
            Method::PUT,
            &format!("/v1/orders/{order_ref}"),
            order(amount, currency),
        )
        .await;
        assert_eq!(status, 201, "{amount} {currency}: {reply}");
        let (status, stored) = ingress
            .api(Method::GET, &format!("/v1/orders/{order_ref}"), None)
            .await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["amount"], amount, "{stored}");
        assert_eq!(stored["currency"], currency, "{stored}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_is_refused_not_last_wins() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    for (path, body) in [
        (
            "/v1/orders/dup-1",
            r#"{"lines":[{"sku":"sku-a","location":"main","quantity":1}],"amount":"10.00","amount":"99.00","currency":"USD"}"#,
        ),
        (
            "/v1/orders/dup-2",
            r#"{"lines":[{"sku":"sku-a","location":"main","quantity":1,"quantity":5}],"amount":"10.00","currency":"USD"}"#,
        ),
        (
            "/v1/stock/receipts",
            r#"{"sku":"a","location":"m","quantity":1,"reference":"r-1","reference":"r-2"}"#,
        ),
        (
            "/v1/exceptions/x/resolve",
            r#"{"actor":"ann","actor":"bob","reason":"dup"}"#,
        ),
    ] {
        let method = if path.starts_with("/v1/orders/") {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, reply) = send(
            &ingress,
            method,
            path,
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
        .await;
        assert_names(status, &reply, "body", body);
        assert!(
            reply["message"]
                .as_str()
                .unwrap_or_default()
                .contains("duplicate key"),
            "{reply}"
        );
    }
    assert!(world.events().await.is_empty(), "nothing was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_must_say_they_are_json() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let receipt = json!({"sku": "a", "location": "m", "quantity": 1, "reference": "ct-1"})
        .to_string()
        .into_bytes();
    let writes = [
        (Method::PUT, "/v1/orders/ct-1"),
        (Method::POST, "/v1/orders/ct-1/payment-refs"),
        (Method::POST, "/v1/stock/receipts"),
        (Method::POST, "/v1/returns"),
        (Method::POST, "/v1/returns/rma-1/inspection"),
        (Method::POST, "/v1/exceptions/x/resolve"),
        (Method::POST, "/v1/exceptions/x/retry"),
    ];
    for (method, path) in &writes {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let (status, reply) = send(
                &ingress,
                method.clone(),
                path,
                content_type,
                receipt.clone(),
            )
            .await;
            assert_eq!(
                (status, reply["error"].as_str()),
                (415, Some("unsupported_media_type")),
                "{method} {path} {content_type:?} → {reply}"
            );
        }
    }
    assert!(world.events().await.is_empty(), "nothing was published");
    // JSON with parameters, in any case, passes the check (and meets the body's own rules).
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let (status, reply) = send(
            &ingress,
            Method::POST,
            "/v1/stock/receipts",
            Some(content_type),
            b"{}".to_vec(),
        )
        .await;
        assert_names(status, &reply, "sku", content_type);
    }
    // Reads take no body and need no Content-Type: the read is answered (a SKU the
    // ledger never saw is 404 `unknown_sku`, not 415).
    let (status, reply) = ingress.api(Method::GET, "/v1/stock/a", None).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("unknown_sku")),
        "{reply}"
    );
}

/// The text an attacker or a careless operator sends: NUL, an ANSI escape, a line break
/// in a one-line field, and 200 KB.
fn bad_texts() -> Vec<(&'static str, String)> {
    vec![
        ("nul", "ops\u{0}ann".to_owned()),
        ("ansi", "\u{1b}[2J\u{1b}[31mroot".to_owned()),
        ("newline", "ann\nINFO forged log line".to_owned()),
        ("200kb", "a".repeat(200 * 1024)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_fields_are_refused_naming_the_field_on_both_databases() {
    for backend in Backend::all() {
        let world = world_on(backend).await;
        let ingress = world.ingress(settings()).await;
        let good_line = json!({"sku": "sku-a", "location": "main", "quantity": 1});
        for (label, bad) in bad_texts() {
            let ctx = |what: &str| format!("{backend} {label} {what}");
            // Merchant API strings.
            let cases: Vec<(Method, String, Value, &str)> = vec![
                (
                    Method::POST,
                    "/v1/stock/receipts".into(),
                    json!({"sku": bad, "location": "main", "quantity": 1, "reference": "r"}),
                    "sku",
                ),
                (
                    Method::POST,
                    "/v1/stock/receipts".into(),
                    json!({"sku": "a", "location": bad, "quantity": 1, "reference": "r"}),
                    "location",
                ),
                (
                    Method::POST,
                    "/v1/stock/receipts".into(),
                    json!({"sku": "a", "location": "main", "quantity": 1, "reference": bad}),
                    "reference",
                ),
                (
                    Method::PUT,
                    "/v1/orders/o-text".into(),
                    json!({"lines": [good_line], "amount": "1.00", "currency": "USD",
                           "payment_refs": [{"provider": bad, "ref": "pi_1"}]}),
                    "payment_refs[0].provider",
                ),
                (
                    Method::POST,
                    "/v1/orders/o-text/payment-refs".into(),
                    json!({"provider": "stripe", "ref": bad}),
                    "ref",
                ),
                (
                    Method::POST,
                    "/v1/returns".into(),
                    json!({"order_ref": bad, "reference": "rma", "lines": [good_line]}),
                    "order_ref",
                ),
                (
                    Method::POST,
                    "/v1/returns/rma/inspection".into(),
                    json!({"outcome": "restock", "lines": [good_line], "reference": bad}),
                    "reference",
                ),
                // Operator actions (the same checks as stockctl's, `operator::actions`).
                (
                    Method::POST,
                    "/v1/exceptions/x/resolve".into(),
                    json!({"actor": bad, "reason": "why"}),
                    "actor",
                ),
                (
                    Method::POST,
                    "/v1/exceptions/x/retry".into(),
                    json!({"actor": "ann", "reason": bad}),
                    "reason",
                ),
                (
                    Method::POST,
                    "/v1/exceptions/x/dismiss".into(),
                    json!({"actor": "ann", "reason": "why", "idempotency_key": bad}),
                    "idempotency_key",
                ),
            ];
            for (method, path, body, field) in cases {
                let (status, reply) = json_call(&ingress, method, &path, body).await;
                assert_names(status, &reply, field, &ctx(field));
            }
            // Evidence may have line breaks, nothing else.
            if label != "newline" {
                let (status, reply) = json_call(
                    &ingress,
                    Method::POST,
                    "/v1/exceptions/x/keep",
                    json!({"actor": "ann", "reason": "why", "evidence": bad}),
                )
                .await;
                assert_names(status, &reply, "evidence", &ctx("evidence"));
            }
        }
        // Path and query parameters.
        for (path, field) in [
            ("/v1/stock/a%00b", "sku"),
            ("/v1/stock/a%1B%5B2J", "sku"),
            ("/v1/stock/a/entries?location=m%00", "location"),
            ("/v1/orders/o%00", "order_ref"),
            ("/v1/exceptions/x%00y", "id"),
            ("/v1/exceptions?reason=x%00", "reason"),
        ] {
            let (status, reply) = ingress.api(Method::GET, path, None).await;
            assert_names(status, &reply, field, &format!("{backend} {path}"));
        }
        let (status, reply) = json_call(
            &ingress,
            Method::PUT,
            "/v1/orders/o%00",
            order("1.00", "USD"),
        )
        .await;
        assert_names(status, &reply, "order_ref", &format!("{backend} PUT o%00"));
        assert!(
            world.events().await.is_empty(),
            "{backend}: nothing was published"
        );
        // Good text still goes through to the database and back (a 404: no such exception).
        let (status, reply) = json_call(
            &ingress,
            Method::POST,
            "/v1/exceptions/no-such/resolve",
            json!({"actor": "console:ann", "reason": "checked", "evidence": "ticket T-9\n\tline 2"}),
        )
        .await;
        assert_eq!(status, 404, "{backend}: {reply}");
    }
}

/// The failure must not tell the caller which database, where, or what the driver said.
fn assert_no_detail(reply: &Value, db_name: &str, context: &str) {
    let text = reply.to_string();
    for leak in [
        db_name,
        "error returned from database",
        "error communicating",
        "pool timed out",
        "does not exist",
        "postgres",
        "sqlx",
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(leak),
            "{context}: the answer leaks {leak:?}: {reply}"
        );
    }
}

/// The name of the database of a `postgres://…/<name>` URL.
fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Asks the two unauthenticated-or-read paths of the issue and expects 503 without detail.
async fn expect_unavailable(ingress: &Ingress, db_name: &str, context: &str) {
    let (status, reply) = ingress.api(Method::GET, "/v1/stock/sku-a", None).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (503, Some("unavailable")),
        "{context}: GET /v1/stock → {reply}"
    );
    assert_no_detail(&reply, db_name, context);
    let (status, reply) = ingress
        .post_raw(
            "/portone/inventory-confirmation",
            confirmation_body("k", "o-db", "po-db", "10"),
            &[],
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (503, Some("unavailable")),
        "{context}: confirmation → {reply}"
    );
    assert_no_detail(&reply, db_name, context);
    let (status, reply) = json_call(
        ingress,
        Method::PUT,
        "/v1/orders/o-db",
        order("10.00", "USD"),
    )
    .await;
    assert_eq!(status, 503, "{context}: PUT /v1/orders → {reply}");
    assert_no_detail(&reply, db_name, context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_database_is_503_without_detail() {
    let mut world = World::shared().await;
    let db = TestDatabase::new(Backend::Postgres).await.unwrap();
    let name = database_name(db.url());
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    world.store = Store::connect(db.url(), &options).await.unwrap();
    world.register_order("o-db", &[("sku-a", 1)], "10").await;
    let ingress = world.ingress(settings()).await;
    // Answered from the database again (no stock was received for it: 404, not 503).
    assert_eq!(
        ingress.api(Method::GET, "/v1/stock/sku-a", None).await.0,
        404
    );

    // DROP DATABASE … WITH (FORCE): open connections are cut, new ones get 3D000.
    tokio::time::timeout(Duration::from_secs(30), db.drop_db())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        expect_unavailable(&ingress, &name, "dropped database"),
    )
    .await
    .expect("answered within the bound");
}

/// A TCP forwarder to PostgreSQL that can be shut: then its port refuses connections and
/// every connection through it is cut, as when the server goes away.
struct Forwarder {
    addr: std::net::SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Forwarder {
    async fn start(target: String) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                spawned.lock().unwrap().push(pipe);
            }
        });
        tasks.lock().unwrap().push(accept);
        Forwarder { addr, tasks }
    }

    /// Closes the listening port and cuts every forwarded connection.
    async fn shut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// `host:port` of a `postgres://[user@]host:port/db` URL, and the URL with another address.
fn split_address(url: &str) -> (String, impl Fn(&str) -> String + use<>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let start = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let mut address = url[start..end].to_owned();
    if !address.contains(':') {
        address.push_str(":5432");
    }
    let (head, tail) = (url[..start].to_owned(), url[end..].to_owned());
    (address, move |new: &str| format!("{head}{new}{tail}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refusing_connections_is_503_without_detail() {
    let mut world = World::shared().await;
    let db = TestDatabase::new(Backend::Postgres).await.unwrap();
    let name = database_name(db.url());
    let (address, with_address) = split_address(db.url());
    let forwarder = Forwarder::start(address).await;
    let options = StoreOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
    };
    world.store = Store::connect(&with_address(&forwarder.addr.to_string()), &options)
        .await
        .unwrap();
    world.register_order("o-db", &[("sku-a", 1)], "10").await;
    let ingress = world.ingress(settings()).await;
    // Answered from the database again (no stock was received for it: 404, not 503).
    assert_eq!(
        ingress.api(Method::GET, "/v1/stock/sku-a", None).await.0,
        404
    );

    forwarder.shut().await;
    assert!(
        tokio::net::TcpStream::connect(forwarder.addr)
            .await
            .is_err(),
        "the port refuses connections now"
    );
    tokio::time::timeout(
        Duration::from_secs(60),
        expect_unavailable(&ingress, &name, "refused connections"),
    )
    .await
    .expect("answered within the bound");
    drop(db);
}

/// Arbitrary bytes, or JSON with a merchant API's field names and hostile values.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "lines",
        "amount",
        "currency",
        "sku",
        "location",
        "quantity",
        "reference",
        "payment_refs",
        "provider",
        "ref",
        "outcome",
        "actor",
        "reason",
        "evidence",
        "idempotency_key",
    ]);
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(|s| json!(s)),
        "[0-9]{0,40}(\\.[0-9]{0,40})?".prop_map(|s| json!(s)),
        prop::sample::select(vec!["USD", "KRW", "BHD", "restock", "write_off", "main"])
            .prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        value.prop_map(|v| v.to_string().into_bytes()),
    ]
}

#[test]
fn arbitrary_bodies_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (world, ingress) = rt.block_on(async {
        let world = World::shared().await;
        let mut s = settings();
        // A body that happens to be a valid write is published and answered 202 soon.
        s.confirmation_deadline = Duration::from_millis(200);
        let ingress = world.ingress(s).await;
        (world, ingress)
    });
    let writes = [
        (Method::PUT, "/v1/orders/p-1"),
        (Method::POST, "/v1/orders/p-1/payment-refs"),
        (Method::POST, "/v1/stock/receipts"),
        (Method::POST, "/v1/returns"),
        (Method::POST, "/v1/returns/rma-p/inspection"),
        (Method::POST, "/v1/exceptions/x/resolve"),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    runner
        .run(&(0..writes.len(), hostile_body()), |(which, body)| {
            let (method, path) = writes[which].clone();
            let (status, reply) = rt.block_on(send(
                &ingress,
                method.clone(),
                path,
                Some("application/json"),
                body.clone(),
            ));
            prop_assert!(
                status < 500,
                "{method} {path} {:?} → {status} {reply}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        })
        .unwrap();
    rt.block_on(async move {
        drop(ingress);
        drop(world);
    });
}
