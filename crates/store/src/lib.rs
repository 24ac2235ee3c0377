//! # store: the stock ledger in SQL
//!
//! One narrow interface, [`Store`], over SQLite (the embedded default, WAL with
//! `synchronous = FULL`) and PostgreSQL (production, `SERIALIZABLE` transactions). Both
//! run the same SQL through sqlx's `Any` driver: the schema holds only TEXT and BIGINT
//! (ids and JSON as text, times as Unix milliseconds), so one code path serves both and one
//! conformance suite (`tests/conformance.rs`) runs against both.
//!
//! The store never decides anything: [`Store::apply_batch`] loads the part of the state each
//! event touches, asks [`domain::decide`], and persists the [`domain::Resolution`] exactly.
//! Constraints in the schema (unique `(sku, location, seq)`, unique processed `event_id`,
//! non-negative buckets) hold the rules even against a bug in this crate.

mod apply;
mod bulk;
mod content;
mod evidence;
mod export;
mod load;
mod migrations;
mod outbox;
mod persist;
mod position;
mod queue;
mod read;
mod recon;
mod retry;
mod rows;
mod verify;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

pub use apply::{Applied, BatchReport, DryRun, Incoming};
pub use evidence::{BUCKETS, EVIDENCE_EVENTS_MAX};
pub use outbox::PendingChange;
pub use position::{Checkpoint, PositionWriter};
pub use queue::{
    ActionRow, NewAction, NewDeadLetter, OutcomeRow, QUEUE_LIST_MAX, QueueDetail, QueueError,
    QueueFilter, QueueItem, QueueStats, Recorded, RetryStart, unprocessable_exception,
};
pub use read::{EntryRow, OrderEventRow, PolicyChangeRow, ProcessedDetail, ProcessedRow};
pub use recon::{
    CLOCK_SKEW_MAX_MS, LATE_ARRIVAL_MAX_MS, RunRow, SavedRun, exception_id as recon_exception_id,
};
/// sqlx, re-exported for tests and tools that need raw SQL on [`Store::pool`]; no other
/// product crate depends on sqlx directly (the test harness `testkit` makes and drops
/// databases with it; `crates/e2e/tests/architecture.rs` checks the rest).
pub use sqlx;
pub use sqlx::AnyPool;
pub use verify::{VerifyProblem, VerifyReport};

/// The most attempts [`Store::apply_batch`] makes when a transaction conflicts with another
/// writer (a sequence already taken, a serialization failure).
pub const CONFLICT_RETRIES_MAX: u32 = 16;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors callers branch on: a conflict is retried by the store itself and only surfaces
/// when retries run out; `Unavailable` is transient (the caller retries later); the rest
/// are permanent.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    #[error("write conflict persisted after {CONFLICT_RETRIES_MAX} attempts")]
    Conflict,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("stored data is not what this release expects: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// [`Store::open_existing`] found no database there (nothing was created).
    #[error("no ledger database at {0}")]
    Missing(String),
    /// [`Store::open_existing`] found a database whose schema is not this release's
    /// (not a stockledger database, or not migrated yet: run `stockctl ledger migrate`).
    #[error("{0}")]
    NotMigrated(String),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl StoreError {
    /// The one classification of store failures, used by every caller that decides
    /// between "retry later" and "give up" (the ledger's nak or term, the ingress's 503 or
    /// 500): true when trying again later may succeed without anyone changing anything:
    /// the database is unreachable or refusing connections ([`StoreError::Unavailable`],
    /// pool timeouts included), or another writer kept winning ([`StoreError::Conflict`],
    /// or a serialization failure, deadlock or SQLite busy/locked that surfaced as is), or
    /// the database is read-only for now (a PostgreSQL standby during a failover, a SQLite
    /// file whose permissions an operator will fix: terminating every event meanwhile would
    /// flood the exception queue).
    /// Everything else (a constraint violated, data this release cannot decode, a missing
    /// or unmigrated database, a bad URL) fails the same way on every attempt.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Conflict => true,
            StoreError::Database(sqlx::Error::Database(db)) => db
                .code()
                .as_deref()
                .is_some_and(|c| is_conflict_code(c) || is_read_only_code(c)),
            _ => false,
        }
    }
}

/// True for the server error codes of a lost race with another writer: PostgreSQL's
/// serialization failure (40001) and deadlock (40P01), SQLite's BUSY (5), LOCKED (6) and
/// BUSY_SNAPSHOT (517). Another attempt may succeed.
pub fn is_conflict_code(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "5" | "6" | "517")
}

/// True for "the database is read-only now": PostgreSQL's 25006 (read-only transaction: a
/// standby) and SQLite's READONLY (8, and its extended codes).
fn is_read_only_code(code: &str) -> bool {
    code == "25006" || (code.len() < 5 && code.parse::<u32>().is_ok_and(|n| n & 0xff == 8))
}

impl From<sqlx::Error> for StoreError {
    /// Failures to reach or keep a working database are [`StoreError::Unavailable`]: I/O,
    /// pool timeouts (a refused connection is retried by the pool until its acquire timeout),
    /// TLS, and the server errors [`is_unavailable_code`] names (the database dropped or
    /// shutting down, too many connections, authentication). Everything else, conflicts
    /// included (`apply` retries those), stays [`StoreError::Database`].
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            sqlx::Error::Database(ref db)
                if db.code().as_deref().is_some_and(is_unavailable_code) =>
            {
                StoreError::Unavailable(e)
            }
            e => StoreError::Database(e),
        }
    }
}

