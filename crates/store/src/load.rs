//! Loading the part of the ledger state one event touches, inside the batch transaction:
//! the event's prior outcome, the order it names (by reference or by payment reference),
//! that order's return or dispute, and the balances of every (SKU, location) involved.

use std::collections::BTreeSet;

use domain::{
    Balance, Chargeback, DisputeId, Event, EventId, EventKind, OrderLookup, OrderRef, Outcome,
    PaymentRef, Provider, ReturnRecord, ReturnRef, State, StockKey,
};
use sqlx::{AnyConnection, Row};

use crate::StoreError;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The partial state `decide` needs for `event`.
pub(crate) async fn state_for(
    conn: &mut AnyConnection,
    event: &Event,
) -> Result<State, StoreError> {
    let mut state = State::default();
    if let Some(outcome) = prior_outcome(conn, event.id).await? {
        state.outcomes.insert(event.id, outcome);
    }
    let mut orders: Vec<OrderRef> = Vec::new();
    let mut keys: BTreeSet<StockKey> = BTreeSet::new();
    match &event.kind {
        EventKind::OrderRegistered { spec, payment_refs } => {
            orders.push(spec.order_ref.clone());
            for (p, r) in payment_refs {
                load_payment_ref(conn, &mut state, p, r).await?;
            }
        }
        EventKind::PaymentRefAttached {
            order_ref,
            provider,
            payment_ref,
        } => {
            orders.push(order_ref.clone());
            load_payment_ref(conn, &mut state, provider, payment_ref).await?;
        }
        EventKind::ReservationExpired { order_ref, .. } => orders.push(order_ref.clone()),
        EventKind::ReturnReceived {
            order_ref,
            reference,
            lines,
        } => {
            orders.push(order_ref.clone());
            load_return(conn, &mut state, reference).await?;
            keys.extend(lines.keys().cloned());
        }
        EventKind::ReturnInspected {
            reference, lines, ..
        } => {
            if let Some(ret) = load_return(conn, &mut state, reference).await? {
                orders.push(ret);
            }
            keys.extend(lines.keys().cloned());
        }
        EventKind::StockReceived { key, .. } | EventKind::StockCorrected { key, .. } => {
            keys.insert(key.clone());
        }
        kind => {
            if let Some(payment) = kind.payment() {
                match &payment.order {
                    OrderLookup::OrderRef(r) => orders.push(r.clone()),
                    OrderLookup::PaymentRef {
                        provider,
                        payment_ref,
                    } => {
                        if let Some(r) =
                            load_payment_ref(conn, &mut state, provider, payment_ref).await?
                        {
                            orders.push(r);
                        }
                    }
                }
            }
            if let EventKind::ChargebackOpened { dispute_id, .. }
            | EventKind::ChargebackClosed { dispute_id, .. } = kind
            {
                load_chargeback(conn, &mut state, dispute_id).await?;
            }
        }
    }
    for order_ref in orders {
        if let Some(order) = load_order(conn, &order_ref).await? {
            keys.extend(order.spec.lines.keys().cloned());
            state.orders.insert(order_ref, order);
        }
    }
    for key in keys {
        let balance = load_balance(conn, &key).await?;
        state.balances.insert(key, balance);
    }
    Ok(state)
}

pub(crate) async fn prior_outcome(
    conn: &mut AnyConnection,
    id: EventId,
) -> Result<Option<Outcome>, StoreError> {
    let row = sqlx::query("SELECT outcome_json FROM processed_events WHERE event_id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let json: String = row.try_get(0)?;
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| corrupt("outcome_json", e))
}

async fn load_payment_ref(
    conn: &mut AnyConnection,
    state: &mut State,
    provider: &Provider,
    payment_ref: &PaymentRef,
) -> Result<Option<OrderRef>, StoreError> {
    let row =
        sqlx::query("SELECT order_ref FROM payment_refs WHERE provider = $1 AND payment_ref = $2")
            .bind(provider.as_str())
            .bind(payment_ref.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let order_ref = OrderRef::parse(row.try_get::<String, _>(0)?)
        .map_err(|e| corrupt("payment_refs.order_ref", e))?;
    state
        .payment_refs
        .insert((provider.clone(), payment_ref.clone()), order_ref.clone());
    Ok(Some(order_ref))
}

/// Loads a return into `state`; returns the order it belongs to.
async fn load_return(
    conn: &mut AnyConnection,
    state: &mut State,
    reference: &ReturnRef,
) -> Result<Option<OrderRef>, StoreError> {
    let row = sqlx::query("SELECT body FROM returns WHERE reference = $1")
        .bind(reference.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let ret: ReturnRecord = serde_json::from_str(&row.try_get::<String, _>(0)?)
        .map_err(|e| corrupt("returns.body", e))?;
    let order_ref = ret.order_ref.clone();
    state.returns.insert(reference.clone(), ret);
    Ok(Some(order_ref))
}

async fn load_chargeback(
    conn: &mut AnyConnection,
    state: &mut State,
    dispute_id: &DisputeId,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT body FROM chargebacks WHERE dispute_id = $1")
        .bind(dispute_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = row {
        let cb: Chargeback = serde_json::from_str(&row.try_get::<String, _>(0)?)
            .map_err(|e| corrupt("chargebacks.body", e))?;
        state.chargebacks.insert(dispute_id.clone(), cb);
    }
    Ok(())
}

pub(crate) async fn load_order(
    conn: &mut AnyConnection,
    order_ref: &OrderRef,
) -> Result<Option<domain::Order>, StoreError> {
    let row = sqlx::query("SELECT body FROM orders WHERE order_ref = $1")
        .bind(order_ref.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    serde_json::from_str(&row.try_get::<String, _>(0)?)
        .map(Some)
        .map_err(|e| corrupt("orders.body", e))
}

pub(crate) async fn load_balance(
    conn: &mut AnyConnection,
    key: &StockKey,
) -> Result<Balance, StoreError> {
    let row = sqlx::query(
        "SELECT available, reserved, sold, returned, written_off, external, seq FROM balances \
         WHERE sku = $1 AND location = $2",
    )
    .bind(key.sku.as_str())
    .bind(key.location.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Balance::default());
    };
    balance_from_row(&row)
}

pub(crate) fn balance_from_row(row: &sqlx::any::AnyRow) -> Result<Balance, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    Ok(Balance {
        available: row.try_get("available")?,
        reserved: row.try_get("reserved")?,
        sold: row.try_get("sold")?,
        returned: row.try_get("returned")?,
        written_off: row.try_get("written_off")?,
        external: row.try_get("external")?,
        seq: u64::try_from(seq).map_err(|e| corrupt("balances.seq", e))?,
    })
}
