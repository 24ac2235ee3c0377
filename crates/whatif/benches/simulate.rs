//! The what-if benchmark: generates a history (default 1,000,000 events over 1,000 SKUs and
//! a flash-sale SKU: receipts, registrations, authorizations, captures, voids,
//! authorizations never captured and their recorded expiries, captures after the TTL, ~1%
//! duplicates; `tests/support`) and times [`whatif::compare`]: both runs, the baseline
//! (`reserve_on_authorization`, TTL 7 days) and the proposal (`deduct_on_capture`).
//! "events/s" counts history events per second of wall time with both runs done (each
//! event is applied twice, once per run, the runs on two threads).
//!
//! Run: `scripts/bench-whatif` (or `cargo bench -p whatif --bench simulate -- --events
//! 1000000`). Without `--bench` (as `cargo test --all-targets` runs it) it does a
//! 40,000-event smoke run over 50 SKUs and three days.
#![allow(clippy::unwrap_used)]

/// The allocator `stockctl` runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use domain::{PolicySet, ReservationTtls, StockPolicy};
use whatif::{Options, Scenario, compare};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // Without `--bench` (the smoke run of `cargo test --all-targets`) a smaller history with
    // the same shape: a small catalogue over three days, so that its events are orders and
    // payments rather than daily restocks, and the flash sale (day 2) has more buyers than
    // units.
    let events = value("--events").unwrap_or(if bench { 1_000_000 } else { 40_000 }) as usize;
    let skus = value("--skus").unwrap_or(if bench { 1000 } else { 50 });
    let days = value("--days").unwrap_or(if bench { 30 } else { 3 }) as i64;

    let start = Instant::now();
    let history = support::history(events, skus, days, 7);
    let generated = start.elapsed();
    let ttls = ReservationTtls::uniform(Duration::from_millis(support::RECORDED_TTL_MS as u64));
    let baseline = Scenario::recorded(PolicySet::default(), ttls.clone());
    let proposal = Scenario::forced(
        PolicySet::uniform(StockPolicy::DeductOnCapture),
        ttls.clone(),
    );
    let opts = Options::default();

    if argv.iter().any(|a| a == "--domain-only") {
        let (start, cpu0) = (Instant::now(), cpu_seconds());
        let mut state = domain::State::default();
        let mut clock = domain::Timestamp(0);
        for r in &history {
            if r.ttl_expiry {
                continue;
            }
            clock = clock.max(r.delivery.event.recorded_at);
            let ctx = domain::Context {
                now: clock,
                unknown_order_hold: Duration::from_secs(600),
                reservation_ttls: &ttls,
            };
            let _ = state.step(&r.delivery, &ctx);
        }
        let took = start.elapsed();
        println!(
            "domain only (one State::step per event, one thread): {:.0} events/s, {:.2} CPU s",
            history.len() as f64 / took.as_secs_f64(),
            cpu_seconds() - cpu0
        );
        let start = Instant::now();
        drop(state);
        println!("drop: {:.2}s", start.elapsed().as_secs_f64());
    }
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let report = compare(&history, &baseline, &proposal, &opts);
    let took = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let rate = history.len() as f64 / took.as_secs_f64().max(1e-9);
    println!(
        "whatif bench: {} events ({} SKUs + 1 flash-sale SKU, {} days; generated in {:.2}s)",
        history.len(),
        skus,
        days,
        generated.as_secs_f64()
    );
    println!(
        "simulator: {rate:.0} events/s ({} events, both runs, in {:.2}s wall, {:.2}s CPU on two threads) | peak RSS {:.0} MiB",
        history.len(),
        took.as_secs_f64(),
        cpu,
        peak_rss_mib()
    );
    let (a, b) = (&report.baseline.total, &report.proposal.total);
    println!(
        "baseline {}: oversold {} (units short {}), declined {}, units reserved {}, unit-hours blocked {:.0}, peak blocked {}, expired {}",
        report.baseline.policy,
        a.oversold,
        a.units_short,
        a.declined,
        a.units_reserved,
        a.unit_hours_blocked,
        a.peak_blocked,
        a.expired
    );
    println!(
        "proposal {}: oversold {} (units short {}), declined {}, units reserved {}, unit-hours blocked {:.0}, peak blocked {}, expired {}; differing orders {}",
        report.proposal.policy,
        b.oversold,
        b.units_short,
        b.declined,
        b.units_reserved,
        b.unit_hours_blocked,
        b.peak_blocked,
        b.expired,
        report.differing_orders_total
    );
    assert!(a.units_reserved > 0 && a.expired > 0 && a.declined > 0);
    println!("1 passed, 0 failed");
}

/// CPU time of this process so far (user and system, all threads), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
