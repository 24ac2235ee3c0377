//! The cases of the trigger matrix (`docs/trigger-matrix.md`): every cell of its tables
//! has at least one case here, and each case names the cells it proves in a
//! `/// Cells: …` line above it. Most cases are `check(given, when, expect)`.
//! `every_cell_of_the_doc_has_a_case` (at the end) reads the doc and this file and fails
//! when a cell has no case, or when this file or `src/matrix.rs` cites a cell id the doc
//! does not have.
//!
//! Every case runs under every stock policy (`docs/trigger-matrix.md`, "Stock policy"):
//! `check` expects the same under all three, `check_each` says what each expects where
//! they differ, and the cases written against a `World` run in `under_every_policy`.
#![allow(clippy::unwrap_used)]

mod support;

use domain::Bucket::{
    Available as A, External as X, Reserved as R, Returned as Ret, Sold as S, WrittenOff as W,
};
use domain::*;
use support::*;

/// Something that happened before the event under test.
#[derive(Clone)]
enum Given {
    Receive(&'static str, u64),
    Register(&'static str, &'static [(&'static str, u64)], &'static str),
    Event(EventKind),
    /// The order reserved under every policy: a confirmation (M-POL-2).
    Reserve(&'static str),
    /// The order sold under every policy: its capture, and under `deduct_on_settlement`
    /// its settlement.
    Sell(&'static str),
}

/// What the event under test must decide.
#[derive(Clone)]
enum Expect {
    Moved(&'static [(&'static str, Bucket, Bucket, u64)]),
    NoOp(NoOpReason),
    Exception(&'static str),
    Defer,
}

use Given::*;

/// (available, reserved, sold, returned, written_off) of one SKU.
type Stock = (i64, i64, i64, i64, i64);

/// What a case expects under one policy: the decision, and the stock of SKU `a` (and `b`).
#[derive(Clone)]
struct Then(Expect, Stock, Option<Stock>);

/// Applies `given`, then `when`, under every policy; asserts the same decision and the
/// same stock of SKU `a` and `b` afterwards under each.
fn check(given: Vec<Given>, when: EventKind, expect: Expect, a: Stock, b: Option<Stock>) {
    let then = Then(expect, a, b);
    check_each(given, when, [then.clone(), then.clone(), then]);
}

/// Like [`check`], with what each policy expects, in the order of [`StockPolicy::ALL`]:
/// `reserve_on_authorization`, `deduct_on_capture`, `deduct_on_settlement`.
fn check_each(given: Vec<Given>, when: EventKind, then: [Then; 3]) {
    for (policy, Then(expect, a, b)) in StockPolicy::ALL.into_iter().zip(then) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_under(policy, given.clone(), when.clone(), expect, a, b)
        }));
        if let Err(e) = run {
            eprintln!("the case failed under {policy}");
            std::panic::resume_unwind(e);
        }
    }
}

fn check_under(
    policy: StockPolicy,
    given: Vec<Given>,
    when: EventKind,
    expect: Expect,
    a: Stock,
    b: Option<Stock>,
) {
    let mut w = World::new();
    w.state.policy = PolicySet::uniform(policy);
    for g in given {
        match g {
            Receive(sku, n) => w.receive(sku, n),
            Register(o, items, amount) => w.register(o, items, amount),
            Event(kind) => {
                let d = w.when(kind);
                assert!(
                    matches!(d, Decision::Record(_)),
                    "given event not recorded: {d:?}"
                );
            }
            Reserve(o) => {
                let d = w.when(confirm(o));
                assert_eq!(outcome(&d).label(), "moved", "{o} not reserved: {d:?}");
            }
            Sell(o) => sell(&mut w, o),
        }
    }
    let d = w.when(when);
    match expect {
        Expect::Moved(m) => {
            let want: Vec<_> = m
                .iter()
                .map(|(s, f, t, q)| (s.to_string(), *f, *t, *q))
                .collect();
            assert_eq!(moved(&d), want);
        }
        Expect::NoOp(reason) => assert_eq!(noop_reason(&d), reason),
        Expect::Exception(code) => assert_eq!(exception_code(&d), code),
        Expect::Defer => assert!(
            matches!(d, Decision::Defer { .. }),
            "expected defer, got {d:?}"
        ),
    }
    assert_eq!(w.stock("a"), a, "stock of a");
    if let Some(b) = b {
        assert_eq!(w.stock("b"), b, "stock of b");
    }
    for (k, bal) in &w.state.balances {
        assert!(bal.is_valid(), "{k}: {bal:?}");
    }
}

fn authorized(order: &'static str, mode: AuthorizationMode) -> EventKind {
    EventKind::PaymentAuthorized {
        payment: pay(order, Some("20.00")),
        mode,
        method: None,
    }
}
fn notify(order: &'static str) -> EventKind {
    authorized(order, AuthorizationMode::Notification)
}
fn confirm(order: &'static str) -> EventKind {
    authorized(order, AuthorizationMode::Confirmation)
}
fn captured(order: &'static str) -> EventKind {
    EventKind::PaymentCaptured {
        payment: pay(order, Some("20")),
    }
}
fn voided(order: &'static str) -> EventKind {
    EventKind::PaymentVoided {
        payment: pay(order, None),
    }
}
fn settled(order: &'static str) -> EventKind {
    EventKind::PaymentSettled {
        payment: pay(order, Some("20")),
    }
}
/// The event that sells `order` under the policy of the running case: its settlement under
/// `deduct_on_settlement` (M-POL-5), else its capture.
fn sale(order: &'static str) -> EventKind {
    if policy() == StockPolicy::DeductOnSettlement {
        settled(order)
    } else {
        captured(order)
    }
}
/// Sells `order` under the world's policy: its capture, and under `deduct_on_settlement`
/// its settlement.
fn sell(w: &mut World, order: &'static str) {
    w.when(captured(order));
    if w.state.policy.default == StockPolicy::DeductOnSettlement {
        w.when(settled(order));
    }
    assert_eq!(w.order_state(order), OrderState::Sold, "{order} not sold");
}
fn stocked(n: u64) -> Vec<Given> {
    vec![Receive("a", n), Register("o1", &[("a", 2)], "20.00")]
}
fn with(mut g: Vec<Given>, more: Vec<Given>) -> Vec<Given> {
    g.extend(more);
    g
}

// ---- payment.authorized -------------------------------------------------------------

/// Cells: M-AUTH-1, M-POL-1.
#[test]
fn authorized_reserves_every_line() {
    let deferred = Then(
        Expect::NoOp(NoOpReason::PolicyDefersStock),
        (5, 0, 0, 0, 0),
        None,
    );
    check_each(
        stocked(5),
        notify("o1"),
        [
            Then(Expect::Moved(&[("a", A, R, 2)]), (3, 2, 0, 0, 0), None),
            deferred.clone(),
            deferred,
        ],
    );
}

/// Cells: M-AUTH-3, M-POL-1.
#[test]
fn authorized_is_all_lines_or_none() {
    let given = vec![
        Receive("a", 5),
        Receive("b", 1),
        Register("o1", &[("a", 2), ("b", 2)], "20"),
    ];
    let deferred = Then(
        Expect::NoOp(NoOpReason::PolicyDefersStock),
        (5, 0, 0, 0, 0),
        Some((1, 0, 0, 0, 0)),
    );
    check_each(
        given,
        notify("o1"),
        [
            Then(
                Expect::Exception("insufficient_at_authorization"),
                (5, 0, 0, 0, 0),
                Some((1, 0, 0, 0, 0)),
            ),
            deferred.clone(),
            deferred,
        ],
    );
}

