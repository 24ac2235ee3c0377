//! One run: the history applied under one [`Scenario`] with [`domain::State::step`], on
//! the stream's clock, with its own reservation expiries and held events (the rules are
//! in the crate documentation), counting what happens in the window.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use domain::{
    Context, Decision, Delivery, Event, EventId, EventKind, OrderLookup, OrderRef, OrderState,
    PaymentRef, Provider, Resolution, State, StockKey, Timestamp,
};

mod account;

use crate::diff::Brief;
use crate::fast::FastMap;
use crate::metrics::{Grid, KeyTrack, Level, Metrics, Sample};
use crate::plan::Plan;
use crate::{Recorded, RunReport, Scenario, Window, key_label};

/// What both runs share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub window: Window,
    pub until: Option<Timestamp>,
    pub hold: Duration,
    pub points: usize,
}

/// Something due at a time: a reservation's expiry, or a held event's hold running out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Timestamp,
    /// Insertion order: equal times fire first in, first out.
    seq: u64,
    what: Due,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// The reservation made by the authorization at this history position.
    Expiry(usize),
    /// The held event at this history position.
    Held(usize),
}

/// What a held event waits for, so that it is decided again as soon as that is applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Wait {
    Order(OrderRef),
    Payment(Provider, PaymentRef),
    Event(EventId),
}

/// An order's story in one run, over the window.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderTrack {
    /// The history positions of its events decided in the window.
    pub events: Vec<usize>,
    /// The exception codes raised for it, in first-raised order.
    pub exceptions: Vec<&'static str>,
    /// True when an authorization of it was turned down for stock.
    pub declined: bool,
    /// Its state at the end of the run.
    pub state: Option<OrderState>,
}

pub(crate) struct Run<'h> {
    history: &'h [Recorded],
    /// The provider of the sweeper's events (`stockledger`).
    sweeper: Provider,
    plan: &'h Plan,
    scenario: &'h Scenario,
    setup: &'h Setup,
    grid: Grid,
    state: State,
    clock: Timestamp,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    is_held: Vec<bool>,
    held: u64,
    waiting: FastMap<Wait, Vec<usize>>,
    /// Where each (SKU, location)'s track is in `tracks` (one hash per lookup).
    key_index: FastMap<StockKey, usize>,
    tracks: Vec<(StockKey, KeyTrack)>,
    total: Metrics,
    total_level: Level,
    briefs: Vec<Brief>,
    /// The authorization (history position) holding each reserved order's reservation, so
    /// that its outcome can go once the reservation ends.
    reserving: FastMap<OrderRef, usize>,
    /// Where each order's track is in `order_tracks`.
    order_index: FastMap<OrderRef, usize>,
    order_tracks: Vec<(OrderRef, OrderTrack)>,
    in_window: u64,
    dropped: u64,
}

/// A run once over: what the report and the comparison need.
pub(crate) struct Finished {
    pub per_key: FastMap<StockKey, (Metrics, Vec<Sample>)>,
    pub total: Metrics,
    pub briefs: Vec<Brief>,
    pub orders: FastMap<OrderRef, OrderTrack>,
    pub in_window: u64,
    pub dropped: u64,
    pub held_at_end: u64,
}

