//! What a run counts, per (SKU, location) and in total, and how the time-dependent ones
//! are kept: the reserved bucket's integral (unit-hours blocked) and peak, and the sampled
//! series of available, reserved and sold. Everything is integers until the report,
//! where unit-milliseconds become unit-hours.

use std::collections::BTreeMap;

use domain::{Balance, Timestamp};
use serde::Serialize;

use crate::Window;

/// The counts of one run over the window, for one (SKU, location) or in total.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Captures without stock: `oversold` exceptions (money taken, no goods).
    pub oversold: u64,
    /// Units those captures lacked (per line: needed less what the bucket held).
    pub units_short: u64,
    /// Authorizations and confirmations turned down for stock: `declined` no-ops
    /// (`insufficient_inventory`) and `insufficient_at_authorization` exceptions.
    pub declined: u64,
    /// Units moved into `reserved`.
    pub units_reserved: u64,
    /// The integral of the `reserved` bucket over the window, in unit-hours.
    pub unit_hours_blocked: f64,
    /// The most units in `reserved` at once during the window (in total: all pairs at once).
    pub peak_blocked: i64,
    /// Reservations released because their TTL ran out (simulated expiries that moved).
    pub expired: u64,
    /// Units those expiries released.
    pub units_expired: u64,
    /// Units moved into `sold`.
    pub units_sold: u64,
    /// Exceptions raised, by reason code.
    pub exceptions: BTreeMap<String, u64>,
}

/// One point of a series: the buckets at the end of a slice of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// The end of the slice (ms since the epoch).
    pub t: Timestamp,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            t: Timestamp(0),
            available: 0,
            reserved: 0,
            sold: 0,
        }
    }
}

const MS_PER_HOUR: f64 = 3_600_000.0;

/// The reserved bucket of one (SKU, location) or of all, over time: its integral and peak
/// within the window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Level {
    /// Units reserved now.
    pub reserved: i64,
    /// Since when `reserved` holds.
    since: i64,
    /// Unit-milliseconds within the window so far.
    unit_ms: i128,
    /// The peak within the window so far.
    pub peak: i64,
}

impl Level {
    fn starting_at(t: Timestamp) -> Level {
        Level {
            since: t.0,
            ..Level::default()
        }
    }

    /// The level becomes `reserved` at `t`.
    pub fn set(&mut self, reserved: i64, t: Timestamp, w: Window) {
        self.close(t, w);
        self.reserved = reserved;
        if w.contains(t) {
            self.peak = self.peak.max(reserved);
        }
    }

    /// Accounts for the time from the last change to `t` (clipped to the window).
    fn close(&mut self, t: Timestamp, w: Window) {
        let start = self.since.max(w.from.0);
        let end = t.0.min(w.to.0);
        if end > start {
            self.unit_ms += i128::from(self.reserved) * i128::from(end - start);
            self.peak = self.peak.max(self.reserved);
        }
        self.since = self.since.max(t.0);
    }

    /// Unit-hours within the window, once the run is over at `end`.
    pub fn unit_hours(&mut self, end: Timestamp, w: Window) -> f64 {
        self.close(end, w);
        // A report figure, never money: a float is what a person reads.
        #[allow(clippy::cast_precision_loss)]
        let hours = self.unit_ms as f64 / MS_PER_HOUR;
        hours
    }
}

/// Everything a run keeps for one (SKU, location).
#[derive(Debug, Clone)]
pub(crate) struct KeyTrack {
    pub counts: Metrics,
    pub level: Level,
    /// available, reserved, sold now.
    current: Sample,
    /// The series, one sample per slice; slices before `written` are final.
    series: Vec<Sample>,
    written: usize,
}

/// The slicing of the window into series points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub window: Window,
    pub points: usize,
}