/// Cells: M-AUTH-2.
#[test]
fn authorized_short_on_confirmation_is_declined() {
    check(
        stocked(1),
        confirm("o1"),
        Expect::NoOp(NoOpReason::Declined(DeclineReason::InsufficientInventory)),
        (1, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-AUTH-3, M-POL-1.
#[test]
fn authorized_short_on_notification_is_an_exception() {
    let deferred = Then(
        Expect::NoOp(NoOpReason::PolicyDefersStock),
        (1, 0, 0, 0, 0),
        None,
    );
    check_each(
        stocked(1),
        notify("o1"),
        [
            Then(
                Expect::Exception("insufficient_at_authorization"),
                (1, 0, 0, 0, 0),
                None,
            ),
            deferred.clone(),
            deferred,
        ],
    );
}

/// Cells: M-AUTH-4.
#[test]
fn authorized_with_other_amount_on_confirmation_is_declined() {
    let when = EventKind::PaymentAuthorized {
        payment: pay("o1", Some("19.99")),
        mode: AuthorizationMode::Confirmation,
        method: None,
    };
    check(
        stocked(5),
        when,
        Expect::NoOp(NoOpReason::Declined(DeclineReason::AmountMismatch)),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-AUTH-5, M-POL-1.
#[test]
fn authorized_with_other_currency_on_notification_is_amount_mismatch() {
    let payment = Payment {
        order: OrderLookup::OrderRef(order_ref("o1")),
        amount: Some(Money::parse("20.00", "EUR").unwrap()),
    };
    let when = EventKind::PaymentAuthorized {
        payment,
        mode: AuthorizationMode::Notification,
        method: None,
    };
    // Under the deferring policies the amount is checked at capture (M-CAP-4).
    let deferred = Then(
        Expect::NoOp(NoOpReason::PolicyDefersStock),
        (5, 0, 0, 0, 0),
        None,
    );
    check_each(
        stocked(5),
        when,
        [
            Then(Expect::Exception("amount_mismatch"), (5, 0, 0, 0, 0), None),
            deferred.clone(),
            deferred,
        ],
    );
}

// ---- payment.captured ---------------------------------------------------------------

/// Cells: M-CAP-1, M-POL-3, M-POL-4.
#[test]
fn captured_after_authorization_sells_the_reservation() {
    let sold = Then(Expect::Moved(&[("a", R, S, 2)]), (3, 0, 2, 0, 0), None);
    check_each(
        with(stocked(5), vec![Reserve("o1")]),
        captured("o1"),
        [
            sold.clone(),
            sold,
            // The reservation stays until the settlement sells it.
            Then(
                Expect::NoOp(NoOpReason::PolicyDefersStock),
                (3, 2, 0, 0, 0),
                None,
            ),
        ],
    );
}

/// Cells: M-CAP-2, M-POL-3, M-POL-4.
#[test]
fn captured_without_reservation_sells_from_available() {
    let sold = Then(Expect::Moved(&[("a", A, S, 2)]), (3, 0, 2, 0, 0), None);
    check_each(
        stocked(5),
        captured("o1"),
        [
            sold.clone(),
            sold,
            Then(
                Expect::NoOp(NoOpReason::PolicyDefersStock),
                (5, 0, 0, 0, 0),
                None,
            ),
        ],
    );
}

/// Cells: M-CAP-3, M-POL-3, M-POL-4.
#[test]
fn captured_short_is_oversold_and_moves_nothing() {
    let oversold = Then(Expect::Exception("oversold"), (1, 0, 0, 0, 0), None);
    check_each(
        stocked(1),
        captured("o1"),
        [
            oversold.clone(),
            oversold,
            Then(
                Expect::NoOp(NoOpReason::PolicyDefersStock),
                (1, 0, 0, 0, 0),
                None,
            ),
        ],
    );
}

/// Cells: M-CAP-4.
#[test]
fn captured_with_other_amount_is_amount_mismatch() {
    let when = EventKind::PaymentCaptured {
        payment: pay("o1", Some("15.00")),
    };
    check(
        with(stocked(5), vec![Reserve("o1")]),
        when,
        Expect::Exception("amount_mismatch"),
        (3, 2, 0, 0, 0),
        None,
    );
}

// ---- payment.voided -----------------------------------------------------------------

/// Cells: M-VOID-1.
#[test]
fn voided_releases_the_reservation() {
    check(
        with(stocked(5), vec![Reserve("o1")]),
        voided("o1"),
        Expect::Moved(&[("a", R, A, 2)]),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-VOID-2.
#[test]
fn voided_with_nothing_reserved_is_a_noop() {
    check(
        stocked(5),
        voided("o1"),
        Expect::NoOp(NoOpReason::NothingReserved),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-VOID-4, M-VOID-2, M-POL-4.
#[test]
fn voided_after_capture_is_an_exception() {
    let after_sale = Then(
        Expect::Exception("void_after_capture"),
        (3, 0, 2, 0, 0),
        None,
    );
    check_each(
        with(stocked(5), vec![Event(captured("o1"))]),
        voided("o1"),
        [
            after_sale.clone(),
            after_sale,
            // The capture sold nothing: nothing to review.
            Then(
                Expect::NoOp(NoOpReason::NothingReserved),
                (5, 0, 0, 0, 0),
                None,
            ),
        ],
    );
    // A sold order, under every policy.
    check(
        with(stocked(5), vec![Sell("o1")]),
        voided("o1"),
        Expect::Exception("void_after_capture"),
        (3, 0, 2, 0, 0),
        None,
    );
}

/// Cells: M-VOID-3.
#[test]
fn voided_twice_is_a_noop() {
    check(
        with(stocked(5), vec![Reserve("o1"), Event(voided("o1"))]),
        voided("o1"),
        Expect::NoOp(NoOpReason::AlreadyReleased),
        (5, 0, 0, 0, 0),
        None,
    );
}

// ---- reservation.expired ------------------------------------------------------------

/// Cells: M-EXP-2, M-CAP-2, M-POL-5.
#[test]
fn expired_releases_the_reservation() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        w.when(confirm("o1"));
        let reservation = w.state.orders[&order_ref("o1")].reserved_by.unwrap();
        let d = w.when(EventKind::ReservationExpired {
            order_ref: order_ref("o1"),
            reservation,
        });
        assert_eq!(moved(&d), vec![("a".into(), R, A, 2)]);
        assert_eq!(w.order_state("o1"), OrderState::Released);
        // A sale after expiry still sells, from available.
        let d = w.when(sale("o1"));
        assert_eq!(moved(&d), vec![("a".into(), A, S, 2)]);
    });
}

/// Cells: M-EXP-3.
#[test]
fn expired_after_capture_or_void_is_a_noop() {
    under_every_policy(|_| {
        for last in [sale("o1"), voided("o1")] {
            let mut w = World::new();
            w.receive("a", 5);
            w.register("o1", &[("a", 2)], "20");
            w.when(confirm("o1"));
            let reservation = w.state.orders[&order_ref("o1")].reserved_by.unwrap();
            w.when(last);
            let before = w.stock("a");
            let d = w.when(EventKind::ReservationExpired {
                order_ref: order_ref("o1"),
                reservation,
            });
            assert_eq!(noop_reason(&d), NoOpReason::ReservationNotActive);
            assert_eq!(w.stock("a"), before);
        }
    });
}

// ---- settled, refunded, chargebacks -------------------------------------------------

/// Cells: M-FLAG-1, M-FLAG-2.
#[test]
fn flagged_payment_is_an_exception_of_its_reason_and_moves_nothing() {
    for (reason, code) in [
        (FlagReason::Unverifiable, "unverifiable"),
        (FlagReason::AmountMismatch, "amount_mismatch"),
    ] {
        let when = EventKind::PaymentFlagged {
            payment: pay("o1", Some("20")),
            reason,
            detail: "evidence".into(),
        };
        check(
            stocked(5),
            when.clone(),
            Expect::Exception(code),
            (5, 0, 0, 0, 0),
            None,
        );
        check(
            with(stocked(5), vec![Sell("o1")]),
            when,
            Expect::Exception(code),
            (3, 0, 2, 0, 0),
            None,
        );
    }
}

/// Cells: M-SET-1, M-POL-5.
#[test]
fn settled_is_recorded_without_stock_effect() {
    let recorded = Then(
        Expect::NoOp(NoOpReason::SettlementRecorded),
        (3, 0, 2, 0, 0),
        None,
    );
    check_each(
        with(stocked(5), vec![Event(captured("o1"))]),
        settled("o1"),
        [
            recorded.clone(),
            recorded,
            // Under deduct_on_settlement the settlement is the sale.
            Then(Expect::Moved(&[("a", A, S, 2)]), (3, 0, 2, 0, 0), None),
        ],
    );
}

/// Cells: M-RFD-1.
#[test]
fn refunded_is_not_goods_back() {
    let when = EventKind::PaymentRefunded {
        payment: pay("o1", Some("20")),
    };
    check(
        with(stocked(5), vec![Sell("o1")]),
        when,
        Expect::NoOp(NoOpReason::RefundRecorded),
        (3, 0, 2, 0, 0),
        None,
    );
}

/// Cells: M-CB-1, M-CB-2, M-CB-3.
#[test]
fn chargeback_opened_is_a_review_exception_with_deadline_and_no_restock() {
    let mut w = World::new();
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    w.when(captured("o1"));
    let dispute = DisputeId::parse("dp_1").unwrap();
    let d = w.when(EventKind::ChargebackOpened {
        payment: pay("o1", None),
        dispute_id: dispute.clone(),
        deadline: Some(Timestamp(99)),
    });
    assert_eq!(
        outcome(&d),
        Outcome::Exception {
            reason: ExceptionReason::ChargebackReview {
                deadline: Some(Timestamp(99))
            },
            detail: domain::explain::chargeback_review(&dispute, &order_ref("o1")),
        }
    );
    assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
    let d = w.when(EventKind::ChargebackOpened {
        payment: pay("o1", None),
        dispute_id: dispute.clone(),
        deadline: None,
    });
    assert_eq!(noop_reason(&d), NoOpReason::ChargebackAlreadyOpen);
    let d = w.when(EventKind::ChargebackClosed {
        payment: pay("o1", None),
        dispute_id: dispute.clone(),
        outcome: ChargebackOutcome::Lost,
    });
    assert_eq!(
        noop_reason(&d),
        NoOpReason::ChargebackClosed(ChargebackOutcome::Lost)
    );
    let Decision::Record(r) = d else {
        unreachable!()
    };
    let cb = r.chargeback.unwrap();
    assert!(
        cb.opened_by.is_some(),
        "closing names the exception it resolves"
    );
    assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
}

// ---- returns and inspection ---------------------------------------------------------

fn returned(reference: &'static str, n: u64) -> EventKind {
    EventKind::ReturnReceived {
        order_ref: order_ref("o1"),
        reference: ReturnRef::parse(reference).unwrap(),
        lines: lines(&[("a", n)]),
    }
}
fn inspected(reference: &'static str, outcome: InspectionOutcome, n: u64) -> EventKind {
    EventKind::ReturnInspected {
        reference: ReturnRef::parse(reference).unwrap(),
        outcome,
        lines: lines(&[("a", n)]),
    }
}

/// Cells: M-RET-5.
#[test]
fn return_received_moves_sold_to_returned() {
    check(
        with(stocked(5), vec![Sell("o1")]),
        returned("r1", 1),
        Expect::Moved(&[("a", S, Ret, 1)]),
        (3, 0, 1, 1, 0),
        None,
    );
}

/// Cells: M-RET-4.
#[test]
fn return_of_more_than_sold_is_refused() {
    let given = with(stocked(5), vec![Sell("o1"), Event(returned("r1", 1))]);
    check(
        given,
        returned("r2", 2),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::ReturnExceedsSold)),
        (3, 0, 1, 1, 0),
        None,
    );
}

/// Cells: M-RET-3.
#[test]
fn return_of_an_unsold_order_is_refused() {
    check(
        stocked(5),
        returned("r1", 1),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::ReturnOfUnsoldOrder)),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-INS-3.
#[test]
fn inspection_restocks() {
    let given = with(stocked(5), vec![Sell("o1"), Event(returned("r1", 2))]);
    check(
        given,
        inspected("r1", InspectionOutcome::Restock, 2),
        Expect::Moved(&[("a", Ret, A, 2)]),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-INS-4.
#[test]
fn inspection_writes_off() {
    let given = with(stocked(5), vec![Sell("o1"), Event(returned("r1", 2))]);
    check(
        given,
        inspected("r1", InspectionOutcome::WriteOff, 1),
        Expect::Moved(&[("a", Ret, W, 1)]),
        (3, 0, 0, 1, 1),
        None,
    );
}

/// Cells: M-INS-2.
#[test]
fn inspection_of_more_than_returned_is_refused() {
    let given = with(stocked(5), vec![Sell("o1"), Event(returned("r1", 1))]);
    check(
        given,
        inspected("r1", InspectionOutcome::Restock, 2),
        Expect::NoOp(NoOpReason::Refused(
            RefusalReason::InspectionExceedsReturned,
        )),
        (3, 0, 1, 1, 0),
        None,
    );
}

// ---- receipts and corrections -------------------------------------------------------

/// Cells: M-RCV-1.
#[test]
fn stock_received_comes_from_external() {
    let when = EventKind::StockReceived {
        key: key("a", "main"),
        quantity: Quantity::new(7).unwrap(),
        reference: "po-1".into(),
    };
    check(
        vec![],
        when,
        Expect::Moved(&[("a", X, A, 7)]),
        (7, 0, 0, 0, 0),
        None,
    );
}

fn corrected(delta: i64, approver: &str) -> EventKind {
    EventKind::StockCorrected {
        key: key("a", "main"),
        delta,
        reason: "count".into(),
        evidence: "photo-1".into(),
        approved_by: approver.into(),
        actor: Some("ops".into()),
    }
}

/// Cells: M-COR-3, M-COR-4.
#[test]
fn correction_moves_between_external_and_available_either_way() {
    check(
        vec![Receive("a", 5)],
        corrected(3, "lee"),
        Expect::Moved(&[("a", X, A, 3)]),
        (8, 0, 0, 0, 0),
        None,
    );
    check(
        vec![Receive("a", 5)],
        corrected(-2, "lee"),
        Expect::Moved(&[("a", A, X, 2)]),
        (3, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-COR-5.
#[test]
fn correction_that_would_go_negative_is_refused() {
    check(
        vec![Receive("a", 5)],
        corrected(-6, "lee"),
        Expect::NoOp(NoOpReason::Refused(
            RefusalReason::CorrectionWouldGoNegative,
        )),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-COR-1.
#[test]
fn correction_without_approver_is_refused() {
    check(
        vec![Receive("a", 5)],
        corrected(1, " "),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::CorrectionUnapproved)),
        (5, 0, 0, 0, 0),
        None,
    );
}

// ---- orders -------------------------------------------------------------------------

/// Cells: M-ORD-2.
#[test]
fn re_registering_identically_is_a_noop() {
    let when = EventKind::OrderRegistered {
        spec: spec("o1", &[("a", 2)], "20.0"),
        payment_refs: vec![],
    };
    check(
        stocked(5),
        when,
        Expect::NoOp(NoOpReason::OrderUnchanged),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-ORD-3.
#[test]
fn changing_an_order_before_stock_moved_updates_it() {
    let when = EventKind::OrderRegistered {
        spec: spec("o1", &[("a", 3)], "30"),
        payment_refs: vec![],
    };
    check(
        stocked(5),
        when,
        Expect::NoOp(NoOpReason::OrderUpdated),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-ORD-4.
#[test]
fn changing_an_order_after_stock_moved_is_refused() {
    let when = EventKind::OrderRegistered {
        spec: spec("o1", &[("a", 3)], "30"),
        payment_refs: vec![],
    };
    check(
        with(stocked(5), vec![Reserve("o1")]),
        when,
        Expect::NoOp(NoOpReason::Refused(
            RefusalReason::OrderChangedAfterStockMoved,
        )),
        (3, 2, 0, 0, 0),
        None,
    );
}

/// Cells: M-ATT-4, M-CAP-2, M-POL-5.
#[test]
fn payment_found_by_attached_payment_ref() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        let provider = Provider::parse("stripe").unwrap();
        let pi = PaymentRef::parse("pi_1").unwrap();
        let d = w.when(EventKind::PaymentRefAttached {
            order_ref: order_ref("o1"),
            provider: provider.clone(),
            payment_ref: pi.clone(),
        });
        assert_eq!(noop_reason(&d), NoOpReason::PaymentRefAttached);
        let payment = Payment {
            order: OrderLookup::PaymentRef {
                provider,
                payment_ref: pi,
            },
            amount: Some(usd("20")),
        };
        let d = w.when(match policy() {
            StockPolicy::DeductOnSettlement => EventKind::PaymentSettled { payment },
            _ => EventKind::PaymentCaptured { payment },
        });
        assert_eq!(moved(&d), vec![("a".into(), A, S, 2)]);
    });
}

// ---- unknown orders -----------------------------------------------------------------

/// Cells: M-HOLD-1, M-HOLD-2.
#[test]
fn unknown_order_is_held_then_an_exception() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        let e = w.event(captured("nope"));
        assert!(matches!(w.deliver(&e, false), Decision::Defer { .. }));
        w.now += HOLD.as_millis() as i64;
        assert_eq!(exception_code(&w.deliver(&e, false)), "unknown_order");
    });
}

/// Cells: M-HOLD-1.
#[test]
fn unknown_order_within_hold_defers() {
    check(
        vec![Receive("a", 5)],
        captured("nope"),
        Expect::Defer,
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-HOLD-3.
#[test]
fn unknown_order_on_confirmation_is_declined_at_once() {
    check(
        vec![Receive("a", 5)],
        confirm("nope"),
        Expect::NoOp(NoOpReason::Declined(DeclineReason::UnknownOrder)),
        (5, 0, 0, 0, 0),
        None,
    );
}

// ---- late and repeated events -------------------------------------------------------

/// Cells: M-DUP-1.
#[test]
fn an_event_id_seen_before_is_a_duplicate_whatever_its_content() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        let e = w.event(confirm("o1"));
        w.deliver(&e, false);
        let mut other = e.clone();
        other.kind = captured("o1");
        assert_eq!(w.deliver(&e, false), Decision::Duplicate);
        assert_eq!(w.deliver(&other, false), Decision::Duplicate);
        assert_eq!(w.stock("a"), (3, 2, 0, 0, 0));
    });
}

/// Cells: M-CAP-5.
#[test]
fn a_second_capture_is_a_noop() {
    check(
        with(stocked(5), vec![Sell("o1")]),
        captured("o1"),
        Expect::NoOp(NoOpReason::AlreadySold),
        (3, 0, 2, 0, 0),
        None,
    );
}

/// Cells: M-AUTH-6.
#[test]
fn a_second_authorization_is_a_noop() {
    check(
        with(stocked(5), vec![Reserve("o1")]),
        notify("o1"),
        Expect::NoOp(NoOpReason::AlreadyReserved),
        (3, 2, 0, 0, 0),
        None,
    );
}

/// Cells: M-AUTH-7.
#[test]
fn authorization_after_sold_is_stale() {
    check(
        with(stocked(5), vec![Sell("o1")]),
        notify("o1"),
        Expect::NoOp(NoOpReason::StaleAuthorization),
        (3, 0, 2, 0, 0),
        None,
    );
}

/// Cells: M-AUTH-7.
#[test]
fn authorization_after_released_is_stale_and_never_re_reserves() {
    check(
        with(stocked(5), vec![Reserve("o1"), Event(voided("o1"))]),
        notify("o1"),
        Expect::NoOp(NoOpReason::StaleAuthorization),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-CAP-2, M-POL-4.
#[test]
fn capture_after_released_sells_from_available() {
    let sold = Then(Expect::Moved(&[("a", A, S, 2)]), (3, 0, 2, 0, 0), None);
    check_each(
        with(stocked(5), vec![Reserve("o1"), Event(voided("o1"))]),
        captured("o1"),
        [
            sold.clone(),
            sold,
            Then(
                Expect::NoOp(NoOpReason::PolicyDefersStock),
                (5, 0, 0, 0, 0),
                None,
            ),
        ],
    );
}

/// Cells: M-CAP-3, M-POL-4.
#[test]
fn capture_after_released_without_stock_is_oversold() {
    let given = vec![
        Receive("a", 2),
        Register("o1", &[("a", 2)], "20"),
        Register("o2", &[("a", 2)], "20"),
        Reserve("o1"),
        Event(voided("o1")),
        Sell("o2"),
    ];
    let oversold = Then(Expect::Exception("oversold"), (0, 0, 2, 0, 0), None);
    check_each(
        given,
        captured("o1"),
        [
            oversold.clone(),
            oversold,
            Then(
                Expect::NoOp(NoOpReason::PolicyDefersStock),
                (0, 0, 2, 0, 0),
                None,
            ),
        ],
    );
}

/// Cells: M-AUTH-1, M-DUP-1.
#[test]
fn the_same_confirmation_twice_gets_the_first_answer() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        let e = w.event(confirm("o1"));
        assert_eq!(moved(&w.deliver(&e, false)), vec![("a".into(), A, R, 2)]);
        assert_eq!(w.deliver(&e, false), Decision::Duplicate);
        assert_eq!(w.state.outcomes[&e.id].label(), "moved");
        assert_eq!(w.stock("a"), (3, 2, 0, 0, 0));
    });
}

// ---- exceptions and operator retries ------------------------------------------------

/// Cells: M-DUP-1.
#[test]
fn redelivering_an_exception_changes_nothing() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 1);
        w.register("o1", &[("a", 2)], "20");
        let e = w.event(sale("o1"));
        assert_eq!(exception_code(&w.deliver(&e, false)), "oversold");
        assert_eq!(w.deliver(&e, false), Decision::Duplicate);
    });
}

/// Cells: M-HOLD-2, M-RETRY-1, M-RETRY-2, M-DUP-1.
#[test]
fn operator_retry_after_fixing_the_cause_applies_once_and_is_final() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        let e = w.event(sale("o9"));
        w.now += HOLD.as_millis() as i64;
        assert_eq!(exception_code(&w.deliver(&e, false)), "unknown_order");
        assert_eq!(
            w.deliver(&e, true),
            Decision::StillException,
            "retry before the fix"
        );
        w.register("o9", &[("a", 2)], "20");
        let d = w.deliver(&e, true);
        let Decision::Record(r) = &d else {
            panic!("{d:?}")
        };
        assert!(r.replaces_exception);
        assert_eq!(moved(&d), vec![("a".into(), A, S, 2)]);
        assert_eq!(
            w.deliver(&e, true),
            Decision::Duplicate,
            "a final outcome is never replaced"
        );
        assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
    });
}

