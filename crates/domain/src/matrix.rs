//! The trigger matrix (`docs/trigger-matrix.md`) as one pure function:
//! [`decide`] takes the state, one delivery and the time, and says what happens. Every
//! branch here is a cell of the matrix and names its cell id (`M-…`) in a comment; the
//! data-driven tests in `tests/matrix.rs` have a case for every cell, and one of them
//! checks that every id cited here exists in the doc. Payment events are decided under the
//! stock policy in force for their provider, read from [`State::policy`] and nowhere else
//! (`M-POL-*`), and every resolution records it ([`Resolution::policy_applied`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::event::{
    AuthorizationMode, ChargebackOutcome, Delivery, Event, EventKind, FlagReason,
    InspectionOutcome, OperatorAction, OrderLookup, Payment,
};
use crate::explain::{self, Shortfall};
use crate::order::{Lines, Order, OrderSpec, OrderState, ReturnRecord};
use crate::outcome::{
    Chargeback, Concerns, Decision, DeclineReason, ExceptionReason, NoOpReason, Outcome,
    QueueUpdate, RefusalReason, Resolution,
};
use crate::policy::{PolicySet, ReservationTtls, StockPolicy};
use crate::state::State;
use crate::stock::{Balance, Bucket, Movement, StockKey};
use crate::types::{
    DisputeId, EventId, ExceptionId, OrderRef, PaymentMethod, PaymentRef, Provider, Quantity,
    ReturnRef, Timestamp,
};

/// What the matrix needs to know besides the state: the time and the limits. Passed in,
/// never read from a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    /// The time of processing: the ledger's clock live, the stream's clock (the latest
    /// event time read so far) in a replay. An event is never decided earlier than its own
    /// `recorded_at`, so a replay that reaches an event defers it exactly as the live
    /// ledger did when the event was new.
    pub now: Timestamp,
    /// How long an event for an unregistered order is deferred before it becomes an
    /// `unknown_order` exception (`STOCKLEDGER_UNKNOWN_ORDER_HOLD`).
    pub unknown_order_hold: Duration,
    /// How long a reservation may block stock, per provider and payment method
    /// (`STOCKLEDGER_RESERVATION_TTL`): a reservation's deadline (`Order::reserved_until`)
    /// is its time plus the TTL of the payment that made it.
    pub reservation_ttls: &'a ReservationTtls,
}

/// Decides what one delivery does. Pure: the same state, delivery and context always give
/// the same decision.
pub fn decide(state: &State, delivery: &Delivery, ctx: &Context) -> Decision {
    let event = &delivery.event;
    let prior = state.outcomes.get(&event.id);
    let retrying = match prior {
        None => false,
        // M-RETRY-1, M-RETRY-2: an operator retry of an open exception is decided again.
        Some(Outcome::Exception { .. }) if delivery.operator_retry => true,
        // M-DUP-1: a known event id, whatever the copy says.
        Some(_) => return Decision::Duplicate,
    };
    // An operator retry is a deliberate "try now": the unknown-order hold is over.
    let hold_until = if retrying {
        event.recorded_at
    } else {
        event.recorded_at.plus(ctx.unknown_order_hold)
    };
    let now = ctx.now.max(event.recorded_at);
    let mut resolution = match decide_fresh(state, event, now, hold_until) {
        // M-HOLD-1, M-EXP-1: nothing recorded yet.
        Fresh::Defer(until) => return Decision::Defer { until },
        Fresh::Record(r) => *r,
    };
    // Every outcome records the policy it was decided under (M-POL-10 included: a change
    // is decided under the policy it replaces).
    resolution.policy_applied = state.policy.for_provider(&event.provider);
    if retrying {
        if let (
            Some(Outcome::Exception { reason: old, .. }),
            Outcome::Exception { reason: new, .. },
        ) = (prior, &resolution.outcome)
            && old.code() == new.code()
        {
            // M-RETRY-1: the same exception again; the row stays open.
            return Decision::StillException;
        }
        // M-RETRY-2: the new outcome replaces the exception.
        resolution.replaces_exception = true;
    }
    date_reservation(&mut resolution, event, ctx);
    Decision::Record(Box::new(resolution))
}

