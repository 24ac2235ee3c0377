//! Multi-row statements with bound parameters, for the batch path: one `INSERT … VALUES`,
//! one `UPDATE … FROM (VALUES …)` or one `… IN (VALUES …)` for all the rows of a batch,
//! instead of one statement per row. The same SQL text runs on SQLite and PostgreSQL
//! (`$N` placeholders, a `WITH v(…) AS (VALUES …)` table for joins, since SQLite does not
//! name the columns of a bare `VALUES`).
//!
//! A statement carries at most [`BIND_PARAMS_MAX`] parameters (SQLite allows 32,766,
//! PostgreSQL 65,535); larger sets are cut into several statements.
//!
//! Placeholders are `$1, $2, …` on PostgreSQL and anonymous `?` on SQLite: sqlx looks a
//! numbered SQLite parameter up by name, which SQLite answers by scanning every name, so
//! a statement with thousands of `$N` costs time quadratic in its size (measured: 80% of
//! the ledger's time at 16k parameters). `?` are bound by position.

use std::fmt::Write as _;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;

/// The most bound parameters one statement carries. Below both backends' limits.
pub(crate) const BIND_PARAMS_MAX: usize = 30_000;

/// Statements of at most this many rows are kept in the connection's statement cache.
const CACHED_ROWS_MAX: usize = 16;

/// One bound value. The schema holds only TEXT and BIGINT.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Text(s)
    }
}
impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Text(s.to_owned())
    }
}
impl From<Option<String>> for Val {
    fn from(s: Option<String>) -> Self {
        Val::OptText(s)
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Self {
        Val::Int(n)
    }
}
impl From<Option<i64>> for Val {
    fn from(n: Option<i64>) -> Self {
        Val::OptInt(n)
    }
}

/// A multi-row statement: `head`, then `(…), (…)` for the rows, then `tail`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bulk {
    pub head: &'static str,
    pub tail: &'static str,
    /// Columns per row: every row has exactly this many values.
    pub cols: usize,
}

impl Bulk {
    /// Rows per statement so that no statement exceeds [`BIND_PARAMS_MAX`].
    fn rows_per_statement(&self) -> usize {
        (BIND_PARAMS_MAX / self.cols.max(1)).max(1)
    }

    fn sql(&self, rows: usize, numbered: bool) -> String {
        let mut sql =
            String::with_capacity(self.head.len() + self.tail.len() + rows * self.cols * 6);
        sql.push_str(self.head);
        let mut n = 0;
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..self.cols {
                n += 1;
                sql.push_str(if c == 0 { "" } else { ", " });
                if numbered {
                    let _ = write!(sql, "${n}");
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }

    fn query<'q>(
        &self,
        sql: &'q str,
        rows: &'q [Vec<Val>],
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        // The text changes with the row count: small statements (the common, low-load case)
        // are prepared once and cached; large ones are not, or the cache would hold many
        // large statements per connection.
        let persistent = rows.len() <= CACHED_ROWS_MAX;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(persistent);
        for row in rows {
            debug_assert_eq!(row.len(), self.cols, "row width");
            q = bind_all(q, row);
        }
        q
    }

    /// Executes the statement for `rows` (nothing when empty); returns the rows affected.
    pub async fn execute(
        &self,
        conn: &mut AnyConnection,
        rows: &[Vec<Val>],
    ) -> Result<u64, StoreError> {
        let mut affected = 0;
        let numbered = numbered(conn);
        for chunk in rows.chunks(self.rows_per_statement()) {
            let sql = self.sql(chunk.len(), numbered);
            affected += self
                .query(&sql, chunk)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(affected)
    }

    /// Runs the query for `rows` (nothing when empty) and returns every result row.
    pub async fn fetch(
        &self,
        conn: &mut AnyConnection,
        rows: &[Vec<Val>],
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut out = Vec::new();
        let numbered = numbered(conn);
        for chunk in rows.chunks(self.rows_per_statement()) {
            let sql = self.sql(chunk.len(), numbered);
            out.extend(self.query(&sql, chunk).fetch_all(&mut *conn).await?);
        }
        Ok(out)
    }
}

/// Binds `values` to `q`, in order.
pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    values: &'q [Val],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for v in values {
        q = match v {
            Val::Text(s) => q.bind(s.as_str()),
            Val::OptText(s) => q.bind(s.as_deref()),
            Val::Int(n) => q.bind(*n),
            Val::OptInt(n) => q.bind(*n),
        };
    }
    q
}

/// True when the connection takes `$N` placeholders (PostgreSQL), false for `?` (SQLite).
fn numbered(conn: &AnyConnection) -> bool {
    conn.backend_name() != "SQLite"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_rows() {
        let b = Bulk {
            head: "INSERT INTO t (a, b) VALUES ",
            tail: " ON CONFLICT DO NOTHING",
            cols: 2,
        };
        assert_eq!(
            b.sql(2, true),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            b.sql(2, false),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn no_statement_exceeds_the_parameter_limit() {
        let b = Bulk {
            head: "",
            tail: "",
            cols: 9,
        };
        assert!(b.rows_per_statement() * 9 <= BIND_PARAMS_MAX);
    }
}
