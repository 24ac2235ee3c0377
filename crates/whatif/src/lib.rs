//! # whatif: another stock policy, tried on the merchant's own history
//!
//! Before switching `STOCKLEDGER_STOCK_POLICY`, a merchant wants to see what the other
//! policy would have done to *their* traffic. Because the trigger matrix is pure
//! ([`domain::State::step`]), the recorded event stream can be applied in memory, twice:
//!
//! - the **baseline**: the policy in force as recorded (a starting [`PolicySet`], then every
//!   recorded `policy.changed` applied by the matrix as it comes), and the configured
//!   reservation TTL;
//! - the **proposal**: one [`PolicySet`] forced for the whole period (a recorded policy
//!   change is applied by the matrix and then undone at once), and optionally other TTLs.
//!
//! [`compare`] runs both (on two threads: they share nothing but the history) and reports
//! side by side, in total and per (SKU, location): oversells, declined authorizations,
//! units reserved, unit-hours blocked, peak blocked units, reservations released by expiry,
//! exceptions by reason, the orders whose outcome differs, and time series for charts.
//!
//! **Time** is the stream's, as in a replay (`ledger::replay`): each event is decided at
//! `max(clock, recorded_at)`, the clock being the latest `recorded_at` read so far.
//!
//! **Expiry model.** The sweeper's `reservation.expired` events in the history (see
//! [`Recorded::ttl_expiry`]) are dropped in both runs: they are what the *recorded* policy
//! and TTL produced. Instead each run expires its own reservations at exactly their
//! deadline (`Order::reserved_until`: the reservation's time plus the TTL of the authorizing
//! event's provider and payment method, given to the matrix in its `Context`),
//! fired before the first event whose time passes the deadline. Both runs follow the same
//! rule, so their difference is the policy's, not the sweeper's. The baseline therefore
//! equals the real ledger up to the sweeper's interval: live, a reservation is released at
//! the first sweep after its deadline, here at the deadline itself. Withdrawals of a
//! confirmation answered "no" (also `reservation.expired`, but not the sweeper's) are kept.
//!
//! **Held events.** An event the matrix defers (`Decision::Defer`: its order is not
//! registered yet, or a withdrawal waits for its authorization) is decided again as soon as
//! what it waits for is applied (a registration, an attached payment reference, the
//! authorization it names), and at the latest when its hold runs out in stream time; what
//! is still held at the end of the history is decided at its hold's end.
//!
//! **Window.** Everything before `since` is applied (it builds the state: stock, orders,
//! reservations) but not counted; nothing at or after `until` is applied. A count belongs
//! to the window when the decision's time is in `[since, until)`; time integrals are
//! clipped to it.

mod diff;
mod fast;
mod metrics;
mod plan;
mod run;

use std::collections::BTreeMap;
use std::time::Duration;

use domain::{Delivery, PolicySet, ReservationTtls, StockKey, Timestamp};
use serde::Serialize;

pub use diff::{DifferingEvent, DifferingOrder, OrderOutcome};
pub use metrics::{Metrics, Sample};

/// The number of points of each time series when the caller does not say.
pub const SERIES_POINTS_DEFAULT: usize = 120;
/// The most points a series may have (memory: 24 bytes per point, per touched (SKU,
/// location), per run, while the runs are in progress).
pub const SERIES_POINTS_MAX: usize = 2_000;
/// The number of top (SKU, location) pairs whose series are kept when the caller does not say.
pub const TOP_SKUS_DEFAULT: usize = 10;
/// The most differing orders listed in a report (all of them are counted).
pub const DIFFERING_ORDERS_LISTED_MAX: usize = 1_000;

/// One recorded event, in stream order, with what the what-if needs to know besides the
/// event itself.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The event as the ledger was given it (an operator retry included); its provider
    /// decides the policy and the reservation TTL that apply to it.
    pub delivery: Delivery,
    /// True for a `reservation.expired` the expiry sweeper emitted after the TTL: dropped,
    /// both runs make their own (see the module documentation).
    pub ttl_expiry: bool,
}

/// A regime to apply the history under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The policy at the start of the history.
    pub policy: PolicySet,
    /// True: recorded `policy.changed` events change the policy as they did (the
    /// baseline). False: `policy` holds for the whole history (a proposal).
    pub follow_recorded_changes: bool,
    /// The reservation TTLs: the matrix dates each reservation with them
    /// (`Order::reserved_until`), and the simulated expiries fire at that deadline.
    pub ttls: ReservationTtls,
}

impl Scenario {
    /// The policy as recorded: `start`, then every recorded change.
    pub fn recorded(start: PolicySet, ttls: ReservationTtls) -> Scenario {
        Scenario {
            policy: start,
            follow_recorded_changes: true,
            ttls,
        }
    }

