//! The merchant API's reads: an order with its history, a SKU's balances per location,
//! and a (SKU, location)'s ledger entries. Straight from the ledger database; times are
//! RFC 3339 UTC. The answers are [`crate::wire::merchant`]'s.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use domain::{EventId, Location, Order, OrderRef, Outcome, OutcomeKind, Sku, StockKey, Timestamp};

use crate::AppState;
use crate::error::ApiError;
use crate::wire::merchant::{
    EntriesPage, Entry, LocationBalance, Movement, OrderEvent, OrderLine, OrderView, ReturnedLine,
    StockView,
};

/// Entries returned by one page when `limit` is not given.
pub const ENTRIES_PAGE_DEFAULT: i64 = 100;
/// The largest page of entries (the store's own list limit).
pub const ENTRIES_PAGE_MAX: i64 = 1000;

fn time(ms: i64) -> String {
    contract::wire_time::format(Timestamp(ms))
}

/// The order's answer, with `events` to be filled in.
fn order_view(order: &Order) -> OrderView {
    let lines = order
        .spec
        .lines
        .iter()
        .map(|(k, q)| OrderLine {
            location: k.location.as_str().to_owned(),
            quantity: q.get(),
            sku: k.sku.as_str().to_owned(),
        })
        .collect();
    let returned = order
        .returned
        .iter()
        .map(|(k, q)| ReturnedLine {
            location: k.location.as_str().to_owned(),
            quantity: *q,
            sku: k.sku.as_str().to_owned(),
        })
        .collect();
    OrderView {
        amount: order.spec.amount.amount.to_string(),
        currency: order.spec.amount.currency.as_str().to_owned(),
        events: Vec::new(),
        lines,
        order_ref: order.spec.order_ref.as_str().to_owned(),
        reserved_at: order.reserved_at.map(|t| time(t.0)),
        reserved_by: order.reserved_by.map(|e| e.to_string()),
        returned,
        state: order.state.as_str().to_owned(),
        stock_moved: order.stock_moved,
    }
}

/// `GET /v1/orders/{order_ref}`: the order, its lines, and every event applied to it with
/// its outcome: the movements, the no-op reason, or the exception id.
#[utoipa::path(
    get, path = "/v1/orders/{order_ref}", tag = "merchant",
    params(("order_ref" = String, Path, example = "ORD-1001", description = "The merchant's order reference.")),
    responses(
        (status = 200, description = "The order, its lines and every event applied to it with its outcome.", body = OrderView),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
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
        let mut event = OrderEvent {
            duplicates: row.duplicates,
            event_id: row.event_id,
            exception_id: None,
            kind: row.kind,
            movements: None,
            outcome: row.outcome,
            processed_at: time(row.processed_at),
            reason: row.reason,
        };
        match row.outcome {
            OutcomeKind::Moved => event.movements = Some(movements(&state, &event.event_id).await?),
            OutcomeKind::Exception => event.exception_id = Some(event.event_id.clone()),
            OutcomeKind::NoOp => {}
        }
        events.push(event);
    }
    let mut body = order_view(&order);
    body.events = events;
    Ok(Json(body))
}

async fn movements(state: &AppState, event_id: &str) -> Result<Vec<Movement>, ApiError> {
    let Ok(id) = event_id.parse::<EventId>() else {
        return Ok(Vec::new());
    };
    let moved = match state.store.outcome(id).await? {
        Some(Outcome::Moved { movements }) => movements,
        _ => Vec::new(),
    };
    Ok(moved
        .iter()
        .map(|m| Movement {
            from: m.from.as_str().to_owned(),
            location: m.key.location.as_str().to_owned(),
            quantity: m.quantity.get(),
            seq: m.seq,
            sku: m.key.sku.as_str().to_owned(),
            to: m.to.as_str().to_owned(),
        })
        .collect())
}

/// `GET /v1/stock/{sku}`: balances per location. A SKU the ledger has no entry for is a
/// 404 `unknown_sku` (a typo must not read as "zero in stock"); a SKU whose every unit
/// left still has its locations, with zeros.
#[utoipa::path(
    get, path = "/v1/stock/{sku}", tag = "merchant",
    params(("sku" = String, Path, example = "MUG-RED", description = "The SKU.")),
    responses(
        (status = 200, description = "Balances per location.", body = StockView),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_stock(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<StockView>, ApiError> {
    let sku = Sku::parse(sku).map_err(|e| ApiError::malformed("sku", e.to_string()))?;
    let locations = state
        .store
        .balances_for_sku(&sku)
        .await?
        .into_iter()
        .map(|(location, b)| LocationBalance {
            available: b.available,
            last_seq: b.seq,
            location,
            reserved: b.reserved,
            returned: b.returned,
            sold: b.sold,
            written_off: b.written_off,
        })
        .collect::<Vec<_>>();
    if locations.is_empty() {
        return Err(unknown_sku(&sku));
    }
    Ok(Json(StockView {
        locations,
        sku: sku.as_str().to_owned(),
    }))
}

/// The 404 of a SKU the ledger has no entry for.
fn unknown_sku(sku: &Sku) -> ApiError {
    ApiError::NotFound {
        code: "unknown_sku".into(),
        message: format!(
            "the ledger has no entry for SKU {sku}: no stock was ever received for it"
        ),
    }
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
#[utoipa::path(
    get, path = "/v1/stock/{sku}/entries", tag = "merchant",
    params(
        ("sku" = String, Path, example = "MUG-RED", description = "The SKU."),
        ("location" = String, Query, example = "main", description = "The location (required)."),
        ("after_seq" = Option<i64>, Query, minimum = 0, description = "Entries after this sequence number (default 0)."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, at most 1000)."),
    ),
    responses(
        (status = 200, description = "One page of the (SKU, location)'s entries, in sequence.", body = EntriesPage),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_entries(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<EntriesPage>, ApiError> {
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
    // An empty first page: is the SKU known at all here? (A later page may be empty.)
    if rows.is_empty() && after_seq == 0 {
        let known = state.store.balances_for_sku(&key.sku).await?;
        if !known.iter().any(|(l, _)| l == key.location.as_str()) {
            return Err(ApiError::NotFound {
                code: "unknown_sku".into(),
                message: format!(
                    "the ledger has no entry for SKU {} at location {}",
                    key.sku, key.location
                ),
            });
        }
    }
    let next_after_seq = rows.last().map_or(after_seq, |r| r.seq);
    let entries = rows
        .into_iter()
        .map(|r| Entry {
            event_id: r.event_id,
            from: r.from,
            kind: r.kind,
            quantity: r.quantity,
            recorded_at: time(r.recorded_at),
            seq: r.seq,
            to: r.to,
        })
        .collect();
    Ok(Json(EntriesPage {
        entries,
        location: key.location.as_str().to_owned(),
        next_after_seq,
        sku: key.sku.as_str().to_owned(),
    }))
}
