//! The console's pages: each reads through the JSON API's own handlers or the store's
//! queries and renders HTML; the action form posts to [`act`], which calls
//! `operator::actions` exactly as `POST /v1/exceptions/{id}/<action>` does and redirects
//! (303) back to the exception with the result as a one-shot notice.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use domain::{ExceptionCode, OperatorAction};
use maud::{Markup, html};
use operator::actions::{ActionRequest, Actions};
use serde::Deserialize;
use store::{QUEUE_LIST_MAX, QueueFilter, QueueItem};

use super::session::{self, CSRF_FIELD, NoticeKind, Session};
use super::view::{self, age, exception_href, order_href, state_class, stock_href, time};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::{exceptions, ops, reads};
use crate::wire::exceptions::ActionBody;

/// Entries shown per location on a SKU's page: the latest ones.
pub const STOCK_ENTRIES_SHOWN: u64 = 50;
/// The largest `/readyz` answer the status page reads back.
const READINESS_BODY_MAX: usize = 64 * 1024;

/// The queue's state filter: the stored states, plus every unresolved one (the default)
/// and all.
const STATE_FILTERS: &[(&str, &str)] = &[
    ("unresolved", "unresolved (open or retrying)"),
    ("open", "open"),
    ("retrying", "retrying"),
    ("resolved", "resolved"),
    ("any", "any"),
];

fn now() -> i64 {
    crate::publish::now().0
}

/// The page for an error of the JSON API's code: its status and message.
fn api_error_page(e: &ApiError) -> Response {
    view::error_page(e.status(), e.code(), &e.message())
}

/// The notice left by the last action, shown once: its markup and the header that clears it.
fn notice(headers: &HeaderMap) -> (Markup, Option<header::HeaderValue>) {
    match session::take_notice(headers) {
        Some((kind, text, clear)) => {
            let class = match kind {
                NoticeKind::Done => "done",
                NoticeKind::Error => "error",
            };
            (
                html! { p class={ "notice " (class) } { (text) } },
                Some(clear),
            )
        }
        None => (html! {}, None),
    }
}

/// `GET /console/?reason=&state=`: the queue, oldest first, with each row's age.
pub async fn queue(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let reason = query
        .get("reason")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && let Err(e) = domain::check_line("reason", r, domain::types::IDENTIFIER_LEN_MAX)
    {
        return view::error_page(StatusCode::BAD_REQUEST, "Bad filter", &e.to_string());
    }
    let state_filter = query
        .get("state")
        .map_or("unresolved", String::as_str)
        .to_owned();
    let states: Vec<Option<&str>> = match state_filter.as_str() {
        "unresolved" => vec![Some("open"), Some("retrying")],
        "open" | "retrying" | "resolved" => vec![Some(state_filter.as_str())],
        "any" => vec![None],
        _ => {
            return view::error_page(
                StatusCode::BAD_REQUEST,
                "Bad filter",
                "state: expected unresolved, open, retrying, resolved or any",
            );
        }
    };
    let mut rows: Vec<QueueItem> = Vec::new();
    let mut truncated = false;
    for st in states {
        let filter = QueueFilter {
            reason: reason.clone(),
            state: st.map(str::to_owned),
            created_before: None,
            limit: Some(QUEUE_LIST_MAX),
        };
        match state.store.queue_list(&filter).await {
            Ok(r) => {
                truncated |= i64::try_from(r.len()).unwrap_or(i64::MAX) >= QUEUE_LIST_MAX;
                rows.extend(r);
            }
            Err(e) => return api_error_page(&ApiError::from(e)),
        }
    }
    // The store lists newest first; an operator works the oldest first.
    rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let now = now();
    let (notice, clear) = notice(&headers);
    let body = html! {
        h1 { "Exception queue" }
        (notice)
        form method="get" action="/console/" {
            label { "Reason "
                select name="reason" {
                    option value="" selected[reason.is_none()] { "any" }
                    @for code in ExceptionCode::ALL {
                        option value=(code.as_str()) selected[reason.as_deref() == Some(code.as_str())] { (code.as_str()) }
                    }
                }
            }
            " "
            label { "State "
                select name="state" {
                    @for (value, label) in STATE_FILTERS {
                        option value=(value) selected[state_filter == *value] { (label) }
                    }
                }
            }
            " "
            button type="submit" { "Filter" }
        }
        p.muted {
            (rows.len()) " exception(s), oldest first."
            @if truncated { " Only the newest " (QUEUE_LIST_MAX) " of a state are listed: narrow the filter." }
        }
        table #queue {
            thead { tr { th { "age" } th { "exception" } th { "reason" } th { "state" } th { "order" } th { "SKU @ location" } th { "source" } th { "retries" } th { "created" } th { "detail" } } }
            tbody {
                @for row in &rows {
                    tr {
                        td { (age(row.created_at, now)) }
                        td { a href=(exception_href(&row.id)) { (row.id) } }
                        td { (row.reason) }
                        td class=(state_class(&row.state)) { (row.state) }
                        td { @if let Some(o) = &row.order_ref { a href=(order_href(o)) { (o) } } }
                        td { @if let Some(sku) = &row.sku { a href=(stock_href(sku)) { (sku) } @if let Some(l) = &row.location { " @ " (l) } } }
                        td { (row.source) }
                        td { (row.retries) }
                        td { (time(row.created_at)) }
                        td { (row.detail) }
                    }
                }
            }
        }
    };
    with_cleared_notice(
        view::page(StatusCode::OK, "Exception queue", Some(&s.csrf), body),
        clear,
    )
}