/// A reservation this event makes gets its deadline: the reservation's time plus the TTL of
/// the provider (and payment method) that made it (M-AUTH-1, M-POL-*; `docs/providers.md`,
/// "How long a reservation holds").
fn date_reservation(resolution: &mut Resolution, event: &Event, ctx: &Context) {
    if let Some(order) = &mut resolution.order
        && order.state == OrderState::Reserved
        && order.reserved_by == Some(event.id)
    {
        let method = match &event.kind {
            EventKind::PaymentAuthorized { method, .. } => method.as_ref(),
            _ => None,
        };
        let ttl = ctx
            .reservation_ttls
            .ttl(&event.provider, method.map(PaymentMethod::as_str));
        order.reserved_until = order.reserved_at.map(|at| at.plus(ttl));
    }
}

enum Fresh {
    Defer(Timestamp),
    Record(Box<Resolution>),
}

fn decide_fresh(state: &State, event: &Event, now: Timestamp, hold_until: Timestamp) -> Fresh {
    let r = match &event.kind {
        // M-ORD-1 … M-ORD-5.
        EventKind::OrderRegistered { spec, payment_refs } => register(state, spec, payment_refs),
        // M-ATT-1 … M-ATT-4.
        EventKind::PaymentRefAttached {
            order_ref,
            provider,
            payment_ref,
        } => attach(state, order_ref, provider, payment_ref),
        // M-RCV-1.
        EventKind::StockReceived { key, quantity, .. } => {
            let mut moves = Moves::new(state);
            moves.push(key, Bucket::External, Bucket::Available, *quantity);
            moves.finish(None)
        }
        // M-COR-1 … M-COR-5.
        EventKind::StockCorrected {
            key,
            delta,
            reason,
            evidence,
            approved_by,
            ..
        } => correct(state, key, *delta, [reason, evidence, approved_by]),
        // M-POL-9, M-POL-10.
        EventKind::PolicyChanged {
            policy,
            actor,
            reason,
        } => change_policy(state, policy, [actor, reason]),
        // M-ACT-1 … M-ACT-11.
        EventKind::ExceptionAction {
            exception_id,
            action,
            actor,
            reason,
            ..
        } => operator_action(state, exception_id, *action, [actor, reason]),
        // M-RET-1 … M-RET-5.
        EventKind::ReturnReceived {
            order_ref,
            reference,
            lines,
        } => receive_return(state, order_ref, reference, lines),
        // M-INS-1 … M-INS-4.
        EventKind::ReturnInspected {
            reference,
            outcome,
            lines,
        } => inspect(state, reference, *outcome, lines),
        EventKind::ReservationExpired {
            order_ref,
            reservation,
        } => {
            // A withdrawal can overtake the authorization it names (the ingress gave up
            // waiting for that publish's ack and withdrew it; both land). It waits for the
            // authorization, so that the reservation it makes is released, not kept.
            let wait_until = event.recorded_at.plus(RESERVATION_AWAIT_MAX);
            if !state.outcomes.contains_key(reservation) && now < wait_until {
                // M-EXP-1: wait for the authorization it names.
                return Fresh::Defer(wait_until);
            }
            match state.orders.get(order_ref) {
                // M-EXP-2: the named reservation is the order's current one.
                Some(o)
                    if o.state == OrderState::Reserved && o.reserved_by == Some(*reservation) =>
                {
                    release(state, o)
                }
                // M-EXP-3: captured, voided, reserved by another authorization, or the
                // authorization never came.
                Some(o) => noop(Some(o), NoOpReason::ReservationNotActive),
                // M-EXP-3: no such order.
                None => noop(None, NoOpReason::ReservationNotActive),
            }
        }
        kind => match kind.payment() {
            // M-HOLD-*, M-AUTH-*, M-CAP-*, M-VOID-*, M-SET-1, M-RFD-1, M-NOTE-1, M-FLAG-*,
            // M-CB-*.
            Some(payment) => return payment_event(state, event, payment, now, hold_until),
            // No cell: every kind without a payment is matched above, so this is only a
            // safe default for a kind added later without its cells (recorded like
            // M-NOTE-1).
            None => noop(None, NoOpReason::ProviderStatusRecorded),
        },
    };
    Fresh::Record(Box::new(r))
}

