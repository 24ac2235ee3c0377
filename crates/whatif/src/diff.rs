//! How the two runs differ: each event's outcome in brief, each order's outcome (sold,
//! reserved, not sold; the exceptions raised; declined or not), the orders whose outcome
//! differs with the events that decided differently, and the (SKU, location) pairs that
//! differ most (the ones charted).

use std::collections::BTreeSet;

use domain::{Bucket, EventId, ExceptionCode, OrderRef, OrderState, Outcome, ReasonCode, StockKey};
use serde::Serialize;

use crate::Recorded;
use crate::fast::FastMap;
use crate::metrics::{Metrics, Sample};
use crate::run::{Finished, OrderTrack};

/// One event's outcome in a run, small enough to keep for every event of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Brief {
    /// Not reached: at or after `until`.
    Unapplied,
    /// A sweeper expiry of the recording, dropped.
    Dropped,
    /// A repeated event id: nothing changed.
    Duplicate,
    /// Deferred and never decided.
    Held,
    /// Moved stock, from one bucket to another (every line alike).
    Moved(Option<(Bucket, Bucket)>),
    NoOp(ReasonCode),
    Exception(ExceptionCode),
}

impl Brief {
    pub fn of(outcome: &Outcome) -> Brief {
        match outcome {
            Outcome::Moved { movements } => Brief::Moved(movements.first().map(|m| (m.from, m.to))),
            Outcome::NoOp { reason } => Brief::NoOp(reason.code()),
            Outcome::Exception { reason, .. } => Brief::Exception(reason.exception_code()),
        }
    }

    /// In words: `moved available→reserved`, `noop declined:insufficient_inventory`,
    /// `exception oversold`.
    pub fn text(self) -> String {
        match self {
            Brief::Unapplied => "not applied".to_owned(),
            Brief::Dropped => "dropped (recorded expiry)".to_owned(),
            Brief::Duplicate => "duplicate".to_owned(),
            Brief::Held => "held".to_owned(),
            Brief::Moved(Some((from, to))) => format!("moved {}→{}", from.as_str(), to.as_str()),
            Brief::Moved(None) => "moved".to_owned(),
            Brief::NoOp(code) => format!("noop {}", code.as_str()),
            Brief::Exception(code) => format!("exception {}", code.as_str()),
        }
    }
}

/// What became of one order in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderOutcome {
    /// `sold`, `reserved` (still blocking stock at the end), `not_sold` (registered or
    /// released) or `unregistered`.
    pub state: &'static str,
    /// Exception codes raised for it (`oversold`, `insufficient_at_authorization`, …).
    pub exceptions: Vec<&'static str>,
    /// True when an authorization of it was turned down for stock.
    pub declined: bool,
}

impl OrderOutcome {
    fn of(track: Option<&OrderTrack>) -> OrderOutcome {
        let state = match track.and_then(|t| t.state) {
            Some(OrderState::Sold) => "sold",
            Some(OrderState::Reserved) => "reserved",
            Some(OrderState::Registered | OrderState::Released) => "not_sold",
            None => "unregistered",
        };
        let mut exceptions = track.map(|t| t.exceptions.clone()).unwrap_or_default();
        exceptions.sort_unstable();
        OrderOutcome {
            state,
            exceptions,
            declined: track.is_some_and(|t| t.declined),
        }
    }
}

impl std::fmt::Display for OrderOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state)?;
        if self.declined {
            f.write_str(", declined")?;
        }
        for e in &self.exceptions {
            write!(f, ", {e}")?;
        }
        Ok(())
    }
}

/// An event of a differing order that was decided differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DifferingEvent {
    pub event_id: EventId,
    /// The contract kind (`payment.captured`, …).
    pub kind: &'static str,
    pub baseline: String,
    pub proposal: String,
}

/// An order whose outcome differs between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DifferingOrder {
    pub order_ref: String,
    pub baseline: OrderOutcome,
    pub proposal: OrderOutcome,
    /// Its events (decided in the window) whose outcomes differ, in stream order.
    pub events: Vec<DifferingEvent>,
}

/// Counts the orders whose outcome differs and lists the first `max` by reference.
pub(crate) fn differing_orders(
    history: &[Recorded],
    a: &Finished,
    b: &Finished,
    max: usize,
) -> (u64, Vec<DifferingOrder>) {
    // The orders either run tracked, each once; only the differing ones are sorted.
    let both = a
        .orders
        .keys()
        .chain(b.orders.keys().filter(|r| !a.orders.contains_key(*r)));
    let mut differing: Vec<(&OrderRef, OrderOutcome, OrderOutcome)> = both
        .filter_map(|r| {
            let (oa, ob) = (
                OrderOutcome::of(a.orders.get(r)),
                OrderOutcome::of(b.orders.get(r)),
            );
            (oa != ob).then_some((r, oa, ob))
        })
        .collect();
    differing.sort_unstable_by(|x, y| x.0.cmp(y.0));
    let total = differing.len() as u64;
    let mut listed = Vec::new();
    for (order_ref, oa, ob) in differing.into_iter().take(max) {
        let (ta, tb) = (a.orders.get(order_ref), b.orders.get(order_ref));
        let idxs: BTreeSet<usize> = ta
            .iter()
            .chain(tb.iter())
            .flat_map(|t| t.events.iter().copied())
            .collect();
        let events = idxs
            .into_iter()
            .filter(|&i| a.briefs[i] != b.briefs[i])
            .map(|i| DifferingEvent {
                event_id: history[i].delivery.event.id,
                kind: history[i].delivery.event.kind.name(),
                baseline: a.briefs[i].text(),
                proposal: b.briefs[i].text(),
            })
            .collect();
        listed.push(DifferingOrder {
            order_ref: order_ref.to_string(),
            baseline: oa,
            proposal: ob,
            events,
        });
    }
    (total, listed)
}

/// The `n` pairs that differ most: first by what customers and money see (units short,
/// declines, oversells, units sold), then by what blocking sees (units reserved, peak,
/// units expired). Pairs that do not differ at all are left out.
pub(crate) fn top_keys(
    a: &FastMap<StockKey, (Metrics, Vec<Sample>)>,
    b: &FastMap<StockKey, (Metrics, Vec<Sample>)>,
    n: usize,
) -> Vec<StockKey> {
    let empty = Metrics::default();
    let keys: BTreeSet<&StockKey> = a.keys().chain(b.keys()).collect();
    let mut scored: Vec<((u64, u64), &StockKey)> = keys
        .into_iter()
        .map(|k| {
            let ma = a.get(k).map_or(&empty, |(m, _)| m);
            let mb = b.get(k).map_or(&empty, |(m, _)| m);
            (score(ma, mb), k)
        })
        .filter(|(s, _)| *s != (0, 0))
        .collect();
    // Most first; equal scores by key, so the choice is stable.
    scored.sort_by(|(sa, ka), (sb, kb)| sb.cmp(sa).then_with(|| ka.cmp(kb)));
    scored.into_iter().take(n).map(|(_, k)| k.clone()).collect()
}

fn score(a: &Metrics, b: &Metrics) -> (u64, u64) {
    let d = |x: u64, y: u64| x.abs_diff(y);
    let business = d(a.units_short, b.units_short)
        + d(a.declined, b.declined)
        + d(a.oversold, b.oversold)
        + d(a.units_sold, b.units_sold);
    let blocking = d(a.units_reserved, b.units_reserved)
        + a.peak_blocked.abs_diff(b.peak_blocked)
        + d(a.units_expired, b.units_expired);
    (business, blocking)
}
