//! `summary.html`: the pack for a person, one self-contained page (inline style, no script,
//! nothing fetched), every value escaped.

use std::fmt::Write as _;

use super::{EvidenceInput, RawStatus, Subject};

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A Unix-ms time as UTC text.
fn time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.9em}\
th{background:#f4f4f4}code{font-size:.85em}.bad{color:#a00;font-weight:bold}.ok{color:#070}";

/// Writes one table: a header row and escaped cells.
fn table(html: &mut String, head: &[&str], rows: Vec<Vec<String>>) {
    html.push_str("<table><tr>");
    for h in head {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
}

fn raw_text(raw: &RawStatus) -> String {
    match raw {
        RawStatus::Kept {
            path,
            matches_raw_digest: true,
            ..
        } => format!("{path}: matches the digest recorded at acceptance"),
        RawStatus::Kept { path, .. } => format!(
            "{path}: DOES NOT match the digest recorded at acceptance (a later delivery under the same event id replaced it, or it was altered)"
        ),
        RawStatus::Expired { detail } | RawStatus::NotKept { detail } => detail.clone(),
        RawStatus::NoBody => "no provider body".into(),
    }
}

fn bal(b: &std::collections::BTreeMap<String, i64>) -> String {
    store::BUCKETS
        .iter()
        .map(|k| format!("{k} {}", b.get(*k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page; `files` are the pack's other files with their SHA-256.
pub fn render(input: &EvidenceInput, files: &[(String, String)]) -> String {
    let title = match &input.subject {
        Subject::Order(r) => format!("Evidence: order {r}"),
        Subject::Exception(id) => format!("Evidence: exception {id}"),
    };
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>\
         <p>Generated {g} by stockledger {v}. Each file's SHA-256 is in <code>manifest.json</code>, chained; check the pack with <code>stockctl evidence verify</code>.</p>",
        t = escape(&title),
        g = escape(&time(input.generated_at)),
        v = env!("CARGO_PKG_VERSION"),
    );
    if let Some(order) = &input.order {
        let _ = write!(
            html,
            "<h2>Order</h2><pre>{}</pre>",
            escape(&serde_json::to_string_pretty(order).unwrap_or_default())
        );
    }
    html.push_str("<h2>Events</h2>");
    let rows = input
        .events
        .iter()
        .map(|e| {
            vec![
                e.stream_seq.map_or_else(|| "?".into(), |s| s.to_string()),
                e.event_id.clone(),
                e.kind.clone(),
                e.provider.clone(),
                match &e.reason {
                    Some(r) => format!("{} ({r})", e.outcome),
                    None => e.outcome.clone(),
                },
                e.verified_by.to_owned(),
                raw_text(&e.raw),
            ]
        })
        .collect();
    table(
        &mut html,
        &[
            "seq",
            "event id",
            "kind",
            "from",
            "outcome",
            "sender verified by",
            "raw body",
        ],
        rows,
    );
    html.push_str("<h2>Ledger entries</h2>");
    let rows = input
        .entries
        .iter()
        .map(|x| {
            let e = &x.entry;
            vec![
                format!("{} @ {} #{}", e.sku, e.location, e.seq),
                format!("{} {} → {}", e.quantity, e.from, e.to),
                e.event_id.clone(),
                bal(&x.balance_before),
                bal(&x.balance_after),
            ]
        })
        .collect();
    table(
        &mut html,
        &["entry", "movement", "event", "before", "after"],
        rows,
    );
    for x in &input.exceptions {
        let _ = write!(
            html,
            "<h2>Exception {}</h2><p>{} — {} ({})</p>",
            escape(&x.item.id),
            escape(&x.item.reason),
            escape(&x.item.detail),
            escape(&x.item.state)
        );
        let rows = x
            .actions
            .iter()
            .map(|a| {
                vec![
                    time(a.at),
                    a.action.clone(),
                    a.actor.clone(),
                    a.reason.clone(),
                    a.result.clone(),
                ]
            })
            .collect();
        table(
            &mut html,
            &["at", "action", "actor", "reason", "result"],
            rows,
        );
    }
    let _ = write!(
        html,
        "<h2>Reconciliation</h2><p>{}</p>",
        if input.reconciliation.is_empty() {
            "No reconciliation line mentions this order.".to_owned()
        } else {
            format!(
                "{} line(s): see reconciliation.json.",
                input.reconciliation.len()
            )
        }
    );
    html.push_str("<h2>Files</h2>");
    let rows = files
        .iter()
        .map(|(p, h)| vec![p.clone(), h.clone()])
        .collect();
    table(&mut html, &["file", "sha256"], rows);
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
