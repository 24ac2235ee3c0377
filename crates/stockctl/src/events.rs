//! `stockctl events get` (one event the ledger processed, with its envelope and outcome) and
//! `stockctl events tail` (follow the events stream, like `nats stream view`): the stream is
//! read through `bus::read`, a bounded read of what is stored, taken again every
//! [`TAIL_POLL_INTERVAL`] from the sequence after the last one printed.

use std::time::Duration;

use bus::read::{ReadFrom, ReadMessage};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::exit::{self, Exit};
use crate::reads::time;
use crate::{ctx, out, outln};

/// How often `events tail` looks for new events.
pub const TAIL_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The events subcommands.
#[derive(Subcommand)]
pub enum EventsCommand {
    /// Show one event the ledger processed: its kind, order, outcome (with the movements or
    /// the reason), when it was processed, how many duplicates were seen, its stream
    /// sequence and its contract envelope. Read-only: safe at any time; never creates a
    /// database. Exit code 1 when the ledger has no event with this id.
    Get {
        /// The event id (a UUID, as `order show` and `exceptions show` print it).
        id: String,
    },
    /// Print the events stream's events as they arrive (sequence, time, subject, event id,
    /// kind, order), like `nats stream view`: first the last --last events, then every new
    /// one until interrupted (Ctrl-C), or only what is stored with --no-follow. Read-only:
    /// safe at any time; it creates no durable consumer. With --json, one object per line.
    Tail {
        /// Only subjects matching this filter (e.g. `stockledger.events.stripe.>`); default:
        /// every event of the namespace.
        #[arg(long)]
        subject: Option<String>,
        /// Start with the last N events stored (0: only new ones).
        #[arg(long, default_value_t = 10, conflicts_with = "from_seq")]
        last: u64,
        /// Start at this stream sequence instead (1 or more).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        from_seq: Option<u64>,
        /// Print what is stored now and stop instead of following.
        #[arg(long)]
        no_follow: bool,
    },
}

/// Runs one events subcommand.
pub async fn run(cmd: EventsCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        EventsCommand::Get { id } => get(&id, json).await,
        EventsCommand::Tail {
            subject,
            last,
            from_seq,
            no_follow,
        } => tail(subject, last, from_seq, !no_follow, json).await,
    }
}

async fn get(id: &str, json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    let Some(d) = store.processed_detail(id).await? else {
        return Err(exit::problem(format!(
            "the ledger has processed no event {id}"
        )));
    };
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!(s));
    let view = json!({
        "event_id": d.row.event_id,
        "kind": d.row.kind,
        "order_ref": d.row.order_ref,
        "outcome": d.row.outcome.as_str(),
        "reason": d.row.reason.map(|r| r.as_str()),
        "processed_at": time(d.row.processed_at),
        "duplicates": d.row.duplicates,
        "stream_seq": d.stream_seq,
        "outcome_detail": parse(&d.outcome_json),
        "envelope": parse(&d.envelope),
    });
    if json {
        out::json(&view)?;
        return Ok(Exit::Success);
    }
    let field = |k: &str| match &view[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    };
    outln!("event       {}", field("event_id"))?;
    outln!("kind        {}", field("kind"))?;
    outln!("order       {}", field("order_ref"))?;
    let reason = view["reason"]
        .as_str()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    outln!("outcome     {}{reason}", field("outcome"))?;
    outln!("processed   {}", field("processed_at"))?;
    outln!("duplicates  {}", field("duplicates"))?;
    outln!("stream seq  {}", field("stream_seq"))?;
    outln!("outcome detail")?;
    for line in serde_json::to_string_pretty(&view["outcome_detail"])?.lines() {
        outln!("  {line}")?;
    }
    outln!("envelope")?;
    for line in serde_json::to_string_pretty(&view["envelope"])?.lines() {
        outln!("  {line}")?;
    }
    Ok(Exit::Success)
}

async fn tail(
    subject: Option<String>,
    last: u64,
    from_seq: Option<u64>,
    follow: bool,
    json: bool,
) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let bus = ctx::bus(&cfg).await?;
    let stream = ctx::events_stream(&bus).await?;
    if let Some(s) = &subject
        && !crate::replay::within_events(s, bus.namespace())
    {
        return Err(exit::problem(format!(
            "subject {s:?} is not within the events stream {stream} (it must start with {}.events.): it matches no event",
            bus.namespace().as_str()
        )));
    }
    let filter = subject.unwrap_or_else(|| bus.namespace().events_wildcard());
    let end = bus.stream_last_seq(&stream).await?;
    // The next sequence to read.
    let mut next = from_seq.unwrap_or_else(|| end.saturating_sub(last) + 1);
    loop {
        let stored = bus.stream_last_seq(&stream).await?;
        if stored >= next {
            let mut reader = bus.read(&stream, &filter, ReadFrom::Sequence(next)).await?;
            while let Some(msg) = reader.next().await {
                let msg = msg?;
                next = next.max(msg.stream_seq + 1);
                print_message(&msg, json)?;
            }
            // Everything stored up to `stored` that matches was delivered: skip past the
            // events of other subjects too.
            next = next.max(stored + 1);
        }
        if !follow {
            return Ok(Exit::Success);
        }
        tokio::time::sleep(TAIL_POLL_INTERVAL).await;
    }
}

/// One stream message: one line of text, or one JSON object per line.
fn print_message(msg: &ReadMessage, json: bool) -> anyhow::Result<()> {
    let event: Option<Value> = serde_json::from_slice(&msg.payload).ok();
    let get = |k: &str| -> String {
        event
            .as_ref()
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let order = event
        .as_ref()
        .and_then(|e| e.pointer("/payload/order_ref"))
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned();
    if json {
        let body = event
            .clone()
            .unwrap_or_else(|| json!(String::from_utf8_lossy(&msg.payload)));
        return out::json_line(&json!({
            "seq": msg.stream_seq,
            "stored_at": time(msg.published_ms),
            "subject": msg.subject,
            "event": body,
        }));
    }
    outln!(
        "{:>8}  {}  {}  {}  {}  order={}",
        msg.stream_seq,
        time(msg.published_ms),
        msg.subject,
        get("event_id"),
        get("kind"),
        order
    )
}
