//! What a run counts for each decision: balances into the per-(SKU, location) tracks (levels,
//! series), movements into units reserved, sold and expired, declines and exceptions with
//! the lines they concern, and each order's story for the comparison.

use domain::{
    Bucket, DeclineReason, ExceptionReason, NoOpReason, OrderRef, OrderState, Outcome, Resolution,
    StockKey, Timestamp,
};

use super::{OrderTrack, Run};
use crate::metrics::KeyTrack;

impl Run<'_> {
    /// Counts one recorded decision at `now`; `idx` is `None` for a simulated expiry.
    pub(super) fn account(&mut self, idx: Option<usize>, res: &Resolution, now: Timestamp) {
        let grid = self.grid;
        for (key, balance) in &res.balances {
            let track = self.track(key, now);
            let before = track.level.reserved;
            track.set(balance, now, grid);
            if balance.reserved != before {
                let total = self.total_level.reserved + balance.reserved - before;
                self.total_level.set(total, now, grid.window);
            }
        }
        if !grid.window.contains(now) {
            return;
        }
        if idx.is_some() {
            self.in_window += 1;
        }
        match &res.outcome {
            Outcome::Moved { movements } => {
                let expiry = idx.is_none();
                if expiry {
                    self.total.expired += 1;
                }
                for m in movements {
                    let q = m.quantity.get();
                    let k = self.track(&m.key, now);
                    match (m.from, m.to) {
                        (_, Bucket::Reserved) => k.counts.units_reserved += q,
                        (_, Bucket::Sold) => k.counts.units_sold += q,
                        (Bucket::Reserved, Bucket::Available) if expiry => {
                            k.counts.expired += 1;
                            k.counts.units_expired += q;
                        }
                        _ => {}
                    }
                    match (m.from, m.to) {
                        (_, Bucket::Reserved) => self.total.units_reserved += q,
                        (_, Bucket::Sold) => self.total.units_sold += q,
                        (Bucket::Reserved, Bucket::Available) if expiry => {
                            self.total.units_expired += q;
                        }
                        _ => {}
                    }
                }
            }
            Outcome::NoOp {
                reason: NoOpReason::Declined(DeclineReason::InsufficientInventory),
            } => self.declined(res, now),
            Outcome::NoOp { .. } => {}
            Outcome::Exception { reason, .. } => self.exception(res, reason, now),
        }
        if let Some(idx) = idx
            && let Some(order_ref) = res.order_ref.as_ref().or(res.concerns.order_ref.as_ref())
        {
            let track = self.order_track(order_ref);
            track.events.push(idx);
            match &res.outcome {
                Outcome::Exception { reason, .. } => {
                    if !track.exceptions.contains(&reason.code()) {
                        track.exceptions.push(reason.code());
                    }
                    if matches!(reason, ExceptionReason::InsufficientAtAuthorization) {
                        track.declined = true;
                    }
                }
                Outcome::NoOp {
                    reason: NoOpReason::Declined(DeclineReason::InsufficientInventory),
                } => track.declined = true,
                _ => {}
            }
        }
    }

    pub(super) fn order_track(&mut self, order_ref: &OrderRef) -> &mut OrderTrack {
        let i = match self.order_index.get(order_ref) {
            Some(&i) => i,
            None => {
                let i = self.order_tracks.len();
                self.order_tracks
                    .push((order_ref.clone(), OrderTrack::default()));
                self.order_index.insert(order_ref.clone(), i);
                i
            }
        };
        &mut self.order_tracks[i].1
    }

    pub(super) fn track(&mut self, key: &StockKey, now: Timestamp) -> &mut KeyTrack {
        let i = match self.key_index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.tracks.len();
                self.tracks.push((key.clone(), KeyTrack::new(now)));
                self.key_index.insert(key.clone(), i);
                i
            }
        };
        &mut self.tracks[i].1
    }

    /// An authorization turned down for stock: in total, and for each short line.
    pub(super) fn declined(&mut self, res: &Resolution, now: Timestamp) {
        self.total.declined += 1;
        for (key, _) in self.shortfalls(res) {
            self.track(&key, now).counts.declined += 1;
        }
    }

    pub(super) fn exception(&mut self, res: &Resolution, reason: &ExceptionReason, now: Timestamp) {
        let code = reason.code();
        *self.total.exceptions.entry(code.to_owned()).or_default() += 1;
        let keys: Vec<StockKey> = match &res.concerns.key {
            Some(k) => vec![k.clone()],
            None => self.order_keys(res),
        };
        for key in keys {
            *self
                .track(&key, now)
                .counts
                .exceptions
                .entry(code.to_owned())
                .or_default() += 1;
        }
        match reason {
            ExceptionReason::Oversold => {
                self.total.oversold += 1;
                for (key, short) in self.shortfalls(res) {
                    self.total.units_short += short;
                    let k = self.track(&key, now);
                    k.counts.oversold += 1;
                    k.counts.units_short += short;
                }
            }
            ExceptionReason::InsufficientAtAuthorization => self.declined(res, now),
            _ => {}
        }
    }

    /// The lines of the decision's order.
    pub(super) fn order_keys(&self, res: &Resolution) -> Vec<StockKey> {
        let order = res
            .order_ref
            .as_ref()
            .and_then(|o| self.state.orders.get(o));
        order.map_or_else(Vec::new, |o| o.spec.lines.keys().cloned().collect())
    }

    /// The lines of the decision's order that its bucket could not cover, and by how much:
    /// `reserved` for an order holding a reservation, `available` otherwise. Nothing moved
    /// (an exception or a declined no-op), so the balances are as the matrix saw them.
    pub(super) fn shortfalls(&self, res: &Resolution) -> Vec<(StockKey, u64)> {
        let Some(order) = res
            .order_ref
            .as_ref()
            .and_then(|o| self.state.orders.get(o))
        else {
            return Vec::new();
        };
        let from = if order.state == OrderState::Reserved {
            Bucket::Reserved
        } else {
            Bucket::Available
        };
        order
            .spec
            .lines
            .iter()
            .filter_map(|(key, q)| {
                let have = self.state.balance(key).get(from).max(0);
                let short = q.as_i64() - have;
                (short > 0).then(|| (key.clone(), short.unsigned_abs()))
            })
            .collect()
    }
}
