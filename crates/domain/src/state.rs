//! The ledger's state as the trigger matrix sees it, in memory. The property tests drive
//! the whole ledger through this type; the SQL store loads just the part of it one event
//! touches, asks [`crate::decide`], and persists the [`Resolution`] the same way
//! [`State::apply`] does here.

use std::collections::BTreeMap;

use crate::event::{Delivery, OrderLookup};
use crate::matrix::{Context, decide};
use crate::order::{Order, ReturnRecord};
use crate::outcome::{Chargeback, Decision, Outcome, Resolution};
use crate::policy::PolicySet;
use crate::stock::{Balance, StockKey};
use crate::types::{DisputeId, EventId, ExceptionId, OrderRef, PaymentRef, Provider, ReturnRef};

/// An exception-queue row as the matrix sees it: enough to decide an operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The reason code (`void_after_capture`, `max_deliveries`, …).
    pub reason: String,
    /// False once the row is resolved (by an operator, a successful retry or a closed
    /// chargeback): no action changes it any more.
    pub open: bool,
    /// The order the exception is about, if it names one.
    pub order_ref: Option<OrderRef>,
}

/// Balances, orders, returns, disputes, exception-queue rows and the outcome of every
/// processed event. A store may fill only the entries one event needs: a missing balance
/// is all zeros, a missing order is an unregistered one, a missing queue row is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub balances: BTreeMap<StockKey, Balance>,
    pub orders: BTreeMap<OrderRef, Order>,
    pub payment_refs: BTreeMap<(Provider, PaymentRef), OrderRef>,
    pub returns: BTreeMap<ReturnRef, ReturnRecord>,
    pub chargebacks: BTreeMap<DisputeId, Chargeback>,
    pub outcomes: BTreeMap<EventId, Outcome>,
    pub exceptions: BTreeMap<ExceptionId, QueueEntry>,
    /// The stock policy in force: the last `policy.changed` applied, or the default.
    pub policy: PolicySet,
}

impl State {
    /// The balance of one (SKU, location); zeros when nothing was ever recorded.
    pub fn balance(&self, key: &StockKey) -> Balance {
        self.balances.get(key).copied().unwrap_or_default()
    }

    /// The order a payment event names, if it is registered.
    pub fn resolve_order(&self, lookup: &OrderLookup) -> Option<&Order> {
        let order_ref = match lookup {
            OrderLookup::OrderRef(r) => r,
            OrderLookup::PaymentRef {
                provider,
                payment_ref,
            } => self
                .payment_refs
                .get(&(provider.clone(), payment_ref.clone()))?,
        };
        self.orders.get(order_ref)
    }

    /// Records a resolution: the outcome under the event id and every after-image.
    pub fn apply(&mut self, event_id: EventId, r: &Resolution) {
        for (key, balance) in &r.balances {
            assert!(balance.is_valid(), "invalid balance for {key}: {balance:?}");
            self.balances.insert(key.clone(), *balance);
        }
        if let Some(order) = &r.order {
            self.orders
                .insert(order.spec.order_ref.clone(), order.clone());
        }
        for (provider, payment_ref, order_ref) in &r.payment_refs {
            self.payment_refs
                .insert((provider.clone(), payment_ref.clone()), order_ref.clone());
        }
        if let Some(ret) = &r.return_record {
            self.returns.insert(ret.reference.clone(), ret.clone());
        }
        if let Some(cb) = &r.chargeback {
            self.chargebacks.insert(cb.dispute_id.clone(), cb.clone());
            if let (Some(opened_by), Some(_)) = (cb.opened_by, cb.closed) {
                self.close_exception(&opened_by.into());
            }
        }
        if let Some(policy) = &r.policy {
            self.policy = policy.clone();
        }
        self.track_queue(event_id, r);
        self.outcomes.insert(event_id, r.outcome.clone());
    }

    /// Keeps the queue rows in step with a resolution, as the store writes them: a new
    /// exception opens its event's row, an exception replaced by a retry closes it, and an
    /// operator action resolves the row it names.
    fn track_queue(&mut self, event_id: EventId, r: &Resolution) {
        let own = ExceptionId::from(event_id);
        match &r.outcome {
            Outcome::Exception { reason, .. } => {
                self.exceptions.insert(
                    own,
                    QueueEntry {
                        reason: reason.code().to_owned(),
                        open: true,
                        // As the store writes the row: what the exception is about,
                        // an order not registered included.
                        order_ref: r.concerns.order_ref.clone().or_else(|| r.order_ref.clone()),
                    },
                );
            }
            _ if r.replaces_exception => self.close_exception(&own),
            _ => {}
        }
        if let Some(q) = &r.queue
            && q.resolution.is_some()
        {
            self.close_exception(&q.exception_id);
        }
    }

    fn close_exception(&mut self, id: &ExceptionId) {
        if let Some(entry) = self.exceptions.get_mut(id) {
            entry.open = false;
        }
    }

    /// Decides one delivery and applies what was decided. Returns the decision.
    pub fn step(&mut self, delivery: &Delivery, ctx: &Context) -> Decision {
        let decision = decide(self, delivery, ctx);
        if let Decision::Record(r) = &decision {
            self.apply(delivery.event.id, r);
        }
        decision
    }
}
