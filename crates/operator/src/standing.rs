//! Is the ledger database behind the event stream? The one place that answers it, for the
//! ledger process (which applies nothing while it is), the ingress's `/readyz` and writes,
//! the exception consumer's `/readyz`, and `stockctl` (`docs/decisions.md`, decision 25;
//! `docs/operations.md`, "Recovery"). It lives here, not in the ledger, so that none of
//! them depends on the ledger's service crate.

use std::time::Duration;

use bus::Bus;
use bus::progress::StreamProgress;
use store::{Checkpoint, PositionWriter, Store};

/// Why the comparison could not be made; the callers branch on which side failed.
#[derive(Debug, thiserror::Error)]
pub enum StandingError {
    /// NATS did not say how far the ledger consumer got.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The database did not give its checkpoint.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// How often a ledger process that found its database behind looks again (a rebuild may
/// be running into it).
pub const BEHIND_RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The reason `/readyz` and refused writes give.
pub const BEHIND_REASON: &str = "ledger_behind_stream";

/// The ledger consumer's progress in the stream beside the database's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub progress: StreamProgress,
    pub checkpoint: Checkpoint,
}

impl Standing {
    /// True when the database lacks acknowledged events or a rebuild is under way.
    pub fn is_behind(&self) -> bool {
        self.checkpoint.is_behind(self.progress.acked)
    }

    /// The row a writer of this database records its position on, in this incarnation of
    /// the stream.
    pub fn writer(&self, writer: impl Into<String>) -> PositionWriter {
        PositionWriter {
            stream: self.progress.stream.clone(),
            stream_created: self.progress.created_ms,
            writer: writer.into(),
        }
    }

    /// One line for logs and error messages.
    pub fn describe(&self) -> String {
        let c = &self.checkpoint;
        if c.rebuilding {
            format!(
                "a rebuild of the ledger from {} is under way (applied up to {} of {})",
                self.progress.stream, c.applied, self.progress.last_seq
            )
        } else {
            format!(
                "the ledger database has applied {} up to sequence {}, but the ledger consumer acknowledged up to {}",
                self.progress.stream, c.applied, self.progress.acked
            )
        }
    }
}

/// Reads the stream's progress first, then the checkpoint: a batch commits before its
/// messages are acknowledged, so in this order a current ledger never looks behind.
pub async fn standing(bus: &Bus, store: &Store) -> Result<Standing, StandingError> {
    let progress = bus.ledger_progress().await?;
    let checkpoint = store
        .checkpoint(&progress.stream, progress.created_ms)
        .await?;
    Ok(Standing {
        progress,
        checkpoint,
    })
}

/// A writer name unique to this process: its row in `stream_positions`.
pub fn process_writer(role: &str) -> String {
    format!("{role}-{}", uuid::Uuid::new_v4())
}

/// The `/readyz` of the processes that are not the ingress (the ledger, the exception
/// consumer): ready when NATS and the database answer and the ledger is not behind the
/// event stream; otherwise the reason, starting with a stable code
/// (`ledger_behind_stream`, `nats_unavailable`, `database_unavailable`).
pub async fn readiness(bus: &Bus, store: &Store) -> service::ops::Readiness {
    use service::ops::Readiness;
    match standing(bus, store).await {
        Ok(s) if s.is_behind() => Readiness::NotReady(format!("{BEHIND_REASON}: {}", s.describe())),
        Ok(_) => Readiness::Ready,
        Err(StandingError::Bus(e)) => Readiness::NotReady(format!("nats_unavailable: {e}")),
        Err(StandingError::Store(e)) => Readiness::NotReady(format!("database_unavailable: {e}")),
    }
}
