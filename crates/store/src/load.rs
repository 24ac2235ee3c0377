//! Loading the part of the ledger state a batch touches, inside the batch transaction,
//! with a fixed number of set queries ([`state_for_batch`]): the events' prior outcomes,
//! the orders they name (by reference or by payment reference), returns and disputes, the
//! balances of every (SKU, location) involved, and the stock policy in force. Single-row loaders serve the reads.

use std::collections::{BTreeMap, BTreeSet};

use domain::{
    Balance, Chargeback, DisputeId, Event, EventId, EventKind, ExceptionId, OrderLookup, OrderRef,
    Outcome, PaymentRef, PolicySet, Provider, QueueEntry, ReturnRecord, ReturnRef, State, StockKey,
};
use sqlx::AnyConnection;

use crate::bulk::{Bulk, Val};
use crate::rows::{BalanceRow, BodyRow, KeyedBalanceRow, StoredEventId, corrupt_row, decode_all};

use crate::StoreError;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// What a batch touches, collected from its events before anything is loaded.
#[derive(Default)]
struct Needs {
    ids: BTreeSet<EventId>,
    orders: BTreeSet<OrderRef>,
    payment_refs: BTreeSet<(Provider, PaymentRef)>,
    returns: BTreeSet<ReturnRef>,
    disputes: BTreeSet<DisputeId>,
    keys: BTreeSet<StockKey>,
    /// Exception-queue rows operator actions name.
    exceptions: BTreeSet<ExceptionId>,
}

impl Needs {
    fn of(events: &[&Event]) -> Needs {
        let mut n = Needs::default();
        for event in events {
            n.ids.insert(event.id);
            n.add(&event.kind);
        }
        n
    }

    fn add(&mut self, kind: &EventKind) {
        match kind {
            EventKind::OrderRegistered { spec, payment_refs } => {
                self.orders.insert(spec.order_ref.clone());
                // A new order's lines are decided on in this batch (a payment for it may
                // follow in the same batch), so its balances are needed too.
                self.keys.extend(spec.lines.keys().cloned());
                self.payment_refs.extend(payment_refs.iter().cloned());
            }
            EventKind::PaymentRefAttached {
                order_ref,
                provider,
                payment_ref,
            } => {
                self.orders.insert(order_ref.clone());
                self.payment_refs
                    .insert((provider.clone(), payment_ref.clone()));
            }
            EventKind::ReservationExpired {
                order_ref,
                reservation,
            } => {
                self.orders.insert(order_ref.clone());
                // Whether the reservation it names was applied (`domain::RESERVATION_AWAIT_MAX`).
                self.ids.insert(*reservation);
            }
            EventKind::ReturnReceived {
                order_ref,
                reference,
                lines,
            } => {
                self.orders.insert(order_ref.clone());
                self.returns.insert(reference.clone());
                self.keys.extend(lines.keys().cloned());
            }
            EventKind::ReturnInspected {
                reference, lines, ..
            } => {
                self.returns.insert(reference.clone());
                self.keys.extend(lines.keys().cloned());
            }
            EventKind::StockReceived { key, .. } | EventKind::StockCorrected { key, .. } => {
                self.keys.insert(key.clone());
            }
            EventKind::ExceptionAction { exception_id, .. } => {
                // The row, and the outcome of its event (a retry re-decides it).
                self.exceptions.insert(exception_id.clone());
                if let Ok(id) = exception_id.as_str().parse::<EventId>() {
                    self.ids.insert(id);
                }
            }
            kind => {
                if let Some(payment) = kind.payment() {
                    match &payment.order {
                        OrderLookup::OrderRef(r) => {
                            self.orders.insert(r.clone());
                        }
                        OrderLookup::PaymentRef {
                            provider,
                            payment_ref,
                        } => {
                            self.payment_refs
                                .insert((provider.clone(), payment_ref.clone()));
                        }
                    }
                }
                if let EventKind::ChargebackOpened { dispute_id, .. }
                | EventKind::ChargebackClosed { dispute_id, .. } = kind
                {
                    self.disputes.insert(dispute_id.clone());
                }
            }
        }
    }
}

