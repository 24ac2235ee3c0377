//! The matching engine: one pure function, [`run`], from a day's ledger facts, the
//! providers' report lines, the settings, the items earlier runs left deferred and the
//! run's "now" to every item of the day, each in exactly one bucket of its checkpoint.
//!
//! Three checkpoints (`docs/operations.md`, "Reconciliation"):
//!
//! - **payment → stock**: every payment event of the day the trigger matrix lets move stock
//!   (`payment.authorized`, `payment.captured`, `payment.voided`, `reservation.expired`)
//!   moved it the way its kind says, or has its recorded no-op or exception;
//! - **stock → payment**: every movement of the day traces to a recorded event: a payment
//!   event, a merchant write or an operator action;
//! - **provider → ledger**: every line of each provider report has its contract event with
//!   the same amount and currency (lines of one payment and kind summed: one capture settled
//!   in several lines, partial captures, partial refunds); a capture the report does not
//!   show yet is deferred for the provider's settlement lag.
//!
//! Matching is exact on references and amounts unless [`Settings::tolerance`] says
//! otherwise for a provider. Nothing here reads a clock or a file.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, Weekday};

use crate::reports::{LineKind, ReportLine, ReportProvider};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The event kinds whose movements count as "traces to a payment event".
const PAYMENT_KINDS: &[&str] = &[
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "payment.noted",
    "payment.flagged",
    "reservation.expired",
    "payment.settled",
    "payment.refunded",
    "chargeback.opened",
    "chargeback.closed",
];
/// The event kinds that are a merchant's writes.
const MERCHANT_KINDS: &[&str] = &[
    "order.registered",
    "order.payment_ref_attached",
    "return.received",
    "return.inspected",
    "stock.received",
];
/// The event kinds that are an operator's actions.
const OPERATOR_KINDS: &[&str] = &["stock.corrected", "exception.action"];

/// Which comparison an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpoint {
    PaymentToStock,
    StockToPayment,
    ProviderToLedger,
}

impl Checkpoint {
    pub const ALL: [Checkpoint; 3] = [
        Checkpoint::PaymentToStock,
        Checkpoint::StockToPayment,
        Checkpoint::ProviderToLedger,
    ];

    /// The wire name (`payment_to_stock`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Checkpoint::PaymentToStock => "payment_to_stock",
            Checkpoint::StockToPayment => "stock_to_payment",
            Checkpoint::ProviderToLedger => "provider_to_ledger",
        }
    }

    /// The checkpoint named `name`.
    pub fn parse(name: &str) -> Option<Checkpoint> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// What the checkpoint compares, in one sentence.
    pub fn compares(self) -> &'static str {
        match self {
            Checkpoint::PaymentToStock => {
                "every payment event of the day that moves stock moved it exactly once, or has its recorded no-op or exception"
            }
            Checkpoint::StockToPayment => {
                "every stock movement of the day traces to a payment event, a merchant write or an operator action"
            }
            Checkpoint::ProviderToLedger => {
                "every line of each provider report has its contract event with the same amount and currency, and every capture appears in its report within the settlement lag"
            }
        }
    }
}

/// Where an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Matched,
    Unmatched,
    Deferred,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Matched, Bucket::Unmatched, Bucket::Deferred];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Matched => "matched",
            Bucket::Unmatched => "unmatched",
            Bucket::Deferred => "deferred",
        }
    }

    pub fn parse(name: &str) -> Option<Bucket> {
        Self::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

/// Why an item is unmatched or deferred. A matched item has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Unmatched: the report shows it, the ledger never received the provider's event.
    MissingWebhook,
    /// Unmatched: the report's amount differs from the ledger's beyond the tolerance.
    AmountMismatch,
    /// Unmatched: the report's currency differs from the ledger's.
    CurrencyMismatch,
    /// Unmatched: the report lists the same line more than once.
    DuplicateLine,
    /// Unmatched: a payment event that should have moved stock did not (or money was taken
    /// for an order whose reservation was released).
    NoStockMovement,
    /// Unmatched: stock moved under an event the ledger has no record of.
    MovementWithoutPayment,
    /// Unmatched: a capture the provider's report still does not show after the
    /// settlement lag.
    MissingFromReport,
    /// Deferred: after the day's cutoff; reconciled with the next day.
    AfterCutoff,
    /// Deferred: a capture not in the report yet, within the provider's settlement lag.
    AwaitingSettlement,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::MissingWebhook,
        Reason::AmountMismatch,
        Reason::CurrencyMismatch,
        Reason::DuplicateLine,
        Reason::NoStockMovement,
        Reason::MovementWithoutPayment,
        Reason::MissingFromReport,
        Reason::AfterCutoff,
        Reason::AwaitingSettlement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingWebhook => "missing_webhook",
            Reason::AmountMismatch => "amount_mismatch",
            Reason::CurrencyMismatch => "currency_mismatch",
            Reason::DuplicateLine => "duplicate_line",
            Reason::NoStockMovement => "no_stock_movement",
            Reason::MovementWithoutPayment => "movement_without_payment",
            Reason::MissingFromReport => "missing_from_report",
            Reason::AfterCutoff => "after_cutoff",
            Reason::AwaitingSettlement => "awaiting_settlement",
        }
    }

    pub fn parse(name: &str) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// One stock movement (a ledger entry) of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub sku: String,
    pub location: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
}