/// Payment and chargeback events: find the order (or hold, or raise `unknown_order`),
/// then apply the row of the matrix for the event's kind and the order's state.
fn payment_event(
    state: &State,
    event: &Event,
    payment: &Payment,
    now: Timestamp,
    hold_until: Timestamp,
) -> Fresh {
    let Some(order) = state.resolve_order(&payment.order) else {
        if let EventKind::PaymentAuthorized {
            mode: AuthorizationMode::Confirmation,
            ..
        } = event.kind
        {
            // M-HOLD-3: a synchronous question is answered at once.
            return Fresh::Record(Box::new(noop(
                None,
                NoOpReason::Declined(DeclineReason::UnknownOrder),
            )));
        }
        if now < hold_until {
            // M-HOLD-1: the order may still be on its way.
            return Fresh::Defer(hold_until);
        }
        // M-HOLD-2: the hold ran out.
        let detail = explain::unknown_order(event.kind.name(), &payment.order);
        let mut r = exception(None, ExceptionReason::UnknownOrder, detail);
        // The order it names is known by its reference even though it is not registered.
        if let OrderLookup::OrderRef(order_ref) = &payment.order {
            r.concerns.order_ref = Some(order_ref.clone());
        }
        return Fresh::Record(Box::new(r));
    };
    // The stock policy of the event's provider (`docs/trigger-matrix.md`, "Stock policy").
    let policy = state.policy.for_provider(&event.provider);
    let r = match &event.kind {
        // M-AUTH-1 … M-AUTH-7, M-POL-1, M-POL-2.
        EventKind::PaymentAuthorized { mode, .. } => {
            authorize(state, event, order, payment, *mode, policy)
        }
        // M-CAP-1 … M-CAP-5, M-POL-3, M-POL-4.
        EventKind::PaymentCaptured { .. } => capture(state, order, payment, policy),
        // M-VOID-1 … M-VOID-4.
        EventKind::PaymentVoided { .. } => void(state, order),
        // M-SET-1, M-POL-5 … M-POL-8.
        EventKind::PaymentSettled { .. } => settle(state, order, policy),
        // M-RFD-1.
        EventKind::PaymentRefunded { .. } => noop(Some(order), NoOpReason::RefundRecorded),
        EventKind::PaymentFlagged {
            reason: flag,
            detail,
            ..
        } => {
            let reason = match flag {
                // M-FLAG-1.
                FlagReason::Unverifiable => ExceptionReason::Unverifiable,
                // M-FLAG-2.
                FlagReason::AmountMismatch => ExceptionReason::AmountMismatch,
            };
            let text = explain::flagged(*flag, &order.spec.order_ref, detail);
            exception(Some(order), reason, text)
        }
        // M-CB-1, M-CB-2.
        EventKind::ChargebackOpened {
            dispute_id,
            deadline,
            ..
        } => open_chargeback(state, event, order, dispute_id, *deadline),
        // M-CB-3.
        EventKind::ChargebackClosed {
            dispute_id,
            outcome,
            ..
        } => close_chargeback(state, order, dispute_id, *outcome),
        // M-NOTE-1: `payment.noted`, a provider status with no stock meaning.
        _ => noop(Some(order), NoOpReason::ProviderStatusRecorded),
    };
    Fresh::Record(Box::new(r))
}

fn authorize(
    state: &State,
    event: &Event,
    order: &Order,
    payment: &Payment,
    mode: AuthorizationMode,
    policy: StockPolicy,
) -> Resolution {
    match order.state {
        // M-AUTH-6.
        OrderState::Reserved => return noop(Some(order), NoOpReason::AlreadyReserved),
        // M-AUTH-7 (also an order whose capture waits for its settlement, M-POL-4).
        OrderState::Sold | OrderState::Released => {
            return noop(Some(order), NoOpReason::StaleAuthorization);
        }
        OrderState::Registered if order.awaiting_settlement => {
            return noop(Some(order), NoOpReason::StaleAuthorization);
        }
        OrderState::Registered => {}
    }
    if mode == AuthorizationMode::Notification && policy != StockPolicy::ReserveOnAuthorization {
        // M-POL-1: stock moves at capture or settlement. A confirmation (M-POL-2) always
        // reserves: the provider asks at exactly the moment a reservation is for.
        return noop(Some(order), NoOpReason::PolicyDefersStock);
    }
    if let Some(detail) = amount_mismatch(order, payment) {
        return match mode {
            // M-AUTH-4.
            AuthorizationMode::Confirmation => noop(
                Some(order),
                NoOpReason::Declined(DeclineReason::AmountMismatch),
            ),
            // M-AUTH-5.
            AuthorizationMode::Notification => {
                exception(Some(order), ExceptionReason::AmountMismatch, detail)
            }
        };
    }
    let mut moves = Moves::new(state);
    if let Err(short) = moves.all_lines(&order.spec.lines, Bucket::Available, Bucket::Reserved) {
        return match mode {
            // M-AUTH-2.
            AuthorizationMode::Confirmation => noop(
                Some(order),
                NoOpReason::Declined(DeclineReason::InsufficientInventory),
            ),
            // M-AUTH-3.
            AuthorizationMode::Notification => short_exception(
                order,
                ExceptionReason::InsufficientAtAuthorization,
                explain::insufficient_at_authorization(&order.spec.order_ref, &short),
                short,
            ),
        };
    }
    // M-AUTH-1.
    let mut after = order.clone();
    after.state = OrderState::Reserved;
    after.stock_moved = true;
    after.reserved_by = Some(event.id);
    after.reserved_at = Some(event.recorded_at);
    moves.finish(Some(after))
}