fn with_cleared_notice(mut response: Response, clear: Option<header::HeaderValue>) -> Response {
    if let Some(c) = clear {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The actions the form offers for an exception of this reason.
fn offered_actions(reason: &str) -> Vec<(&'static str, &'static str)> {
    let mut offered = vec![
        ("retry", "Retry"),
        ("resolve", "Resolve"),
        ("dismiss", "Dismiss"),
    ];
    if reason == ExceptionCode::VoidAfterCapture.as_str() {
        offered.push(("release", "Release (goods never left)"));
        offered.push(("keep", "Keep (goods left)"));
    }
    offered
}

/// `GET /console/exceptions/{id}/evidence`: the exception's evidence pack, the same zip
/// `GET /v1/exceptions/{id}/evidence` answers, behind the console's session.
pub async fn evidence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match exceptions::evidence(State(state), Path(id)).await {
        Ok(zip) => zip,
        Err(e) => api_error_page(&e),
    }
}

/// `GET /console/exceptions/{id}`: the row, its evidence, the ledger's outcomes, the audit
/// trail of operator actions, and the action form while it is not resolved.
pub async fn exception(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let detail = match exceptions::show(State(state.clone()), Path(id.clone())).await {
        Ok(d) => d.0,
        Err(e) => return api_error_page(&e),
    };
    let item = &detail.item;
    let now = now();
    let evidence = serde_json::to_string_pretty(&detail.evidence).unwrap_or_default();
    let (notice, clear) = notice(&headers);
    let body = html! {
        h1 { "Exception " (item.id) }
        (notice)
        dl #summary {
            dt { "state" } dd #state class=(state_class(&item.state)) { (item.state) }
            dt { "reason" } dd { (item.reason) }
            dt { "resolution" } dd { (item.resolution.as_deref().unwrap_or("—")) }
            dt { "detail" } dd { (item.detail) }
            dt { "order" } dd { @if let Some(o) = &item.order_ref { a href=(order_href(o)) { (o) } } @else { "—" } }
            dt { "SKU" } dd { @if let Some(sku) = &item.sku { a href=(stock_href(sku)) { (sku) } } @else { "—" } }
            dt { "location" } dd { @if let Some(l) = &item.location { (l) } @else { "—" } }
            dt { "event" } dd { (item.event_id) }
            dt { "source" } dd { (item.source) @if let Some(seq) = item.stream_seq { " (stream sequence " (seq) ")" } }
            dt { "retries" } dd { (item.retries) @if let Some(r) = &item.retry_event_id { " (last retry " (r) ")" } }
            dt { "created" } dd { (time(item.created_at)) " (" (age(item.created_at, now)) " ago)" }
            dt { "updated" } dd { (time(item.updated_at)) }
            @if let Some(d) = item.deadline { dt { "deadline" } dd { (time(d)) } }
        }
        @if item.state != "resolved" {
            h2 { "Act" }
            form.action method="post" action=(format!("{}/resolve", exception_href(&item.id))) {
                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                label { "Actor (who you are) " br; input name="actor" required maxlength="128"; }
                label { "Reason (recorded) " br; input name="reason" required; }
                label { "Evidence (optional: a ticket, a note) " br; textarea name="evidence" rows="3" {} }
                @for (action, label) in offered_actions(&item.reason) {
                    button type="submit" name="action" value=(action)
                        formaction=(format!("{}/{action}", exception_href(&item.id))) { (label) }
                }
            }
        } @else {
            p.muted { "Resolved: nothing left to do." }
        }
        h2 { "Evidence" }
        p { a #download-evidence href=(format!("{}/evidence", exception_href(&item.id))) { "Download evidence" } " (a zip: raw body, events, entries, actions, a chained manifest)" }
        pre #evidence { (evidence) }
        h2 { "Ledger outcomes" }
        table {
            thead { tr { th { "version" } th { "outcome" } th { "reason" } th { "recorded" } } }
            tbody {
                @for o in &detail.outcomes {
                    tr {
                        td { (o.version) }
                        td { (o.outcome.as_str()) }
                        td { @if let Some(r) = o.reason { (r) } }
                        td { (time(o.recorded_at)) }
                    }
                }
            }
        }
        h2 { "Audit trail" }
        table #trail {
            thead { tr { th { "#" } th { "action" } th { "actor" } th { "reason" } th { "result" } th { "detail" } th { "at" } } }
            tbody {
                @for a in &detail.actions {
                    tr {
                        td { (a.seq) }
                        td { (a.action) }
                        td { (a.actor) }
                        td { (a.reason) }
                        td { (a.result) }
                        td { code { (a.detail.to_string()) } }
                        td { (time(a.at)) }
                    }
                }
            }
        }
    };
    with_cleared_notice(
        view::page(
            StatusCode::OK,
            &format!("Exception {}", item.id),
            Some(&s.csrf),
            body,
        ),
        clear,
    )
}

