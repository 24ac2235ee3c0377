//! `stockctl whatif`: what another stock policy would have done to the recorded history.
//! It reads the whole events stream with the replay's reader (`ledger::replay::read_batches`:
//! grouped messages split, envelopes decoded, in stream order), hands it to the pure
//! simulator (`whatif::compare`) under the policy in force as recorded and under the
//! proposed one, and prints the comparison as a table, JSON, or a self-contained HTML page
//! (`whatif_html`). It opens no database and publishes nothing: the ledger and the streams
//! are never written to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bus::read::ReadFrom;
use clap::Args;
use domain::{Delivery, EventKind, PolicySet, ReservationTtls, Timestamp};
use serde::Serialize;
use whatif::{Metrics, Options, Recorded, Report, Scenario};

use crate::exit::{self, Exit};
use crate::progress::Progress;
use crate::{ctx, out, outln};

/// How many differing orders the table prints (JSON and HTML list up to
/// `whatif::DIFFERING_ORDERS_LISTED_MAX`).
const TEXT_ORDERS_MAX: usize = 20;
/// The most (SKU, location) pairs `--top` may ask for.
pub const TOP_MAX: usize = 100;

/// Arguments of `stockctl whatif`.
#[derive(Args)]
pub struct WhatifArgs {
    /// The proposed stock policy, for the whole period (recorded policy changes are
    /// ignored), written as STOCKLEDGER_STOCK_POLICY: `deduct_on_capture`, or
    /// `stripe=deduct_on_capture,adyen=reserve_on_authorization`.
    #[arg(long, value_name = "POLICY")]
    pub policy: String,
    /// Reservation TTLs for the proposal instead of the configured ones, written as
    /// STOCKLEDGER_RESERVATION_TTL: `7d` for every provider, or `provider=duration` and
    /// `provider:method=duration` items (`stripe=7d,adyen:klarna=28d`), comma-separated.
    #[arg(long, value_name = "SPEC")]
    pub reservation_ttl: Option<String>,
    /// Count from this time (RFC 3339, e.g. 2026-11-20T00:00:00Z); the history before it
    /// is applied (stock, orders, reservations) but not counted. Default: the first event.
    #[arg(long)]
    pub since: Option<String>,
    /// Count up to this time (exclusive); nothing at or after it is applied. Default: the
    /// end of the stream.
    #[arg(long)]
    pub until: Option<String>,
    /// Also write the comparison as one self-contained HTML page (inline CSS and SVG
    /// charts, no scripts, no network) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How many (SKU, location) pairs, those that differ most, the table and the page
    /// show with their charts (1 to 100).
    #[arg(long, default_value_t = whatif::TOP_SKUS_DEFAULT)]
    pub top: usize,
}

/// The report as printed with `--json`: the comparison and the settings it ran with.
#[derive(Serialize)]
pub struct WhatifOutput {
    /// The configured reservation TTL the baseline's expiries follow.
    pub baseline_ttl: String,
    /// The proposal's TTLs (`--reservation-ttl`, or the configured one).
    pub proposal_ttl: String,
    /// Messages of the stream that are not events (skipped).
    pub unprocessable: u64,
    /// Seconds spent reading the stream and simulating.
    pub read_seconds: f64,
    pub simulate_seconds: f64,
    #[serde(flatten)]
    pub report: Report,
}

pub async fn run(args: WhatifArgs, json: bool) -> anyhow::Result<Exit> {
    let proposed: PolicySet = args
        .policy
        .parse()
        .map_err(|e| exit::usage(format!("--policy: {e}")))?;
    let since = time_arg("--since", args.since.as_deref())?;
    let until = time_arg("--until", args.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(exit::usage(
            "--until is not after --since: the period is empty; nothing compared",
        ));
    }
    if !(1..=TOP_MAX).contains(&args.top) {
        return Err(exit::usage(format!("--top must be from 1 to {TOP_MAX}")));
    }
    let cfg = ctx::config()?;
    // The policy the ledger put in force at the start of the stream; the recorded
    // `policy.changed` events (the ledger publishes the configured one when it starts) take
    // over from there.
    let recorded_policy = cfg.ledger.stock_policy.clone();
    let baseline_ttls = cfg.ledger.reservation_ttls.clone();
    let proposal_ttls = match &args.reservation_ttl {
        Some(spec) => config::parse_reservation_ttls(spec)
            .map_err(|e| exit::usage(format!("--reservation-ttl: {e}")))?,
        None => baseline_ttls.clone(),
    };
    let bus = ctx::bus(&cfg).await?;
    let started = Instant::now();
    let (history, unprocessable) = read_history(&bus).await?;
    let read_seconds = started.elapsed().as_secs_f64();
    let baseline = Scenario::recorded(recorded_policy, baseline_ttls);
    let proposal = Scenario::forced(proposed, proposal_ttls);
    let opts = Options {
        since,
        until,
        unknown_order_hold: cfg.ledger.unknown_order_hold,
        top_skus: args.top,
        ..Options::default()
    };
    let started = Instant::now();
    let report = whatif::compare(&history, &baseline, &proposal, &opts);
    let output = WhatifOutput {
        baseline_ttl: ttls_text(&baseline.ttls),
        proposal_ttl: ttls_text(&proposal.ttls),
        unprocessable,
        read_seconds,
        simulate_seconds: started.elapsed().as_secs_f64(),
        report,
    };
    if let Some(path) = &args.html {
        let page = crate::whatif_html::page(&output);
        std::fs::write(path, page)
            .with_context(|| format!("writing the HTML report to {}", path.display()))?;
    }
    if json {
        out::json(&output)?;
    } else {
        print_text(&output, args.top)?;
        if let Some(path) = &args.html {
            outln!("\nHTML report written to {}", path.display())?;
        }
    }
    Ok(Exit::Success)
}