// ---- operator actions (exception.action) --------------------------------------------

fn act(id: &ExceptionId, action: OperatorAction) -> EventKind {
    EventKind::ExceptionAction {
        exception_id: id.clone(),
        action,
        actor: "ops-alice".into(),
        reason: "checked at the provider".into(),
        evidence: Some("re_123".into()),
    }
}

/// A sold order `o1` (2 of `a`, 5 received) whose void arrived after the capture: an open
/// `void_after_capture` exception. Returns its id.
fn void_after_capture(w: &mut World) -> ExceptionId {
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    assert_eq!(moved(&w.when(sale("o1"))), vec![("a".into(), A, S, 2)]);
    let void = w.event(voided("o1"));
    assert_eq!(
        exception_code(&w.deliver(&void, false)),
        "void_after_capture"
    );
    ExceptionId::from(void.id)
}

/// An order `o2` captured with no stock: an open `oversold` exception. Returns its id.
fn oversold(w: &mut World) -> ExceptionId {
    w.register("o2", &[("b", 1)], "20");
    let cap = w.event(sale("o2"));
    assert_eq!(exception_code(&w.deliver(&cap, false)), "oversold");
    ExceptionId::from(cap.id)
}

/// The queue update of a recorded decision.
fn queue(d: &Decision) -> Option<QueueUpdate> {
    match d {
        Decision::Record(r) => r.queue.clone(),
        other => panic!("expected a recorded outcome, got {other:?}"),
    }
}

