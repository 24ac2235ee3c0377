//! The cluster settings of `STOCKLEDGER_NATS_URL`, `STOCKLEDGER_STREAM_REPLICAS` and
//! `STOCKLEDGER_NATS_CREDS`, through the configuration as a process reads it
//! (`service::connect`), against the real test NATS server (a single node):
//! - several comma-separated URLs: a role connects through whichever node answers;
//! - replicas: every stream and durable consumer is created with the count configured,
//!   and a count the server cannot hold (3 on a single node) is refused with a message
//!   that names the stream, the count and the setting, changing nothing;
//! - a credentials file that cannot be read is an error naming the setting;
//! - a CA bundle makes a TLS-only server's certificate trusted (certificates made with
//!   `openssl` for the test).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

fn config(vars: &[(&str, String)]) -> config::Config {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    config::Config::from_map(&map).unwrap()
}

fn namespace() -> String {
    testkit::unique_name("ns")
}

#[tokio::test]
async fn several_urls_connect_through_the_node_that_answers() {
    let url = testkit::shared_nats_url().await.unwrap();
    let dead = format!("nats://127.0.0.1:{}", e2e::procs::free_port());
    let cfg = config(&[
        ("STOCKLEDGER_NATS_URL", format!("{dead}, {url}")),
        ("STOCKLEDGER_NATS_NAMESPACE", namespace()),
    ]);
    let mut bus_cfg = service::connect::bus_config(&cfg).unwrap();
    bus_cfg.retry_initial_connect = false;
    let bus = bus::Bus::connect(bus_cfg).await.unwrap();
    bus.ensure_streams().await.unwrap();
    assert!(bus.is_connected());
}

#[tokio::test]
async fn streams_and_consumers_get_the_configured_replicas() {
    let url = testkit::shared_nats_url().await.unwrap();
    let ns = namespace();
    let bus = service::connect::bus(&config(&[
        ("STOCKLEDGER_NATS_URL", url.clone()),
        ("STOCKLEDGER_NATS_NAMESPACE", ns.clone()),
        ("STOCKLEDGER_STREAM_REPLICAS", "1".into()),
    ]))
    .await
    .unwrap();
    e2e::wait::eventually("connected", || async { bus.is_connected() }).await;
    bus.ensure_streams().await.unwrap();
    bus.ensure_stock_stream().await.unwrap();
    let mut consumer = bus
        .ledger_consumer(&bus::ConsumerLimits::default())
        .await
        .unwrap();
    let events = bus.namespace().events_stream();
    let mut stream = bus.jetstream().get_stream(&events).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 1);
    assert_eq!(consumer.info().await.unwrap().config.num_replicas, 1);

    // Three replicas on a single server (which would write the count into the stream's
    // configuration and keep one copy): refused, naming the stream, the count and the
    // setting.
    let three = service::connect::bus(&config(&[
        ("STOCKLEDGER_NATS_URL", url),
        ("STOCKLEDGER_NATS_NAMESPACE", ns),
        ("STOCKLEDGER_STREAM_REPLICAS", "3".into()),
    ]))
    .await
    .unwrap();
    e2e::wait::eventually("connected", || async { three.is_connected() }).await;
    let err = three.ensure_streams().await.unwrap_err();
    assert!(!err.is_transient(), "a refusal, not an outage: {err}");
    let text = err.to_string();
    assert!(
        text.contains(&events)
            && text.contains("replicas 3")
            && text.contains("STOCKLEDGER_STREAM_REPLICAS"),
        "{text}"
    );
    assert!(text.contains("not part of a JetStream cluster"), "{text}");
}

#[tokio::test]
async fn an_unreadable_credentials_file_names_the_setting() {
    let url = testkit::shared_nats_url().await.unwrap();
    let missing = std::env::temp_dir().join(testkit::unique_name("missing.creds"));
    let cfg = config(&[
        ("STOCKLEDGER_NATS_URL", url),
        ("STOCKLEDGER_NATS_CREDS", missing.display().to_string()),
    ]);
    let err = service::connect::bus(&cfg).await.unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("STOCKLEDGER_NATS_CREDS") && text.contains(&missing.display().to_string()),
        "{text}"
    );
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A NATS server that speaks TLS only, with a certificate for 127.0.0.1 signed by a CA of
/// the test's own: `STOCKLEDGER_NATS_TLS_CA` naming that CA connects; without it, the
/// server's certificate is not trusted and the connection fails.
#[tokio::test]
async fn the_tls_ca_setting_trusts_the_servers_certificate() {
    let dir = std::env::temp_dir().join(testkit::unique_name("nats_tls"));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=stockledger test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
        ],
    );
    let port = e2e::procs::free_port();
    let conf = format!(
        "host: 127.0.0.1\nport: {port}\njetstream {{ store_dir: \"{}\" }}\ntls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
        dir.join("js").display(),
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    );
    std::fs::write(dir.join("nats.conf"), conf).unwrap();
    let mut server = std::process::Command::new(testkit::nats_server_bin().unwrap())
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    e2e::wait::eventually("the TLS server listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    let url = format!("nats://127.0.0.1:{port}");
    let connect = |ca: Option<String>| {
        let mut vars = vec![
            ("STOCKLEDGER_NATS_URL", url.clone()),
            ("STOCKLEDGER_NATS_NAMESPACE", namespace()),
        ];
        if let Some(ca) = ca {
            vars.push(("STOCKLEDGER_NATS_TLS_CA", ca));
        }
        let mut bus_cfg = service::connect::bus_config(&config(&vars)).unwrap();
        bus_cfg.retry_initial_connect = false;
        bus::Bus::connect(bus_cfg)
    };
    let trusted = connect(Some(dir.join("ca.pem").display().to_string()))
        .await
        .unwrap();
    trusted.ensure_streams().await.unwrap();
    let untrusted = connect(None).await;
    assert!(
        untrusted.is_err(),
        "a server certificate from an unknown CA is refused"
    );

    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