/// One processed event as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFact {
    pub event_id: String,
    /// The contract kind (`payment.captured`, …).
    pub kind: String,
    /// The envelope's `source.provider` (`stripe`, `adyen`, `portone`, `ipint`, `merchant`,
    /// `stockledger`, …).
    pub provider: String,
    pub order_ref: Option<String>,
    /// The provider's payment reference when the event names its order by one.
    pub payment_ref: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    /// The event time: when the provider says it happened (`occurred_at`), Unix ms.
    pub at_ms: i64,
    /// `moved`, `noop` or `exception`.
    pub outcome: String,
    pub reason: Option<String>,
    /// The entries written under the event.
    pub moves: Vec<Move>,
}

/// A movement whose event the ledger has no processed row for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanMove {
    pub event_id: String,
    pub kind: String,
    pub at_ms: i64,
    pub moves: Vec<Move>,
}

/// What the ledger knows about a day (and a margin around it, for the tolerance window).
#[derive(Debug, Clone, Default)]
pub struct DayFacts {
    pub events: Vec<EventFact>,
    pub orphans: Vec<OrphanMove>,
    /// `(provider, payment_ref) → order_ref`: the payment references attached to orders.
    pub payment_refs: HashMap<(String, String), String>,
}

/// A provider's matching tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tolerance {
    /// The largest difference between the report's and the ledger's amounts still matched.
    pub amount: Decimal,
    /// How far outside the day a report line's event may lie and still be found, in ms.
    pub window_ms: i64,
}

/// How a run matches.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The day's cutoff, in ms after midnight UTC (`1..=DAY_MS`; `DAY_MS` is end of day):
    /// day D is `[D + cutoff − 1 day, D + cutoff)`.
    pub cutoff_ms: i64,
    /// Settlement lag in business days (Monday to Friday) per provider.
    pub lag_business_days: BTreeMap<ReportProvider, u32>,
    /// Matching tolerance per provider; exact when absent.
    pub tolerance: BTreeMap<ReportProvider, Tolerance>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            cutoff_ms: DAY_MS,
            lag_business_days: BTreeMap::new(),
            tolerance: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// The instants `[start, end)` of day `date` under this cutoff.
    pub fn window(&self, date: Date) -> (i64, i64) {
        let end = midnight_ms(date) + self.cutoff_ms.clamp(1, DAY_MS);
        (end - DAY_MS, end)
    }

    fn tolerance(&self, provider: ReportProvider) -> Tolerance {
        self.tolerance.get(&provider).copied().unwrap_or_default()
    }

    /// The widest tolerance window, for the caller loading facts.
    pub fn window_margin_ms(&self) -> i64 {
        self.tolerance
            .values()
            .map(|t| t.window_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }
}

/// A report line, as an item keeps it (and as a later run reads it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRef {
    pub provider: String,
    pub line: usize,
    pub payment_ref: String,
    pub order_ref: Option<String>,
    pub kind: String,
    pub amount: Decimal,
    pub currency: String,
    pub at_ms: i64,
    pub line_id: Option<String>,
}

impl LineRef {
    /// The item's copy of a report line.
    pub fn of(l: &ReportLine) -> LineRef {
        LineRef {
            provider: provider_name(l.provider).to_owned(),
            line: l.line,
            payment_ref: l.payment_ref.clone(),
            order_ref: l.order_ref.clone(),
            kind: line_kind_name(l.kind).to_owned(),
            amount: l.amount,
            currency: l.currency.clone(),
            at_ms: l.at_ms,
            line_id: l.line_id.clone(),
        }
    }
}

