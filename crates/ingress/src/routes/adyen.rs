//! `POST /webhooks/adyen` (`docs/providers.md`: the Adyen mapping and its protocol).
//!
//! Checked in order: HTTP Basic credentials (only when `STOCKLEDGER_ADYEN_BASIC_USER` is
//! set), then every item's `hmacSignature` against every configured key (two during
//! rotation). One item that fails refuses the whole batch with 401 and nothing is
//! published. Each item then maps to one contract event (`providers::events`; dedupe key
//! `adyen:{pspReference}:{eventCode}:{success}`, order `merchantReference`); all of them
//! are published, and the answer `[accepted]` is sent only after JetStream acknowledged
//! every one. If any publish fails the answer is 503 and Adyen retries the batch; the
//! events already stored are deduplicated by id.
//!
//! Event codes stockledger does not map, and items whose `merchantReference` cannot be an
//! order reference, are acknowledged and counted in `stockledger_provider_ignored_total`.
//! With no key configured the endpoint answers 401.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use providers::{adyen, events};

use crate::error::ApiError;
use crate::publish::{self, ADYEN, Outgoing};
use crate::{AppState, RawBody};

/// The body Adyen historically required; any 2xx is accepted today.
pub const ACCEPTED: &str = "[accepted]";

/// `POST /webhooks/adyen`.
#[utoipa::path(
    post, path = "/webhooks/adyen", tag = "providers",
    description = "Adyen standard notifications, each item signed (`additionalData.hmacSignature`) under `STOCKLEDGER_ADYEN_HMAC_KEY`.",
    request_body = crate::wire::providers::AdyenNotification,
    responses(
        (status = 200, description = "Accepted: Adyen's `[accepted]`.", content_type = "text/plain; charset=utf-8", body = String, example = "[accepted]"),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 401, description = "Missing or wrong credentials, or a signature that does not verify.", body = crate::wire::error::ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, ApiError> {
    let settings = &state.settings;
    if let Some((user, password)) = &settings.adyen_basic_auth {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        adyen::verify_basic_auth(given, user, password.expose())?;
    }
    if settings.adyen_hmac_keys.0.is_empty() {
        return Err(ApiError::Unauthorized(
            "STOCKLEDGER_ADYEN_HMAC_KEY is not set".into(),
        ));
    }
    let batch = adyen::parse_batch(&body.0)?;
    adyen::verify_batch(&batch, &settings.adyen_hmac_keys.0)?;
    let mut outgoing = Vec::with_capacity(batch.items.len());
    for item in &batch.items {
        match events::adyen_event(item)? {
            Some(kind) => {
                outgoing.push(Outgoing::new(&kind, ADYEN, item.dedupe_key(), Some(&body))?)
            }
            None => {
                tracing::info!(psp_reference = %item.psp_reference, event_code = %item.event_code, "Adyen item acknowledged and ignored");
                state.metrics.ignored(ADYEN, &item.event_code);
            }
        }
    }
    let results =
        futures::future::join_all(outgoing.iter().map(|out| publish::publish(&state, out))).await;
    for result in results {
        result?;
    }
    let mut response = (StatusCode::OK, ACCEPTED).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