    /// `policy` for the whole history, whatever was recorded.
    pub fn forced(policy: PolicySet, ttls: ReservationTtls) -> Scenario {
        Scenario {
            policy,
            follow_recorded_changes: false,
            ttls,
        }
    }
}

/// What to count and how much detail to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Count from this time on (inclusive); `None`: from the first event.
    pub since: Option<Timestamp>,
    /// Count and apply only before this time; `None`: to the end of the history.
    pub until: Option<Timestamp>,
    /// `STOCKLEDGER_UNKNOWN_ORDER_HOLD`, as the ledger uses it.
    pub unknown_order_hold: Duration,
    /// Points per time series, 2 to [`SERIES_POINTS_MAX`].
    pub series_points: usize,
    /// How many (SKU, location) pairs, ranked by difference, get their series reported.
    pub top_skus: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            since: None,
            until: None,
            unknown_order_hold: Duration::from_secs(600),
            series_points: SERIES_POINTS_DEFAULT,
            top_skus: TOP_SKUS_DEFAULT,
        }
    }
}

/// The period counted: `[from, to)`, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Window {
    /// True when `t` is in the window.
    pub fn contains(self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

/// What one run did over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The policy at the start of the run (canonical text).
    pub policy: String,
    /// True when recorded policy changes were followed.
    pub follows_recorded_changes: bool,
    /// Every count, over all (SKU, location) pairs.
    pub total: Metrics,
    /// The same counts per (SKU, location) (`sku@location`), for every pair touched.
    pub per_sku: BTreeMap<String, Metrics>,
    /// Available, reserved and sold over the window, for the top pairs only.
    pub series: BTreeMap<String, Vec<Sample>>,
    /// Events still held when the history ended (decided at their hold's end, after the
    /// window when that is later).
    pub held_at_end: u64,
}

/// The two runs side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The period counted.
    pub window: Window,
    /// Events in the history (the dropped expiries included).
    pub events_read: u64,
    /// Events of the history decided within the window (in the baseline).
    pub events_in_window: u64,
    /// The sweeper's recorded `reservation.expired` events, dropped in both runs.
    pub recorded_expiries_dropped: u64,
    pub baseline: RunReport,
    pub proposal: RunReport,
    /// The (SKU, location) pairs that differ most, most first: the ones charted.
    pub top_skus: Vec<String>,
    /// Orders whose outcome differs between the runs.
    pub differing_orders_total: u64,
    /// The first [`DIFFERING_ORDERS_LISTED_MAX`] of them, by order reference.
    pub differing_orders: Vec<DifferingOrder>,
}

/// The text a (SKU, location) pair is reported under: `sku@location`.
pub fn key_label(key: &StockKey) -> String {
    key.to_string()
}

/// Applies `history` under `baseline` and under `proposal` and compares them. Pure: the
/// same input always gives the same report.
pub fn compare(
    history: &[Recorded],
    baseline: &Scenario,
    proposal: &Scenario,
    opts: &Options,
) -> Report {
    let window = window(history, opts);
    let points = opts.series_points.clamp(2, SERIES_POINTS_MAX);
    let setup = run::Setup {
        window,
        until: opts.until,
        hold: opts.unknown_order_hold,
        points,
    };
    let plan = plan::Plan::new(history);
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| run::Run::new(history, &plan, proposal, &setup).finish());
        let a = run::Run::new(history, &plan, baseline, &setup).finish();
        match other.join() {
            Ok(b) => (a, b),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let top = diff::top_keys(&a.per_key, &b.per_key, opts.top_skus);
    let (differing_orders_total, differing_orders) =
        diff::differing_orders(history, &a, &b, DIFFERING_ORDERS_LISTED_MAX);
    Report {
        window,
        events_read: history.len() as u64,
        events_in_window: a.in_window,
        recorded_expiries_dropped: a.dropped,
        top_skus: top.iter().map(key_label).collect(),
        differing_orders_total,
        differing_orders,
        baseline: a.report(baseline, &top),
        proposal: b.report(proposal, &top),
    }
}

/// The window counted: `since` (or the first event's time) to `until` (or just after the
/// last event's time).
fn window(history: &[Recorded], opts: &Options) -> Window {
    let times = history.iter().map(|r| r.delivery.event.recorded_at);
    let first = times.clone().min().unwrap_or(Timestamp(0));
    let last = times.max().unwrap_or(Timestamp(0));
    let from = opts.since.unwrap_or(first);
    let to = opts.until.unwrap_or(Timestamp(last.0.saturating_add(1)));
    Window {
        from,
        to: to.max(Timestamp(from.0.saturating_add(1))),
    }
}
