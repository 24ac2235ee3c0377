//! `stockctl ledger verify` against a real ledger: exit code 0 on a sound ledger; exit code
//! 1 and a precise report after a balance is tampered with, or a gap is inserted directly
//! in the database. On SQLite and PostgreSQL.

use std::process::Command;
use std::time::Duration;

use e2e::{Harness, test_settings, workload};
use testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_tampering_sqlite() {
    verify_detects_tampering(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_tampering_postgres() {
    verify_detects_tampering(Backend::Postgres).await;
}

async fn verify_detects_tampering(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(200, 5, 31);
    for (identity, e) in &events {
        h.publish(identity, e).await.unwrap();
    }
    let n = events
        .iter()
        .map(|(_, e)| e.id)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64;
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_eq!(
        h.wait_processed(n, Duration::from_secs(60)).await.unwrap(),
        n
    );
    ledger.stop().await;
    let verify = || {
        Command::new(e2e::binary("stockctl"))
            .args(["ledger", "verify", "--json"])
            .env("STOCKLEDGER_DATABASE_URL", h.db.url())
            .output()
            .unwrap()
    };
    let ok = verify();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let pool = h.store.pool();
    store::sqlx::query("UPDATE balances SET available = available + 1, external = external - 1 WHERE sku = 'sku-00001'")
        .execute(pool)
        .await
        .unwrap();
    let tampered = verify();
    assert_eq!(tampered.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&tampered.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["problem"] == "balance_mismatch" && p["sku"] == "sku-00001"),
        "{problems:?}"
    );

    store::sqlx::query(
        "INSERT INTO ledger_entries (sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at) \
         SELECT sku, location, seq + 2, 'external', 'available', 1, 'forged', 'stock.received', 0 FROM balances WHERE sku = 'sku-00002'",
    )
    .execute(pool)
    .await
    .unwrap();
    let gapped = verify();
    assert_eq!(gapped.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&gapped.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["problem"] == "sequence_gap" && p["sku"] == "sku-00002"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["problem"] == "orphan_entry" && p["event_id"] == "forged"),
        "{problems:?}"
    );
}