/// The partial state `decide` needs for every event of a batch, loaded with a fixed number
/// of set queries whatever the batch size: prior outcomes (with the envelope each was
/// recorded with: the first content of its event id, [`crate::content`]), payment
/// references, returns and disputes, then the orders they and the events name, then the
/// balances of every line of those orders and every key the events name. Events later in
/// the batch see the effects of earlier ones because the caller applies each decision to
/// this state in memory.
pub(crate) async fn state_for_batch(
    conn: &mut AnyConnection,
    events: &[&Event],
) -> Result<(State, BTreeMap<EventId, String>), StoreError> {
    let mut needs = Needs::of(events);
    let mut state = State {
        policy: policy_in_force(conn).await?,
        ..State::default()
    };
    let envelopes = load_outcomes(conn, &mut state, &needs.ids).await?;
    for (p, r, order_ref) in load_payment_refs(conn, &needs.payment_refs).await? {
        needs.orders.insert(order_ref.clone());
        state.payment_refs.insert((p, r), order_ref);
    }
    for ret in load_returns(conn, &needs.returns).await? {
        needs.orders.insert(ret.order_ref.clone());
        state.returns.insert(ret.reference.clone(), ret);
    }
    for cb in load_chargebacks(conn, &needs.disputes).await? {
        state.chargebacks.insert(cb.dispute_id.clone(), cb);
    }
    for (id, entry) in load_exceptions(conn, &needs.exceptions).await? {
        needs.orders.extend(entry.order_ref.clone());
        state.exceptions.insert(id, entry);
    }
    for order in load_orders(conn, &needs.orders).await? {
        needs.keys.extend(order.spec.lines.keys().cloned());
        state.orders.insert(order.spec.order_ref.clone(), order);
    }
    for (key, balance) in load_balances(conn, &needs.keys).await? {
        state.balances.insert(key, balance);
    }
    Ok((state, envelopes))
}

/// The stock policy in force: the last `policy.changed` applied, or the default when none
/// was (`policy_changes`, migration 0008).
pub(crate) async fn policy_in_force(conn: &mut AnyConnection) -> Result<PolicySet, StoreError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT policy FROM policy_changes ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(corrupt_row("policy_changes"))?;
    match text {
        Some(text) => text
            .parse()
            .map_err(|e| corrupt("policy_changes.policy", e)),
        None => Ok(PolicySet::default()),
    }
}

fn one_column<T>(items: &BTreeSet<T>, f: impl Fn(&T) -> String) -> Vec<Vec<Val>> {
    items.iter().map(|i| vec![Val::Text(f(i))]).collect()
}

/// Loads the outcomes of `ids` into `state`; returns the envelope each was recorded with.
pub(crate) async fn load_outcomes(
    conn: &mut AnyConnection,
    state: &mut State,
    ids: &BTreeSet<EventId>,
) -> Result<BTreeMap<EventId, String>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT event_id, outcome_json, envelope FROM processed_events \
               WHERE event_id IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    let mut envelopes = BTreeMap::new();
    let rows = Q.fetch(conn, &one_column(ids, ToString::to_string)).await?;
    for row in decode_all::<PriorOutcomeRow>(&rows, "processed_events")? {
        let StoredEventId(id) = row.event_id;
        let outcome: Outcome =
            serde_json::from_str(&row.outcome_json).map_err(|e| corrupt("outcome_json", e))?;
        state.outcomes.insert(id, outcome);
        envelopes.insert(id, row.envelope);
    }
    Ok(envelopes)
}

/// A prior outcome of the batch's events, with the envelope it was recorded with.
#[derive(sqlx::FromRow)]
struct PriorOutcomeRow {
    #[sqlx(try_from = "String")]
    event_id: StoredEventId,
    outcome_json: String,
    envelope: String,
}

/// A payment reference and the order it is attached to.
#[derive(sqlx::FromRow)]
struct PaymentRefRow {
    #[sqlx(try_from = "String")]
    provider: Provider,
    #[sqlx(try_from = "String")]
    payment_ref: PaymentRef,
    #[sqlx(try_from = "String")]
    order_ref: OrderRef,
}

async fn load_payment_refs(
    conn: &mut AnyConnection,
    refs: &BTreeSet<(Provider, PaymentRef)>,
) -> Result<Vec<(Provider, PaymentRef, OrderRef)>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT provider, payment_ref, order_ref FROM payment_refs \
               WHERE (provider, payment_ref) IN (VALUES ",
        tail: ")",
        cols: 2,
    };
    let rows: Vec<Vec<Val>> = refs
        .iter()
        .map(|(p, r)| vec![Val::from(p.as_str()), Val::from(r.as_str())])
        .collect();
    let rows = Q.fetch(conn, &rows).await?;
    Ok(decode_all::<PaymentRefRow>(&rows, "payment_refs")?
        .into_iter()
        .map(|r| (r.provider, r.payment_ref, r.order_ref))
        .collect())
}

async fn load_bodies<K, T: serde::de::DeserializeOwned>(
    conn: &mut AnyConnection,
    query: Bulk,
    keys: &BTreeSet<K>,
    key_text: impl Fn(&K) -> String,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let rows = query.fetch(conn, &one_column(keys, key_text)).await?;
    decode_all::<BodyRow>(&rows, what)?
        .iter()
        .map(|r| serde_json::from_str(&r.body).map_err(|e| corrupt(what, e)))
        .collect()
}

