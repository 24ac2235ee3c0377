//! Typed rows shared by several queries, and the one place a row that does not decode
//! becomes [`StoreError::Corrupt`].
//!
//! Every query reads its rows through a `#[derive(sqlx::FromRow)]` struct (declared next
//! to its query when only that query uses it) instead of reading columns one by one.
//! Fields are the schema's own types (TEXT as `String`, BIGINT as `i64`, nullable columns
//! as `Option`), which is what sqlx's `Any` driver decodes on both backends. Domain
//! identifiers that implement `TryFrom<String>` (`OrderRef`, `Sku`, …) are decoded in the
//! row itself with `#[sqlx(try_from = "String")]`; JSON bodies and values that need a
//! check the derive cannot express (a sequence that must fit `u64` in a domain type) go
//! through one conversion method per row type.

use domain::{Balance, EventId, ReasonCode, UnknownCode};
use sqlx::any::AnyRow;

use crate::StoreError;

/// A decoding failure of a column (a value this release cannot read: an invalid
/// identifier, a negative sequence, a type the schema does not have) is stored data this
/// release does not expect, [`StoreError::Corrupt`], named by `what` (the table or query);
/// any other error keeps its usual classification.
pub(crate) fn corrupt_row(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::Decode(_) => StoreError::Corrupt(format!("{what}: {e}")),
        e => StoreError::from(e),
    }
}

/// `rows` as `T`s, for the multi-row statements of [`crate::bulk`], which return raw rows.
pub(crate) fn decode_all<T>(rows: &[AnyRow], what: &str) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow>,
{
    rows.iter()
        .map(|r| T::from_row(r).map_err(corrupt_row(what)))
        .collect()
}

/// An event id column. `EventId` (a UUID in `domain`, which does not depend on sqlx)
/// parses with `FromStr` only, so this wrapper gives the row derive the `TryFrom<String>`
/// it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredEventId(pub EventId);

impl TryFrom<String> for StoredEventId {
    type Error = uuid::Error;
    fn try_from(s: String) -> Result<Self, uuid::Error> {
        s.parse().map(StoredEventId)
    }
}

/// A nullable `reason` column (`processed_events`, `outcome_history`), read as text and
/// parsed into a [`ReasonCode`]. The row derive cannot combine `try_from` with `Option`,
/// and `Option<ReasonCode>: TryFrom<Option<String>>` is not ours to implement, so rows
/// declare `#[sqlx(flatten, try_from = "StoredReason")] reason: Option<ReasonCode>`: the
/// column is read here and a code this release does not know is a decoding error, hence
/// [`StoreError::Corrupt`] through [`corrupt_row`].
///
/// `pub` only because the public rows' derived `FromRow` names it in a bound; the module
/// is private, so no other crate can reach it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredReason {
    reason: Option<String>,
}

impl TryFrom<StoredReason> for Option<ReasonCode> {
    type Error = UnknownCode;
    fn try_from(stored: StoredReason) -> Result<Self, UnknownCode> {
        stored.reason.map(ReasonCode::try_from).transpose()
    }
}

/// The buckets and sequence of one `balances` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BalanceRow {
    available: i64,
    reserved: i64,
    sold: i64,
    returned: i64,
    written_off: i64,
    external: i64,
    seq: i64,
}

impl BalanceRow {
    /// The domain balance; a negative sequence is corrupt.
    pub(crate) fn into_balance(self) -> Result<Balance, StoreError> {
        Ok(Balance {
            available: self.available,
            reserved: self.reserved,
            sold: self.sold,
            returned: self.returned,
            written_off: self.written_off,
            external: self.external,
            seq: u64::try_from(self.seq)
                .map_err(|e| StoreError::Corrupt(format!("balances.seq: {e}")))?,
        })
    }
}

/// A `balances` row with its key, as stored (text). The batch path parses the key into a
/// `StockKey`; the reads and `verify` report it as text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct KeyedBalanceRow {
    pub sku: String,
    pub location: String,
    #[sqlx(flatten)]
    pub balance: BalanceRow,
}

/// A `balances` row of one SKU: its location and balance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LocatedBalanceRow {
    pub location: String,
    #[sqlx(flatten)]
    pub balance: BalanceRow,
}

/// A row of one JSON `body` column (orders, returns, chargebacks).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BodyRow {
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value the row types refuse is `Corrupt`, named by the table, on the `Any` driver.
    #[tokio::test]
    async fn undecodable_values_are_corrupt() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite");
        let negative_seq = sqlx::query_as::<_, crate::PendingChange>(
            "SELECT 's' AS sku, 'l' AS location, -1 AS seq, '{}' AS payload",
        )
        .fetch_one(&pool)
        .await
        .map_err(corrupt_row("stock_outbox"));
        assert!(
            matches!(&negative_seq, Err(StoreError::Corrupt(m)) if m.starts_with("stock_outbox")),
            "{negative_seq:?}"
        );

        #[derive(Debug, sqlx::FromRow)]
        struct IdRow {
            #[sqlx(try_from = "String")]
            event_id: StoredEventId,
        }
        let bad_id = sqlx::query_as::<_, IdRow>("SELECT 'not-a-uuid' AS event_id")
            .fetch_one(&pool)
            .await
            .map_err(corrupt_row("processed_events"));
        assert!(matches!(&bad_id, Err(StoreError::Corrupt(_))), "{bad_id:?}");
        let id = uuid::Uuid::nil().to_string();
        let good: IdRow = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT '{id}' AS event_id")))
            .fetch_one(&pool)
            .await
            .expect("a uuid decodes");
        assert_eq!(good.event_id.0.to_string(), id);
    }

    /// Outcomes and reason codes decode into their typed values; a name this release does
    /// not know, in either column, is `Corrupt`.
    #[tokio::test]
    async fn outcomes_and_reasons_decode_typed() {
        use domain::{DeclineReason, OutcomeKind};

        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite");
        let select = |outcome: &str, reason: &str| {
            format!(
                "SELECT 'e' AS event_id, 'k' AS kind, NULL AS order_ref, {outcome} AS outcome, \
                 {reason} AS reason, 1 AS processed_at, 0 AS duplicates, NULL AS policy"
            )
        };
        let read = |sql: String| {
            let pool = pool.clone();
            async move {
                sqlx::query_as::<_, crate::ProcessedRow>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .map_err(corrupt_row("processed_events"))
            }
        };
        let moved = read(select("'moved'", "NULL")).await.expect("moved");
        assert_eq!((moved.outcome, moved.reason), (OutcomeKind::Moved, None));
        let declined = read(select("'noop'", "'declined:insufficient_inventory'"))
            .await
            .expect("declined");
        assert_eq!(
            (declined.outcome, declined.reason),
            (
                OutcomeKind::NoOp,
                Some(ReasonCode::Declined(DeclineReason::InsufficientInventory))
            )
        );
        // Serialized as the stored names, as when the fields were text.
        assert_eq!(
            serde_json::to_value(&declined).expect("json")["reason"],
            "declined:insufficient_inventory"
        );
        assert_eq!(
            serde_json::to_value(&moved).expect("json")["outcome"],
            "moved"
        );
        for (outcome, reason) in [("'no_op'", "NULL"), ("'noop'", "'from_the_future'")] {
            let bad = read(select(outcome, reason)).await;
            assert!(
                matches!(&bad, Err(StoreError::Corrupt(m)) if m.starts_with("processed_events")),
                "{outcome} {reason}: {bad:?}"
            );
        }
    }
}