/// `--since` / `--until` as a time.
fn time_arg(name: &str, value: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    value
        .map(|v| contract::wire_time::parse(v).map_err(|e| exit::usage(format!("{name}: {e}"))))
        .transpose()
}

/// TTLs in words: `7d`, `3d,stripe=7d,adyen:klarna=28d` (the default first).
pub(crate) fn ttls_text(t: &ReservationTtls) -> String {
    let mut parts = vec![duration_text(t.default)];
    parts.extend(
        t.providers
            .iter()
            .map(|(p, d)| format!("{p}={}", duration_text(*d))),
    );
    parts.extend(
        t.methods
            .iter()
            .map(|((p, m), d)| format!("{p}:{m}={}", duration_text(*d))),
    );
    parts.join(",")
}

fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ if d.subsec_millis() == 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// What the what-if keeps of each event of the stream.
fn keep(received: contract::Received<'_>, msg: &bus::read::ReadMessage) -> Recorded {
    let ttl_expiry = received.event.provider.as_str() == ledger::sweeper::SELF_PROVIDER
        && matches!(received.event.kind, EventKind::ReservationExpired { .. });
    Recorded {
        ttl_expiry,
        delivery: Delivery {
            event: received.event,
            operator_retry: bus::has_operator_retry(msg.headers.as_ref()),
        },
    }
}

/// The whole events stream, in stream order, and how many messages (or parts of grouped
/// messages) were skipped as not decodable.
async fn read_history(bus: &bus::Bus) -> anyhow::Result<(Vec<Recorded>, u64)> {
    let stream = ctx::events_stream(bus).await?;
    let filter = bus.namespace().events_wildcard();
    let reader = bus.read(&stream, &filter, ReadFrom::Start).await?;
    let total = reader.total;
    let (tx, mut rx) = tokio::sync::mpsc::channel(ledger::replay::READ_AHEAD_BATCHES);
    let reading = tokio::spawn(ledger::replay::read_batches(reader, stream, None, tx, keep));
    let bar = Progress::on_terminal();
    let mut history = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut skipped = 0u64;
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        skipped += batch.unprocessable.len() as u64;
        history.extend(batch.events);
        bar.update(batch.done, total);
    }
    bar.finish();
    let _ = reading.await;
    Ok((history, skipped))
}

/// A count's change from baseline to proposal, signed.
pub(crate) fn delta(a: f64, b: f64) -> String {
    let d = b - a;
    if d == 0.0 {
        "=".to_owned()
    } else {
        format!("{d:+.1}").trim_end_matches(".0").to_owned()
    }
}

/// The rows of the side-by-side table: (label, baseline, proposal).
pub(crate) fn rows(a: &Metrics, b: &Metrics) -> Vec<(String, f64, f64)> {
    let n = |x: u64| x as f64;
    let mut rows = vec![
        (
            "oversold (captures without stock)".to_owned(),
            n(a.oversold),
            n(b.oversold),
        ),
        ("units short".to_owned(), n(a.units_short), n(b.units_short)),
        (
            "authorizations declined".to_owned(),
            n(a.declined),
            n(b.declined),
        ),
        (
            "units reserved".to_owned(),
            n(a.units_reserved),
            n(b.units_reserved),
        ),
        (
            "unit-hours blocked".to_owned(),
            (a.unit_hours_blocked * 10.0).round() / 10.0,
            (b.unit_hours_blocked * 10.0).round() / 10.0,
        ),
        (
            "peak blocked units".to_owned(),
            a.peak_blocked as f64,
            b.peak_blocked as f64,
        ),
        (
            "reservations expired".to_owned(),
            n(a.expired),
            n(b.expired),
        ),
        (
            "units released by expiry".to_owned(),
            n(a.units_expired),
            n(b.units_expired),
        ),
        ("units sold".to_owned(), n(a.units_sold), n(b.units_sold)),
    ];
    let codes: BTreeMap<&String, ()> = a
        .exceptions
        .keys()
        .chain(b.exceptions.keys())
        .map(|c| (c, ()))
        .collect();
    for code in codes.keys() {
        let count = |m: &Metrics| m.exceptions.get(*code).copied().unwrap_or(0) as f64;
        rows.push((format!("exceptions: {code}"), count(a), count(b)));
    }
    rows
}