/// One reconciled thing: a payment event, a movement, a report line, or a capture the
/// report lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stable across runs: the same thing has the same key every time it is reconciled.
    pub key: String,
    pub checkpoint: Checkpoint,
    pub bucket: Bucket,
    pub reason: Option<Reason>,
    /// What to do about it, one sentence.
    pub action: String,
    pub provider: Option<String>,
    pub payment_ref: Option<String>,
    pub order_ref: Option<String>,
    /// The ledger event (for a report line: the first matching event).
    pub event_id: Option<String>,
    /// The event kind, or for a report line `line:<kind>`.
    pub kind: String,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    /// The event time, Unix ms.
    pub event_at_ms: i64,
    /// The day this run reconciles (`YYYY-MM-DD`).
    pub recon_date: String,
    /// The day the item was first reconciled (earlier than `recon_date` for a carried
    /// deferral).
    pub origin_date: String,
    /// For a deferred item: the day it is expected to match by.
    pub expected_by: Option<String>,
    /// Whole days from the event time to the run's "now".
    pub age_days: i64,
    /// The report line, for a provider → ledger item about a line.
    pub line: Option<LineRef>,
    /// The other side: the events a line matched, or the line ids an event matched.
    pub matched_with: Vec<String>,
    /// What was compared, for people.
    pub note: String,
}

/// Counts of one checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub matched: usize,
    pub unmatched: usize,
    pub deferred: usize,
}

impl Counts {
    fn add(&mut self, b: Bucket) {
        match b {
            Bucket::Matched => self.matched += 1,
            Bucket::Unmatched => self.unmatched += 1,
            Bucket::Deferred => self.deferred += 1,
        }
    }
}

/// The summary of a run: counts per checkpoint and bucket, pass/fail per checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub date: String,
    pub passed: bool,
    pub total: Counts,
    pub checkpoints: BTreeMap<Checkpoint, CheckpointSummary>,
}

/// One checkpoint's line of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    pub passed: bool,
    pub compares: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub summary: Summary,
    pub items: Vec<Item>,
}

/// What one run reconciles.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    pub date: Date,
    pub facts: &'a DayFacts,
    pub lines: &'a [ReportLine],
    /// Items earlier runs (of earlier dates) left deferred and no run settled since.
    pub carried: &'a [Item],
    pub now_ms: i64,
    pub settings: &'a Settings,
}

/// Reconciles one day. Deterministic: the same input gives the same items in the same
/// order.
pub fn run(input: RunInput<'_>) -> RunResult {
    let date = date_str(input.date);
    let (start, end) = input.settings.window(input.date);
    let ctx = Ctx {
        date: &date,
        now_ms: input.now_ms,
        refs: &input.facts.payment_refs,
    };
    let mut items = Vec::new();
    let in_day: Vec<&EventFact> = input
        .facts
        .events
        .iter()
        .filter(|e| e.at_ms >= start && e.at_ms < end)
        .collect();
    payment_to_stock(&ctx, &in_day, &mut items);
    stock_to_payment(&ctx, &in_day, &input.facts.orphans, start, end, &mut items);
    provider_to_ledger(&ctx, &input, start, end, &mut items);
    items.sort_by(|a, b| (a.checkpoint, &a.key).cmp(&(b.checkpoint, &b.key)));
    let summary = summarize(&date, &items);
    RunResult { summary, items }
}

/// Counts and pass/fail of a list of items.
pub fn summarize(date: &str, items: &[Item]) -> Summary {
    let mut checkpoints: BTreeMap<Checkpoint, CheckpointSummary> = Checkpoint::ALL
        .into_iter()
        .map(|c| {
            (
                c,
                CheckpointSummary {
                    passed: true,
                    compares: c.compares().to_owned(),
                    counts: Counts::default(),
                },
            )
        })
        .collect();
    let mut total = Counts::default();
    for i in items {
        total.add(i.bucket);
        if let Some(c) = checkpoints.get_mut(&i.checkpoint) {
            c.counts.add(i.bucket);
            if i.bucket == Bucket::Unmatched {
                c.passed = false;
            }
        }
    }
    Summary {
        date: date.to_owned(),
        passed: total.unmatched == 0,
        total,
        checkpoints,
    }
}

struct Ctx<'a> {
    date: &'a str,
    now_ms: i64,
    refs: &'a HashMap<(String, String), String>,
}

