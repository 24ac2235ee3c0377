//! The OpenAPI 3.1 description of every HTTP endpoint, served at `GET /openapi.json` and
//! committed at `docs/openapi.json` (`crates/ingress/tests/openapi.rs` keeps the two
//! equal; `STOCKLEDGER_UPDATE_OPENAPI=1` rewrites the file).
//!
//! One list: the route groups here register each handler and its `#[utoipa::path]`
//! description together (`utoipa_axum::routes!`), and [`crate::router`] serves exactly these
//! groups (adding only the layers: token, ledger standing, rate limits). A handler cannot be
//! served without being described, or described without being served. The request and
//! answer schemas are derived from the wire types the handlers read and write
//! ([`crate::wire`]), the store's and operator's answers served as they are, and the
//! domain's code tables (every reason code is listed).
//!
//! Answers every endpoint can give, whatever the handler, come from the layers in front of
//! all of them and are added to every operation here ([`CommonAnswers`]): 408 (the request
//! took longer than `STOCKLEDGER_REQUEST_TIMEOUT`), 413 (body over
//! `STOCKLEDGER_MAX_BODY_BYTES`), 503 (too many requests in progress, NATS or the database
//! unavailable, the ledger behind the stream), and 401 on every operation behind the token.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::routes::{adyen, exceptions, ipint, merchant, ops, portone, reads, stripe};
use crate::wire::error::{ConfirmationRefusal, ErrorBody};

/// The document's frame: title, version, tags, the bearer scheme, the error body.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "stockledger",
        description = "Stock that stays truthful while payments happen: provider webhooks, PortOne's inventory confirmation, the merchant API, the exception queue and operations. Errors are `{\"error\": code, \"message\": text}` everywhere except where a provider dictates the answer (PortOne's confirmation: `{\"reason\": …}`; Adyen: `[accepted]`). See docs/interface.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "merchant", description = "The merchant API: orders, payment references, receipts, returns, inspections, stock reads. Bearer token `STOCKLEDGER_API_TOKEN`."),
        (name = "exceptions", description = "The exception queue and its operator actions. Bearer token."),
        (name = "providers", description = "Provider endpoints, each authenticated by its provider's own scheme (docs/providers.md)."),
        (name = "operations", description = "Health, readiness, metrics and this description."),
    ),
    components(schemas(ErrorBody, ConfirmationRefusal)),
    modifiers(&BearerScheme)
)]
struct Frame;

/// The `bearer` security scheme the merchant API's operations name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The merchant API and the exception queue: behind the bearer token and the ledger's
/// standing ([`crate::router`] adds both layers).
pub fn merchant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merchant::put_order, reads::get_order))
        .routes(routes!(merchant::post_payment_ref))
        .routes(routes!(merchant::post_receipt))
        .routes(routes!(reads::get_stock))
        .routes(routes!(reads::get_entries))
        .routes(routes!(merchant::post_return))
        .routes(routes!(merchant::post_inspection))
        .routes(routes!(exceptions::list))
        .routes(routes!(exceptions::show))
        .routes(routes!(exceptions::evidence))
        .routes(routes!(exceptions::retry))
        .routes(routes!(exceptions::resolve))
        .routes(routes!(exceptions::dismiss))
        .routes(routes!(exceptions::release))
        .routes(routes!(exceptions::keep))
}

/// PortOne's inventory confirmation: rate-limited per source, refused while the ledger is
/// behind.
pub fn confirmation_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(portone::confirmation))
}

/// iPint's callbacks: rate-limited per source (they are unsigned).
pub fn ipint_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ipint::callback))
}

/// Everything else: the signed provider webhooks and the operations endpoints.
pub fn open_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(portone::webhook))
        .routes(routes!(stripe::webhook))
        .routes(routes!(adyen::webhook))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi_json))
}

/// The whole description: the frame, every route group, the common answers.
pub fn document() -> OpenApi {
    let mut doc = Frame::openapi();
    for group in [
        merchant_routes(),
        confirmation_routes(),
        ipint_routes(),
        open_routes(),
    ] {
        doc.merge(group.into_openapi());
    }
    CommonAnswers.modify(&mut doc);
    doc
}

/// [`document`] as pretty JSON with a final newline: the bytes `GET /openapi.json` serves
/// and `docs/openapi.json` holds. Computed once per process.
pub fn document_json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        // A document of plain maps and strings always serializes; an empty object would
        // only show up as a failing conformance test, never as a panic.
        let mut text = document().to_pretty_json().unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This description (OpenAPI 3.1).", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// Adds the answers of the layers in front of every handler to every operation that does
/// not describe them itself (see the module documentation).
struct CommonAnswers;

fn error_answer(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        )
        .into()
}

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let bearer = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let answers = &mut op.responses.responses;
                let mut add = |code: &str, description: &str| {
                    answers
                        .entry(code.to_owned())
                        .or_insert_with(|| error_answer(description));
                };
                if bearer {
                    add("401", "Missing or wrong bearer token.");
                }
                add(
                    "408",
                    "The request took longer than STOCKLEDGER_REQUEST_TIMEOUT.",
                );
                add("413", "The body is larger than STOCKLEDGER_MAX_BODY_BYTES.");
                add(
                    "503",
                    "Nothing was accepted: too many requests in progress, NATS or the database unavailable, or the ledger behind the event stream. Retry later.",
                );
            }
        }
    }
}