fn capture(state: &State, order: &Order, payment: &Payment, policy: StockPolicy) -> Resolution {
    if order.state == OrderState::Sold {
        // M-CAP-5.
        return noop(Some(order), NoOpReason::AlreadySold);
    }
    if let Some(detail) = amount_mismatch(order, payment) {
        // M-CAP-4 (under every policy: the money taken is checked when it is taken).
        return exception(Some(order), ExceptionReason::AmountMismatch, detail);
    }
    if order.awaiting_settlement {
        // M-POL-4: an earlier capture left the sale to the settlement.
        return noop(Some(order), NoOpReason::PolicyDefersStock);
    }
    if policy == StockPolicy::DeductOnSettlement {
        // M-POL-4: stock moves at settlement; a reservation (a confirmation's) stays.
        let mut after = order.clone();
        after.awaiting_settlement = true;
        let mut r = noop(Some(order), NoOpReason::PolicyDefersStock);
        r.order = Some(after);
        return r;
    }
    // M-CAP-1 … M-CAP-3, M-POL-3.
    sell(state, order)
}

/// Sells every line of `order`: the reservation when it is reserved (M-CAP-1, M-POL-5),
/// else from `available` (M-CAP-2, M-POL-5); a line short is `oversold` (M-CAP-3,
/// M-POL-6).
fn sell(state: &State, order: &Order) -> Resolution {
    // M-CAP-1 sells the reservation; M-CAP-2 sells from `available`.
    let from = if order.state == OrderState::Reserved {
        Bucket::Reserved
    } else {
        Bucket::Available
    };
    let mut moves = Moves::new(state);
    if let Err(short) = moves.all_lines(&order.spec.lines, from, Bucket::Sold) {
        // M-CAP-3.
        let detail = explain::oversold(&order.spec.order_ref, &short);
        return short_exception(order, ExceptionReason::Oversold, detail, short);
    }
    let mut after = order.clone();
    after.state = OrderState::Sold;
    after.stock_moved = true;
    after.reserved_by = None;
    after.reserved_at = None;
    after.reserved_until = None;
    after.awaiting_settlement = false;
    moves.finish(Some(after))
}

/// `payment.settled`: the sale under `deduct_on_settlement`, and the sale a capture under
/// that policy left to the settlement; otherwise recorded for reconciliation.
fn settle(state: &State, order: &Order, policy: StockPolicy) -> Resolution {
    let sells = policy == StockPolicy::DeductOnSettlement || order.awaiting_settlement;
    if !sells {
        // M-SET-1.
        return noop(Some(order), NoOpReason::SettlementRecorded);
    }
    if order.state == OrderState::Sold {
        // M-POL-7: sold at capture (under another policy, or by a second provider event).
        return noop(Some(order), NoOpReason::AlreadySold);
    }
    // M-POL-5, M-POL-6 under `deduct_on_settlement`; M-POL-8 under another policy for an
    // order whose capture was decided under it. The settled amount is not compared: a
    // settlement may be reported net of fees; the capture's amount was (M-CAP-4).
    sell(state, order)
}

/// `policy.changed`: a recorded no-op that puts `policy` in force from the next event on.
fn change_policy(state: &State, policy: &PolicySet, [actor, why]: [&String; 2]) -> Resolution {
    if actor.trim().is_empty() || why.trim().is_empty() {
        // M-POL-9: a change needs a who and a why.
        return refused(None, RefusalReason::ActionUnapproved);
    }
    if *policy == state.policy {
        // M-POL-9: already in force.
        return noop(None, NoOpReason::PolicyUnchanged);
    }
    // M-POL-10.
    let mut r = noop(None, NoOpReason::PolicyChanged);
    r.policy = Some(policy.clone());
    r
}

fn void(state: &State, order: &Order) -> Resolution {
    let mut r = void_by_state(state, order);
    if order.awaiting_settlement && !r.outcome.is_exception() {
        // M-POL-4: a capture whose sale waited for the settlement is voided; nothing was
        // sold, so nothing waits any more (voids do not depend on the policy).
        let mut after = r.order.take().unwrap_or_else(|| order.clone());
        after.awaiting_settlement = false;
        r.order = Some(after);
    }
    r
}

