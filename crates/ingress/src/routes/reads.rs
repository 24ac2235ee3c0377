//! The merchant API's reads: an order with its history, a SKU's balances per location,
//! and a (SKU, location)'s ledger entries. Straight from the ledger database; times are
//! RFC 3339 UTC.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use domain::{EventId, Location, Order, OrderRef, Outcome, Sku, StockKey, Timestamp};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Entries returned by one page when `limit` is not given.
pub const ENTRIES_PAGE_DEFAULT: i64 = 100;
/// The largest page of entries (the store's own list limit).
pub const ENTRIES_PAGE_MAX: i64 = 1000;

fn time(ms: i64) -> String {
    contract::wire_time::format(Timestamp(ms))
}

fn order_json(order: &Order) -> Value {
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
        "state": order.state.as_str(),
        "amount": order.spec.amount.amount.to_string(),
        "currency": order.spec.amount.currency.as_str(),
        "stock_moved": order.stock_moved,
        "reserved_by": order.reserved_by.map(|e| e.to_string()),
        "reserved_at": order.reserved_at.map(|t| time(t.0)),
        "lines": lines,
        "returned": returned,
    })
}

/// `GET /v1/orders/{order_ref}`: the order, its lines, and every event applied to it with
/// its outcome: the movements, the no-op reason, or the exception id.
pub async fn get_order(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order_ref =
        OrderRef::parse(order_ref).map_err(|e| ApiError::malformed("order_ref", e.to_string()))?;
    let Some(order) = state.store.order(&order_ref).await? else {
        return Err(ApiError::NotFound {
            code: "not_found".into(),
            message: format!("order {order_ref} is not registered"),
        });
    };
    let mut events = Vec::new();
    for row in state.store.order_events(&order_ref).await? {
        let mut event = json!({
            "event_id": row.event_id,
            "kind": row.kind,
            "outcome": row.outcome,
            "reason": row.reason,
            "processed_at": time(row.processed_at),
            "duplicates": row.duplicates,
        });
        match row.outcome.as_str() {
            "moved" => event["movements"] = movements(&state, &row.event_id).await?,
            "exception" => event["exception_id"] = json!(row.event_id),
            _ => {}
        }
        events.push(event);
    }
    let mut body = order_json(&order);
    body["events"] = Value::Array(events);
    Ok(Json(body))
}

async fn movements(state: &AppState, event_id: &str) -> Result<Value, ApiError> {
    let Ok(id) = event_id.parse::<EventId>() else {
        return Ok(Value::Array(Vec::new()));
    };
    let moved = match state.store.outcome(id).await? {
        Some(Outcome::Moved { movements }) => movements,
        _ => Vec::new(),
    };
    Ok(moved
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
        .collect())
}

/// `GET /v1/stock/{sku}`: balances per location. A SKU the ledger never saw has no
/// locations (not a 404: zero stock is an answer).
pub async fn get_stock(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sku = Sku::parse(sku).map_err(|e| ApiError::malformed("sku", e.to_string()))?;
    let locations: Vec<Value> = state
        .store
        .balances_for_sku(&sku)
        .await?
        .into_iter()
        .map(|(location, b)| {
            json!({
                "location": location,
                "available": b.available,
                "reserved": b.reserved,
                "sold": b.sold,
                "returned": b.returned,
                "written_off": b.written_off,
                "last_seq": b.seq,
            })
        })
        .collect();
    Ok(Json(json!({"sku": sku.as_str(), "locations": locations})))
}

fn query_int(
    query: &HashMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match query.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::malformed(key, format!("expected a whole number from {min} to {max}"))
            }),
    }
}

/// `GET /v1/stock/{sku}/entries?location=…&after_seq=…&limit=…`: the entries of one
/// (SKU, location) after `after_seq` (default 0), in sequence. Page on with
/// `after_seq = next_after_seq`.
pub async fn get_entries(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let sku = Sku::parse(sku).map_err(|e| ApiError::malformed("sku", e.to_string()))?;
    let location = query
        .get("location")
        .ok_or_else(|| ApiError::malformed("location", "missing query parameter"))?;
    let location = Location::parse(location.as_str())
        .map_err(|e| ApiError::malformed("location", e.to_string()))?;
    let after_seq = query_int(&query, "after_seq", 0, 0, i64::MAX)?;
    let limit = query_int(&query, "limit", ENTRIES_PAGE_DEFAULT, 1, ENTRIES_PAGE_MAX)?;
    let key = StockKey { sku, location };
    let rows = state.store.entries(&key, after_seq, limit).await?;
    let next_after_seq = rows.last().map_or(after_seq, |r| r.seq);
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "from": r.from,
                "to": r.to,
                "quantity": r.quantity,
                "event_id": r.event_id,
                "kind": r.kind,
                "recorded_at": time(r.recorded_at),
            })
        })
        .collect();
    Ok(Json(json!({
        "sku": key.sku.as_str(),
        "location": key.location.as_str(),
        "entries": entries,
        "next_after_seq": next_after_seq,
    })))
}
