//! Proves the database half of the harness: each backend yields a fresh,
//! usable, isolated database, and PostgreSQL databases are dropped afterwards.
#![allow(clippy::unwrap_used)]

use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use testkit::{Backend, DEFAULT_POSTGRES_URL, TestDatabase};

type TestResult = anyhow::Result<()>;

fn admin_url() -> String {
    std::env::var("STOCKLEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let mut admin = PgConnection::connect(&admin_url()).await?;
    let row = sqlx::query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await?;
    Ok(row.try_get::<i64, _>("n")? == 1)
}

#[tokio::test]
async fn postgres_database_is_fresh_usable_and_dropped() -> TestResult {
    let db = TestDatabase::postgres().await?;
    assert_eq!(db.backend(), Backend::Postgres);
    let name = db.url().rsplit('/').next().unwrap_or_default().to_owned();
    assert!(name.starts_with("stockledger_test_"), "{}", db.url());

    let mut conn = PgConnection::connect(db.url()).await?;
    let current: String = sqlx::query("SELECT current_database()")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    assert_eq!(current, name);
    sqlx::query("CREATE TABLE t (id bigint PRIMARY KEY)")
        .execute(&mut conn)
        .await?;
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await?;
    // The connection stays open: the drop must force it out.

    db.drop_db().await?;
    assert!(!database_exists(&name).await?);
    Ok(())
}

#[tokio::test]
async fn postgres_database_is_dropped_by_drop() -> TestResult {
    let db = TestDatabase::postgres().await?;
    let name = db.url().rsplit('/').next().unwrap_or_default().to_owned();
    let _open = PgConnection::connect(db.url()).await?;
    assert!(database_exists(&name).await?);
    drop(db);
    assert!(!database_exists(&name).await?);
    Ok(())
}

#[tokio::test]
async fn sqlite_database_is_usable_and_removed() -> TestResult {
    let db = TestDatabase::sqlite()?;
    assert!(db.url().starts_with("sqlite://") && db.url().ends_with("/stockledger.db?mode=rwc"));
    let mut conn = SqliteConnection::connect(db.url()).await?;
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .execute(&mut conn)
        .await?;
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut conn)
        .await?;
    let n: i64 = sqlx::query("SELECT count(*) FROM t")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    assert_eq!(n, 1);
    conn.close().await?;

    let file = db
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_owned();
    assert!(std::path::Path::new(&file).exists());
    drop(db);
    assert!(!std::path::Path::new(&file).exists());
    Ok(())
}

#[tokio::test]
async fn every_backend_gives_distinct_databases() -> TestResult {
    for backend in Backend::all() {
        let a = TestDatabase::new(backend).await?;
        let b = TestDatabase::new(backend).await?;
        assert_eq!(a.backend(), backend, "{backend}");
        assert_ne!(a.url(), b.url(), "{backend}");
    }
    Ok(())
}