impl Ctx<'_> {
    fn age(&self, at_ms: i64) -> i64 {
        (self.now_ms - at_ms).max(0) / DAY_MS
    }

    /// The matching key of a payment: its order when known, else its payment reference.
    fn key(&self, provider: &str, order_ref: Option<&str>, payment_ref: Option<&str>) -> String {
        if let Some(o) = order_ref {
            return format!("order:{o}");
        }
        if let Some(p) = payment_ref {
            if let Some(o) = self.refs.get(&(provider.to_owned(), p.to_owned())) {
                return format!("order:{o}");
            }
            return format!("pay:{p}");
        }
        "none".to_owned()
    }

    fn item(&self, key: String, checkpoint: Checkpoint, kind: &str, at_ms: i64) -> Item {
        Item {
            key,
            checkpoint,
            bucket: Bucket::Matched,
            reason: None,
            action: String::new(),
            provider: None,
            payment_ref: None,
            order_ref: None,
            event_id: None,
            kind: kind.to_owned(),
            amount: None,
            currency: None,
            event_at_ms: at_ms,
            recon_date: self.date.to_owned(),
            origin_date: self.date.to_owned(),
            expected_by: None,
            age_days: self.age(at_ms),
            line: None,
            matched_with: Vec::new(),
            note: String::new(),
        }
    }

    fn event_item(&self, e: &EventFact, checkpoint: Checkpoint) -> Item {
        let mut i = self.item(
            format!("{}:{}", checkpoint.as_str(), e.event_id),
            checkpoint,
            &e.kind,
            e.at_ms,
        );
        i.provider = Some(e.provider.clone());
        i.payment_ref = e.payment_ref.clone();
        i.order_ref = e.order_ref.clone();
        i.event_id = Some(e.event_id.clone());
        i.amount = e.amount;
        i.currency = e.currency.clone();
        i
    }
}

/// What a stock-moving payment event's entries must do: `(from, to)`, `None` for "any".
fn expected_move(kind: &str) -> Option<(Option<&'static str>, &'static str)> {
    match kind {
        "payment.authorized" => Some((Some("available"), "reserved")),
        "payment.captured" => Some((None, "sold")),
        "payment.voided" | "reservation.expired" => Some((Some("reserved"), "available")),
        _ => None,
    }
}

