//! `stockctl reconcile`: the daily reconciliation of one day (`docs/operations.md`,
//! "Reconciliation"), run on demand through the same job as the ledger's scheduled run
//! (`ledger::reconcile`), printed as a text summary or JSON, optionally written as CSV and
//! as a self-contained HTML page. Exit code 0 when every checkpoint passes, 1 when anything
//! is unmatched.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use reconcile::engine::{self, Bucket, Checkpoint, Item, RunResult};
use serde_json::json;

use crate::exit::{self, Exit};
use crate::{ctx, out};

/// `stockctl reconcile`.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The day to reconcile, UTC (`YYYY-MM-DD`).
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: String,
    /// A provider's report for the day, `PROVIDER=FILE` (stripe, adyen, portone, ipint);
    /// repeat for several providers. Formats: docs/providers.md, "Reports".
    #[arg(long = "report", value_name = "PROVIDER=FILE")]
    reports: Vec<String>,
    /// Also read `<provider>-<YYYY-MM-DD>.csv` from this folder for each provider no
    /// `--report` names (default `STOCKLEDGER_RECONCILE_REPORTS_DIR`).
    #[arg(long, value_name = "DIR")]
    reports_dir: Option<PathBuf>,
    /// Write every item as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the run as a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// List matched items too in the text output (unmatched and deferred are always listed).
    #[arg(long)]
    all: bool,
}

/// Runs the reconciliation of the day and prints it.
pub async fn run(args: ReconcileArgs, json_out: bool) -> anyhow::Result<Exit> {
    let date = engine::parse_date(&args.date)
        .ok_or_else(|| exit::usage(format!("--date {}: expected YYYY-MM-DD", args.date)))?;
    let cfg = ctx::config()?;
    let mut reports = Vec::new();
    for r in &args.reports {
        let (name, file) = r
            .split_once('=')
            .ok_or_else(|| exit::usage(format!("--report {r}: expected PROVIDER=FILE")))?;
        let provider = engine::parse_provider(&name.to_ascii_lowercase()).ok_or_else(|| {
            exit::usage(format!(
                "--report {r}: unknown provider `{name}` (expected stripe, adyen, portone or ipint)"
            ))
        })?;
        if reports
            .iter()
            .any(|x: &ledger::reconcile::Report| x.provider == provider)
        {
            return Err(exit::usage(format!(
                "--report: {name} given twice; merge its files into one report"
            )));
        }
        let report = ledger::reconcile::read_report(provider, std::path::Path::new(file))
            .map_err(|e| exit::usage(format!("report not used: {e}")))?;
        reports.push(report);
    }
    if let Some(dir) = args
        .reports_dir
        .clone()
        .or(cfg.reconcile.reports_dir.clone())
    {
        let found = ledger::reconcile::reports_in(&dir, date)
            .map_err(|e| exit::usage(format!("report not used: {e}")))?;
        for r in found {
            if !reports.iter().any(|x| x.provider == r.provider) {
                reports.push(r);
            }
        }
    }
    let settings = ledger::reconcile::settings(&cfg.reconcile);
    let store = ctx::store_for_writing(&cfg).await?;
    let now = service::clock::now().0;
    let outcome = ledger::reconcile::reconcile_day(&store, date, &reports, &settings, now, None)
        .await
        .context("reconciling")?;
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&outcome.result.items))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html(&outcome.result, &outcome.run_id))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let r = &outcome.result;
    if json_out {
        out::json(&json!({
            "run_id": outcome.run_id,
            "summary": r.summary,
            "exceptions_opened": outcome.saved.exceptions_opened,
            "exceptions_resolved": outcome.saved.exceptions_resolved,
            "deferrals_settled": outcome.saved.deferrals_settled,
            "took_ms": u64::try_from(outcome.took.as_millis()).unwrap_or(u64::MAX),
            "reports": reports.iter().map(|x| json!({
                "provider": engine::provider_name(x.provider),
                "file": x.file,
                "lines": x.lines.len(),
            })).collect::<Vec<_>>(),
            "items": r.items,
        }))?;
    } else {
        out::print(&text(&outcome, args.all))?;
    }
    Ok(if r.summary.passed {
        Exit::Success
    } else {
        Exit::Problem
    })
}

