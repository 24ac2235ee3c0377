//! A reservation's deadline: its time plus the TTL of the provider that made it
//! (`docs/providers.md`, "How long a reservation holds"); released or sold, it has none.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use domain::{
    AuthorizationMode, EventKind, OrderState, Provider, ReservationTtls, Timestamp,
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