/// True for the server error codes that mean "the database cannot serve us now", not "this
/// statement is wrong". PostgreSQL SQLSTATEs (five characters): class 08 (connection
/// exception), 28 (invalid authorization), 53 (insufficient resources: too many
/// connections, disk full), 57 (operator intervention: shutdown, terminated connection,
/// cannot connect now), 58 (system error: I/O), and 3D000 (the database does not exist:
/// dropped, or a wrong URL). SQLite (numeric result codes): CANTOPEN (14), IOERR (10),
/// FULL (13) and their extended codes. Serialization failures, deadlocks and SQLite's
/// BUSY/LOCKED are conflicts, which the batch path retries itself: not listed.
pub fn is_unavailable_code(code: &str) -> bool {
    // SQLite's extended codes have at most four digits; SQLSTATEs always five characters.
    if code.len() == 5 {
        return code == "3D000"
            || code
                .get(..2)
                .is_some_and(|class| matches!(class, "08" | "28" | "53" | "57" | "58"));
    }
    // SQLite: the primary code is the low byte of the extended one.
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 10 | 13 | 14))
}

#[cfg(test)]
mod classification_tests {
    use super::is_unavailable_code;

    #[test]
    fn transient_errors_are_the_ones_a_retry_may_cure() {
        use super::StoreError;
        let transient = [
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::from(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
            StoreError::Conflict,
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e:?}");
        }
        let permanent = [
            StoreError::Corrupt("bad json".into()),
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::from(sqlx::Error::ColumnNotFound("x".into())),
            StoreError::Missing("ledger.db".into()),
            StoreError::NotMigrated("old schema".into()),
            StoreError::UnsupportedUrl("mysql://".into()),
        ];
        for e in &permanent {
            assert!(!e.is_transient(), "{e:?}");
        }
        for code in ["40001", "40P01", "5", "6", "517"] {
            assert!(super::is_conflict_code(code), "{code}");
        }
        for code in ["23505", "22021", "1555", "2067", "08006"] {
            assert!(!super::is_conflict_code(code), "{code}");
            assert!(!super::is_read_only_code(code), "{code}");
        }
        for code in ["25006", "8", "264", "1032"] {
            assert!(super::is_read_only_code(code), "{code}");
        }
    }

    #[test]
    fn connection_failures_are_unavailable_and_statement_errors_are_not() {
        for code in [
            "3D000", "08006", "08001", "28P01", "53300", "57P01", "57P03", "58030", "14", "10",
            "3850", "13",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in [
            "40001", "40P01", "22021", "23505", "42P01", "5", "6", "517", "1555", "2067", "",
        ] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }
}

/// Connection settings with their defaults.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (`STOCKLEDGER_DB_POOL_MAX`). SQLite serializes writers anyway.
    pub max_connections: u32,
    /// How long to wait for a pooled connection (5 s; not a variable: a longer wait only
    /// delays the 503 a caller gets while the database is away).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The ledger database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Set by [`Store::recording_position`]: every applied batch records its stream position.
    position: Option<std::sync::Arc<PositionWriter>>,
}

impl Store {
    /// Connects, applies the durability settings, and runs the migrations.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let connect = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Durability (docs/architecture.md, "Durability"): an acked message's commit
                        // must survive power loss, so FULL, not NORMAL.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        migrations::migrator(backend).run(&pool).await?;
        Ok(Store {
            pool,
            backend,
            position: None,
        })
    }

    /// Opens a ledger database that must already exist with this release's schema, for
    /// read-only tools (`stockctl ledger verify`): it never creates a file or a database
    /// and never migrates. A wrong path is [`StoreError::Missing`], not an empty ledger
    /// that checks out.
    pub async fn open_existing(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                if path.is_empty() || !std::path::Path::new(&path).is_file() {
                    return Err(StoreError::Missing(path));
                }
                if url.contains("mode=") {
                    url.replace("mode=rwc", "mode=rw")
                } else {
                    format!("{url}{}mode=rw", if url.contains('?') { '&' } else { '?' })
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        let connect = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| match &e {
                // 3D000: invalid_catalog_name, the database does not exist.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
                    StoreError::Missing(redact_password(&url))
                }
                _ => StoreError::from(e),
            })?;
        let migrator = migrations::migrator(backend);
        let expected = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count();
        let applied: Result<i64, _> =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await;
        match applied {
            Ok(n) if usize::try_from(n).is_ok_and(|n| n >= expected) => Ok(Store {
                pool,
                backend,
                position: None,
            }),
            Ok(n) => Err(StoreError::NotMigrated(format!(
                "the ledger database has {n} of this release's {expected} migrations: run `stockctl ledger migrate` first"
            ))),
            Err(_) => Err(StoreError::NotMigrated(
                "not a stockledger database (no migrations table)".into(),
            )),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tests and tools that need raw SQL (`stockctl`).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// True when the database answers (`/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// The file of a `sqlite:` URL (`sqlite://./data/x.db?mode=rwc` → `./data/x.db`).
fn sqlite_path(url: &str) -> String {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.split('?').next().unwrap_or_default().to_owned()
}

/// A database URL without its password, for messages.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn sqlite_paths_and_redacted_urls() {
        assert_eq!(sqlite_path("sqlite://./data/x.db?mode=rwc"), "./data/x.db");
        assert_eq!(sqlite_path("sqlite:/tmp/a.db"), "/tmp/a.db");
        assert_eq!(
            redact_password("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
    }
}
