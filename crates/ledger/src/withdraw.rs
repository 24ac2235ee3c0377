//! Confirmations the ledger decides after their answer deadline (`docs/decisions.md` §29).
//!
//! A synchronous confirmation's `payment.authorized` carries `answer_by`: after it, the
//! ingress has answered the caller "no" and the provider rejects the payment. A
//! reservation decided later must not stand, and a rebuild from the stream must end the
//! same way. The ledger's clock is not in the stream, so the ledger never *decides* from
//! it; it writes what its clock saw into the stream instead:
//!
//! - **before deciding** an authorization it reaches later than `answer_by` +
//!   [`ANSWER_CLOCK_SKEW_MAX`] and has not decided before, it publishes the
//!   authorization's withdrawal (`contract::withdrawal`, a `reservation.expired` naming
//!   it) and awaits JetStream's ack. Only then is the authorization applied (it reserves,
//!   as it would in a rebuild); the withdrawal, behind it in the stream, releases it, live
//!   and in every rebuild alike. If the publish fails, the authorization's message is
//!   delivered again later and nothing is decided meanwhile: durable without any state of
//!   the ledger's own.
//! - **after committing** a reservation that turned out later than that (a slow commit),
//!   it publishes the withdrawal once more, best effort (the ingress, which answered "no",
//!   publishes it too).
//!
//! [`ANSWER_CLOCK_SKEW_MAX`] keeps the ledger from withdrawing a reservation the ingress
//! answered `200` for: the ingress answers `200` only for a decision in hand by
//! `answer_by` on its clock, so one committed later than `answer_by` + the skew on the
//! ledger's clock cannot have been, as long as the two clocks agree within it.

use std::time::Duration;

use bus::Bus;
use contract::Envelope;
use domain::Timestamp;

/// How far the ledger's clock may be ahead of the ingress's: an authorization is withdrawn
/// by the ledger only when decided later than its `answer_by` plus this. Keep the hosts'
/// clocks synchronized (NTP) well within it.
pub const ANSWER_CLOCK_SKEW_MAX: Duration = Duration::from_secs(1);

/// True when an authorization due at `answer_by` is decided too late at `now`.
pub fn too_late(answer_by: Timestamp, now: Timestamp) -> bool {
    let skew = i64::try_from(ANSWER_CLOCK_SKEW_MAX.as_millis()).unwrap_or(i64::MAX);
    now.0 > answer_by.0.saturating_add(skew)
}

/// The withdrawal of `authorization` when it is a confirmation decided too late at `now`.
pub fn due(authorization: &Envelope, now: Timestamp) -> Option<Envelope> {
    let answer_by = authorization.answer_by()?;
    if !too_late(answer_by, now) {
        return None;
    }
    contract::withdrawal::withdrawal(authorization, now)
}

/// Why a withdrawal was not published. Either way nothing was sent that the ledger can
/// count on, and the callers treat both alike (the batch waits, or the best-effort
/// republish gives up); the variants keep the cause for the log.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawError {
    /// NATS did not take it.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// It could not be encoded: a bug, surfaced instead of publishing an empty payload.
    #[error(transparent)]
    Encode(#[from] contract::EncodeError),
}

/// Publishes a withdrawal and awaits JetStream's ack (its event id makes a second publish,
/// by the ingress or by a redelivery, the same event).
pub async fn publish(bus: &Bus, withdrawal: &Envelope) -> Result<(), WithdrawError> {
    let payload = withdrawal.to_json()?;
    let id = withdrawal.event_id.to_string();
    let subject = bus
        .namespace()
        .event_subject(&withdrawal.source.provider, withdrawal.kind_name());
    bus.publish_event(subject, &id, payload.into(), None)
        .await?;
    tracing::info!(event_id = %id, cause = ?withdrawal.causation_id, "a confirmation decided after its answer deadline is withdrawn");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_late_only_past_the_deadline_and_the_skew() {
        let skew = i64::try_from(ANSWER_CLOCK_SKEW_MAX.as_millis()).unwrap_or(0);
        assert!(!too_late(Timestamp(10_000), Timestamp(10_000)));
        assert!(!too_late(Timestamp(10_000), Timestamp(10_000 + skew)));
        assert!(too_late(Timestamp(10_000), Timestamp(10_001 + skew)));
        assert!(!too_late(Timestamp(i64::MAX), Timestamp(i64::MAX)));
    }
}
