//! How a consumer lets go of a message, written once for every consumer (the ledger, the
//! callback verifiers, the exception intakes): acknowledge it, have it delivered again
//! after a delay, or terminate it (JetStream then raises the advisory that makes it a dead
//! letter). Which one a failure deserves is each consumer's classification; the mapping to
//! JetStream's acknowledgements is here.

use std::time::Duration;

use async_nats::jetstream::AckKind;

use crate::Message;

/// How a message leaves its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done with it (its outcome is committed, or there is nothing to do): acknowledge.
    Done,
    /// Deliver it again after this delay (a transient failure, or work not due yet).
    Later(Duration),
    /// It can never be processed: terminate it.
    Terminate,
}

/// Settles `msg` as `d` says. A failure to settle only means a redelivery, which every
/// consumer of the project handles idempotently, so it is logged (naming `what`), not
/// returned.
pub async fn settle(msg: &Message, d: Disposition, what: &str) {
    let result = match d {
        Disposition::Done => msg.ack().await,
        Disposition::Later(delay) => msg.ack_with(AckKind::Nak(Some(delay))).await,
        Disposition::Terminate => msg.ack_with(AckKind::Term).await,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle {what}; it will be redelivered");
    }
}
