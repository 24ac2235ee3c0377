//! What the history still needs of the state: computed once before the runs, so that a run
//! can let go of what no later event can look at (an event's outcome, an order), keeping
//! the in-memory state to the live part of the ledger. Decisions are unchanged: only
//! entries that no later event names leave, and only while no event is held (a held event
//! is decided later than its place in the history).
//!
//! An event *names* an event id when it repeats it (a duplicate delivery, an operator
//! retry), when it is a withdrawal naming the authorization (`reservation.expired`), or when
//! it is an operator action on that event's exception. It names an order by reference
//! (payment events by order reference, registrations, attachments, expiries, returns, and
//! operator actions on an exception of an event that named it). Orders that a payment
//! reference or a return can reach are never let go: those are looked up by other keys.

use domain::{EventId, EventKind, OrderLookup, OrderRef};

use crate::Recorded;
use crate::fast::{FastMap, FastSet};

/// Per history position: what may leave the state once it is decided.
pub(crate) struct Plan {
    /// True when a later event names this event's id.
    pub id_named_later: Vec<bool>,
    /// True when this event names an order no later event names (and that nothing else
    /// can reach).
    pub last_of_order: Vec<bool>,
}

impl Plan {
    /// Both halves on two threads: they only read the history.
    pub fn new(history: &[Recorded]) -> Plan {
        std::thread::scope(|s| {
            let ids = s.spawn(|| ids_named_later(history));
            let last_of_order = last_of_order(history);
            match ids.join() {
                Ok(id_named_later) => Plan {
                    id_named_later,
                    last_of_order,
                },
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

/// Per position: whether a later event names the event's id.
fn ids_named_later(history: &[Recorded]) -> Vec<bool> {
    let mut ids: FastSet<EventId> =
        FastSet::with_capacity_and_hasher(history.len(), Default::default());
    let mut named = vec![false; history.len()];
    for (i, r) in history.iter().enumerate().rev() {
        let event = &r.delivery.event;
        named[i] = !ids.insert(event.id);
        match &event.kind {
            EventKind::ReservationExpired { reservation, .. } => {
                ids.insert(*reservation);
            }
            EventKind::ExceptionAction { exception_id, .. } => {
                if let Ok(e) = exception_id.as_str().parse::<EventId>() {
                    ids.insert(e);
                }
            }
            _ => {}
        }
    }
    named
}

/// Per position: whether the event is the last to name its order (and nothing else can
/// reach that order).
fn last_of_order(history: &[Recorded]) -> Vec<bool> {
    // Forward: the order each event names, and the orders other keys can reach. An
    // operator action names the order of the event whose exception it acts on.
    let actions = history
        .iter()
        .any(|r| matches!(r.delivery.event.kind, EventKind::ExceptionAction { .. }));
    let mut order_of: Vec<Option<&OrderRef>> = Vec::with_capacity(history.len());
    let mut by_event: FastMap<EventId, &OrderRef> = FastMap::default();
    let mut pinned: FastSet<&OrderRef> = FastSet::default();
    for r in history {
        let event = &r.delivery.event;
        let named = match &event.kind {
            EventKind::ExceptionAction { exception_id, .. } => exception_id
                .as_str()
                .parse::<EventId>()
                .ok()
                .and_then(|e| by_event.get(&e).copied()),
            kind => direct_order(kind, &mut pinned),
        };
        if actions && let Some(o) = named {
            by_event.insert(event.id, o);
        }
        order_of.push(named);
    }
    // Backward: whether anything later names the same order.
    let mut orders: FastSet<&OrderRef> =
        FastSet::with_capacity_and_hasher(history.len() / 2, Default::default());
    let mut last = vec![false; history.len()];
    for (i, named) in order_of.iter().enumerate().rev() {
        if let Some(o) = named {
            last[i] = orders.insert(o) && !pinned.contains(o);
        }
    }
    last
}

/// The order `kind` names by reference; orders reachable otherwise go into `pinned`.
fn direct_order<'h>(
    kind: &'h EventKind,
    pinned: &mut FastSet<&'h OrderRef>,
) -> Option<&'h OrderRef> {
    match kind {
        EventKind::OrderRegistered { spec, payment_refs } => {
            if !payment_refs.is_empty() {
                pinned.insert(&spec.order_ref);
            }
            Some(&spec.order_ref)
        }
        EventKind::PaymentRefAttached { order_ref, .. }
        | EventKind::ReturnReceived { order_ref, .. } => {
            pinned.insert(order_ref);
            Some(order_ref)
        }
        EventKind::ReservationExpired { order_ref, .. } => Some(order_ref),
        kind => match &kind.payment()?.order {
            OrderLookup::OrderRef(o) => Some(o),
            OrderLookup::PaymentRef { .. } => None,
        },
    }
}
