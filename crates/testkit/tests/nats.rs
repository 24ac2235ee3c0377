//! Proves the NATS half of the harness: a dedicated server accepts a durable
//! JetStream publish, keeps it through kill/stop and restart, and the shared
//! server is usable.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use testkit::{NatsServer, shared_nats_url, unique_name};

type TestResult = anyhow::Result<()>;

async fn jetstream_at(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    Ok(jetstream::new(client))
}

/// Creates a file-backed stream named `name` on subjects `<name>.>` and
/// publishes one message, waiting for the ack. Returns its sequence.
async fn publish_one(
    js: &jetstream::Context,
    name: &str,
    payload: &'static str,
) -> anyhow::Result<u64> {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{name}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let ack = js
        .publish(format!("{name}.event"), payload.into())
        .await?
        .await?;
    Ok(ack.sequence)
}

async fn stored_payload(
    js: &jetstream::Context,
    name: &str,
    sequence: u64,
) -> anyhow::Result<Vec<u8>> {
    let stream = js.get_stream(name).await?;
    Ok(stream.get_raw_message(sequence).await?.payload.to_vec())
}

#[tokio::test]
async fn acknowledged_publish_survives_sigkill_and_restart() -> TestResult {
    let mut nats = NatsServer::start().await?;
    assert_ne!(nats.port(), 4222);
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));
    let name = unique_name("durable");

    let js = jetstream_at(&nats.url()).await?;
    let sequence = publish_one(&js, &name, "reserved 2 units").await?;
    drop(js);

    nats.kill();
    assert!(!nats.is_running());
    assert!(
        jetstream_at(&nats.url()).await.is_err(),
        "nothing should listen after kill"
    );

    let port = nats.port();
    nats.restart().await?;
    assert_eq!(nats.port(), port);
    let js = jetstream_at(&nats.url()).await?;
    assert_eq!(
        stored_payload(&js, &name, sequence).await?,
        b"reserved 2 units"
    );
    Ok(())
}

#[tokio::test]
async fn restart_of_a_running_server_stops_it_gracefully_first() -> TestResult {
    let mut nats = NatsServer::start().await?;
    let name = unique_name("graceful");
    let sequence = publish_one(&jetstream_at(&nats.url()).await?, &name, "received").await?;

    nats.restart().await?;
    assert!(nats.is_running());
    let js = jetstream_at(&nats.url()).await?;
    assert_eq!(stored_payload(&js, &name, sequence).await?, b"received");
    nats.stop().await?;
    nats.stop().await?; // stopping twice is harmless
    Ok(())
}

#[tokio::test]
async fn the_rendered_config_is_the_durable_one() -> TestResult {
    let nats = NatsServer::start().await?;
    let config = std::fs::read_to_string(nats.store_dir().with_file_name("nats-server.conf"))?;
    assert!(config.contains("sync_interval: always"), "{config}");
    assert!(
        config.contains(&format!("port: {}", nats.port())),
        "{config}"
    );
    Ok(())
}

#[tokio::test]
async fn dropping_the_server_removes_its_store() -> TestResult {
    let nats = NatsServer::start().await?;
    let dir = nats.store_dir();
    let url = nats.url();
    drop(nats);
    assert!(!dir.exists());
    assert!(jetstream_at(&url).await.is_err());
    Ok(())
}

#[tokio::test]
async fn shared_server_accepts_publishes() -> TestResult {
    let url = shared_nats_url().await?;
    assert_eq!(url, shared_nats_url().await?);
    let name = unique_name("shared");
    let js = jetstream_at(&url).await?;
    let sequence = publish_one(&js, &name, "hello").await?;
    assert_eq!(stored_payload(&js, &name, sequence).await?, b"hello");
    js.delete_stream(&name).await?;
    Ok(())
}