fn void_by_state(state: &State, order: &Order) -> Resolution {
    match order.state {
        // M-VOID-2.
        OrderState::Registered => noop(Some(order), NoOpReason::NothingReserved),
        // M-VOID-3.
        OrderState::Released => noop(Some(order), NoOpReason::AlreadyReleased),
        // M-VOID-4.
        OrderState::Sold => exception(
            Some(order),
            ExceptionReason::VoidAfterCapture,
            explain::void_after_capture(&order.spec.order_ref),
        ),
        // M-VOID-1.
        OrderState::Reserved => release(state, order),
    }
}

/// `reserved → available` for every line, and the order becomes `released`
/// (M-VOID-1, M-EXP-2).
fn release(state: &State, order: &Order) -> Resolution {
    let mut moves = Moves::new(state);
    if let Err(short) = moves.all_lines(&order.spec.lines, Bucket::Reserved, Bucket::Available) {
        // A reserved order always holds its lines; reaching this is a broken invariant.
        panic!(
            "reserved order {} does not hold its reservation: {short}",
            order.spec.order_ref
        );
    }
    let mut after = order.clone();
    after.state = OrderState::Released;
    after.reserved_by = None;
    after.reserved_at = None;
    after.reserved_until = None;
    moves.finish(Some(after))
}

fn open_chargeback(
    state: &State,
    event: &Event,
    order: &Order,
    dispute_id: &DisputeId,
    deadline: Option<Timestamp>,
) -> Resolution {
    if let Some(cb) = state.chargebacks.get(dispute_id)
        && cb.closed.is_none()
        && cb.opened_by.is_some()
    {
        // M-CB-2.
        return noop(Some(order), NoOpReason::ChargebackAlreadyOpen);
    }
    // M-CB-1.
    let detail = explain::chargeback_review(dispute_id, &order.spec.order_ref);
    let mut r = exception(
        Some(order),
        ExceptionReason::ChargebackReview { deadline },
        detail,
    );
    r.chargeback = Some(Chargeback {
        dispute_id: dispute_id.clone(),
        order_ref: order.spec.order_ref.clone(),
        opened_by: Some(event.id),
        closed: None,
    });
    r
}

fn close_chargeback(
    state: &State,
    order: &Order,
    dispute_id: &DisputeId,
    outcome: ChargebackOutcome,
) -> Resolution {
    let opened_by = state
        .chargebacks
        .get(dispute_id)
        .and_then(|cb| cb.opened_by);
    // M-CB-3: names the opening whose exception it resolves.
    let mut r = noop(Some(order), NoOpReason::ChargebackClosed(outcome));
    r.chargeback = Some(Chargeback {
        dispute_id: dispute_id.clone(),
        order_ref: order.spec.order_ref.clone(),
        opened_by,
        closed: Some(outcome),
    });
    r
}

fn register(state: &State, spec: &OrderSpec, refs: &[(Provider, PaymentRef)]) -> Resolution {
    let order_ref = &spec.order_ref;
    let mut new_refs = Vec::new();
    for (provider, payment_ref) in refs {
        match state
            .payment_refs
            .get(&(provider.clone(), payment_ref.clone()))
        {
            Some(owner) if owner == order_ref => {}
            // M-ORD-5.
            Some(_) => return refused(state.orders.get(order_ref), RefusalReason::PaymentRefInUse),
            None => new_refs.push((provider.clone(), payment_ref.clone(), order_ref.clone())),
        }
    }
    let (reason, order) = match state.orders.get(order_ref) {
        // M-ORD-1.
        None => (NoOpReason::OrderRegistered, Some(Order::new(spec.clone()))),
        // M-ORD-2.
        Some(existing) if existing.spec.same_as(spec) => (NoOpReason::OrderUnchanged, None),
        // M-ORD-4 (and an order whose sale waits for its settlement, M-POL-4).
        Some(existing) if existing.stock_moved || existing.awaiting_settlement => {
            return refused(Some(existing), RefusalReason::OrderChangedAfterStockMoved);
        }
        // M-ORD-3.
        Some(existing) => {
            let mut after = existing.clone();
            after.spec = spec.clone();
            (NoOpReason::OrderUpdated, Some(after))
        }
    };
    let mut r = noop(None, reason);
    r.order_ref = Some(order_ref.clone());
    r.order = order;
    r.payment_refs = new_refs;
    r
}