fn payment_to_stock(ctx: &Ctx<'_>, events: &[&EventFact], items: &mut Vec<Item>) {
    for e in events {
        let Some((from, to)) = expected_move(&e.kind) else {
            continue;
        };
        let mut i = ctx.event_item(e, Checkpoint::PaymentToStock);
        match e.outcome.as_str() {
            "moved" => {
                let right = !e.moves.is_empty()
                    && e.moves
                        .iter()
                        .all(|m| m.to == to && from.is_none_or(|f| m.from == f));
                if right {
                    i.note = format!("{} moved {} line(s) to {to}", e.kind, e.moves.len());
                } else {
                    i.bucket = Bucket::Unmatched;
                    i.reason = Some(Reason::NoStockMovement);
                    i.note = format!(
                        "{} is recorded as moved but its entries do not move stock to {to}",
                        e.kind
                    );
                    i.action = action(Reason::NoStockMovement, ctx.date, None);
                }
            }
            outcome => {
                i.note = format!(
                    "recorded {outcome}{}",
                    e.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
        items.push(i);
    }
}

fn stock_to_payment(
    ctx: &Ctx<'_>,
    events: &[&EventFact],
    orphans: &[OrphanMove],
    start: i64,
    end: i64,
    items: &mut Vec<Item>,
) {
    for e in events.iter().filter(|e| !e.moves.is_empty()) {
        let mut i = ctx.event_item(e, Checkpoint::StockToPayment);
        let by = if PAYMENT_KINDS.contains(&e.kind.as_str()) {
            Some("a payment event")
        } else if MERCHANT_KINDS.contains(&e.kind.as_str()) {
            Some("a merchant write")
        } else if OPERATOR_KINDS.contains(&e.kind.as_str()) {
            Some("an operator action")
        } else {
            None
        };
        match by {
            Some(by) => {
                i.note = format!("{} movement(s) traced to {by} ({})", e.moves.len(), e.kind);
            }
            None => {
                i.bucket = Bucket::Unmatched;
                i.reason = Some(Reason::MovementWithoutPayment);
                i.note = format!("movements under an event of kind {}", e.kind);
                i.action = action(Reason::MovementWithoutPayment, ctx.date, None);
            }
        }
        items.push(i);
    }
    for o in orphans.iter().filter(|o| o.at_ms >= start && o.at_ms < end) {
        let mut i = ctx.item(
            format!("{}:{}", Checkpoint::StockToPayment.as_str(), o.event_id),
            Checkpoint::StockToPayment,
            &o.kind,
            o.at_ms,
        );
        i.event_id = Some(o.event_id.clone());
        i.bucket = Bucket::Unmatched;
        i.reason = Some(Reason::MovementWithoutPayment);
        i.note = format!(
            "{} movement(s) under event {} which the ledger has no record of",
            o.moves.len(),
            o.event_id
        );
        i.action = action(Reason::MovementWithoutPayment, ctx.date, None);
        items.push(i);
    }
}

/// The ledger event kind a report line's kind matches.
fn contract_kind(kind: LineKind) -> Option<&'static str> {
    match kind {
        LineKind::Capture => Some("payment.captured"),
        LineKind::Refund => Some("payment.refunded"),
        LineKind::Chargeback => Some("chargeback.opened"),
        LineKind::ChargebackReversal => Some("chargeback.closed"),
        LineKind::Other => None,
    }
}

/// The wire name of a provider (the envelope's `source.provider`).
pub fn provider_name(p: ReportProvider) -> &'static str {
    match p {
        ReportProvider::Stripe => "stripe",
        ReportProvider::Adyen => "adyen",
        ReportProvider::PortOne => "portone",
        ReportProvider::Ipint => "ipint",
    }
}

/// The provider named `name` (`stripe`, `adyen`, `portone`, `ipint`).
pub fn parse_provider(name: &str) -> Option<ReportProvider> {
    [
        ReportProvider::Stripe,
        ReportProvider::Adyen,
        ReportProvider::PortOne,
        ReportProvider::Ipint,
    ]
    .into_iter()
    .find(|p| provider_name(*p) == name)
}

fn line_kind_name(k: LineKind) -> &'static str {
    match k {
        LineKind::Capture => "capture",
        LineKind::Refund => "refund",
        LineKind::Chargeback => "chargeback",
        LineKind::ChargebackReversal => "chargeback_reversal",
        LineKind::Other => "other",
    }
}

fn parse_line_kind(name: &str) -> Option<LineKind> {
    [
        LineKind::Capture,
        LineKind::Refund,
        LineKind::Chargeback,
        LineKind::ChargebackReversal,
        LineKind::Other,
    ]
    .into_iter()
    .find(|k| line_kind_name(*k) == name)
}

/// A line to match: its copy, its provider and kind, and where it came from.
struct Line {
    line: LineRef,
    provider: ReportProvider,
    kind: LineKind,
    origin_date: String,
}

/// The stable key of a report line.
fn line_key(l: &LineRef) -> String {
    match &l.line_id {
        Some(id) => format!("line:{}:{id}", l.provider),
        None => format!(
            "line:{}:{}:{}:{}:{}",
            l.provider, l.payment_ref, l.kind, l.amount, l.at_ms
        ),
    }
}