/// An action form's body.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    actor: Option<String>,
    reason: Option<String>,
    evidence: Option<String>,
}

/// `POST /console/exceptions/{id}/{action}`: the CSRF checks, then the action through
/// `operator::actions` (refused while the ledger is behind the stream, like the JSON API),
/// then 303 to the exception with the result or the refusal.
pub async fn act(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            return view::error_page(StatusCode::BAD_REQUEST, "Bad form", &e.body_text());
        }
    };
    if let Some(refused) = session::form_refusal(&headers, &s, form.csrf.as_deref()) {
        return refused;
    }
    let back = exception_href(&id);
    let op = match action.as_str() {
        "retry" => None,
        "resolve" => Some(OperatorAction::Resolve),
        "dismiss" => Some(OperatorAction::Dismiss),
        "release" => Some(OperatorAction::Release),
        "keep" => Some(OperatorAction::Keep),
        _ => {
            return view::error_page(StatusCode::NOT_FOUND, "No such action", &action);
        }
    };
    let outcome = run_action(&state, &id, op, form).await;
    match outcome {
        Ok(text) => session::redirect_with_notice(&back, NoticeKind::Done, &text),
        Err(e) => session::redirect_with_notice(
            &back,
            NoticeKind::Error,
            &format!("{action} refused ({}): {}", e.code(), e.message()),
        ),
    }
}

/// The action itself: the JSON API's body rules, its standing check, `operator::actions`.
/// `Ok` is the notice.
async fn run_action(
    state: &AppState,
    id: &str,
    op: Option<OperatorAction>,
    form: ActionForm,
) -> Result<String, ApiError> {
    domain::ExceptionId::parse(id).map_err(|e| ApiError::malformed("id", e.to_string()))?;
    let req = ActionRequest::try_from(ActionBody {
        actor: form.actor,
        reason: form.reason,
        evidence: form.evidence.filter(|e| !e.trim().is_empty()),
        idempotency_key: None,
    })?;
    // Like every `/v1` route: nothing is published while the ledger is behind. When the
    // standing cannot be read, the action meets that failure itself.
    if let Ok(Some(line)) = state.standing.refresh(state).await {
        return Err(ApiError::LedgerBehind(format!(
            "{line}; nothing was published"
        )));
    }
    let actions = Actions {
        bus: state.bus.clone(),
        store: state.store.clone(),
        wait: state.settings.confirmation_deadline,
    };
    Ok(match op {
        None => {
            let r = actions.retry_with(id, &req).await?;
            format!("retry: {}", r.result)
        }
        Some(op) => {
            let r = actions.act(id, op, &req).await?;
            format!("{}: {}", r.action, r.result)
        }
    })
}

/// `GET /console/orders?order_ref=`: the navigation's lookup.
pub async fn order_lookup(Query(query): Query<HashMap<String, String>>) -> Response {
    match query
        .get("order_ref")
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        Some(o) => Redirect::to(&order_href(o)).into_response(),
        None => Redirect::to("/console/").into_response(),
    }
}