fn attach(
    state: &State,
    order_ref: &OrderRef,
    provider: &Provider,
    payment_ref: &PaymentRef,
) -> Resolution {
    let Some(order) = state.orders.get(order_ref) else {
        // M-ATT-1.
        return refused(None, RefusalReason::UnknownOrder);
    };
    match state
        .payment_refs
        .get(&(provider.clone(), payment_ref.clone()))
    {
        // M-ATT-2.
        Some(owner) if owner == order_ref => noop(Some(order), NoOpReason::PaymentRefUnchanged),
        // M-ATT-3.
        Some(_) => refused(Some(order), RefusalReason::PaymentRefInUse),
        // M-ATT-4.
        None => {
            let mut r = noop(Some(order), NoOpReason::PaymentRefAttached);
            r.payment_refs = vec![(provider.clone(), payment_ref.clone(), order_ref.clone())];
            r
        }
    }
}

fn correct(state: &State, key: &StockKey, delta: i64, approval: [&String; 3]) -> Resolution {
    if approval.iter().any(|s| s.trim().is_empty()) {
        // M-COR-1.
        return refused(None, RefusalReason::CorrectionUnapproved);
    }
    let Ok(quantity) = Quantity::new(delta.unsigned_abs()) else {
        // M-COR-2.
        return refused(None, RefusalReason::InvalidQuantity);
    };
    // M-COR-3 (up) and M-COR-4 (down).
    let (from, to) = if delta > 0 {
        (Bucket::External, Bucket::Available)
    } else {
        (Bucket::Available, Bucket::External)
    };
    let mut moves = Moves::new(state);
    if !moves.push(key, from, to, quantity) {
        // M-COR-5.
        return refused(None, RefusalReason::CorrectionWouldGoNegative);
    }
    moves.finish(None)
}

/// How long a `reservation.expired` waits for the authorization it names when that
/// authorization has not been applied yet (it may still be on its way: its publish was
/// given up on, not necessarily lost). After it, the expiry is a no-op
/// (`reservation_not_active`). Longer than any publish timeout the ingress allows.
pub const RESERVATION_AWAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// The code of the one exception `release` and `keep` act on.
const VOID_AFTER_CAPTURE: &str = "void_after_capture";

/// An operator action on an exception-queue row (`docs/decisions.md` §27). Never an
/// error: an unknown or resolved row, or an action that does not fit the row, is a
/// recorded no-op with its reason, so an action never blocks the stream.
fn operator_action(
    state: &State,
    id: &ExceptionId,
    action: OperatorAction,
    [actor, why]: [&String; 2],
) -> Resolution {
    if actor.trim().is_empty() || why.trim().is_empty() {
        // M-ACT-1.
        return refused(None, RefusalReason::ActionUnapproved);
    }
    let Some(entry) = state.exceptions.get(id) else {
        // M-ACT-2.
        return refused(None, RefusalReason::UnknownException);
    };
    let order = entry.order_ref.as_ref().and_then(|o| state.orders.get(o));
    if !entry.open {
        // M-ACT-3.
        let mut r = noop(order, NoOpReason::ExceptionAlreadyResolved);
        r.order_ref = entry.order_ref.clone();
        return r;
    }
    let for_void = matches!(action, OperatorAction::Release | OperatorAction::Keep);
    if for_void && entry.reason != VOID_AFTER_CAPTURE {
        // M-ACT-4.
        return refused(order, RefusalReason::NotVoidAfterCapture);
    }
    let (mut r, resolution) = match action {
        // M-ACT-5.
        OperatorAction::Resolve => (
            noop(order, NoOpReason::ExceptionResolved),
            format!("no-op by {actor}: {why}"),
        ),
        // M-ACT-6.
        OperatorAction::Dismiss => (
            noop(order, NoOpReason::ExceptionDismissed),
            format!("dismissed by {actor}: {why}"),
        ),
        // M-ACT-7.
        OperatorAction::Keep => (
            noop(order, NoOpReason::SaleKept),
            format!("kept by {actor} (the goods left): {why}"),
        ),
        OperatorAction::Release => match order {
            Some(o) if o.state == OrderState::Sold => match release_sale(state, o) {
                // M-ACT-8.
                Some(r) => (r, format!("released by {actor}: {why}")),
                // M-ACT-9: everything sold came back through returns.
                None => return refused(order, RefusalReason::ReleaseOfUnsoldOrder),
            },
            // M-ACT-9: the order is not sold.
            _ => return refused(order, RefusalReason::ReleaseOfUnsoldOrder),
        },
        // M-ACT-10, M-ACT-11.
        OperatorAction::Retry => return retry(state, id, order),
    };
    r.queue = Some(QueueUpdate {
        exception_id: id.clone(),
        resolution: Some(resolution),
        retried: false,
    });
    r
}