fn is_open(w: &World, id: &ExceptionId) -> bool {
    w.state.exceptions[id].open
}

/// Cells: M-ACT-5.
#[test]
fn resolve_closes_an_open_exception_and_moves_nothing() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = oversold(&mut w);
        let d = w.when(act(&id, OperatorAction::Resolve));
        assert_eq!(noop_reason(&d), NoOpReason::ExceptionResolved);
        let q = queue(&d).expect("queue update");
        assert_eq!(
            (q.exception_id, q.resolution.as_deref(), q.retried),
            (
                id.clone(),
                Some("no-op by ops-alice: checked at the provider"),
                false
            )
        );
        assert!(!is_open(&w, &id));
        assert_eq!(w.stock("b"), (0, 0, 0, 0, 0));
    });
}

/// Cells: M-ACT-6.
#[test]
fn dismiss_closes_an_open_exception_and_moves_nothing() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = oversold(&mut w);
        let d = w.when(act(&id, OperatorAction::Dismiss));
        assert_eq!(noop_reason(&d), NoOpReason::ExceptionDismissed);
        assert!(queue(&d).and_then(|q| q.resolution).is_some());
        assert!(!is_open(&w, &id));
    });
}

/// Cells: M-ACT-7.
#[test]
fn keep_after_a_void_after_capture_is_a_recorded_noop_and_the_units_stay_sold() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        let d = w.when(act(&id, OperatorAction::Keep));
        assert_eq!(noop_reason(&d), NoOpReason::SaleKept);
        assert!(!is_open(&w, &id));
        assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
        assert_eq!(w.order_state("o1"), OrderState::Sold);
    });
}