/// `GET /console/stock?sku=`: the navigation's lookup.
pub async fn stock_lookup(Query(query): Query<HashMap<String, String>>) -> Response {
    match query.get("sku").map(|o| o.trim()).filter(|o| !o.is_empty()) {
        Some(s) => Redirect::to(&stock_href(s)).into_response(),
        None => Redirect::to("/console/").into_response(),
    }
}

/// `GET /console/orders/{order_ref}`: what `GET /v1/orders/{order_ref}` answers.
pub async fn order(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(order_ref): Path<String>,
) -> Response {
    let o = match reads::get_order(State(state), Path(order_ref)).await {
        Ok(o) => o.0,
        Err(e) => return api_error_page(&e),
    };
    let body = html! {
        h1 { "Order " (o.order_ref) }
        dl {
            dt { "state" } dd #order-state { (o.state) }
            dt { "amount" } dd { (o.amount) " " (o.currency) }
            dt { "stock moved" } dd { (o.stock_moved) }
            dt { "reserved" } dd { (o.reserved_at.as_deref().unwrap_or("—")) @if let Some(by) = &o.reserved_by { " by " (by) } }
        }
        h2 { "Lines" }
        table {
            thead { tr { th { "SKU" } th { "location" } th { "quantity" } } }
            tbody {
                @for l in &o.lines {
                    tr { td { a href=(stock_href(&l.sku)) { (l.sku) } } td { (l.location) } td { (l.quantity) } }
                }
            }
        }
        @if !o.returned.is_empty() {
            h2 { "Returned" }
            table {
                thead { tr { th { "SKU" } th { "location" } th { "quantity" } } }
                tbody {
                    @for l in &o.returned {
                        tr { td { a href=(stock_href(&l.sku)) { (l.sku) } } td { (l.location) } td { (l.quantity) } }
                    }
                }
            }
        }
        h2 { "Events and outcomes" }
        table #events {
            thead { tr { th { "processed" } th { "kind" } th { "outcome" } th { "reason" } th { "movements / exception" } th { "duplicates" } th { "event" } } }
            tbody {
                @for e in &o.events {
                    tr {
                        td { (e.processed_at) }
                        td { (e.kind) }
                        td { (e.outcome.as_str()) }
                        td { @if let Some(r) = e.reason { (r) } }
                        td {
                            @if let Some(x) = &e.exception_id { a href=(exception_href(x)) { "exception " (x) } }
                            @for m in e.movements.iter().flatten() {
                                div { (m.quantity) " " a href=(stock_href(&m.sku)) { (m.sku) } "@" (m.location) ": " (m.from) " → " (m.to) " (#" (m.seq) ")" }
                            }
                        }
                        td { (e.duplicates) }
                        td.muted { (e.event_id) }
                    }
                }
            }
        }
    };
    view::page(
        StatusCode::OK,
        &format!("Order {}", o.order_ref),
        Some(&s.csrf),
        body,
    )
}

/// `GET /console/stock/{sku}`: what `GET /v1/stock/{sku}` answers, and per location the
/// latest entries of `GET /v1/stock/{sku}/entries`.
pub async fn stock(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(sku): Path<String>,
) -> Response {
    let view_ = match reads::get_stock(State(state.clone()), Path(sku.clone())).await {
        Ok(v) => v.0,
        Err(e) => return api_error_page(&e),
    };
    let mut pages = Vec::new();
    for l in &view_.locations {
        let query = HashMap::from([
            ("location".to_owned(), l.location.clone()),
            (
                "after_seq".to_owned(),
                l.last_seq.saturating_sub(STOCK_ENTRIES_SHOWN).to_string(),
            ),
            ("limit".to_owned(), STOCK_ENTRIES_SHOWN.to_string()),
        ]);
        match reads::get_entries(State(state.clone()), Path(sku.clone()), Query(query)).await {
            Ok(p) => pages.push(p.0),
            Err(e) => return api_error_page(&e),
        }
    }
    let body = html! {
        h1 { "Stock " (view_.sku) }
        @if view_.locations.is_empty() { p.muted { "The ledger has no entry for this SKU." } }
        h2 { "Balances per location" }
        table #balances {
            thead { tr { th { "location" } th { "available" } th { "reserved" } th { "sold" } th { "returned" } th { "written off" } th { "last entry" } } }
            tbody {
                @for l in &view_.locations {
                    tr { td { (l.location) } td { (l.available) } td { (l.reserved) } td { (l.sold) } td { (l.returned) } td { (l.written_off) } td { "#" (l.last_seq) } }
                }
            }
        }
        @for p in &pages {
            h2 { "Entries at " (p.location) " (the latest " (STOCK_ENTRIES_SHOWN) ")" }
            table {
                thead { tr { th { "#" } th { "recorded" } th { "kind" } th { "quantity" } th { "from → to" } th { "event" } } }
                tbody {
                    @for e in &p.entries {
                        tr { td { (e.seq) } td { (e.recorded_at) } td { (e.kind) } td { (e.quantity) } td { (e.from) " → " (e.to) } td.muted { (e.event_id) } }
                    }
                }
            }
        }
    };
    view::page(
        StatusCode::OK,
        &format!("Stock {}", view_.sku),
        Some(&s.csrf),
        body,
    )
}

