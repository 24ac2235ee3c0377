//! The reservation-expiry sweeper: finds reservations past their deadline (`reserved_until`,
//! the reservation time plus the TTL of the provider and payment method that made it,
//! `docs/providers.md`) and publishes a
//! `reservation.expired` event for each, through JetStream like any other event. The event
//! id is derived from the reservation (the authorizing event's id), so two sweepers, or two
//! sweeps before the ledger catches up, release a reservation once.

use std::time::Duration;

use bus::Bus;
use contract::{Envelope, Source};
use domain::{EventKind, ReservationTtls, Timestamp};
use service::shutdown::CancellationToken;
use store::Store;

use crate::{LedgerError, LedgerSettings, now};

/// The provider name of events stockledger emits itself.
pub const SELF_PROVIDER: &str = "stockledger";

/// Sweeps every `interval` until `stop` turns true.
pub async fn run(
    bus: Bus,
    store: Store,
    settings: &LedgerSettings,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        match sweep_once(
            &bus,
            &store,
            &settings.reservation_ttls,
            settings.sweep_batch_max,
            now(),
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "published reservation expiries"),
            Err(e) => tracing::warn!(error = %e, "sweep failed; will try again"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Publishes one expiry per reservation whose deadline is at or before `now`, at most
/// `limit` (a reservation recorded without a deadline is due `ttls.default` after it was
/// made).
/// Returns how many were published (duplicates of earlier sweeps included).
///
/// An expiry that cannot be encoded (a bug in the encoder, never a state of NATS or the
/// database) is logged and left out, not published empty: its reservation stays due, so
/// the next sweep tries it again, and the other expiries still go out.
pub async fn sweep_once(
    bus: &Bus,
    store: &Store,
    ttls: &ReservationTtls,
    limit: usize,
    now: Timestamp,
) -> Result<usize, LedgerError> {
    let ttl_ms = i64::try_from(ttls.default.as_millis()).unwrap_or(i64::MAX);
    let undated_cutoff = Timestamp(now.0.saturating_sub(ttl_ms));
    let due = store
        .reservations_due(
            now,
            undated_cutoff,
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?;
    let mut published = 0;
    for (order_ref, reservation) in &due {
        let kind = EventKind::ReservationExpired {
            order_ref: order_ref.clone(),
            reservation: *reservation,
        };
        let source = Source {
            provider: SELF_PROVIDER.to_owned(),
            identity: format!("stockledger:reservation-expired:{reservation}"),
        };
        let envelope = Envelope::new(&kind, source, now, now, None).caused_by(*reservation);
        let id = envelope.event_id.to_string();
        let payload = match envelope.to_json() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(event_id = %id, error = %e, source = ?std::error::Error::source(&e), "a reservation expiry could not be encoded; not published");
                continue;
            }
        };
        let subject = bus.namespace().event_subject(SELF_PROVIDER, kind.name());
        bus.publish_event(subject, &id, payload.into(), None)
            .await?;
        published += 1;
    }
    Ok(published)
}
