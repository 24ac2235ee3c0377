//! `stockctl exceptions …`: work the exception queue. `list`, `show` and `stats` only read;
//! `retry`, `resolve`, `dismiss`, `release` and `keep` act. Every action is an event the
//! ledger applies and records in the problem's audit trail, with who ran it (`--actor`,
//! default `$STOCKLEDGER_OPERATOR`, else `$USER`) and why (`--reason`), so the trail comes
//! back when the ledger is rebuilt. The runbook per reason code is `docs/operations.md`.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use domain::OperatorAction;
use operator::actions::{ActionError, ActionReport, ActionRequest, Actions};
use serde_json::Value;
use store::{QueueDetail, QueueFilter, QueueItem};

use crate::exit::{self, Exit};
use crate::{ctx, out, outln};

/// The exception-queue subcommands.
#[derive(Subcommand)]
pub enum ExceptionsCommand {
    /// List exceptions, newest first, as a table (or JSON with --json). Read-only: safe to
    /// run at any time, also while the services run.
    List {
        /// Only this reason code (oversold, unknown_order, max_deliveries, …).
        #[arg(long)]
        reason: Option<String>,
        /// Only this state: open, retrying or resolved.
        #[arg(long, value_parser = ["open", "retrying", "resolved"])]
        state: Option<String>,
        /// Only exceptions older than this (500ms, 8s, 10m, 2h, 7d).
        #[arg(long)]
        older_than: Option<String>,
        /// At most this many rows (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one exception with all its evidence (raw event, event id, provider identity,
    /// order, stock at the time), its operator actions and the ledger's outcomes.
    /// Read-only: safe to run at any time.
    Show {
        /// The exception id (first column of `list`).
        id: String,
    },
    /// Ask the ledger to decide the exception's event again, after you fixed the cause
    /// (registered the missing order, received the missing stock, …). The event keeps its
    /// event id, so the ledger still deduplicates it: an event whose outcome is final never
    /// moves stock again, and a retry of a resolved exception changes nothing (recorded).
    /// A dead letter's original message is re-published instead. Safe while the services
    /// run, and safe to repeat. Waits for the ledger's outcome up to
    /// STOCKLEDGER_CONFIRMATION_DEADLINE.
    Retry(ActArgs),
    /// Close an exception as a deliberate no-op: no stock moves, the reason is recorded.
    /// Safe at any time, but final: a resolved exception is never retried. Use it when the
    /// runbook says the right stock outcome is "nothing" (a refund made instead, a
    /// duplicate from another channel, a chargeback handled outside stockledger).
    Resolve(ActArgs),
    /// Close an exception as not a problem at all (test traffic, a duplicate report): no
    /// stock moves, the reason is recorded. Safe at any time; final.
    Dismiss(ActArgs),
    /// For a void_after_capture only: the sale is undone and the goods never left, so the
    /// order's units go back from sold to available (one ledger entry per line, tied to the
    /// exception) and the order becomes released. Safe while the services run, but final: a
    /// second release changes nothing. Check the payment at the provider and the warehouse
    /// first (docs/operations.md).
    Release(ActArgs),
    /// For a void_after_capture only: the goods left; nothing moves, the decision is
    /// recorded and finance follows up on the payment. Safe at any time; final.
    Keep(ActArgs),
    /// Print the queue's gauges as a table: exceptions not resolved by reason and state,
    /// the oldest one's age, resolved so far, dead letters held and advisories pending (JSON
    /// with --json; the OpenMetrics text the exception consumer's /metrics serves with
    /// --openmetrics). Read-only: safe to run at any time.
    Stats {
        /// Print the OpenMetrics text, exactly as the exception consumer's /metrics serves it.
        #[arg(long, conflicts_with = "json")]
        openmetrics: bool,
    },
}

/// Arguments of an action on one exception.
#[derive(Args)]
pub struct ActArgs {
    /// The exception id.
    pub id: String,
    /// Why: what you fixed (retry) or why nothing should move (resolve). Recorded.
    #[arg(long)]
    pub reason: String,
    /// Who is acting; recorded in the audit trail.
    #[arg(long, env = "STOCKLEDGER_OPERATOR")]
    pub actor: Option<String>,
    /// What shows the action is right (a provider refund id, a shipping record). Recorded.
    #[arg(long)]
    pub evidence: Option<String>,
    /// Run the same action again with the same key and it is applied once; a fresh key is
    /// made when absent.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Who is acting: `--actor`, `$STOCKLEDGER_OPERATOR`, else the login name.
pub fn actor(given: Option<String>) -> anyhow::Result<String> {
    given
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty())
        .context("say who you are with --actor (or STOCKLEDGER_OPERATOR): every action is audited")
}

/// The configuration, the database and NATS, as the services use them.
pub async fn connect() -> anyhow::Result<Actions> {
    let cfg = ctx::config()?;
    let store = ctx::store_for_writing(&cfg).await?;
    // A tool fails at once when NATS cannot be reached.
    let bus = ctx::bus(&cfg).await?;
    Ok(Actions {
        bus,
        store,
        wait: cfg.http.confirmation_deadline,
    })
}

/// Runs one exceptions subcommand.
pub async fn run(cmd: ExceptionsCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        ExceptionsCommand::List {
            reason,
            state,
            older_than,
            limit,
        } => {
            let created_before = match older_than {
                Some(age) => {
                    let d = config::parse_duration(&age).ok_or_else(|| {
                        exit::usage("--older-than: expected 500ms, 8s, 10m, 2h or 7d")
                    })?;
                    Some(service::now().0 - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                }
                None => None,
            };
            let filter = QueueFilter {
                reason,
                state,
                created_before,
                limit: Some(limit),
            };
            let store = connect_store_only().await?;
            let rows = store.queue_list(&filter).await?;
            if json {
                out::json(&rows)?;
            } else {
                print_table(&rows, service::now().0)?;
            }
            Ok(Exit::Success)
        }
        ExceptionsCommand::Show { id } => {
            let store = connect_store_only().await?;
            let Some(detail) = store.queue_item(&id).await? else {
                return Err(exit::problem(format!("no exception {id}")));
            };
            if json {
                out::json(&detail)?;
            } else {
                print_detail(&detail)?;
            }
            Ok(Exit::Success)
        }
        ExceptionsCommand::Retry(a) => {
            let (id, req) = request(a)?;
            let actions = connect().await?;
            let report = actions.retry_with(&id, &req).await;
            finish(report, json, |r| {
                format!(
                    "{}: {}{}{}",
                    r.id,
                    r.result,
                    r.reason
                        .as_ref()
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default(),
                    r.resolution
                        .as_ref()
                        .map(|x| format!(" — {x}"))
                        .unwrap_or_default()
                )
            })
        }
        ExceptionsCommand::Resolve(a) => act(OperatorAction::Resolve, a, json).await,
        ExceptionsCommand::Dismiss(a) => act(OperatorAction::Dismiss, a, json).await,
        ExceptionsCommand::Release(a) => act(OperatorAction::Release, a, json).await,
        ExceptionsCommand::Keep(a) => act(OperatorAction::Keep, a, json).await,
        ExceptionsCommand::Stats { openmetrics } => stats(openmetrics, json).await,
    }
}

/// `exceptions stats`: a table, JSON, or the OpenMetrics text.
async fn stats(openmetrics: bool, json: bool) -> anyhow::Result<Exit> {
    let actions = connect().await?;
    let gauges = operator::gauges::Gauges {
        bus: actions.bus,
        store: actions.store,
    };
    let now = service::now().0;
    if openmetrics {
        out::print(&gauges.render(now).await?)?;
        return Ok(Exit::Success);
    }
    let s = gauges.snapshot(now).await?;
    if json {
        let unresolved: Vec<Value> = s
            .unresolved
            .iter()
            .map(|(reason, state, count)| {
                serde_json::json!({"reason": reason, "state": state, "count": count})
            })
            .collect();
        out::json(&serde_json::json!({
            "unresolved": unresolved,
            "unresolved_total": s.unresolved.iter().map(|(_, _, n)| n).sum::<i64>(),
            "oldest_unresolved_age_seconds": s.oldest_unresolved_age_seconds,
            "resolved": s.resolved,
            "dlq_depth": s.dlq_depth,
            "dlq_advisories_pending": s.advisories_pending,
        }))?;
        return Ok(Exit::Success);
    }
    outln!("{:<32} {:<9} {:>7}", "REASON", "STATE", "COUNT")?;
    for (reason, state, count) in s.unresolved.iter().filter(|(_, _, n)| *n > 0) {
        outln!("{reason:<32} {state:<9} {count:>7}")?;
    }
    let total: i64 = s.unresolved.iter().map(|(_, _, n)| n).sum();
    outln!("{} exception(s) not resolved", total)?;
    // The age is a duration shown in whole seconds at most.
    let oldest_ms = (s.oldest_unresolved_age_seconds * 1000.0) as i64;
    outln!(
        "oldest not resolved      {}",
        if total > 0 {
            age(oldest_ms)
        } else {
            "-".to_owned()
        }
    )?;
    outln!("resolved so far          {}", s.resolved)?;
    outln!("dead letters held        {}", s.dlq_depth)?;
    outln!("advisories pending       {}", s.advisories_pending)?;
    Ok(Exit::Success)
}

/// The exception id and the request of an action's arguments.
fn request(a: ActArgs) -> anyhow::Result<(String, ActionRequest)> {
    let req = ActionRequest {
        actor: actor(a.actor)?,
        reason: a.reason,
        evidence: a.evidence,
        idempotency_key: a.idempotency_key,
    };
    Ok((a.id, req))
}

/// Runs `resolve`, `dismiss`, `release` or `keep`.
async fn act(action: OperatorAction, a: ActArgs, json: bool) -> anyhow::Result<Exit> {
    let (id, req) = request(a)?;
    let actions = connect().await?;
    let report = actions.act(&id, action, &req).await;
    finish(report, json, |r: &ActionReport| {
        format!(
            "{}: {}{}",
            r.id,
            r.result,
            r.resolution
                .as_ref()
                .map(|x| format!(" — {x}"))
                .unwrap_or_default()
        )
    })
}

/// Prints an action's report (text or JSON) and chooses the exit code: 0 done, 1 refused
/// or not found, 3 NATS or the database unavailable.
pub fn finish<T: serde::Serialize>(
    report: Result<T, ActionError>,
    json: bool,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<Exit> {
    match report {
        Ok(r) => {
            if json {
                out::json(&r)?;
            } else {
                outln!("{}", text(&r))?;
            }
            Ok(Exit::Success)
        }
        Err(ActionError::Unavailable(m)) => Err(exit::unavailable(format!(
            "unavailable, nothing changed; try again later: {m}"
        ))),
        Err(e) => Err(exit::problem(e.to_string())),
    }
}

/// The ledger database (created and migrated when absent, as the services do: an empty
/// queue is an answer).
async fn connect_store_only() -> anyhow::Result<store::Store> {
    let cfg = ctx::config()?;
    ctx::store_for_writing(&cfg).await
}

/// `3d`, `5h`, `12m`, `40s`: the largest whole unit.
fn age(ms: i64) -> String {
    let s = Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)).as_secs();
    match s {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn print_table(rows: &[QueueItem], now: i64) -> anyhow::Result<()> {
    outln!(
        "{:<38} {:<30} {:<9} {:>5} {:>3} {:<20} DETAIL",
        "ID",
        "REASON",
        "STATE",
        "AGE",
        "TRY",
        "ORDER"
    )?;
    for r in rows {
        outln!(
            "{:<38} {:<30} {:<9} {:>5} {:>3} {:<20} {}",
            r.id,
            r.reason,
            r.state,
            age(now - r.created_at),
            r.retries,
            cut(r.order_ref.as_deref().unwrap_or("-"), 20),
            cut(&r.detail, 60)
        )?;
    }
    outln!("{} exception(s)", rows.len())
}

fn print_detail(d: &QueueDetail) -> anyhow::Result<()> {
    let i = &d.item;
    let now = service::now().0;
    outln!("exception   {}", i.id)?;
    outln!("event id    {}", i.event_id)?;
    outln!("reason      {}", i.reason)?;
    outln!(
        "state       {}{}",
        i.state,
        i.resolution
            .as_ref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    )?;
    outln!("detail      {}", i.detail)?;
    outln!(
        "source      {}{}",
        i.source,
        i.stream_seq
            .map(|s| format!(" (stream sequence {s})"))
            .unwrap_or_default()
    )?;
    outln!("order       {}", i.order_ref.as_deref().unwrap_or("-"))?;
    outln!(
        "stock       {} @ {}",
        i.sku.as_deref().unwrap_or("-"),
        i.location.as_deref().unwrap_or("-")
    )?;
    if let Some(dl) = i.deadline {
        outln!("deadline    {} (in {})", dl, age(dl - now))?;
    }
    outln!(
        "created     {} ago; retries {}",
        age(now - i.created_at),
        i.retries
    )?;
    let provider = d
        .evidence
        .pointer("/event/source")
        .or_else(|| d.evidence.get("provider"))
        .cloned()
        .unwrap_or(Value::Null);
    outln!("provider    {provider}")?;
    outln!("evidence")?;
    let pretty = serde_json::to_string_pretty(&d.evidence).unwrap_or_default();
    for line in pretty.lines() {
        outln!("  {line}")?;
    }
    outln!("trail")?;
    let mut trail: Vec<(i64, String)> = d
        .actions
        .iter()
        .map(|a| {
            (
                a.at,
                format!(
                    "{:<14} {:<12} by {:<12} {} (why: {})",
                    a.action, a.result, a.actor, a.detail, a.reason
                ),
            )
        })
        .collect();
    trail.extend(d.outcomes.iter().map(|o| {
        (
            o.recorded_at,
            format!(
                "ledger outcome {} {}",
                o.outcome,
                o.reason.map_or("", domain::ReasonCode::as_str)
            ),
        )
    }));
    trail.sort_by_key(|(t, _)| *t);
    for (t, line) in trail {
        outln!("  {} ago  {line}", age(now - t))?;
    }
    Ok(())
}
