//! `stockctl status`: where a deployment stands, in one look: the events stream's last
//! sequence, the ledger consumer's acknowledged position and lag (with the age of the
//! oldest event not applied), the ledger database's checkpoint, the exception queue and
//! the dead letters, and the readiness every role reports (`operator::standing`, the one
//! place that decides whether the ledger is behind the stream).

use serde_json::json;

use crate::exit::Exit;
use crate::reads::time;
use crate::{ctx, out, outln};

pub async fn run(json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let bus = ctx::bus(&cfg).await?;
    ctx::events_stream(&bus).await?;
    let store = ctx::store_for_reading(&cfg).await?;
    let standing = operator::standing::standing(&bus, &store).await?;
    // No ledger consumer yet (the ledger never started): nothing is pending for it.
    let backlog = bus.ledger_backlog().await.ok();
    let queue = store.queue_stats().await?;
    // No dead-letter stream yet (the exception process never started): none held.
    let dlq_depth = bus.dlq_depth().await.ok();
    let now = service::now().0;
    let behind = standing.is_behind();
    let p = &standing.progress;
    let c = &standing.checkpoint;
    let readiness = if behind {
        format!(
            "{}: {}",
            operator::standing::BEHIND_REASON,
            standing.describe()
        )
    } else {
        "ready".to_owned()
    };
    let unresolved: i64 = queue.unresolved.iter().map(|(_, _, n)| n).sum();
    let oldest_unapplied_age_s = backlog
        .and_then(|b| b.oldest_unapplied_ms)
        .map(|t| (now - t).max(0) / 1000);
    if json {
        out::json(&json!({
            "stream": {
                "name": p.stream,
                "created_at": time(p.created_ms),
                "last_seq": p.last_seq,
            },
            "ledger_consumer": {
                "acked": p.acked,
                "lag": p.last_seq.saturating_sub(p.acked),
                "pending": backlog.map(|b| b.pending),
                "oldest_unapplied_age_seconds": oldest_unapplied_age_s,
            },
            "checkpoint": {
                "applied": c.applied,
                "rebuilding": c.rebuilding,
            },
            "behind": behind,
            "ready": !behind,
            "readiness": readiness,
            "exceptions": {
                "unresolved": unresolved,
                "resolved": queue.resolved,
            },
            "dlq_depth": dlq_depth,
        }))?;
    } else {
        outln!(
            "events stream      {} (created {}), last sequence {}",
            p.stream,
            time(p.created_ms),
            p.last_seq
        )?;
        outln!(
            "ledger consumer    acknowledged up to {}, lag {} event(s){}",
            p.acked,
            p.last_seq.saturating_sub(p.acked),
            oldest_unapplied_age_s
                .map(|s| format!(", oldest not applied {s}s ago"))
                .unwrap_or_default()
        )?;
        outln!(
            "ledger database    applied up to {}{}",
            c.applied,
            if c.rebuilding {
                " (a rebuild is under way)"
            } else {
                ""
            }
        )?;
        outln!(
            "exceptions         {unresolved} not resolved, {} resolved",
            queue.resolved
        )?;
        outln!(
            "dead letters       {}",
            dlq_depth.map_or_else(
                || "- (no dead-letter stream: the exception process has not run)".to_owned(),
                |n| n.to_string()
            )
        )?;
        outln!("readiness          {readiness}")?;
    }
    store.close().await;
    Ok(if behind { Exit::Problem } else { Exit::Success })
}