/// `retry`: accepted when the row is its event's own open exception, which the store then
/// decides again as an operator retry; refused for a row the ledger never decided (a
/// message it could not decode, a dead letter).
fn retry(state: &State, id: &ExceptionId, order: Option<&Order>) -> Resolution {
    let own_exception = id
        .as_str()
        .parse::<EventId>()
        .ok()
        .and_then(|e| state.outcomes.get(&e))
        .is_some_and(Outcome::is_exception);
    if !own_exception {
        // M-ACT-11.
        return refused(order, RefusalReason::NotRetryable);
    }
    // M-ACT-10.
    let mut r = noop(order, NoOpReason::RetryRequested);
    r.queue = Some(QueueUpdate {
        exception_id: id.clone(),
        resolution: None,
        retried: true,
    });
    r
}

/// `release` of a `void_after_capture` (M-ACT-8): `sold → available` for what the order
/// still has sold (its lines less what came back through returns), and the order becomes
/// `released`. `None` when nothing is left to release (M-ACT-9).
fn release_sale(state: &State, order: &Order) -> Option<Resolution> {
    let remaining = order.spec.lines.iter().filter_map(|(key, q)| {
        let returned = order.returned.get(key).copied().unwrap_or(0);
        let left = Quantity::new(q.get().saturating_sub(returned)).ok()?;
        Some(crate::order::Line {
            key: key.clone(),
            quantity: left,
        })
    });
    let lines = Lines::new(remaining).ok()?;
    let mut moves = Moves::new(state);
    moves
        .all_lines(&lines, Bucket::Sold, Bucket::Available)
        .ok()?;
    let mut after = order.clone();
    after.state = OrderState::Released;
    Some(moves.finish(Some(after)))
}

fn receive_return(
    state: &State,
    order_ref: &OrderRef,
    reference: &ReturnRef,
    lines: &Lines,
) -> Resolution {
    let Some(order) = state.orders.get(order_ref) else {
        // M-RET-1.
        return refused(None, RefusalReason::UnknownOrder);
    };
    if state.returns.contains_key(reference) {
        // M-RET-2.
        return refused(Some(order), RefusalReason::ReturnReferenceInUse);
    }
    if order.state != OrderState::Sold {
        // M-RET-3.
        return refused(Some(order), RefusalReason::ReturnOfUnsoldOrder);
    }
    let mut after = order.clone();
    for (key, q) in lines.iter() {
        let sold = order.spec.lines.get(key).map_or(0, Quantity::get);
        let already = order.returned.get(key).copied().unwrap_or(0);
        if already + q.get() > sold {
            // M-RET-4.
            return refused(Some(order), RefusalReason::ReturnExceedsSold);
        }
        after.returned.insert(key.clone(), already + q.get());
    }
    let mut moves = Moves::new(state);
    if moves
        .all_lines(lines, Bucket::Sold, Bucket::Returned)
        .is_err()
    {
        // M-RET-4: the `sold` bucket holds less than the order's own count says.
        return refused(Some(order), RefusalReason::ReturnExceedsSold);
    }
    // M-RET-5.
    let awaiting = lines.iter().map(|(k, q)| (k.clone(), q.get())).collect();
    let mut r = moves.finish(Some(after));
    r.return_record = Some(ReturnRecord {
        reference: reference.clone(),
        order_ref: order_ref.clone(),
        awaiting_inspection: awaiting,
    });
    r
}

fn inspect(
    state: &State,
    reference: &ReturnRef,
    outcome: InspectionOutcome,
    lines: &Lines,
) -> Resolution {
    let Some(ret) = state.returns.get(reference) else {
        // M-INS-1.
        return refused(None, RefusalReason::UnknownReturn);
    };
    let order = state.orders.get(&ret.order_ref);
    let mut after = ret.clone();
    for (key, q) in lines.iter() {
        let waiting = ret.awaiting_inspection.get(key).copied().unwrap_or(0);
        if q.get() > waiting {
            // M-INS-2.
            return refused(order, RefusalReason::InspectionExceedsReturned);
        }
        after
            .awaiting_inspection
            .insert(key.clone(), waiting - q.get());
    }
    let to = match outcome {
        // M-INS-3.
        InspectionOutcome::Restock => Bucket::Available,
        // M-INS-4.
        InspectionOutcome::WriteOff => Bucket::WrittenOff,
    };
    let mut moves = Moves::new(state);
    if moves.all_lines(lines, Bucket::Returned, to).is_err() {
        // M-INS-2: the `returned` bucket holds less than the return's own count says.
        return refused(order, RefusalReason::InspectionExceedsReturned);
    }
    let mut r = moves.finish(None);
    r.order_ref = Some(ret.order_ref.clone());
    r.return_record = Some(after);
    r
}

