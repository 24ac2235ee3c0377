//! A reservation's deadline: its time plus the TTL of the provider (and the payment method
//! its event names) that made it (`docs/providers.md`, "How long a reservation holds");
//! released or sold, it has none.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use domain::{
    AuthorizationMode, EventKind, OrderState, PaymentMethod, Provider, ReservationTtls, Timestamp,
};
use support::{World, order_ref, pay};

fn deadline(w: &World, order: &str) -> Option<Timestamp> {
    w.state.orders[&order_ref(order)].reserved_until
}

#[test]
fn a_reservation_lasts_its_providers_window() {
    let mut w = World::new();
    w.receive("tee", 5);
    w.register("o-1", &[("tee", 1)], "10.00");
    let auth = w.event(EventKind::PaymentAuthorized {
        payment: pay("o-1", None),
        mode: AuthorizationMode::Notification,
        method: None,
    });
    w.deliver(&auth, false);
    assert_eq!(w.order_state("o-1"), OrderState::Reserved);
    let ttl = ReservationTtls::documented_ref().ttl(&auth.provider, None);
    assert_eq!(ttl, Duration::from_secs(7 * 86_400), "Stripe's window");
    assert_eq!(deadline(&w, "o-1"), Some(auth.recorded_at.plus(ttl)));

    // PortOne's confirmation holds a day.
    w.register("o-2", &[("tee", 1)], "10.00");
    let mut confirm = w.event(EventKind::PaymentAuthorized {
        payment: pay("o-2", None),
        mode: AuthorizationMode::Confirmation,
        method: None,
    });
    confirm.provider = Provider::parse("portone").unwrap();
    w.deliver(&confirm, false);
    assert_eq!(
        deadline(&w, "o-2"),
        Some(confirm.recorded_at.plus(Duration::from_secs(86_400)))
    );

    // Sold, the order holds nothing and has no deadline.
    w.when(EventKind::PaymentCaptured {
        payment: pay("o-1", None),
    });
    assert_eq!(w.order_state("o-1"), OrderState::Sold);
    assert_eq!(deadline(&w, "o-1"), None);
}

#[test]
fn the_payment_method_the_provider_names_chooses_the_window() {
    const DAY: u64 = 86_400;
    let mut w = World::new();
    w.receive("tee", 10);
    let cases = [
        ("o-1", "stripe", Some("klarna"), 28),
        ("o-2", "adyen", Some("klarna_account"), 28),
        ("o-3", "adyen", Some("klarna"), 28),
        ("o-4", "stripe", Some("card"), 7),
        ("o-5", "adyen", Some("visa"), 7),
        ("o-6", "stripe", Some("card_present"), 2),
        ("o-7", "adyen", None, 7),
    ];
    for (order, provider, method, days) in cases {
        w.register(order, &[("tee", 1)], "10.00");
        let mut auth = w.event(EventKind::PaymentAuthorized {
            payment: pay(order, None),
            mode: AuthorizationMode::Notification,
            method: method.map(|m| PaymentMethod::parse(m).unwrap()),
        });
        auth.provider = Provider::parse(provider).unwrap();
        w.deliver(&auth, false);
        assert_eq!(w.order_state(order), OrderState::Reserved, "{order}");
        assert_eq!(
            deadline(&w, order),
            Some(auth.recorded_at.plus(Duration::from_secs(days * DAY))),
            "{provider} {method:?}"
        );
    }
}
