//! Fresh ledger databases for tests: a new PostgreSQL database per test on the
//! server named by `STOCKLEDGER_TEST_POSTGRES_URL`, or a SQLite file in a
//! temporary directory, and the [`Backend`] enum that suites loop over.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The PostgreSQL server used when `STOCKLEDGER_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Environment variable naming the PostgreSQL server (an admin URL whose
/// database is used only to create and drop test databases).
const POSTGRES_URL_ENV: &str = "STOCKLEDGER_TEST_POSTGRES_URL";
/// Longest wait for connecting to PostgreSQL and running CREATE/DROP DATABASE.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A storage backend of the ledger; each must pass the same suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The embedded SQLite ledger (`scripts/up`'s default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Every backend, for `for backend in Backend::all()` in suites.
    pub fn all() -> [Backend; 2] {
        [Backend::Sqlite, Backend::Postgres]
    }

    /// A lowercase name for test output: `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An empty database that belongs to one test, identified by its URL.
///
/// A PostgreSQL database is dropped (best effort) on [`drop_db`](Self::drop_db)
/// or when the value is dropped; a SQLite database lives in a temporary
/// directory removed with the value.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL a store opens: `postgres://…/<name>` or `sqlite://…?mode=rwc`.
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// Keeps the SQLite file's directory alive; removed on drop.
    Sqlite { _dir: tempfile::TempDir },
    /// The PostgreSQL database to drop through `admin_url`; `None` once dropped.
    Postgres {
        admin_url: String,
        name: Option<String>,
    },
}

impl TestDatabase {
    /// A fresh database of the given backend.
    pub async fn new(backend: Backend) -> Result<Self> {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// Creates a database with a unique name on the server from
    /// `STOCKLEDGER_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`]).
    pub async fn postgres() -> Result<Self> {
        let admin_url = std::env::var(POSTGRES_URL_ENV)
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
        let name = crate::unique_name("stockledger_test");
        admin_execute(&admin_url, format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating test database {name} via {POSTGRES_URL_ENV}"))?;
        Ok(Self {
            url: with_database(&admin_url, &name),
            backend: Backend::Postgres,
            cleanup: Cleanup::Postgres {
                admin_url,
                name: Some(name),
            },
        })
    }

    /// A SQLite database file in a new temporary directory:
    /// `sqlite://<dir>/stockledger.db?mode=rwc` (created on first connect).
    pub fn sqlite() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stockledger-sqlite-")
            .tempdir()
            .context("creating the SQLite temporary directory")?;
        let path = dir.path().join("stockledger.db");
        let path = path
            .to_str()
            .context("the temporary directory path is not UTF-8")?;
        Ok(Self {
            url: format!("sqlite://{path}?mode=rwc"),
            backend: Backend::Sqlite,
            cleanup: Cleanup::Sqlite { _dir: dir },
        })
    }

    /// The URL to open the database with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this database is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Drops a PostgreSQL database now (forcing out open connections) instead
    /// of in `Drop`. Failing here is reported but is no reason to fail a test.
    pub async fn drop_db(mut self) -> Result<()> {
        match &mut self.cleanup {
            Cleanup::Postgres { admin_url, name } => match name.take() {
                Some(name) => drop_postgres(admin_url, &name).await,
                None => Ok(()),
            },
            Cleanup::Sqlite { .. } => Ok(()),
        }
    }
}

impl Drop for TestDatabase {
    /// Best effort: drops the PostgreSQL database from a helper thread with its
    /// own runtime, since `Drop` cannot await and may run inside a runtime. A
    /// database that cannot be dropped is left behind (and reported on stderr).
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &mut self.cleanup else {
            return;
        };
        let Some(name) = name.take() else {
            return;
        };
        let admin_url = admin_url.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime to drop the test database")?;
            runtime.block_on(drop_postgres(&admin_url, &name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("testkit: leaving test database behind: {error:#}"),
            Err(_) => eprintln!("testkit: leaving test database behind: drop thread panicked"),
        }
    }
}

async fn drop_postgres(admin_url: &str, name: &str) -> Result<()> {
    admin_execute(
        admin_url,
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await
    .with_context(|| format!("dropping test database {name}"))
}

/// Runs one statement on a short-lived connection to the admin database.
/// CREATE/DROP DATABASE cannot run inside a transaction, hence no pool.
async fn admin_execute(admin_url: &str, statement: String) -> Result<()> {
    let work = async {
        let mut connection = PgConnection::connect(admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut connection)
            .await?;
        connection.close().await
    };
    tokio::time::timeout(ADMIN_TIMEOUT, work)
        .await
        .context("timed out talking to PostgreSQL")?
        .context("talking to PostgreSQL")
}

/// `url` with its database (the path) replaced by `database`, keeping any
/// query string: `postgres://u@h:5432/postgres?x=1` → `postgres://u@h:5432/db?x=1`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h", "t1"),
            "postgres://u:p@h/t1"
        );
        assert_eq!(
            with_database("postgres://h/postgres?sslmode=disable", "t1"),
            "postgres://h/t1?sslmode=disable"
        );
    }
}