/// Cells: M-ACT-8.
#[test]
fn release_after_a_void_after_capture_puts_the_sold_units_back() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        let d = w.when(act(&id, OperatorAction::Release));
        assert_eq!(moved(&d), vec![("a".into(), S, A, 2)]);
        assert!(queue(&d).and_then(|q| q.resolution).is_some());
        assert!(!is_open(&w, &id));
        assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
        assert_eq!(w.order_state("o1"), OrderState::Released);
    });
}

/// Cells: M-ACT-8, M-ACT-3.
#[test]
fn a_second_release_is_a_noop() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        assert_eq!(
            moved(&w.when(act(&id, OperatorAction::Release))),
            vec![("a".into(), S, A, 2)]
        );
        let d = w.when(act(&id, OperatorAction::Release));
        assert_eq!(noop_reason(&d), NoOpReason::ExceptionAlreadyResolved);
        assert_eq!(queue(&d), None);
        assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
    });
}

/// Cells: M-ACT-8.
#[test]
fn release_releases_only_what_was_not_returned() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        let ret = EventKind::ReturnReceived {
            order_ref: order_ref("o1"),
            reference: ReturnRef::parse("ret-1").unwrap(),
            lines: lines(&[("a", 1)]),
        };
        assert_eq!(moved(&w.when(ret)), vec![("a".into(), S, Ret, 1)]);
        let d = w.when(act(&id, OperatorAction::Release));
        assert_eq!(moved(&d), vec![("a".into(), S, A, 1)]);
        assert_eq!(w.stock("a"), (4, 0, 0, 1, 0));
    });
}

/// Cells: M-ACT-9.
#[test]
fn release_of_an_order_returned_in_full_is_refused() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        let ret = EventKind::ReturnReceived {
            order_ref: order_ref("o1"),
            reference: ReturnRef::parse("ret-1").unwrap(),
            lines: lines(&[("a", 2)]),
        };
        assert_eq!(moved(&w.when(ret)), vec![("a".into(), S, Ret, 2)]);
        let d = w.when(act(&id, OperatorAction::Release));
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::ReleaseOfUnsoldOrder)
        );
        assert!(is_open(&w, &id), "the row waits for another action");
        assert_eq!(w.stock("a"), (3, 0, 0, 2, 0));
    });
}

/// Cells: M-ACT-4.
#[test]
fn release_and_keep_are_refused_for_another_exception() {
    under_every_policy(|_| {
        for action in [OperatorAction::Release, OperatorAction::Keep] {
            let mut w = World::new();
            let id = oversold(&mut w);
            let d = w.when(act(&id, action));
            assert_eq!(
                noop_reason(&d),
                NoOpReason::Refused(RefusalReason::NotVoidAfterCapture),
                "{action:?}"
            );
            assert_eq!(queue(&d), None);
            assert!(is_open(&w, &id));
        }
    });
}

/// Cells: M-ACT-2.
#[test]
fn an_action_on_an_unknown_exception_is_a_recorded_noop() {
    under_every_policy(|_| {
        for action in OperatorAction::ALL {
            let mut w = World::new();
            let id = ExceptionId::parse("STOCKLEDGER_EVENTS:42").unwrap();
            let d = w.when(act(&id, action));
            assert_eq!(
                noop_reason(&d),
                NoOpReason::Refused(RefusalReason::UnknownException),
                "{action:?}"
            );
        }
    });
}

/// Cells: M-ACT-3.
#[test]
fn an_action_on_a_resolved_exception_is_a_recorded_noop() {
    under_every_policy(|_| {
        for action in OperatorAction::ALL {
            let mut w = World::new();
            let id = void_after_capture(&mut w);
            assert_eq!(
                noop_reason(&w.when(act(&id, OperatorAction::Resolve))),
                NoOpReason::ExceptionResolved
            );
            let d = w.when(act(&id, action));
            assert_eq!(
                noop_reason(&d),
                NoOpReason::ExceptionAlreadyResolved,
                "{action:?}"
            );
            assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
        }
    });
}