impl<'h> Run<'h> {
    pub fn new(
        history: &'h [Recorded],
        plan: &'h Plan,
        scenario: &'h Scenario,
        setup: &'h Setup,
    ) -> Run<'h> {
        let state = State {
            policy: scenario.policy.clone(),
            ..State::default()
        };
        Run {
            history,
            sweeper: sweeper_provider(),
            plan,
            scenario,
            setup,
            grid: Grid {
                window: setup.window,
                points: setup.points,
            },
            state,
            clock: Timestamp(i64::MIN),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            is_held: vec![false; history.len()],
            held: 0,
            waiting: FastMap::default(),
            key_index: FastMap::with_capacity_and_hasher(1024, Default::default()),
            tracks: Vec::with_capacity(1024),
            total: Metrics::default(),
            total_level: Level::default(),
            briefs: vec![Brief::Unapplied; history.len()],
            reserving: FastMap::default(),
            order_index: FastMap::with_capacity_and_hasher(history.len() / 4, Default::default()),
            order_tracks: Vec::with_capacity(history.len() / 4),
            in_window: 0,
            dropped: 0,
        }
    }

    /// Applies the whole history (up to `until`) and what is due after it.
    pub fn finish(mut self) -> Finished {
        let history = self.history;
        for (idx, r) in history.iter().enumerate() {
            if r.ttl_expiry {
                self.briefs[idx] = Brief::Dropped;
                self.dropped += 1;
                continue;
            }
            let t = self.clock.max(r.delivery.event.recorded_at);
            if self.setup.until.is_some_and(|u| t >= u) {
                break;
            }
            self.fire_due(t);
            self.clock = t;
            self.decide(idx, t);
        }
        // Expiries and holds due before the end of the window (or the history) still happen.
        let end = match self.setup.until {
            Some(u) => Timestamp(u.0.saturating_sub(1)),
            None => self.clock,
        };
        self.fire_due(end);
        let held_at_end = self.held;
        self.decide_still_held();
        self.into_finished(held_at_end)
    }

    /// Fires every timer due at or before `limit`, in time order.
    fn fire_due(&mut self, limit: Timestamp) {
        while let Some(Reverse(next)) = self.timers.peek() {
            if next.at > limit {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            self.clock = self.clock.max(timer.at);
            let now = self.clock;
            match timer.what {
                Due::Expiry(idx) => self.expire(idx, now),
                Due::Held(idx) if self.is_held[idx] => self.decide(idx, now),
                Due::Held(_) => {}
            }
        }
    }

    /// What is still held when the history ends is decided at its hold's end (after the
    /// window, unless the hold ends before it).
    fn decide_still_held(&mut self) {
        while let Some(Reverse(timer)) = self.timers.pop() {
            if let Due::Held(idx) = timer.what
                && self.is_held[idx]
            {
                self.clock = self.clock.max(timer.at);
                let now = self.clock;
                self.decide(idx, now);
            }
        }
    }

    /// Decides history event `idx` at `now`, then whatever was waiting for it.
    fn decide(&mut self, idx: usize, now: Timestamp) {
        let mut woken = Vec::new();
        self.decide_one(idx, now, &mut woken);
        while let Some(idx) = woken.pop() {
            self.decide_one(idx, now, &mut woken);
        }
    }

    /// Decides history event `idx` at `now`; queues in `woken` the held events it was
    /// what they waited for.
    fn decide_one(&mut self, idx: usize, now: Timestamp, woken: &mut Vec<usize>) {
        let history = self.history;
        let r = &history[idx];
        let ctx = Context {
            now,
            unknown_order_hold: self.setup.hold,
            reservation_ttls: &self.scenario.ttls,
        };
        let decision = self.state.step(&r.delivery, &ctx);
        self.keep_forced_policy();
        match decision {
            Decision::Duplicate | Decision::StillException => {
                self.briefs[idx] = Brief::Duplicate;
            }
            Decision::Defer { until } => self.hold(idx, until),
            Decision::Record(res) => {
                if self.is_held[idx] {
                    self.is_held[idx] = false;
                    self.held -= 1;
                }
                let event = &r.delivery.event;
                self.briefs[idx] = Brief::of(&res.outcome);
                self.account(Some(idx), &res, now);
                self.schedule_expiry(idx, &res, r);
                if !self.waiting.is_empty() {
                    self.wake(event, woken);
                }
                if self.held == 0 && woken.is_empty() {
                    self.let_go(idx, &res);
                }
            }
        }
    }

    /// Lets go of what no later event names ([`Plan`]): the event's outcome (unless it
    /// made a reservation, which its expiry or withdrawal looks for), and its order once
    /// that holds no reservation.
    fn let_go(&mut self, idx: usize, res: &Resolution) {
        let id = self.history[idx].delivery.event.id;
        let reserved_here = res
            .order
            .as_ref()
            .is_some_and(|o| o.state == OrderState::Reserved && o.reserved_by == Some(id));
        if !self.plan.id_named_later[idx] && !reserved_here {
            self.state.outcomes.remove(&id);
        }
        // A reservation that ended (captured, voided, expired): its authorization's outcome
        // is no longer looked for, unless a later event names it.
        if let Some(order) = &res.order {
            if reserved_here {
                self.reserving.insert(order.spec.order_ref.clone(), idx);
            } else if order.state != OrderState::Reserved
                && let Some(auth) = self.reserving.remove(&order.spec.order_ref)
                && !self.plan.id_named_later[auth]
            {
                let auth_id = self.history[auth].delivery.event.id;
                self.state.outcomes.remove(&auth_id);
            }
        }
        if !self.plan.last_of_order[idx] {
            return;
        }
        let Some(order_ref) = &res.order_ref else {
            return;
        };
        let Some(state) = self.state.orders.get(order_ref).map(|o| o.state) else {
            return;
        };
        if state == OrderState::Reserved {
            return;
        }
        if let Some(&i) = self.order_index.get(order_ref) {
            self.order_tracks[i].1.state = Some(state);
        }
        self.state.orders.remove(order_ref);
    }

    /// A proposal keeps its policy: a recorded `policy.changed` the matrix just applied is
    /// undone (whatever its kind is called; only the state's policy is looked at).
    fn keep_forced_policy(&mut self) {
        if !self.scenario.follow_recorded_changes && self.state.policy != self.scenario.policy {
            self.state.policy = self.scenario.policy.clone();
        }
    }

    fn hold(&mut self, idx: usize, until: Timestamp) {
        if !self.is_held[idx] {
            self.is_held[idx] = true;
            self.held += 1;
        }
        self.briefs[idx] = Brief::Held;
        self.push_timer(until, Due::Held(idx));
        let history = self.history;
        if let Some(wait) = wait_of(&history[idx].delivery.event.kind) {
            self.waiting.entry(wait).or_default().push(idx);
        }
    }

    /// Queues the held events that were waiting for `event`.
    fn wake(&mut self, event: &Event, work: &mut Vec<usize>) {
        let mut wake = |w: Wait, waiting: &mut FastMap<Wait, Vec<usize>>| {
            if let Some(idxs) = waiting.remove(&w) {
                work.extend(idxs.into_iter().rev());
            }
        };
        wake(Wait::Event(event.id), &mut self.waiting);
        match &event.kind {
            EventKind::OrderRegistered { spec, payment_refs } => {
                wake(Wait::Order(spec.order_ref.clone()), &mut self.waiting);
                for (p, r) in payment_refs {
                    wake(Wait::Payment(p.clone(), r.clone()), &mut self.waiting);
                }
            }
            EventKind::PaymentRefAttached {
                provider,
                payment_ref,
                ..
            } => wake(
                Wait::Payment(provider.clone(), payment_ref.clone()),
                &mut self.waiting,
            ),
            _ => {}
        }
        let is_held = &self.is_held;
        work.retain(|i| is_held[*i]);
    }

    fn push_timer(&mut self, at: Timestamp, what: Due) {
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.timer_seq,
            what,
        }));
    }

    /// A reservation just made by history event `idx` expires at its deadline, which the
    /// matrix set from the scenario's TTLs.
    fn schedule_expiry(&mut self, idx: usize, res: &Resolution, r: &Recorded) {
        let Some(order) = &res.order else { return };
        if order.state != OrderState::Reserved || order.reserved_by != Some(r.delivery.event.id) {
            return;
        }
        let Some(at) = order.reserved_until.or(order.reserved_at) else {
            return;
        };
        self.push_timer(at, Due::Expiry(idx));
    }

    /// The sweeper's `reservation.expired` for the reservation of history event `idx`, at
    /// its deadline, when it still stands (the sweeper looks only at those: an order
    /// captured or voided meanwhile gets no expiry event at all). Either way the
    /// authorization's outcome is no longer needed, unless a later event names it.
    fn expire(&mut self, idx: usize, now: Timestamp) {
        let history = self.history;
        let reservation = history[idx].delivery.event.id;
        let order_ref = history[idx]
            .delivery
            .event
            .kind
            .payment()
            .and_then(|p| self.state.resolve_order(&p.order))
            .filter(|o| o.state == OrderState::Reserved && o.reserved_by == Some(reservation))
            .map(|o| o.spec.order_ref.clone());
        if let Some(order_ref) = order_ref {
            let delivery = Delivery {
                event: Event {
                    id: EventId::from_dedupe_key(&format!(
                        "stockledger:reservation-expired:{reservation}"
                    )),
                    provider: self.sweeper.clone(),
                    recorded_at: now,
                    kind: EventKind::ReservationExpired {
                        order_ref,
                        reservation,
                    },
                },
                operator_retry: false,
            };
            let ctx = Context {
                now,
                unknown_order_hold: self.setup.hold,
                reservation_ttls: &self.scenario.ttls,
            };
            if let Decision::Record(res) = self.state.step(&delivery, &ctx) {
                self.account(None, &res, now);
            }
            // Nothing in the history names a simulated expiry.
            self.state.outcomes.remove(&delivery.event.id);
        }
        if self.held == 0 && !self.plan.id_named_later[idx] {
            self.state.outcomes.remove(&reservation);
        }
    }

    fn into_finished(mut self, held_at_end: u64) -> Finished {
        let grid = self.grid;
        let end = grid.window.to;
        let per_key = self
            .tracks
            .iter_mut()
            .map(|(k, t)| (k.clone(), t.finish(end, grid)))
            .collect();
        self.total.unit_hours_blocked = self.total_level.unit_hours(end, grid.window);
        self.total.peak_blocked = self.total_level.peak;
        let state = &self.state;
        let orders = self
            .order_tracks
            .into_iter()
            .map(|(order_ref, mut track)| {
                if let Some(o) = state.orders.get(&order_ref) {
                    track.state = Some(o.state);
                }
                (order_ref, track)
            })
            .collect();
        Finished {
            per_key,
            total: self.total,
            briefs: self.briefs,
            orders,
            in_window: self.in_window,
            dropped: self.dropped,
            held_at_end,
        }
    }
}