fn money(i: &Item) -> String {
    match (&i.amount, &i.currency) {
        (Some(a), Some(c)) => format!("{a} {c}"),
        (Some(a), None) => a.to_string(),
        _ => String::new(),
    }
}

/// The event time as `YYYY-MM-DD HH:MM:SSZ`.
fn when(ms: i64) -> String {
    let day = engine::date_from_ms(ms);
    let s = ms.rem_euclid(engine::DAY_MS) / 1000;
    format!("{day} {:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn text(o: &ledger::reconcile::Outcome, all: bool) -> String {
    let r = &o.result;
    let s = &r.summary;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Reconciliation of {}: {} ({} matched, {} unmatched, {} deferred)",
        s.date,
        if s.passed { "PASSED" } else { "FAILED" },
        s.total.matched,
        s.total.unmatched,
        s.total.deferred
    );
    let _ = writeln!(
        t,
        "{:<20} {:>10} {:>10} {:>10}  result",
        "checkpoint", "matched", "unmatched", "deferred"
    );
    for (c, cs) in &s.checkpoints {
        let _ = writeln!(
            t,
            "{:<20} {:>10} {:>10} {:>10}  {}",
            c.as_str(),
            cs.counts.matched,
            cs.counts.unmatched,
            cs.counts.deferred,
            if cs.passed { "pass" } else { "FAIL" }
        );
    }
    for bucket in [Bucket::Unmatched, Bucket::Deferred, Bucket::Matched] {
        if bucket == Bucket::Matched && !all {
            continue;
        }
        let items: Vec<&Item> = r.items.iter().filter(|i| i.bucket == bucket).collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(t, "\n{}:", capitalized(bucket.as_str()));
        for i in items {
            let _ = writeln!(
                t,
                "  {} {} {} {} {} {} {} at {}{}",
                i.checkpoint.as_str(),
                i.reason.map(|r| r.as_str()).unwrap_or("-"),
                i.provider.as_deref().unwrap_or("-"),
                i.payment_ref.as_deref().unwrap_or("-"),
                i.order_ref.as_deref().unwrap_or("-"),
                i.event_id.as_deref().unwrap_or("-"),
                money(i).if_empty("-"),
                when(i.event_at_ms),
                i.expected_by
                    .as_deref()
                    .map(|d| format!(", expected by {d}, {} day(s) old", i.age_days))
                    .unwrap_or_default(),
            );
            if !i.note.is_empty() {
                let _ = writeln!(t, "      {}", i.note);
            }
            if !i.action.is_empty() {
                let _ = writeln!(t, "      → {}", i.action);
            }
        }
    }
    let _ = writeln!(
        t,
        "\nRun {} stored; {} exception(s) opened, {} closed, {} earlier deferral(s) settled; {} ms.",
        o.run_id,
        o.saved.exceptions_opened,
        o.saved.exceptions_resolved,
        o.saved.deferrals_settled,
        o.took.as_millis()
    );
    t
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() {
            other.to_owned()
        } else {
            self
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The columns of the CSV export, in order.
const CSV_COLUMNS: [&str; 17] = [
    "recon_date",
    "checkpoint",
    "bucket",
    "reason",
    "provider",
    "payment_ref",
    "order_ref",
    "event_id",
    "kind",
    "amount",
    "currency",
    "event_time",
    "origin_date",
    "expected_by",
    "age_days",
    "note",
    "action",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Every item as CSV (RFC 4180), one line per item.
pub fn csv(items: &[Item]) -> String {
    let mut t = CSV_COLUMNS.join(",");
    t.push('\n');
    for i in items {
        let row = [
            i.recon_date.clone(),
            i.checkpoint.as_str().to_owned(),
            i.bucket.as_str().to_owned(),
            i.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            i.provider.clone().unwrap_or_default(),
            i.payment_ref.clone().unwrap_or_default(),
            i.order_ref.clone().unwrap_or_default(),
            i.event_id.clone().unwrap_or_default(),
            i.kind.clone(),
            i.amount.map(|a| a.to_string()).unwrap_or_default(),
            i.currency.clone().unwrap_or_default(),
            when(i.event_at_ms),
            i.origin_date.clone(),
            i.expected_by.clone().unwrap_or_default(),
            i.age_days.to_string(),
            i.note.clone(),
            i.action.clone(),
        ];
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        t.push_str(&fields.join(","));
        t.push('\n');
    }
    t
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The run as one HTML page: inline CSS, no scripts, no external resources.
pub fn html(r: &RunResult, run_id: &str) -> String {
    let s = &r.summary;
    let mut t = String::new();
    let _ = write!(
        t,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reconciliation {date}</title>\n<style>\n\
         body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}\
         th{{background:#f3f3f3}}.pass{{color:#176117;font-weight:bold}}.fail{{color:#a11;font-weight:bold}}\
         .unmatched{{background:#fdecec}}.deferred{{background:#fff7e0}}.num{{text-align:right}}small{{color:#666}}\n\
         </style></head><body>\n<h1>Reconciliation of {date}: <span class=\"{cls}\">{verdict}</span></h1>\n\
         <p><small>Run {run}. {m} matched, {u} unmatched, {d} deferred.</small></p>\n\
         <table><tr><th>checkpoint</th><th>compares</th><th>matched</th><th>unmatched</th><th>deferred</th><th>result</th></tr>\n",
        date = esc(&s.date),
        cls = if s.passed { "pass" } else { "fail" },
        verdict = if s.passed { "passed" } else { "failed" },
        run = esc(run_id),
        m = s.total.matched,
        u = s.total.unmatched,
        d = s.total.deferred,
    );
    for (c, cs) in &s.checkpoints {
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td></tr>",
            c.as_str(),
            esc(&cs.compares),
            cs.counts.matched,
            cs.counts.unmatched,
            cs.counts.deferred,
            if cs.passed { "pass" } else { "fail" },
            if cs.passed { "pass" } else { "fail" }
        );
    }
    t.push_str("</table>\n");
    for bucket in [Bucket::Unmatched, Bucket::Deferred, Bucket::Matched] {
        for c in Checkpoint::ALL {
            let items: Vec<&Item> = r
                .items
                .iter()
                .filter(|i| i.bucket == bucket && i.checkpoint == c)
                .collect();
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(
                t,
                "<h2>{} — {} ({})</h2>\n<table><tr><th>reason</th><th>provider</th><th>payment</th><th>order</th><th>event</th><th>kind</th><th>amount</th><th>event time</th><th>expected by</th><th>age (days)</th><th>note</th><th>action</th></tr>",
                capitalized(bucket.as_str()),
                c.as_str(),
                items.len()
            );
            for i in items {
                let _ = writeln!(
                    t,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    bucket.as_str(),
                    i.reason.map(|r| r.as_str()).unwrap_or(""),
                    esc(i.provider.as_deref().unwrap_or("")),
                    esc(i.payment_ref.as_deref().unwrap_or("")),
                    esc(i.order_ref.as_deref().unwrap_or("")),
                    esc(i.event_id.as_deref().unwrap_or("")),
                    esc(&i.kind),
                    esc(&money(i)),
                    when(i.event_at_ms),
                    esc(i.expected_by.as_deref().unwrap_or("")),
                    i.age_days,
                    esc(&i.note),
                    esc(&i.action)
                );
            }
            t.push_str("</table>\n");
        }
    }
    t.push_str("</body></html>\n");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_html_escapes() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(esc("<b>&\"</b>"), "&lt;b&gt;&amp;&quot;&lt;/b&gt;");
        assert_eq!(when(86_400_000 + 3_723_000), "1970-01-02 01:02:03Z");
    }
}