/// The evidence, in words, when the provider's amount differs from the order's.
fn amount_mismatch(order: &Order, payment: &Payment) -> Option<String> {
    let paid = payment.amount.as_ref()?;
    if paid.same_as(&order.spec.amount) {
        return None;
    }
    Some(explain::amount_mismatch(
        &order.spec.order_ref,
        &order.spec.amount,
        paid,
    ))
}

pub(crate) fn base(order: Option<&Order>, outcome: Outcome) -> Resolution {
    Resolution {
        outcome,
        order_ref: order.map(|o| o.spec.order_ref.clone()),
        balances: Vec::new(),
        order: None,
        payment_refs: Vec::new(),
        return_record: None,
        chargeback: None,
        replaces_exception: false,
        queue: None,
        concerns: Concerns::default(),
        // Set by `decide` for every outcome.
        policy_applied: StockPolicy::default(),
        policy: None,
    }
}

fn noop(order: Option<&Order>, reason: NoOpReason) -> Resolution {
    base(order, Outcome::NoOp { reason })
}

fn refused(order: Option<&Order>, reason: RefusalReason) -> Resolution {
    noop(order, NoOpReason::Refused(reason))
}

/// An exception about `order` (when there is one): the order, and its line when it has
/// only one, are what the exception concerns.
fn exception(order: Option<&Order>, reason: ExceptionReason, detail: String) -> Resolution {
    let mut r = base(order, Outcome::Exception { reason, detail });
    r.concerns = Concerns {
        order_ref: order.map(|o| o.spec.order_ref.clone()),
        key: order.and_then(|o| only_line(&o.spec.lines)),
    };
    r
}

/// An exception about the line of `order` that cannot move.
fn short_exception(
    order: &Order,
    reason: ExceptionReason,
    detail: String,
    short: Shortfall,
) -> Resolution {
    let mut r = exception(Some(order), reason, detail);
    r.concerns.key = Some(short.key);
    r
}

/// The key of an order's only line; `None` for an order of several lines.
fn only_line(lines: &Lines) -> Option<StockKey> {
    let mut keys = lines.keys();
    match (keys.next(), keys.next()) {
        (Some(only), None) => Some(only.clone()),
        _ => None,
    }
}

/// Movements being planned for one event, checked against balances that already include
/// the earlier movements of the same event.
struct Moves<'a> {
    state: &'a State,
    scratch: BTreeMap<StockKey, Balance>,
    movements: Vec<Movement>,
}

impl<'a> Moves<'a> {
    fn new(state: &'a State) -> Self {
        Self {
            state,
            scratch: BTreeMap::new(),
            movements: Vec::new(),
        }
    }

    fn balance(&mut self, key: &StockKey) -> &mut Balance {
        let state = self.state;
        self.scratch
            .entry(key.clone())
            .or_insert_with(|| state.balance(key))
    }

    /// Plans one movement; false (and nothing planned) when `from` would go negative.
    fn push(&mut self, key: &StockKey, from: Bucket, to: Bucket, quantity: Quantity) -> bool {
        let balance = self.balance(key);
        if !balance.can_take(from, quantity) {
            return false;
        }
        let m = Movement {
            key: key.clone(),
            from,
            to,
            quantity,
            seq: balance.seq + 1,
        };
        balance.apply(&m);
        self.movements.push(m);
        true
    }

    /// Plans every line or none: on a shortfall, names the first short line.
    fn all_lines(&mut self, lines: &Lines, from: Bucket, to: Bucket) -> Result<(), Shortfall> {
        for (key, q) in lines.iter() {
            let have = self.balance(key).get(from);
            if have < q.as_i64() {
                return Err(Shortfall {
                    key: key.clone(),
                    bucket: from,
                    needed: q.get(),
                    has: have,
                });
            }
        }
        for (key, q) in lines.iter() {
            let planned = self.push(key, from, to, q);
            assert!(planned, "line {key} checked but could not move");
        }
        Ok(())
    }

    fn finish(self, order: Option<Order>) -> Resolution {
        let outcome = Outcome::Moved {
            movements: self.movements,
        };
        let mut r = base(order.as_ref(), outcome);
        r.balances = self.scratch.into_iter().collect();
        r.order = order;
        r
    }
}