/// Cells: M-ACT-1.
#[test]
fn an_action_without_actor_or_reason_is_refused() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = oversold(&mut w);
        let d = w.when(EventKind::ExceptionAction {
            exception_id: id.clone(),
            action: OperatorAction::Resolve,
            actor: " ".into(),
            reason: "x".into(),
            evidence: None,
        });
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::ActionUnapproved)
        );
        assert!(is_open(&w, &id));
    });
}

/// Cells: M-ACT-10.
#[test]
fn retry_of_an_events_own_open_exception_is_accepted_and_counted() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = oversold(&mut w);
        let d = w.when(act(&id, OperatorAction::Retry));
        assert_eq!(noop_reason(&d), NoOpReason::RetryRequested);
        let q = queue(&d).expect("queue update");
        assert_eq!((q.resolution, q.retried), (None, true));
        assert!(is_open(&w, &id), "the store decides the event again");
    });
}

/// Cells: M-ACT-11, M-ACT-5.
#[test]
fn retry_of_a_row_the_ledger_never_decided_is_refused() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = ExceptionId::parse("STOCKLEDGER_EVENTS:7").unwrap();
        w.state.exceptions.insert(
            id.clone(),
            QueueEntry {
                reason: "undecodable".into(),
                open: true,
                order_ref: None,
            },
        );
        let d = w.when(act(&id, OperatorAction::Retry));
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::NotRetryable)
        );
        // Resolving such a row works like any other.
        let d = w.when(act(&id, OperatorAction::Resolve));
        assert_eq!(noop_reason(&d), NoOpReason::ExceptionResolved);
    });
}

/// Cells: M-DUP-1.
#[test]
fn the_same_action_event_twice_is_a_duplicate() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = void_after_capture(&mut w);
        let e = w.event(act(&id, OperatorAction::Release));
        assert_eq!(moved(&w.deliver(&e, false)), vec![("a".into(), S, A, 2)]);
        assert_eq!(w.deliver(&e, false), Decision::Duplicate);
        assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
    });
}

/// Cells: M-RETRY-2, M-ACT-3.
#[test]
fn a_retry_that_succeeds_closes_the_row() {
    under_every_policy(|_| {
        let mut w = World::new();
        let id = oversold(&mut w);
        w.receive("b", 1);
        let cap = w
            .state
            .outcomes
            .keys()
            .copied()
            .find(|e| ExceptionId::from(*e) == id)
            .unwrap();
        let original = domain::Event {
            id: cap,
            provider: provider(),
            recorded_at: Timestamp(w.now),
            kind: sale("o2"),
        };
        assert_eq!(
            moved(&w.deliver(&original, true)),
            vec![("b".into(), A, S, 1)]
        );
        assert!(!is_open(&w, &id));
        assert_eq!(
            noop_reason(&w.when(act(&id, OperatorAction::Resolve))),
            NoOpReason::ExceptionAlreadyResolved
        );
    });
}

/// A withdrawal (`reservation.expired`) that overtook the authorization it names waits for
/// it, then releases what it reserved; one whose authorization never comes is a no-op
/// after `RESERVATION_AWAIT_MAX`.
/// Cells: M-EXP-1.
#[test]
fn an_expiry_that_overtakes_its_authorization_waits_for_it() {
    use domain::{
        Decision, Delivery, Event, EventId, EventKind, OrderRef, RESERVATION_AWAIT_MAX, State,
        Timestamp,
    };
    let state = State::default();
    let expiry = Event {
        id: EventId::from_dedupe_key("withdrawal"),
        provider: provider(),
        recorded_at: Timestamp(1_000),
        kind: EventKind::ReservationExpired {
            order_ref: OrderRef::parse("o-1").unwrap(),
            reservation: EventId::from_dedupe_key("authorization"),
        },
    };
    let delivery = Delivery {
        event: expiry,
        operator_retry: false,
    };
    let ctx = |now| domain::Context {
        now: Timestamp(now),
        unknown_order_hold: std::time::Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    };
    let until = Timestamp(1_000).plus(RESERVATION_AWAIT_MAX);
    assert_eq!(
        domain::decide(&state, &delivery, &ctx(2_000)),
        Decision::Defer { until }
    );
    assert!(matches!(
        domain::decide(&state, &delivery, &ctx(until.0)),
        Decision::Record(_)
    ));
}

// ---- cells without a case above ------------------------------------------------------

/// Cells: M-ORD-1.
#[test]
fn registering_a_new_order_creates_it_registered() {
    under_every_policy(|_| {
        let mut w = World::new();
        let d = w.when(EventKind::OrderRegistered {
            spec: spec("o1", &[("a", 2)], "20"),
            payment_refs: vec![],
        });
        assert_eq!(noop_reason(&d), NoOpReason::OrderRegistered);
        assert_eq!(w.order_state("o1"), OrderState::Registered);
        assert_eq!(w.stock("a"), (0, 0, 0, 0, 0));
    });
}

fn stripe() -> Provider {
    Provider::parse("stripe").unwrap()
}
fn pi(s: &str) -> PaymentRef {
    PaymentRef::parse(s).unwrap()
}
fn attach(order: &'static str, payment_ref: &str) -> EventKind {
    EventKind::PaymentRefAttached {
        order_ref: order_ref(order),
        provider: stripe(),
        payment_ref: pi(payment_ref),
    }
}

/// Cells: M-ORD-5.
#[test]
fn registering_with_a_payment_ref_of_another_order_is_refused() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.register("o1", &[("a", 2)], "20");
        assert_eq!(
            noop_reason(&w.when(attach("o1", "pi_1"))),
            NoOpReason::PaymentRefAttached
        );
        let d = w.when(EventKind::OrderRegistered {
            spec: spec("o2", &[("a", 1)], "10"),
            payment_refs: vec![(stripe(), pi("pi_1"))],
        });
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::PaymentRefInUse)
        );
        assert!(!w.state.orders.contains_key(&order_ref("o2")));
    });
}

/// Cells: M-ATT-1.
#[test]
fn attaching_to_an_unknown_order_is_refused() {
    check(
        vec![],
        attach("o1", "pi_1"),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::UnknownOrder)),
        (0, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-ATT-2.
#[test]
fn attaching_the_same_payment_ref_again_is_a_noop() {
    check(
        with(stocked(5), vec![Event(attach("o1", "pi_1"))]),
        attach("o1", "pi_1"),
        Expect::NoOp(NoOpReason::PaymentRefUnchanged),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-ATT-3.
#[test]
fn attaching_a_payment_ref_of_another_order_is_refused() {
    let given = with(
        stocked(5),
        vec![
            Register("o2", &[("a", 1)], "10"),
            Event(attach("o1", "pi_1")),
        ],
    );
    check(
        given,
        attach("o2", "pi_1"),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::PaymentRefInUse)),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-NOTE-1.
#[test]
fn noted_is_recorded_without_stock_effect() {
    let when = EventKind::PaymentNoted {
        payment: pay("o1", Some("20")),
        status: "Pending".into(),
    };
    check(
        with(stocked(5), vec![Reserve("o1")]),
        when,
        Expect::NoOp(NoOpReason::ProviderStatusRecorded),
        (3, 2, 0, 0, 0),
        None,
    );
}

/// Cells: M-RET-1.
#[test]
fn return_for_an_unknown_order_is_refused() {
    check(
        vec![Receive("a", 5)],
        returned("r1", 1),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::UnknownOrder)),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-RET-2.
#[test]
fn return_under_a_used_reference_is_refused() {
    let given = with(stocked(5), vec![Sell("o1"), Event(returned("r1", 1))]);
    check(
        given,
        returned("r1", 1),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::ReturnReferenceInUse)),
        (3, 0, 1, 1, 0),
        None,
    );
}

/// Cells: M-INS-1.
#[test]
fn inspection_of_an_unknown_return_is_refused() {
    check(
        with(stocked(5), vec![Sell("o1")]),
        inspected("r9", InspectionOutcome::Restock, 1),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::UnknownReturn)),
        (3, 0, 2, 0, 0),
        None,
    );
}

