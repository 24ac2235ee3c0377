//! Issue 16, items 1 and 4: what an unauthenticated client can do to the ingress's
//! connections and metrics. Each test runs the real `ingress` binary as a process against
//! the shared NATS server and a SQLite ledger, and talks to it over raw TCP where the
//! attack needs it. Every wait is bounded in seconds.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use e2e::procs::{Role, free_port, fresh_client, wait_status};
use testkit::{Backend, TestDatabase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Ingress {
    role: Role,
    addr: String,
    base: String,
    _db: TestDatabase,
}

/// Starts the ingress binary with `extra` settings (on top of a token, a PortOne secret, a
/// fresh namespace and database) under `nofile` open files, and waits until it is ready.
async fn start(extra: &[(&str, &str)], nofile: Option<u32>) -> Ingress {
    let nats = testkit::shared_nats_url().await.expect("shared NATS");
    let db = TestDatabase::new(Backend::Sqlite).await.expect("database");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut env = vec![
        ("STOCKLEDGER_HTTP_ADDR", addr.clone()),
        ("STOCKLEDGER_NATS_URL", nats),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            testkit::unique_name("hardening"),
        ),
        ("STOCKLEDGER_DATABASE_URL", db.url().to_owned()),
        ("STOCKLEDGER_API_TOKEN", e2e::TEST_API_TOKEN.to_owned()),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY",
            e2e::TEST_PORTONE_SECRET.to_owned(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut role = Role::spawn("ingress", nofile, &env);
    let base = format!("http://{addr}");
    let ready = wait_status(&base, "/readyz", 200, Duration::from_secs(20)).await;
    assert!(
        ready && role.is_running(),
        "the ingress did not become ready:\n{}",
        role.output()
    );
    Ingress {
        role,
        addr,
        base,
        _db: db,
    }
}

/// Reads until the peer closes (or errs), at most `limit`; `Some(elapsed)` when it closed.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end)
        .await
        .ok()
        .map(|()| start.elapsed())
}

/// The first bytes the server answers on `stream`, at most `limit` after asking.
async fn first_answer(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Ok(Err(e)) => format!("read error: {e}"),
        Err(_) => "no answer in time".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_leaves_health_and_webhooks_answering() {
    // 256 open files for the whole process, 1,100 idle connections: the setting.
    let mut ingress = start(&[("STOCKLEDGER_HEADER_READ_TIMEOUT", "30s")], Some(256)).await;
    let mut flood = Vec::new();
    let started = Instant::now();
    for _ in 0..1_100 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&ingress.addr)).await
        {
            flood.push(s);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "opening the flood took too long"
        );
    }
    assert!(
        flood.len() > 1_000,
        "only {} connections opened",
        flood.len()
    );

    let client = fresh_client();
    for i in 0..5 {
        let r = client.get(format!("{}/healthz", ingress.base)).send().await;
        let status = r.as_ref().map(|r| r.status().as_u16()).ok();
        assert_eq!(
            status,
            Some(200),
            "/healthz check {i} during the flood: {r:?}"
        );
    }
    let body = e2e::http::portone_webhook("po-flood-1", "order-flood-1", "Success", "10.00");
    let r = client
        .post(format!("{}/webhooks/portone", ingress.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the signed webhook is answered during the flood");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);

    // The server made room by closing the oldest idle connections of the flood.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut closed = 0;
    let mut buf = [0u8; 16];
    for s in &flood {
        if tokio::time::timeout(Duration::from_millis(5), s.readable())
            .await
            .is_err()
        {
            continue;
        }
        match s.try_read(&mut buf) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
            _ => {}
        }
    }
    assert!(closed > 800, "only {closed} flood connections were closed");
    assert!(
        ingress.role.is_running(),
        "the ingress died:\n{}",
        ingress.role.output()
    );
    let output = ingress.role.output();
    assert!(
        !output.contains("Too many open files"),
        "the ingress ran out of file descriptors:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_header_trickling_connections_are_closed_after_the_header_timeout() {
    let ingress = start(&[("STOCKLEDGER_HEADER_READ_TIMEOUT", "1s")], None).await;

    // A connection that never sends anything.
    let mut idle = TcpStream::connect(&ingress.addr).await.expect("connect");
    let took = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|d| d >= Duration::from_millis(800)),
        "idle connection: {took:?}"
    );

    // A connection sending its head one header every 200 ms, forever.
    let stream = TcpStream::connect(&ingress.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        if writer
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    let took = start.elapsed();
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the trickling connection was still open after 5 s"
    );
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");

    // A complete request is answered as ever.
    let client = fresh_client();
    let r = client
        .get(format!("{}/healthz", ingress.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_declared_body_is_refused_at_once_without_100_continue() {
    let ingress = start(&[], None).await;
    for (what, head) in [
        (
            "Expect: 100-continue with 999999999 bytes",
            "POST /webhooks/portone HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n",
        ),
        (
            "10 MB declared, body following",
            "POST /webhooks/portone HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{\"a\":",
        ),
        (
            "Expect: 100-continue with 10 MB on the merchant API",
            "PUT /v1/orders/o-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n",
        ),
    ] {
        let mut s = TcpStream::connect(&ingress.addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("write head");
        let asked = Instant::now();
        let answer = first_answer(&mut s, Duration::from_secs(2)).await;
        let took = asked.elapsed();
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{what}: answered {answer:?}"
        );
        assert!(!answer.contains("100 Continue"), "{what}: {answer:?}");
        assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
        assert!(answer.contains("body_too_large"), "{what}: {answer:?}");
        // The unread body is not waited for: the connection closes.
        assert!(
            closed_within(&mut s, Duration::from_secs(2))
                .await
                .is_some(),
            "{what}: the connection stayed open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_metrics() {
    use futures::StreamExt as _;
    let ingress = start(&[], None).await;
    let client = e2e::http::reqwest_client();
    let metrics = || async {
        client
            .get(format!("{}/metrics", ingress.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    };
    // One request per kind first, so that the baseline holds every label set they make.
    for path in ["/healthz", "/nope/0"] {
        let m = reqwest::Method::from_bytes(b"MADEUPX").expect("method");
        let _ = client
            .request(m, format!("{}{path}", ingress.base))
            .send()
            .await;
        let _ = client.get(format!("{}{path}", ingress.base)).send().await;
    }
    // `/metrics` counts itself after answering: the first call adds its own series.
    metrics().await;
    let before = metrics().await;
    let base = ingress.base.clone();
    let results: Vec<u16> = futures::stream::iter(0..3_000)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let m =
                    reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("method");
                let path = if i % 2 == 0 {
                    "/healthz".to_owned()
                } else {
                    format!("/nope/{i}")
                };
                client
                    .request(m, format!("{base}{path}"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        results.iter().all(|s| *s == 405 || *s == 404),
        "statuses: {:?}",
        &results[..10]
    );
    let after = metrics().await;
    assert!(
        after.len() <= before.len() + 64,
        "/metrics grew from {} to {} bytes:\n{after}",
        before.len(),
        after.len()
    );
    assert!(!after.contains("MADEUP"), "a made-up method became a label");
    assert!(!after.contains("/nope"), "a raw path became a label");
    assert!(after.contains("method=\"other\""), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_get_503_with_retry_after() {
    let ingress = start(&[("STOCKLEDGER_MAX_INFLIGHT_REQUESTS", "1")], None).await;
    // One request in progress: its body is still arriving.
    let mut holder = TcpStream::connect(&ingress.addr).await.expect("connect");
    holder
        .write_all(b"POST /webhooks/portone HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = fresh_client();
    let r = client
        .get(format!("{}/healthz", ingress.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    drop(holder);
    assert!(
        wait_status(&ingress.base, "/healthz", 200, Duration::from_secs(5)).await,
        "the slot did not come back"
    );
}
