//! `stockctl whatif --html FILE`: the comparison as one self-contained page. Inline CSS,
//! one inline SVG chart per top (SKU, location) (available, reserved and sold over time,
//! the baseline in solid lines and the proposal dashed), the totals side by side and the
//! orders whose outcome differs. No script, no font, no image or anything else fetched:
//! the file can be mailed or archived as it is. Rendered with `maud`, which escapes every
//! interpolated value.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use whatif::{Metrics, Sample, Window};

use crate::whatif::{WhatifOutput, delta, number, rows};

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1em; margin: 1.5em 0 .3em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
td.changed { font-weight: bold; }
.meta { color: #555; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: 2em; height: 0; border-top: 2px solid; vertical-align: middle; margin-right: .3em; }
.legend i.dashed { border-top-style: dashed; }
svg.chart { display: block; background: #fafafa; border: 1px solid #ddd; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #555; }
code { font-size: 12px; }
";

/// The colours of the three buckets.
const AVAILABLE: &str = "#2e7d32";
const RESERVED: &str = "#ef6c00";
const SOLD: &str = "#1565c0";

/// The chart's size and its plotting area, in SVG units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The whole page.
pub fn page(o: &WhatifOutput) -> String {
    let r = &o.report;
    let time = |t| contract::wire_time::format(t);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "stockledger what-if: " (r.proposal.policy) " against " (r.baseline.policy) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "What if the stock policy had been " code { (r.proposal.policy) } "?" }
                p.meta {
                    "Period " (time(r.window.from)) " to " (time(r.window.to)) ": "
                    (r.events_read) " events read, " (r.events_in_window) " counted. "
                    "Baseline: the policy as recorded (starting with " code { (r.baseline.policy) }
                    "), reservation TTL " (o.baseline_ttl) ". Proposal: " code { (r.proposal.policy) }
                    " for the whole period, reservation TTL " (o.proposal_ttl) ". "
                    "Both runs expire reservations at exactly their TTL ("
                    (r.recorded_expiries_dropped) " recorded sweeper expiries replaced)."
                }
                h2 { "Totals" }
                (totals(&r.baseline.total, &r.proposal.total))
                p { "Orders whose outcome differs: " strong { (r.differing_orders_total) } }
                h2 { "The SKUs that differ most" }
                (legend())
                @if r.top_skus.is_empty() {
                    p { "No SKU differs between the two runs." }
                }
                @for k in &r.top_skus {
                    h3 { (k) }
                    (chart(k, r.window, r.baseline.series.get(k), r.proposal.series.get(k)))
                    (totals(
                        r.baseline.per_sku.get(k).unwrap_or(&Metrics::default()),
                        r.proposal.per_sku.get(k).unwrap_or(&Metrics::default()),
                    ))
                }
                h2 { "Orders whose outcome differs" }
                (orders(o))
            }
        }
    }
    .into_string()
}

fn legend() -> Markup {
    html! {
        p.legend {
            @for (name, colour) in [("available", AVAILABLE), ("reserved", RESERVED), ("sold", SOLD)] {
                span { i style=(format!("border-color:{colour}")) {} (name) }
            }
            span { i style="border-color:#555" {} "baseline" }
            span { i.dashed style="border-color:#555" {} "proposal" }
        }
    }
}

fn totals(a: &Metrics, b: &Metrics) -> Markup {
    html! {
        table {
            tr { th { "" } th { "baseline" } th { "proposal" } th { "change" } }
            @for (label, x, y) in rows(a, b) {
                tr {
                    td { (label) }
                    td { (number(x)) }
                    td { (number(y)) }
                    @if x == y {
                        td { (delta(x, y)) }
                    } @else {
                        td.changed { (delta(x, y)) }
                    }
                }
            }
        }
    }
}

fn orders(o: &WhatifOutput) -> Markup {
    let r = &o.report;
    html! {
        @if r.differing_orders.is_empty() {
            p { "None." }
        } @else {
            @if (r.differing_orders.len() as u64) < r.differing_orders_total {
                p.meta { "The first " (r.differing_orders.len()) " of " (r.differing_orders_total) ", by order reference." }
            }
            table {
                tr { th { "order" } th { "baseline" } th { "proposal" } th { "events decided differently" } }
                @for d in &r.differing_orders {
                    tr {
                        td { (d.order_ref) }
                        td { (d.baseline) }
                        td { (d.proposal) }
                        td {
                            @for e in &d.events {
                                div { code { (e.kind) " " (e.event_id) } ": " (e.baseline) " → " (e.proposal) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One chart: the three buckets of one (SKU, location) over the window, both runs.
fn chart(label: &str, w: Window, a: Option<&Vec<Sample>>, b: Option<&Vec<Sample>>) -> Markup {
    let empty = Vec::new();
    let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
    let top = a
        .iter()
        .chain(b.iter())
        .map(|s| s.available.max(s.reserved).max(s.sold))
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = Scale { w, top };
    let time = |t| contract::wire_time::format(t);
    html! {
        svg.chart data-sku=(label) xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT)
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-label=(format!("available, reserved and sold of {label} over time, baseline and proposal")) {
            line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH - RIGHT) y2=(HEIGHT - BOTTOM) stroke="#999" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(HEIGHT - BOTTOM) stroke="#999" {}
            text x=(LEFT - 6.0) y=(TOP + 8.0) text-anchor="end" { (top) }
            text x=(LEFT - 6.0) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
            text x=(LEFT) y=(HEIGHT - 8.0) { (time(w.from)) }
            text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (time(w.to)) }
            @for (series, dashed) in [(a, false), (b, true)] {
                @for (colour, pick) in [(AVAILABLE, 0usize), (RESERVED, 1), (SOLD, 2)] {
                    polyline fill="none" stroke=(colour) stroke-width=(if dashed { "1.5" } else { "2" })
                        stroke-dasharray=(if dashed { "6 4" } else { "none" })
                        points=(scale.steps(series, pick)) {}
                }
            }
        }
    }
}

struct Scale {
    w: Window,
    top: i64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let span = (self.w.to.0 - self.w.from.0).max(1) as f64;
        LEFT + (t - self.w.from.0) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: i64) -> f64 {
        HEIGHT - BOTTOM - v as f64 / self.top as f64 * (HEIGHT - TOP - BOTTOM)
    }

    /// The series as a step line: each sample holds from the previous sample's time.
    fn steps(&self, series: &[Sample], pick: usize) -> String {
        let mut points = String::new();
        let mut from = self.w.from.0;
        for s in series {
            let v = match pick {
                0 => s.available,
                1 => s.reserved,
                _ => s.sold,
            };
            let y = self.y(v);
            points.push_str(&format!(
                "{:.1},{:.1} {:.1},{:.1} ",
                self.x(from),
                y,
                self.x(s.t.0),
                y
            ));
            from = s.t.0;
        }
        points.trim_end().to_owned()
    }
}
