//! `stockctl ledger verify` against a real ledger: exit code 0 on a sound ledger; exit code
//! 1 and a precise report after a balance is tampered with, or a gap is inserted directly
//! in the database; exit code 3, naming the place and creating nothing, when pointed at a
//! database that does not exist or was never migrated. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

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

fn verify_at(url: &str) -> std::process::Output {
    Command::new(e2e::binary("stockctl"))
        .args(["ledger", "verify"])
        .env("STOCKLEDGER_DATABASE_URL", url)
        .output()
        .expect("stockctl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_at_a_wrong_sqlite_path_creates_nothing() {
    let dir = std::env::temp_dir().join(testkit::unique_name("verify_missing"));
    let path = dir.join("ledger.db");
    let out = verify_at(&format!("sqlite://{}", path.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(!path.exists() && !dir.exists(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_an_unmigrated_database_migrates_nothing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // A fresh, empty database: not a ledger yet.
        let db = testkit::TestDatabase::new(backend).await.unwrap();
        if backend == Backend::Sqlite {
            // An empty file, as a wrong-but-existing path would be.
            let path = db
                .url()
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            std::fs::write(&path, b"").unwrap();
        }
        let out = verify_at(db.url());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{backend}: {stderr}");
        assert!(stderr.contains("migrat"), "{backend}: {stderr}");
        store::sqlx::any::install_default_drivers();
        let pool = store::sqlx::AnyPool::connect(db.url()).await.unwrap();
        let tables: i64 = store::sqlx::query_scalar(match backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            }
        })
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(tables, 0, "{backend}: verify migrated nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_missing_postgres_database_is_exit_3() {
    let base = std::env::var("STOCKLEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (server, _) = base.rsplit_once('/').unwrap();
    let name = testkit::unique_name("missing_ledger");
    let out = verify_at(&format!("{server}/{name}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&name), "{stderr}");
}