fn provider_to_ledger(
    ctx: &Ctx<'_>,
    input: &RunInput<'_>,
    start: i64,
    end: i64,
    items: &mut Vec<Item>,
) {
    let settings = input.settings;
    // The lines to match: this day's report lines, then the earlier runs' deferred lines.
    let mut lines: Vec<Line> = input
        .lines
        .iter()
        .filter(|l| l.kind != LineKind::Other)
        .map(|l| Line {
            line: LineRef::of(l),
            provider: l.provider,
            kind: l.kind,
            origin_date: ctx.date.to_owned(),
        })
        .collect();
    let mut carried_events: Vec<&Item> = Vec::new();
    for c in input
        .carried
        .iter()
        .filter(|c| c.checkpoint == Checkpoint::ProviderToLedger)
    {
        match &c.line {
            Some(l) => {
                let (Some(provider), Some(kind)) =
                    (parse_provider(&l.provider), parse_line_kind(&l.kind))
                else {
                    continue;
                };
                lines.push(Line {
                    line: l.clone(),
                    provider,
                    kind,
                    origin_date: c.origin_date.clone(),
                });
            }
            None => carried_events.push(c),
        }
    }

    // Duplicates first: the second and later copies of a line are unmatched and take no
    // part in the sums.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut keep: Vec<Line> = Vec::new();
    for l in lines {
        let key = line_key(&l.line);
        if seen.insert(key.clone()) {
            keep.push(l);
            continue;
        }
        if l.origin_date != ctx.date {
            // The same deferred line carried and reported again: one copy is enough.
            continue;
        }
        let mut i = line_item(ctx, &l, format!("{key}:copy:{}", l.line.line));
        i.bucket = Bucket::Unmatched;
        i.reason = Some(Reason::DuplicateLine);
        i.note = format!("line {} repeats an earlier line of the report", l.line.line);
        i.action = action(Reason::DuplicateLine, ctx.date, None);
        items.push(i);
    }

    // Lines after the cutoff roll into the next day.
    let next = next_date(ctx.date);
    let mut groups: BTreeMap<(ReportProvider, String, &'static str), Vec<Line>> = BTreeMap::new();
    for l in keep {
        let Some(kind) = contract_kind(l.kind) else {
            continue;
        };
        if l.line.at_ms >= end {
            let mut i = line_item(ctx, &l, line_key(&l.line));
            i.bucket = Bucket::Deferred;
            i.reason = Some(Reason::AfterCutoff);
            i.expected_by = Some(next.clone());
            i.note = "after the day's cutoff".to_owned();
            i.action = action(Reason::AfterCutoff, ctx.date, Some(&next));
            items.push(i);
            continue;
        }
        let key = ctx.key(
            provider_name(l.provider),
            l.line.order_ref.as_deref(),
            Some(&l.line.payment_ref),
        );
        groups.entry((l.provider, key, kind)).or_default().push(l);
    }

    // The ledger's events by the same key, within the day and the provider's window.
    let mut by_key: BTreeMap<(String, String, String), Vec<&EventFact>> = BTreeMap::new();
    for e in &input.facts.events {
        by_key
            .entry((
                e.provider.clone(),
                ctx.key(
                    &e.provider,
                    e.order_ref.as_deref(),
                    e.payment_ref.as_deref(),
                ),
                e.kind.clone(),
            ))
            .or_default()
            .push(e);
    }
    // The orders whose reservation was released (expired or voided) among the facts.
    let released_keys: BTreeSet<String> = input
        .facts
        .events
        .iter()
        .filter(|e| e.kind == "reservation.expired" || e.kind == "payment.voided")
        .map(|e| {
            ctx.key(
                &e.provider,
                e.order_ref.as_deref(),
                e.payment_ref.as_deref(),
            )
        })
        .collect();
    let mut consumed: BTreeSet<&str> = BTreeSet::new();
    for ((provider, key, kind), group) in &groups {
        let tol = settings.tolerance(*provider);
        let name = provider_name(*provider);
        let events: Vec<&EventFact> = by_key
            .get(&(name.to_owned(), key.clone(), (*kind).to_owned()))
            .map(|v| {
                v.iter()
                    .filter(|e| e.at_ms >= start - tol.window_ms && e.at_ms < end + tol.window_ms)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for e in &events {
            consumed.insert(&e.event_id);
        }
        let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        let (bucket, reason, note) = if events.is_empty() {
            let released = released_keys.contains(key.as_str());
            if *kind == "payment.captured" && released {
                (
                    Bucket::Unmatched,
                    Some(Reason::NoStockMovement),
                    "the report shows a capture; the ledger has no capture and released the reservation"
                        .to_owned(),
                )
            } else {
                (
                    Bucket::Unmatched,
                    Some(Reason::MissingWebhook),
                    format!("the report shows it; the ledger has no {kind} for {key}"),
                )
            }
        } else {
            let line_sum: Decimal = group.iter().map(|l| l.line.amount.abs()).sum();
            let line_cur: BTreeSet<&str> = group.iter().map(|l| l.line.currency.as_str()).collect();
            let ev_cur: BTreeSet<&str> = events
                .iter()
                .filter_map(|e| e.currency.as_deref())
                .collect();
            let known: Vec<Decimal> = events.iter().filter_map(|e| e.amount).collect();
            let ev_sum: Decimal = known.iter().copied().sum();
            if !ev_cur.is_empty() && line_cur != ev_cur {
                (
                    Bucket::Unmatched,
                    Some(Reason::CurrencyMismatch),
                    format!("report in {}, ledger in {}", join(&line_cur), join(&ev_cur)),
                )
            } else if known.len() == events.len() && (line_sum - ev_sum).abs() > tol.amount {
                (
                    Bucket::Unmatched,
                    Some(Reason::AmountMismatch),
                    format!(
                        "report {line_sum} against ledger {ev_sum} (tolerance {})",
                        tol.amount
                    ),
                )
            } else {
                (
                    Bucket::Matched,
                    None,
                    format!(
                        "{} line(s) totalling {line_sum} against {} event(s) totalling {ev_sum}",
                        group.len(),
                        events.len()
                    ),
                )
            }
        };
        for l in group {
            let mut i = line_item(ctx, l, line_key(&l.line));
            i.bucket = bucket;
            i.reason = reason;
            i.event_id = ids.first().cloned();
            i.matched_with = ids.clone();
            i.note = note.clone();
            if let Some(r) = reason {
                i.action = action(r, ctx.date, None);
            }
            if let Some(e) = events.first() {
                i.order_ref = i.order_ref.clone().or_else(|| e.order_ref.clone());
            }
            items.push(i);
        }
    }

    // Captures the reports do not show: deferred within the settlement lag, unmatched after.
    let today = parse_date(&date_from_ms(ctx.now_ms));
    let mut lacking: Vec<Item> = Vec::new();
    for e in input.facts.events.iter().filter(|e| {
        e.kind == "payment.captured"
            && e.at_ms >= start
            && e.at_ms < end
            && !consumed.contains(e.event_id.as_str())
    }) {
        let Some(provider) = parse_provider(&e.provider) else {
            continue;
        };
        let mut i = ctx.event_item(e, Checkpoint::ProviderToLedger);
        i.key = format!("capture:{}", e.event_id);
        i.origin_date = ctx.date.to_owned();
        let lag = settings
            .lag_business_days
            .get(&provider)
            .copied()
            .unwrap_or(0);
        i.expected_by = Some(add_business_days(&date_from_ms(e.at_ms), lag));
        lacking.push(i);
    }
    let lacking_keys: BTreeSet<String> = lacking.iter().map(|l| l.key.clone()).collect();
    for c in carried_events {
        let Some(event_id) = c.event_id.as_deref() else {
            continue;
        };
        if consumed.contains(event_id) || lacking_keys.contains(&c.key) {
            // Found in this day's report (or this day's facts have it again).
            if consumed.contains(event_id) {
                let mut i = c.clone();
                i.recon_date = ctx.date.to_owned();
                i.bucket = Bucket::Matched;
                i.reason = None;
                i.action = String::new();
                i.age_days = ctx.age(i.event_at_ms);
                i.note = "found in a later report".to_owned();
                items.push(i);
            }
            continue;
        }
        let mut i = c.clone();
        i.recon_date = ctx.date.to_owned();
        i.age_days = ctx.age(i.event_at_ms);
        lacking.push(i);
    }
    for mut i in lacking {
        let overdue = match (&today, i.expected_by.as_deref().and_then(parse_date)) {
            (Some(t), Some(by)) => *t > by,
            _ => true,
        };
        if overdue {
            i.bucket = Bucket::Unmatched;
            i.reason = Some(Reason::MissingFromReport);
            i.action = action(Reason::MissingFromReport, ctx.date, None);
        } else {
            i.bucket = Bucket::Deferred;
            i.reason = Some(Reason::AwaitingSettlement);
            i.action = action(
                Reason::AwaitingSettlement,
                ctx.date,
                i.expected_by.as_deref(),
            );
        }
        i.note = format!(
            "a capture of {} {} not in the provider's report",
            i.amount
                .map(|a| a.to_string())
                .unwrap_or_else(|| "?".into()),
            i.currency.clone().unwrap_or_default()
        );
        items.push(i);
    }
}

fn join(s: &BTreeSet<&str>) -> String {
    s.iter().copied().collect::<Vec<_>>().join(", ")
}

fn line_item(ctx: &Ctx<'_>, l: &Line, key: String) -> Item {
    let mut i = ctx.item(
        key,
        Checkpoint::ProviderToLedger,
        &format!("line:{}", l.line.kind),
        l.line.at_ms,
    );
    i.provider = Some(l.line.provider.clone());
    i.payment_ref = Some(l.line.payment_ref.clone());
    i.order_ref = l.line.order_ref.clone().or_else(|| {
        ctx.refs
            .get(&(l.line.provider.clone(), l.line.payment_ref.clone()))
            .cloned()
    });
    i.amount = Some(l.line.amount);
    i.currency = Some(l.line.currency.clone());
    i.origin_date = l.origin_date.clone();
    i.line = Some(l.line.clone());
    i
}

/// What to do about an unmatched or deferred item, in one sentence.
pub fn action(reason: Reason, date: &str, expected_by: Option<&str>) -> String {
    match reason {
        Reason::MissingWebhook => format!(
            "The provider's report shows this but the ledger never received its event: resend the event from the provider's dashboard (Stripe Workbench → Events → Resend; Adyen Customer Area → Webhooks; PortOne or iPint support), then run `stockctl reconcile --date {date}` again."
        ),
        Reason::AmountMismatch => "The report's amount differs from the ledger's: check the payment in the provider's dashboard; if fees or FX explain the difference, set a tolerance for the provider (STOCKLEDGER_RECONCILE_TOLERANCE), otherwise hand it to finance.".to_owned(),
        Reason::CurrencyMismatch => "The report's currency differs from the ledger's: check the payment and the order in the provider's dashboard and hand it to finance; stock is not touched.".to_owned(),
        Reason::DuplicateLine => "The report lists this line twice: ask the provider for a corrected report; nothing in the ledger changes.".to_owned(),
        Reason::NoStockMovement => "Money was taken but no stock was sold for it (the reservation expired or was voided, or the movement is missing): decide whether the goods still ship (then `stockctl stock correct` with this evidence) or refund the customer at the provider.".to_owned(),
        Reason::MovementWithoutPayment => "Stock moved under an event with no recorded cause: inspect it with `stockctl events get <event id>`; if the movement is wrong, correct it with `stockctl stock correct` and this evidence.".to_owned(),
        Reason::MissingFromReport => "The ledger recorded this capture but the provider's report still does not show it after the settlement lag: check the payment in the provider's dashboard (failed or reversed capture?) and that the report file is complete; hand it to finance.".to_owned(),
        Reason::AfterCutoff => format!(
            "Nothing to do: it happened after the day's cutoff and is reconciled with {}.",
            expected_by.unwrap_or("the next day")
        ),
        Reason::AwaitingSettlement => format!(
            "Nothing to do yet: the provider's report should show it by {} (settlement lag).",
            expected_by.unwrap_or("the end of the settlement lag")
        ),
    }
}

// ---- dates ----------------------------------------------------------------------------

/// `YYYY-MM-DD`.
pub fn date_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.splitn(3, '-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let d: u8 = it.next()?.parse().ok()?;
    if s.len() != 10 {
        return None;
    }
    Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// Midnight UTC of `date`, Unix ms.
pub fn midnight_ms(date: Date) -> i64 {
    (date.to_julian_day() as i64 - UNIX_EPOCH_JULIAN_DAY) * DAY_MS
}

/// The Julian day of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The UTC date of an instant, `YYYY-MM-DD`.
pub fn date_from_ms(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS) + UNIX_EPOCH_JULIAN_DAY;
    i32::try_from(days)
        .ok()
        .and_then(|d| Date::from_julian_day(d).ok())
        .map(date_str)
        .unwrap_or_default()
}

fn next_date(date: &str) -> String {
    parse_date(date)
        .and_then(|d| d.checked_add(Duration::days(1)))
        .map(date_str)
        .unwrap_or_default()
}

/// `date` plus `n` business days (Saturday and Sunday skipped).
pub fn add_business_days(date: &str, n: u32) -> String {
    let Some(mut d) = parse_date(date) else {
        return date.to_owned();
    };
    let mut left = n;
    while left > 0 {
        let Some(next) = d.checked_add(Duration::days(1)) else {
            break;
        };
        d = next;
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    date_str(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_days_skip_the_weekend() {
        // 2026-11-20 is a Friday.
        assert_eq!(add_business_days("2026-11-20", 2), "2026-11-24");
        assert_eq!(add_business_days("2026-11-18", 2), "2026-11-20");
        assert_eq!(add_business_days("2026-11-18", 0), "2026-11-18");
    }

    #[test]
    fn dates_round_trip() {
        let d = parse_date("2026-11-20");
        assert!(d.is_some());
        let d = d.unwrap_or(Date::MIN);
        assert_eq!(date_from_ms(midnight_ms(d)), "2026-11-20");
        assert_eq!(date_from_ms(midnight_ms(d) + DAY_MS - 1), "2026-11-20");
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-1-01"), None);
    }
}