impl Grid {
    /// The slice `t` falls in; `None` outside the window.
    fn slice(self, t: Timestamp) -> Option<usize> {
        if !self.window.contains(t) {
            return None;
        }
        let span = i128::from(self.window.to.0) - i128::from(self.window.from.0);
        let offset = i128::from(t.0) - i128::from(self.window.from.0);
        let i = offset * self.points as i128 / span.max(1);
        usize::try_from(i).ok().map(|i| i.min(self.points - 1))
    }

    /// The end of slice `i`.
    fn end_of(self, i: usize) -> Timestamp {
        let span = i128::from(self.window.to.0) - i128::from(self.window.from.0);
        let end = i128::from(self.window.from.0) + span * (i as i128 + 1) / self.points as i128;
        Timestamp(i64::try_from(end).unwrap_or(i64::MAX))
    }
}

impl KeyTrack {
    pub fn new(t: Timestamp) -> KeyTrack {
        KeyTrack {
            counts: Metrics::default(),
            level: Level::starting_at(t),
            current: Sample::default(),
            series: Vec::new(),
            written: 0,
        }
    }

    /// The balance became `b` at `t`.
    pub fn set(&mut self, b: &Balance, t: Timestamp, grid: Grid) {
        self.level.set(b.reserved, t, grid.window);
        if let Some(i) = grid.slice(t) {
            if self.series.is_empty() {
                self.series = vec![Sample::default(); grid.points];
            }
            self.fill_to(i, grid);
            self.series[i] = Sample {
                t: grid.end_of(i),
                available: b.available,
                reserved: b.reserved,
                sold: b.sold,
            };
            self.written = i + 1;
        }
        self.current = Sample {
            t,
            available: b.available,
            reserved: b.reserved,
            sold: b.sold,
        };
    }

    /// Slices from `written` up to (not including) `end` keep the current values.
    fn fill_to(&mut self, end: usize, grid: Grid) {
        for i in self.written..end {
            self.series[i] = Sample {
                t: grid.end_of(i),
                ..self.current
            };
        }
    }

    /// The final counts and series, once the run is over at `end`.
    pub fn finish(&mut self, end: Timestamp, grid: Grid) -> (Metrics, Vec<Sample>) {
        self.counts.unit_hours_blocked = self.level.unit_hours(end, grid.window);
        self.counts.peak_blocked = self.level.peak;
        if self.series.is_empty() {
            self.series = vec![Sample::default(); grid.points];
        }
        self.fill_to(grid.points, grid);
        self.written = grid.points;
        (
            std::mem::take(&mut self.counts),
            std::mem::take(&mut self.series),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integral_and_peak_are_clipped_to_the_window() {
        let w = Window {
            from: Timestamp(1_000),
            to: Timestamp(2_000),
        };
        let mut l = Level::starting_at(Timestamp(0));
        l.set(10, Timestamp(500), w); // before the window
        l.set(4, Timestamp(1_500), w); // 10 units for 500 ms in the window
        l.set(50, Timestamp(2_500), w); // 4 units for 500 ms; the 50 is after the window
        let hours = l.unit_hours(Timestamp(3_000), w);
        let expected = (10.0 * 500.0 + 4.0 * 500.0) / MS_PER_HOUR;
        assert!((hours - expected).abs() < 1e-12, "{hours}");
        assert_eq!(l.peak, 10);
    }

    #[test]
    fn series_carry_values_forward() {
        let grid = Grid {
            window: Window {
                from: Timestamp(0),
                to: Timestamp(100),
            },
            points: 4,
        };
        let mut k = KeyTrack::new(Timestamp(-10));
        let bal = |available, reserved| Balance {
            available,
            reserved,
            ..Balance::default()
        };
        k.set(&bal(5, 0), Timestamp(-5), grid);
        k.set(&bal(3, 2), Timestamp(60), grid);
        let (_, series) = k.finish(Timestamp(100), grid);
        let avail: Vec<i64> = series.iter().map(|s| s.available).collect();
        assert_eq!(avail, vec![5, 5, 3, 3]);
        assert_eq!(series[3].t, Timestamp(100));
    }
}