/// Cells: M-COR-2.
#[test]
fn correction_of_zero_is_refused() {
    check(
        vec![Receive("a", 5)],
        corrected(0, "lee"),
        Expect::NoOp(NoOpReason::Refused(RefusalReason::InvalidQuantity)),
        (5, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-ACT-9.
#[test]
fn release_of_an_order_that_is_not_sold_is_refused() {
    under_every_policy(|_| {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        let id = ExceptionId::parse("STOCKLEDGER_EVENTS:9").unwrap();
        w.state.exceptions.insert(
            id.clone(),
            QueueEntry {
                reason: "void_after_capture".into(),
                open: true,
                order_ref: Some(order_ref("o1")),
            },
        );
        let d = w.when(act(&id, OperatorAction::Release));
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::ReleaseOfUnsoldOrder)
        );
        assert!(is_open(&w, &id));
        assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
    });
}

/// Cells: M-DUP-2.
#[test]
fn a_provider_copy_with_other_content_is_a_conflicting_duplicate() {
    let first = EventId::from_dedupe_key("stripe:evt_1");
    let evidence = ConflictEvidence {
        event_id: first,
        first_digest: ContentDigest::from_bytes([1; 32]),
        second_digest: ContentDigest::from_bytes([2; 32]),
    };
    let r = conflicting_duplicate(evidence);
    assert_eq!(
        r.outcome,
        Outcome::NoOp {
            reason: NoOpReason::ConflictingDuplicate(evidence)
        }
    );
    assert!(
        r.balances.is_empty() && r.order.is_none(),
        "nothing else changes"
    );
    // Recorded under an id of its own, the same for the same second content.
    let own = conflict_id(first, evidence.second_digest);
    assert_ne!(own, first);
    assert_eq!(own, conflict_id(first, evidence.second_digest));
}

// ---- stock policy -------------------------------------------------------------------

fn change_to(policy: &str) -> EventKind {
    EventKind::PolicyChanged {
        policy: policy.parse().unwrap(),
        actor: "ops-alice".into(),
        reason: "fewer blocked units".into(),
    }
}

/// The policy each recorded decision says it was decided under.
fn applied(d: &Decision) -> StockPolicy {
    match d {
        Decision::Record(r) => r.policy_applied,
        other => panic!("expected a recorded outcome, got {other:?}"),
    }
}

/// Cells: M-POL-2, M-AUTH-1.
#[test]
fn a_confirmation_reserves_under_every_policy() {
    check(
        stocked(5),
        confirm("o1"),
        Expect::Moved(&[("a", A, R, 2)]),
        (3, 2, 0, 0, 0),
        None,
    );
    check(
        stocked(1),
        confirm("o1"),
        Expect::NoOp(NoOpReason::Declined(DeclineReason::InsufficientInventory)),
        (1, 0, 0, 0, 0),
        None,
    );
}

/// Cells: M-POL-4, M-POL-5, M-ORD-4, M-AUTH-7.
#[test]
fn under_deduct_on_settlement_the_capture_waits_for_the_settlement() {
    let mut w = World::new();
    w.state.policy = PolicySet::uniform(StockPolicy::DeductOnSettlement);
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    assert_eq!(
        noop_reason(&w.when(captured("o1"))),
        NoOpReason::PolicyDefersStock
    );
    assert!(w.state.orders[&order_ref("o1")].awaiting_settlement);
    // A second provider event meaning "captured" does not sell either.
    assert_eq!(
        noop_reason(&w.when(captured("o1"))),
        NoOpReason::PolicyDefersStock
    );
    // An authorization arriving after the capture is stale, even as a confirmation.
    for late in [notify("o1"), confirm("o1")] {
        assert_eq!(noop_reason(&w.when(late)), NoOpReason::StaleAuthorization);
    }
    // The order can no longer be changed: its payment is taken.
    let change = EventKind::OrderRegistered {
        spec: spec("o1", &[("a", 3)], "30"),
        payment_refs: vec![],
    };
    assert_eq!(
        noop_reason(&w.when(change)),
        NoOpReason::Refused(RefusalReason::OrderChangedAfterStockMoved)
    );
    assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
    assert_eq!(moved(&w.when(settled("o1"))), vec![("a".into(), A, S, 2)]);
    let order = &w.state.orders[&order_ref("o1")];
    assert!(!order.awaiting_settlement);
    assert_eq!(order.state, OrderState::Sold);
    assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
}

/// Cells: M-POL-5.
#[test]
fn under_deduct_on_settlement_a_reserved_order_settles_from_reserved() {
    check_each(
        with(stocked(5), vec![Reserve("o1"), Event(captured("o1"))]),
        settled("o1"),
        [
            Then(
                Expect::NoOp(NoOpReason::SettlementRecorded),
                (3, 0, 2, 0, 0),
                None,
            ),
            Then(
                Expect::NoOp(NoOpReason::SettlementRecorded),
                (3, 0, 2, 0, 0),
                None,
            ),
            Then(Expect::Moved(&[("a", R, S, 2)]), (3, 0, 2, 0, 0), None),
        ],
    );
}

/// Cells: M-POL-6.
#[test]
fn under_deduct_on_settlement_a_settlement_without_stock_is_oversold() {
    let given = vec![
        Receive("a", 2),
        Register("o1", &[("a", 2)], "20"),
        Register("o2", &[("a", 2)], "20"),
        Sell("o2"),
        // Oversold under the other policies; waits for the settlement under this one.
        Event(captured("o1")),
    ];
    check_each(
        given,
        settled("o1"),
        [
            Then(
                Expect::NoOp(NoOpReason::SettlementRecorded),
                (0, 0, 2, 0, 0),
                None,
            ),
            Then(
                Expect::NoOp(NoOpReason::SettlementRecorded),
                (0, 0, 2, 0, 0),
                None,
            ),
            Then(Expect::Exception("oversold"), (0, 0, 2, 0, 0), None),
        ],
    );
}

/// Cells: M-POL-7, M-POL-10.
#[test]
fn a_settlement_after_the_capture_sold_is_already_sold() {
    let mut w = World::new();
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    w.when(change_to("deduct_on_capture"));
    assert_eq!(moved(&w.when(captured("o1"))), vec![("a".into(), A, S, 2)]);
    w.when(change_to("deduct_on_settlement"));
    let d = w.when(settled("o1"));
    assert_eq!(noop_reason(&d), NoOpReason::AlreadySold);
    assert_eq!(applied(&d), StockPolicy::DeductOnSettlement);
    assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
}

/// Cells: M-POL-8, M-POL-10.
#[test]
fn a_capture_decided_under_deduct_on_settlement_is_sold_by_its_settlement_under_any_policy() {
    for later in ["reserve_on_authorization", "deduct_on_capture"] {
        let mut w = World::new();
        w.receive("a", 5);
        w.register("o1", &[("a", 2)], "20");
        w.when(change_to("deduct_on_settlement"));
        assert_eq!(
            noop_reason(&w.when(captured("o1"))),
            NoOpReason::PolicyDefersStock
        );
        w.when(change_to(later));
        // Another capture event does not sell it: its sale waits for the settlement.
        assert_eq!(
            noop_reason(&w.when(captured("o1"))),
            NoOpReason::PolicyDefersStock
        );
        let d = w.when(settled("o1"));
        assert_eq!(moved(&d), vec![("a".into(), A, S, 2)], "{later}");
        assert_eq!(w.stock("a"), (3, 0, 2, 0, 0));
    }
}

/// Cells: M-POL-4, M-VOID-1, M-VOID-2.
#[test]
fn a_void_of_a_capture_waiting_for_its_settlement_sells_nothing() {
    let mut w = World::new();
    w.state.policy = PolicySet::uniform(StockPolicy::DeductOnSettlement);
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    w.register("o2", &[("a", 1)], "20");
    w.when(captured("o1"));
    assert_eq!(
        noop_reason(&w.when(voided("o1"))),
        NoOpReason::NothingReserved
    );
    assert!(!w.state.orders[&order_ref("o1")].awaiting_settlement);
    // A reserved one is released, as under any policy.
    assert_eq!(moved(&w.when(confirm("o2"))), vec![("a".into(), A, R, 1)]);
    w.when(captured("o2"));
    assert_eq!(moved(&w.when(voided("o2"))), vec![("a".into(), R, A, 1)]);
    assert_eq!(w.stock("a"), (5, 0, 0, 0, 0));
}

/// Cells: M-POL-9.
#[test]
fn a_policy_change_needs_an_actor_and_a_reason_and_a_change() {
    under_every_policy(|p| {
        let mut w = World::new();
        let d = w.when(EventKind::PolicyChanged {
            policy: "deduct_on_capture".parse().unwrap(),
            actor: " ".into(),
            reason: "why".into(),
        });
        assert_eq!(
            noop_reason(&d),
            NoOpReason::Refused(RefusalReason::ActionUnapproved)
        );
        assert_eq!(w.state.policy, PolicySet::uniform(p));
        let d = w.when(change_to(p.code()));
        assert_eq!(noop_reason(&d), NoOpReason::PolicyUnchanged);
        let Decision::Record(r) = d else {
            unreachable!()
        };
        assert_eq!(r.policy, None);
    });
}

/// A stream with a `policy.changed` in the middle: the same authorization before and after
/// behaves per the policy in force when it is applied, and each outcome records it.
/// Cells: M-POL-10, M-POL-1, M-AUTH-1, M-CAP-1, M-CAP-2.
#[test]
fn a_policy_change_applies_from_the_next_event_on() {
    let mut w = World::new();
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    w.register("o2", &[("a", 2)], "20");
    let d = w.when(notify("o1"));
    assert_eq!(moved(&d), vec![("a".into(), A, R, 2)]);
    assert_eq!(applied(&d), StockPolicy::ReserveOnAuthorization);
    let d = w.when(change_to("deduct_on_capture"));
    assert_eq!(noop_reason(&d), NoOpReason::PolicyChanged);
    // The change itself is decided under the policy it replaces.
    assert_eq!(applied(&d), StockPolicy::ReserveOnAuthorization);
    assert_eq!(
        w.state.policy,
        PolicySet::uniform(StockPolicy::DeductOnCapture)
    );
    let d = w.when(notify("o2"));
    assert_eq!(noop_reason(&d), NoOpReason::PolicyDefersStock);
    assert_eq!(applied(&d), StockPolicy::DeductOnCapture);
    // The reservation made before the change is still sold from reserved; the other
    // order from available.
    assert_eq!(moved(&w.when(captured("o1"))), vec![("a".into(), R, S, 2)]);
    assert_eq!(moved(&w.when(captured("o2"))), vec![("a".into(), A, S, 2)]);
    assert_eq!(w.stock("a"), (1, 0, 4, 0, 0));
}

/// Cells: M-POL-10, M-POL-1, M-AUTH-1.
#[test]
fn a_policy_per_provider_applies_to_that_providers_events_only() {
    let mut w = World::new();
    w.receive("a", 5);
    w.register("o1", &[("a", 2)], "20");
    w.register("o2", &[("a", 2)], "20");
    w.when(change_to("stripe=deduct_on_capture"));
    // The tests' events come from stripe.
    let d = w.when(notify("o1"));
    assert_eq!(noop_reason(&d), NoOpReason::PolicyDefersStock);
    assert_eq!(applied(&d), StockPolicy::DeductOnCapture);
    let mut adyen = w.event(notify("o2"));
    adyen.provider = Provider::parse("adyen").unwrap();
    let d = w.deliver(&adyen, false);
    assert_eq!(moved(&d), vec![("a".into(), A, R, 2)]);
    assert_eq!(applied(&d), StockPolicy::ReserveOnAuthorization);
}

// ---- the doc and the cases agree ------------------------------------------------------

/// Cells decided outside `src/matrix.rs` (the store, with `domain::conflict`).
const DECIDED_ELSEWHERE: [&str; 1] = ["M-DUP-2"];

/// Every cell id (`M-`, capital letters, `-`, digits) in `text`, in order.
fn cell_ids(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let mut ids = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'M' && b[i + 1] == b'-' && (i == 0 || !word(b[i - 1])) {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_uppercase() {
                j += 1;
            }
            if j > i + 2 && j < b.len() && b[j] == b'-' {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                if k > j + 1 && !(k < b.len() && b[k].is_ascii_alphanumeric()) {
                    ids.push(text[i..k].to_owned());
                    i = k;
                    continue;
                }
            }
        }
        i += 1;
    }
    ids
}