pub(crate) fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn print_text(o: &WhatifOutput, top: usize) -> anyhow::Result<()> {
    let r = &o.report;
    let mut t = String::new();
    let line = |t: &mut String, s: String| {
        t.push_str(&s);
        t.push('\n');
    };
    line(
        &mut t,
        format!(
            "what-if over {} .. {}: {} events read, {} counted; {} recorded sweeper expiries replaced by simulated ones{}",
            contract::wire_time::format(r.window.from),
            contract::wire_time::format(r.window.to),
            r.events_read,
            r.events_in_window,
            r.recorded_expiries_dropped,
            if o.unprocessable > 0 {
                format!("; {} messages not decodable, skipped", o.unprocessable)
            } else {
                String::new()
            }
        ),
    );
    line(&mut t, String::new());
    let w = 44;
    line(
        &mut t,
        format!(
            "{:<w$} {:>26} {:>26} {:>12}",
            "", "baseline (as recorded)", "proposal", "change"
        ),
    );
    line(
        &mut t,
        format!(
            "{:<w$} {:>26} {:>26}",
            "policy", r.baseline.policy, r.proposal.policy
        ),
    );
    line(
        &mut t,
        format!(
            "{:<w$} {:>26} {:>26}",
            "reservation TTL", o.baseline_ttl, o.proposal_ttl
        ),
    );
    for (label, a, b) in rows(&r.baseline.total, &r.proposal.total) {
        line(
            &mut t,
            format!(
                "{label:<w$} {:>26} {:>26} {:>12}",
                number(a),
                number(b),
                delta(a, b)
            ),
        );
    }
    line(
        &mut t,
        format!(
            "{:<w$} {:>26}",
            "orders whose outcome differs", r.differing_orders_total
        ),
    );
    if !r.top_skus.is_empty() {
        line(&mut t, String::new());
        line(
            &mut t,
            format!(
                "top {} SKUs by difference (baseline → proposal):",
                r.top_skus.len().min(top)
            ),
        );
        line(
            &mut t,
            format!(
                "{:<28} {:>14} {:>14} {:>14} {:>22} {:>14} {:>14}",
                "sku@location",
                "oversold",
                "units short",
                "declined",
                "unit-hours blocked",
                "expired",
                "units sold"
            ),
        );
        let empty = Metrics::default();
        for k in r.top_skus.iter().take(top) {
            let a = r.baseline.per_sku.get(k).unwrap_or(&empty);
            let b = r.proposal.per_sku.get(k).unwrap_or(&empty);
            let pair = |x: String, y: String| format!("{x} → {y}");
            line(
                &mut t,
                format!(
                    "{:<28} {:>14} {:>14} {:>14} {:>22} {:>14} {:>14}",
                    k,
                    pair(a.oversold.to_string(), b.oversold.to_string()),
                    pair(a.units_short.to_string(), b.units_short.to_string()),
                    pair(a.declined.to_string(), b.declined.to_string()),
                    pair(
                        format!("{:.1}", a.unit_hours_blocked),
                        format!("{:.1}", b.unit_hours_blocked)
                    ),
                    pair(a.expired.to_string(), b.expired.to_string()),
                    pair(a.units_sold.to_string(), b.units_sold.to_string()),
                ),
            );
        }
    }
    if !r.differing_orders.is_empty() {
        line(&mut t, String::new());
        line(
            &mut t,
            format!(
                "orders whose outcome differs ({} of {}; all in --json and --html):",
                r.differing_orders.len().min(TEXT_ORDERS_MAX),
                r.differing_orders_total
            ),
        );
        for o in r.differing_orders.iter().take(TEXT_ORDERS_MAX) {
            line(
                &mut t,
                format!("  {}: {} → {}", o.order_ref, o.baseline, o.proposal),
            );
            for e in &o.events {
                line(
                    &mut t,
                    format!(
                        "      {} {}: {} → {}",
                        e.kind, e.event_id, e.baseline, e.proposal
                    ),
                );
            }
        }
    }
    out::print(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_print_as_they_are_written() {
        let t = config::parse_reservation_ttls("3d,stripe=7d,adyen:klarna=28d")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ttls_text(&t), "3d,stripe=7d,adyen:klarna=28d");
    }

    #[test]
    fn changes_are_signed() {
        assert_eq!(delta(3.0, 5.0), "+2");
        assert_eq!(delta(5.0, 3.0), "-2");
        assert_eq!(delta(1.0, 1.0), "=");
        assert_eq!(delta(1.0, 1.5), "+0.5");
    }
}
