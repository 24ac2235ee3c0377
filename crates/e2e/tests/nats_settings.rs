//! The cluster settings of `STOCKLEDGER_NATS_URL`, `STOCKLEDGER_STREAM_REPLICAS` and
//! `STOCKLEDGER_NATS_CREDS`, through the configuration as a process reads it
//! (`service::connect`), against the real test NATS server (a single node):
//! - several comma-separated URLs: a role connects through whichever node answers;
//! - replicas: every stream and durable consumer is created with the count configured,
//!   and a count the server cannot hold (3 on a single node) is refused with a message
//!   that names the stream, the count and the setting, changing nothing;
//! - a credentials file that cannot be read is an error naming the setting.
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