#[test]
fn every_cell_of_the_doc_has_a_case() {
    use std::collections::BTreeSet;
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/trigger-matrix.md"
    ))
    .unwrap();
    let this = include_str!("matrix.rs");
    let src = include_str!("../src/matrix.rs");

    // The doc's cells: the first column of every table row that starts with an id.
    let mut cells = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `M-")) {
        let first = line.split('|').nth(1).unwrap().trim().trim_matches('`');
        assert_eq!(
            cell_ids(first),
            vec![first.to_owned()],
            "not a cell id: {line}"
        );
        assert!(cells.insert(first.to_owned()), "cell {first} listed twice");
    }
    assert!(
        cells.len() > 50,
        "only {} cells found in the doc",
        cells.len()
    );

    // Every cell has a case: an id named on a `/// Cells:` line of this file.
    let covered: BTreeSet<String> = this
        .lines()
        .filter(|l| l.trim_start().starts_with("/// Cells:"))
        .flat_map(cell_ids)
        .collect();
    let without_case: Vec<_> = cells.difference(&covered).collect();
    assert!(
        without_case.is_empty(),
        "cells without a case: {without_case:?}"
    );

    // Every id the tests or the code cite is a cell of the doc.
    for (file, text) in [("tests/matrix.rs", this), ("src/matrix.rs", src)] {
        let unknown: BTreeSet<String> = cell_ids(text)
            .into_iter()
            .filter(|id| !cells.contains(id))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} cites cells the doc lacks: {unknown:?}"
        );
    }

    // Every cell the matrix decides is named by a branch of `src/matrix.rs`.
    let in_code: BTreeSet<String> = cell_ids(src).into_iter().collect();
    let unbranched: Vec<_> = cells
        .iter()
        .filter(|c| !in_code.contains(*c) && !DECIDED_ELSEWHERE.contains(&c.as_str()))
        .collect();
    assert!(
        unbranched.is_empty(),
        "cells no branch names: {unbranched:?}"
    );
}