/// `GET /console/status`: `/readyz`'s answer as it is, the ledger consumer's progress
/// against the database's checkpoint (`operator::standing`), its backlog
/// (`bus::progress`), and the queue's counts (`store::queue_stats`).
pub async fn status(State(state): State<AppState>, Extension(s): Extension<Session>) -> Response {
    let ready = ops::readyz(State(state.clone())).await;
    let ready_status = ready.status();
    let ready_body = axum::body::to_bytes(ready.into_body(), READINESS_BODY_MAX)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    // Errors are shown as the JSON API words them: never a URL or a driver's detail.
    let standing = operator::standing::standing(&state.bus, &state.store)
        .await
        .map_err(|e| match e {
            operator::StandingError::Bus(e) => ApiError::from(e).message(),
            operator::StandingError::Store(e) => ApiError::from(e).message(),
        });
    let backlog = state
        .bus
        .ledger_backlog()
        .await
        .map_err(|e| ApiError::from(e).message());
    let stats = state
        .store
        .queue_stats()
        .await
        .map_err(|e| ApiError::from(e).message());
    let now = now();
    let is_ready = ready_status == StatusCode::OK;
    let body = html! {
        h1 { "Status" }
        h2 { "Readiness (/readyz)" }
        p #readiness class=(if is_ready { "ok" } else { "bad" }) {
            @if is_ready { "ready" } @else { "not ready" }
        }
        @if let Some(m) = ready_body.get("message").and_then(|m| m.as_str()) { p { (m) } }
        dl {
            dt { "NATS connected" } dd { (ready_body.get("nats").map(ToString::to_string).unwrap_or_default()) }
            dt { "database answers" } dd { (ready_body.get("database").map(ToString::to_string).unwrap_or_default()) }
        }
        h2 { "Ledger consumer" }
        @match &standing {
            Ok(st) => dl #lag {
                dt { "events stream" } dd { (st.progress.stream) }
                dt { "last sequence in the stream" } dd { (st.progress.last_seq) }
                dt { "acknowledged by the ledger consumer" } dd { (st.progress.acked) }
                dt { "applied by the ledger database" } dd { (st.checkpoint.applied) @if st.checkpoint.rebuilding { " (a rebuild is under way)" } }
                dt { "lag (stream − acknowledged)" } dd { (st.progress.last_seq.saturating_sub(st.progress.acked)) " message(s)" }
                dt { "behind the stream" } dd class=(if st.is_behind() { "bad" } else { "ok" }) { @if st.is_behind() { (st.describe()) } @else { "no" } }
            },
            Err(e) => p.notice.error { "The ledger's progress cannot be read: " (e) },
        }
        @match &backlog {
            Ok(b) => dl #backlog {
                dt { "pending (not yet applied)" } dd { (b.pending) " message(s)" }
                dt { "oldest unapplied" } dd { @if let Some(t) = b.oldest_unapplied_ms { (time(t)) " (" (age(t, now)) " ago)" } @else { "—" } }
            },
            Err(e) => p.muted { "No backlog: " (e) },
        }
        h2 { "Exception queue" }
        @match &stats {
            Ok(q) => {
                p {
                    @if let Some(t) = q.oldest_unresolved_at { "Oldest unresolved: " (age(t, now)) " old. " }
                    (q.resolved) " resolved."
                }
                table {
                    thead { tr { th { "reason" } th { "state" } th { "count" } } }
                    tbody {
                        @for (reason, st, n) in &q.unresolved {
                            tr {
                                td { a href=(format!("/console/?reason={}&state={}", view::segment(reason), view::segment(st))) { (reason) } }
                                td class=(state_class(st)) { (st) }
                                td { (n) }
                            }
                        }
                    }
                }
            },
            Err(e) => p.notice.error { (e) },
        }
    };
    view::page(StatusCode::OK, "Status", Some(&s.csrf), body)
}