/// The provider name of the events stockledger emits itself (the sweeper's expiries).
fn sweeper_provider() -> Provider {
    match Provider::parse("stockledger") {
        Ok(p) => p,
        Err(e) => unreachable!("a constant, valid provider name: {e}"),
    }
}

/// What a held event of this kind waits for.
fn wait_of(kind: &EventKind) -> Option<Wait> {
    if let EventKind::ReservationExpired { reservation, .. } = kind {
        return Some(Wait::Event(*reservation));
    }
    Some(match &kind.payment()?.order {
        OrderLookup::OrderRef(r) => Wait::Order(r.clone()),
        OrderLookup::PaymentRef {
            provider,
            payment_ref,
        } => Wait::Payment(provider.clone(), payment_ref.clone()),
    })
}

impl Finished {
    /// The run's report; series for the `top` pairs only.
    pub fn report(&self, scenario: &Scenario, top: &[StockKey]) -> RunReport {
        let per_sku = self
            .per_key
            .iter()
            .map(|(k, (m, _))| (key_label(k), m.clone()))
            .collect::<BTreeMap<_, _>>();
        let series = top
            .iter()
            .filter_map(|k| Some((key_label(k), self.per_key.get(k)?.1.clone())))
            .collect();
        RunReport {
            policy: scenario.policy.to_string(),
            follows_recorded_changes: scenario.follow_recorded_changes,
            total: self.total.clone(),
            per_sku,
            series,
            held_at_end: self.held_at_end,
        }
    }
}
