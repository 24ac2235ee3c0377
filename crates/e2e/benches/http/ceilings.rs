//! The raw ceilings, measured in the same run as the figures they bound: JetStream's
//! durable publish on one fresh stream, batched inserts into the database, and plain HTTP
//! against the same ingress.

use std::time::Instant;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use e2e::http::Client;
use store::sqlx::{self, AnyConnection, AssertSqlSafe, Connection as _};
use testkit::{Backend, TestDatabase};

use crate::load::{Run, drive, rate};

/// Rows per transaction (one multi-row INSERT each), the ledger's default batch size.
pub const ROWS_PER_TRANSACTION: usize = 256;

/// Bytes of each raw JetStream message, about the size of a small contract envelope.
const MESSAGE_BYTES: usize = 300;

/// Publishes `n` distinct messages (each with its own `Nats-Msg-Id`) to a fresh
/// file-storage stream on the server at `nats_url` from `publishers` concurrent
/// publishers, each awaiting JetStream's ack before its next message. One fsync per
/// message on a `sync_interval: always` server: the single-stream ceiling. On a cluster,
/// `replicas` copies (each fsynced before the quorum acknowledges).
pub async fn jetstream_publish(
    nats_url: &str,
    n: usize,
    publishers: usize,
    replicas: usize,
) -> anyhow::Result<Run> {
    let servers: Vec<&str> = nats_url.split(',').collect();
    let js = jetstream::new(async_nats::connect(servers).await?);
    let name = testkit::unique_name("bench_raw");
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await?;
    let subject = format!("{name}.msg");
    let payload = Bytes::from(vec![b'x'; MESSAGE_BYTES]);
    let publisher = js.clone();
    let run = drive(n, publishers, move |i| {
        let (js, subject, payload) = (publisher.clone(), subject.clone(), payload.clone());
        async move {
            let msg = PublishMessage::build()
                .payload(payload)
                .message_id(format!("raw-{i}"));
            let Ok(ack) = js.send_publish(subject, msg).await else {
                return 503;
            };
            if ack.await.is_ok() { 200 } else { 503 }
        }
    })
    .await?;
    js.delete_stream(&name).await?;
    run.ensure_all("raw JetStream publish", &[200])?;
    Ok(run)
}

/// Inserts `rows` rows into a table of a fresh database of `backend`, one multi-row
/// INSERT of [`ROWS_PER_TRANSACTION`] rows per transaction, on one connection through
/// sqlx's `Any` driver (the ledger's). PostgreSQL: a regular (WAL-logged) table, since a
/// temporary table's commit does not wait for a WAL flush. SQLite: a file in WAL mode with
/// `synchronous = FULL`, like the ledger's. Returns rows per second.
pub async fn batched_insert(backend: Backend, rows: usize) -> anyhow::Result<f64> {
    sqlx::any::install_default_drivers();
    let db = TestDatabase::new(backend).await?;
    let mut conn = AnyConnection::connect(db.url()).await?;
    if backend == Backend::Sqlite {
        sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL")
            .execute(&mut conn)
            .await?;
    }
    sqlx::raw_sql("CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    let body = "x".repeat(200);
    let started = Instant::now();
    let mut next = 0usize;
    while next < rows {
        let count = ROWS_PER_TRANSACTION.min(rows - next);
        let values: Vec<String> = (0..count)
            .map(|j| format!("(${}, ${})", 2 * j + 1, 2 * j + 2))
            .collect();
        let sql = format!(
            "INSERT INTO bench_raw (id, body) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in next..next + count {
            query = query.bind(i64::try_from(id)?).bind(body.clone());
        }
        let mut tx = conn.begin().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        next += count;
    }
    let elapsed = started.elapsed();
    conn.close().await?;
    db.drop_db().await?;
    Ok(rate(rows, elapsed))
}

/// `n` plain `GET /healthz` requests from `clients` concurrent clients against the ingress.
pub async fn http_healthz(c: &Client, n: usize, clients: usize) -> anyhow::Result<Run> {
    let http = e2e::http::reqwest_client();
    let url = format!("{}/healthz", c.base);
    let run = drive(n, clients, move |_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            match http.get(url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 599,
            }
        }
    })
    .await?;
    run.ensure_all("GET /healthz", &[200])?;
    Ok(run)
}
