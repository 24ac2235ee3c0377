//! The withdrawal of a synchronous confirmation answered "no" (`docs/decisions.md` §29).
//!
//! A confirmation's `payment.authorized` carries `answer_by`, the instant after which the
//! ingress no longer answers `200`. When the caller was answered anything else, the
//! reservation that authorization makes (now or later) must not stand: the provider
//! rejects the payment. Its withdrawal is a `reservation.expired` naming that
//! reservation, so it releases exactly what this authorization reserved and nothing else
//! (a no-op when nothing was reserved, or the order is held by another authorization).
//!
//! Two writers publish it, and both build it here so that it is one event: the ingress,
//! awaiting JetStream's ack before it answers "no", and the ledger, before it decides an
//! authorization it reaches after `answer_by` (so the withdrawal is in the stream even when
//! NATS was down at the ingress's deadline). The identity is derived from the
//! authorization's, never from who writes it or when; the content (order and reservation)
//! is the same whoever writes it.

use domain::{EventKind, OrderLookup, Timestamp};

use crate::{Envelope, Source};

/// The identity of the withdrawal of the authorization whose identity is `identity`.
/// PortOne's keep the identity the ingress has always used for its compensation
/// (`portone:confirm-timeout:{portone_order_ref}`), so streams written before this rule
/// meet the same event.
pub fn withdrawal_identity(identity: &str) -> String {
    match identity.strip_prefix("portone:confirm:") {
        Some(reference) => format!("portone:confirm-timeout:{reference}"),
        None => format!("{identity}:answer-deadline-passed"),
    }
}

/// The `reservation.expired` that withdraws `authorization`, recorded at `at`, in the
/// authorization's merchant scope and caused by it. `None` when `authorization` is not a
/// `payment.authorized` naming its order by reference (nothing a withdrawal can name).
pub fn withdrawal(authorization: &Envelope, at: Timestamp) -> Option<Envelope> {
    let event = authorization.to_domain().ok()?;
    let EventKind::PaymentAuthorized { payment, .. } = &event.kind else {
        return None;
    };
    let OrderLookup::OrderRef(order_ref) = &payment.order else {
        return None;
    };
    let kind = EventKind::ReservationExpired {
        order_ref: order_ref.clone(),
        reservation: event.id,
    };
    let source = Source {
        provider: authorization.source.provider.clone(),
        identity: withdrawal_identity(&authorization.source.identity),
    };
    let envelope = Envelope::new(&kind, source, at, at, None)
        .with_merchant(authorization.merchant.clone())
        .caused_by(event.id);
    envelope.to_domain().ok()?;
    Some(envelope)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::{AuthorizationMode, Money, OrderRef, Payment};

    use super::*;

    fn authorization(identity: &str) -> Envelope {
        let kind = EventKind::PaymentAuthorized {
            payment: Payment {
                order: OrderLookup::OrderRef(OrderRef::parse("o-1").unwrap()),
                amount: Some(Money::parse("30", "USD").unwrap()),
            },
            mode: AuthorizationMode::Confirmation,
            method: None,
        };
        let source = Source {
            provider: "portone".into(),
            identity: identity.into(),
        };
        Envelope::new(&kind, source, Timestamp(1), Timestamp(1), None)
            .with_merchant("shop")
            .with_answer_by(Timestamp(8_000))
    }

    #[test]
    fn whoever_writes_it_and_whenever_it_is_one_event_naming_the_reservation() {
        let auth = authorization("portone:confirm:pp-1");
        let a = withdrawal(&auth, Timestamp(9_000)).unwrap();
        let b = withdrawal(&auth, Timestamp(60_000)).unwrap();
        assert_eq!(a.event_id(), b.event_id());
        assert_eq!(a.content_digest(), b.content_digest());
        assert_eq!(a.source.identity, "portone:confirm-timeout:pp-1");
        assert_eq!(a.causation_id, Some(auth.event_id()));
        assert_eq!(a.merchant, "shop");
        match a.to_domain().unwrap().kind {
            EventKind::ReservationExpired { reservation, .. } => {
                assert_eq!(reservation, auth.event_id());
            }
            other => panic!("{other:?}"),
        }
        let other = withdrawal(&authorization("x:1"), Timestamp(9_000)).unwrap();
        assert_eq!(other.source.identity, "x:1:answer-deadline-passed");
    }
}
