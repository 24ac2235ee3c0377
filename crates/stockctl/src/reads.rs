//! `stockctl order show`: an order, its lines and every event applied to it with its
//! outcome, straight from the ledger database: the same facts as the merchant API's
//! `GET /v1/orders/{ref}`, read with the same store queries.

use clap::Subcommand;
use domain::{EventId, Order, OrderRef, Outcome, OutcomeKind, Timestamp};
use serde_json::{Value, json};

use crate::exit::{self, Exit};
use crate::{ctx, out, outln};

/// The order subcommands.
#[derive(Subcommand)]
pub enum OrderCommand {
    /// Show an order: amount, state, lines, returned units, and every event applied to it
    /// with its outcome (the movements, the no-op reason, or the exception id). Read-only:
    /// safe at any time, also while the services run; never creates a database. Exit code
    /// 1 when no order has this reference.
    Show {
        /// The merchant's order reference, as registered.
        order_ref: String,
    },
}

/// RFC 3339 UTC, as the API writes times.
pub fn time(ms: i64) -> String {
    contract::wire_time::format(Timestamp(ms))
}

/// Runs one order subcommand.
pub async fn order(cmd: OrderCommand, json: bool) -> anyhow::Result<Exit> {
    let OrderCommand::Show { order_ref } = cmd;
    let order_ref =
        OrderRef::parse(order_ref).map_err(|e| exit::usage(format!("order reference: {e}")))?;
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    let Some(order) = store.order(&order_ref).await? else {
        return Err(exit::problem(format!(
            "order {order_ref} is not registered"
        )));
    };
    let mut events = Vec::new();
    for row in store.order_events(&order_ref).await? {
        let movements = match (row.outcome, row.event_id.parse::<EventId>()) {
            (OutcomeKind::Moved, Ok(id)) => match store.outcome(id).await? {
                Some(Outcome::Moved { movements }) => movements
                    .iter()
                    .map(|m| {
                        json!({
                            "sku": m.key.sku.as_str(),
                            "location": m.key.location.as_str(),
                            "from": m.from.as_str(),
                            "to": m.to.as_str(),
                            "quantity": m.quantity.get(),
                            "seq": m.seq,
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        events.push(json!({
            "event_id": row.event_id,
            "kind": row.kind,
            "outcome": row.outcome.as_str(),
            "reason": row.reason.map(|r| r.as_str()),
            "processed_at": time(row.processed_at),
            "duplicates": row.duplicates,
            "policy": row.policy,
            "movements": movements,
        }));
    }
    let view = order_json(&order, events);
    if json {
        out::json(&view)?;
    } else {
        print_order(&view)?;
    }
    Ok(Exit::Success)
}

fn order_json(order: &Order, events: Vec<Value>) -> Value {
    let lines: Vec<Value> = order
        .spec
        .lines
        .iter()
        .map(|(k, q)| json!({"sku": k.sku.as_str(), "location": k.location.as_str(), "quantity": q.get()}))
        .collect();
    let returned: Vec<Value> = order
        .returned
        .iter()
        .map(
            |(k, q)| json!({"sku": k.sku.as_str(), "location": k.location.as_str(), "quantity": q}),
        )
        .collect();
    json!({
        "order_ref": order.spec.order_ref.as_str(),
        "amount": order.spec.amount.amount.to_string(),
        "currency": order.spec.amount.currency.as_str(),
        "state": order.state.as_str(),
        "stock_moved": order.stock_moved,
        "awaiting_settlement": order.awaiting_settlement,
        "reserved_at": order.reserved_at.map(|t| time(t.0)),
        "reserved_by": order.reserved_by.map(|e| e.to_string()),
        "lines": lines,
        "returned": returned,
        "events": events,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn print_order(v: &Value) -> anyhow::Result<()> {
    outln!("order       {}", text(&v["order_ref"]))?;
    outln!(
        "amount      {} {}",
        text(&v["amount"]),
        text(&v["currency"])
    )?;
    outln!("state       {}", text(&v["state"]))?;
    outln!("stock moved {}", text(&v["stock_moved"]))?;
    if v["awaiting_settlement"] == Value::Bool(true) {
        outln!("awaiting    settlement (captured under deduct_on_settlement)")?;
    }
    if !v["reserved_by"].is_null() {
        outln!(
            "reserved    at {} by {}",
            text(&v["reserved_at"]),
            text(&v["reserved_by"])
        )?;
    }
    outln!("lines")?;
    for l in v["lines"].as_array().into_iter().flatten() {
        outln!(
            "  {} at {}: {}",
            text(&l["sku"]),
            text(&l["location"]),
            text(&l["quantity"])
        )?;
    }
    for l in v["returned"].as_array().into_iter().flatten() {
        outln!(
            "  returned {} at {}: {}",
            text(&l["sku"]),
            text(&l["location"]),
            text(&l["quantity"])
        )?;
    }
    outln!("events")?;
    for e in v["events"].as_array().into_iter().flatten() {
        let reason = e["reason"]
            .as_str()
            .map(|r| format!(":{r}"))
            .unwrap_or_default();
        let policy = e["policy"]
            .as_str()
            .map(|p| format!("  under {p}"))
            .unwrap_or_default();
        outln!(
            "  {}  {:<24} {}{}  {}{}",
            text(&e["processed_at"]),
            text(&e["kind"]),
            text(&e["outcome"]),
            reason,
            text(&e["event_id"]),
            policy
        )?;
        for m in e["movements"].as_array().into_iter().flatten() {
            outln!(
                "      {} {} {} → {} at {} (seq {})",
                text(&m["quantity"]),
                text(&m["sku"]),
                text(&m["from"]),
                text(&m["to"]),
                text(&m["location"]),
                text(&m["seq"])
            )?;
        }
    }
    Ok(())
}
