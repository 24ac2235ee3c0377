//! The trace context of each request (W3C `traceparent`, `bus::trace`): taken from the
//! caller's `traceparent` header when it sends a valid one, otherwise a new trace. The
//! request's span records its `trace_id`, and every event the request publishes carries
//! it through JetStream, so the ledger's log lines for that event show the same id.
//!
//! The context is scoped to the request's task ([`layer`]) and read by the one publish path
//! ([`current`], `publish::publish`), so handlers do not pass it around.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bus::trace::{TRACEPARENT, TraceContext};

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of `req`: the caller's, continued, or a new one.
pub fn of(req: &Request) -> TraceContext {
    req.headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |t| t.child())
}

/// Middleware: puts the request's trace context in its extensions (for the request span)
/// and in scope for the handler's task.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let trace = of(&req);
    req.extensions_mut().insert(trace.clone());
    CURRENT.scope(trace, next.run(req)).await
}

/// The trace context of the request being served by this task, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The trace id a request span records.
pub fn trace_id(req: &Request) -> Option<String> {
    req.extensions()
        .get::<TraceContext>()
        .map(|t| t.trace_id().to_owned())
}
