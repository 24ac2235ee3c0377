//! How far into the event stream the ledger has applied: the checkpoint that tells a lost,
//! empty or restored-from-an-old-backup ledger from a current one (`docs/decisions.md`,
//! decision 25).
//!
//! Every batch a [`PositionWriter`]-carrying [`Store`] commits records, in the same
//! transaction, the highest stream sequence it applied, on the writer's own row of
//! `stream_positions` (so ledger processes sharing the durable consumer never contend on
//! one row). The ledger's [`Checkpoint`] is the highest of them for the stream's current
//! incarnation. The durable consumer acknowledges a message only after its batch
//! committed, so a ledger that holds every acknowledged event has a checkpoint at or past
//! the consumer's acknowledgement floor; one below it has lost acknowledged events.

use std::sync::Arc;

use sqlx::AnyConnection;

use crate::rows::corrupt_row;
use crate::{Store, StoreError};

/// Who records positions, for which stream (and which incarnation of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionWriter {
    /// The events stream's name.
    pub stream: String,
    /// JetStream's creation time of the stream (Unix ms): a stream lost and created again
    /// starts its sequences over, and positions in the old one say nothing about it.
    pub stream_created: i64,
    /// This writer's row: a ledger process, a replay or a rebuild.
    pub writer: String,
}

/// The ledger's position in one incarnation of the events stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The highest stream sequence applied (0: nothing yet).
    pub applied: u64,
    /// A rebuild has started and not finished: the ledger is incomplete.
    pub rebuilding: bool,
}

impl Checkpoint {
    /// True when the ledger lacks events the durable consumer has acknowledged (`acked`,
    /// its acknowledgement floor), or a rebuild is under way. Read `acked` before the
    /// checkpoint: a batch commits before its messages are acknowledged, so in that order
    /// a current ledger can never look behind.
    pub fn is_behind(&self, acked: u64) -> bool {
        self.rebuilding || self.applied < acked
    }
}

/// The aggregate over a stream incarnation's writers (`COALESCE`d: never null).
#[derive(sqlx::FromRow)]
struct CheckpointRow {
    applied: i64,
    rebuilding: i64,
}

impl Store {
    /// This store records, with every batch it applies from the stream, its position as
    /// `writer`. The ledger consumer, replay and rebuild use it; tools that only read do not.
    pub fn recording_position(mut self, writer: PositionWriter) -> Store {
        self.position = Some(Arc::new(writer));
        self
    }

    /// The ledger's checkpoint in `stream` (incarnation `stream_created`).
    pub async fn checkpoint(
        &self,
        stream: &str,
        stream_created: i64,
    ) -> Result<Checkpoint, StoreError> {
        let row: CheckpointRow = sqlx::query_as(
            "SELECT COALESCE(MAX(applied_seq), 0) AS applied, COALESCE(MAX(rebuilding), 0) AS rebuilding \
             FROM stream_positions WHERE stream = $1 AND stream_created = $2",
        )
        .bind(stream)
        .bind(stream_created)
        .fetch_one(&self.pool)
        .await
        .map_err(corrupt_row("stream_positions"))?;
        Ok(Checkpoint {
            applied: u64::try_from(row.applied).unwrap_or(0),
            rebuilding: row.rebuilding != 0,
        })
    }

    /// Marks a rebuild by this store's writer as started (`true`) or finished (`false`,
    /// having applied the stream up to `applied`). While it is marked,
    /// [`Checkpoint::rebuilding`] holds and the ledger stays behind.
    pub async fn mark_rebuilding(&self, rebuilding: bool, applied: u64) -> Result<(), StoreError> {
        let Some(w) = self.position.as_deref() else {
            return Err(StoreError::Corrupt(
                "a rebuild needs a store that records its position".into(),
            ));
        };
        let mut conn = self.pool.acquire().await?;
        upsert(&mut conn, w, applied, rebuilding).await?;
        sqlx::query(
            "UPDATE stream_positions SET rebuilding = $4 WHERE stream = $1 AND stream_created = $2 AND writer = $3",
        )
        .bind(&w.stream)
        .bind(w.stream_created)
        .bind(&w.writer)
        .bind(i64::from(rebuilding))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Records, inside the caller's transaction, that `writer` applied up to `seq`.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    writer: &PositionWriter,
    seq: u64,
) -> Result<(), StoreError> {
    upsert(conn, writer, seq, false).await
}

async fn upsert(
    conn: &mut AnyConnection,
    w: &PositionWriter,
    seq: u64,
    rebuilding: bool,
) -> Result<(), StoreError> {
    let seq =
        i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("stream sequence {seq}")))?;
    sqlx::query(
        "INSERT INTO stream_positions (stream, stream_created, writer, applied_seq, rebuilding) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (stream, stream_created, writer) DO UPDATE SET applied_seq = \
         CASE WHEN excluded.applied_seq > stream_positions.applied_seq \
              THEN excluded.applied_seq ELSE stream_positions.applied_seq END",
    )
    .bind(&w.stream)
    .bind(w.stream_created)
    .bind(&w.writer)
    .bind(seq)
    .bind(i64::from(rebuilding))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
