//! The operators' web console at `/console/`: server-rendered HTML (no JavaScript, no build
//! step) over the same reads and actions as the JSON API, never a second implementation:
//! the queue and an exception through the store's queue reads, an action through
//! `operator::actions` (as `POST /v1/exceptions/{id}/<action>` does), an order and a SKU
//! through [`crate::routes::reads`], readiness through [`crate::routes::ops::readyz`]. What
//! each page shows is `docs/console.md`.
//!
//! | route | page |
//! | --- | --- |
//! | `GET /console/login`, `POST /console/login`, `POST /console/logout` | the login form, the session ([`session`]) |
//! | `GET /console/` | the exception queue: filters, oldest first, ages |
//! | `GET /console/exceptions/{id}` | one exception: evidence, outcomes, audit trail, the action form |
//! | `GET /console/exceptions/{id}/evidence` | the exception's evidence pack (a zip download) |
//! | `POST /console/exceptions/{id}/{action}` | `retry`, `resolve`, `dismiss`, `release`, `keep`; 303 back with the result |
//! | `GET /console/orders/{order_ref}` | an order with its events and outcomes |
//! | `GET /console/stock/{sku}` | a SKU's balances per location and its latest entries |
//! | `GET /console/status` | readiness, the ledger's lag behind the stream, the queue's counts |
//!
//! These routes are HTML for browsers, not part of the JSON API: they are left out of the
//! OpenAPI document.

pub mod pages;
pub mod session;
pub mod view;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::AppState;
use crate::ratelimit::{self, RateLimit};

/// Login attempts per source (`ratelimit`, per client address): a burst, then one a second.
/// The token is a long random secret; this keeps a guesser to a trickle anyway.
pub const LOGIN_ATTEMPTS: RateLimit = RateLimit {
    per_second: 1,
    burst: 20,
};

/// The console's routes, merged into [`crate::router`]: every page but the login form
/// behind a session, logins limited per source ([`LOGIN_ATTEMPTS`]), every answer with the console's headers ([`session::page_headers`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/console/", get(pages::queue))
        .route("/console/exceptions/{id}", get(pages::exception))
        .route("/console/exceptions/{id}/evidence", get(pages::evidence))
        .route("/console/exceptions/{id}/{action}", post(pages::act))
        .route("/console/orders", get(pages::order_lookup))
        .route("/console/orders/{order_ref}", get(pages::order))
        .route("/console/stock", get(pages::stock_lookup))
        .route("/console/stock/{sku}", get(pages::stock))
        .route("/console/status", get(pages::status))
        .route("/console/logout", post(session::logout))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .merge(pages)
        .route(
            "/console/login",
            get(session::login_form).merge(post(session::login).route_layer(
                middleware::from_fn_with_state(
                    ratelimit::layer(state, LOGIN_ATTEMPTS),
                    ratelimit::limit,
                ),
            )),
        )
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .layer(middleware::map_response(session::page_headers))
}