async fn load_returns(
    conn: &mut AnyConnection,
    refs: &BTreeSet<ReturnRef>,
) -> Result<Vec<ReturnRecord>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT body FROM returns WHERE reference IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    load_bodies(conn, Q, refs, |r| r.as_str().to_owned(), "returns.body").await
}

async fn load_chargebacks(
    conn: &mut AnyConnection,
    ids: &BTreeSet<DisputeId>,
) -> Result<Vec<Chargeback>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT body FROM chargebacks WHERE dispute_id IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    load_bodies(conn, Q, ids, |d| d.as_str().to_owned(), "chargebacks.body").await
}

/// The exception-queue rows operator actions of the batch name.
async fn load_exceptions(
    conn: &mut AnyConnection,
    ids: &BTreeSet<ExceptionId>,
) -> Result<Vec<(ExceptionId, QueueEntry)>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT id, reason, state, order_ref FROM exceptions WHERE id IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    let rows = Q
        .fetch(conn, &one_column(ids, |i| i.as_str().to_owned()))
        .await?;
    decode_all::<ExceptionEntryRow>(&rows, "exceptions")?
        .into_iter()
        .map(ExceptionEntryRow::into_entry)
        .collect()
}

/// What the domain knows of an exception-queue row.
#[derive(sqlx::FromRow)]
struct ExceptionEntryRow {
    #[sqlx(try_from = "String")]
    id: ExceptionId,
    reason: String,
    state: String,
    order_ref: Option<String>,
}

impl ExceptionEntryRow {
    fn into_entry(self) -> Result<(ExceptionId, QueueEntry), StoreError> {
        // Nullable: `Option<OrderRef>` has no `TryFrom<Option<String>>` for the derive's
        // `try_from`, so it is parsed here.
        let order_ref = self
            .order_ref
            .map(OrderRef::parse)
            .transpose()
            .map_err(|e| corrupt("exceptions.order_ref", e))?;
        Ok((
            self.id,
            QueueEntry {
                reason: self.reason,
                open: self.state != "resolved",
                order_ref,
            },
        ))
    }
}

async fn load_orders(
    conn: &mut AnyConnection,
    refs: &BTreeSet<OrderRef>,
) -> Result<Vec<domain::Order>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT body FROM orders WHERE order_ref IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    load_bodies(conn, Q, refs, |o| o.as_str().to_owned(), "orders.body").await
}

async fn load_balances(
    conn: &mut AnyConnection,
    keys: &BTreeSet<StockKey>,
) -> Result<Vec<(StockKey, Balance)>, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT sku, location, available, reserved, sold, returned, written_off, external, seq \
               FROM balances WHERE (sku, location) IN (VALUES ",
        tail: ")",
        cols: 2,
    };
    let rows: Vec<Vec<Val>> = keys
        .iter()
        .map(|k| vec![Val::from(k.sku.as_str()), Val::from(k.location.as_str())])
        .collect();
    let rows = Q.fetch(conn, &rows).await?;
    decode_all::<KeyedBalanceRow>(&rows, "balances")?
        .into_iter()
        .map(|r| {
            let key = StockKey {
                sku: domain::Sku::parse(r.sku).map_err(|e| corrupt("balances.sku", e))?,
                location: domain::Location::parse(r.location)
                    .map_err(|e| corrupt("balances.location", e))?,
            };
            Ok((key, r.balance.into_balance()?))
        })
        .collect()
}

pub(crate) async fn prior_outcome(
    conn: &mut AnyConnection,
    id: EventId,
) -> Result<Option<Outcome>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT outcome_json FROM processed_events WHERE event_id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(corrupt_row("processed_events"))?;
    let Some(json) = json else { return Ok(None) };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| corrupt("outcome_json", e))
}

pub(crate) async fn load_order(
    conn: &mut AnyConnection,
    order_ref: &OrderRef,
) -> Result<Option<domain::Order>, StoreError> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM orders WHERE order_ref = $1")
        .bind(order_ref.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(corrupt_row("orders"))?;
    let Some(body) = body else { return Ok(None) };
    serde_json::from_str(&body)
        .map(Some)
        .map_err(|e| corrupt("orders.body", e))
}

pub(crate) async fn load_balance(
    conn: &mut AnyConnection,
    key: &StockKey,
) -> Result<Balance, StoreError> {
    let row: Option<BalanceRow> = sqlx::query_as(
        "SELECT available, reserved, sold, returned, written_off, external, seq FROM balances \
         WHERE sku = $1 AND location = $2",
    )
    .bind(key.sku.as_str())
    .bind(key.location.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(corrupt_row("balances"))?;
    row.map_or(Ok(Balance::default()), BalanceRow::into_balance)
}
