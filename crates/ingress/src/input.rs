//! The door of every merchant API and operator write: the body must say it is JSON
//! ([`JsonBody`]: 415 for any other, or no, `Content-Type`), and is then read into its
//! request struct by [`JsonBody::read`] ([`crate::wire::read`]: the providers' strict
//! reader refuses a key repeated at any depth, exactly as on the provider endpoints, then
//! serde reads the struct naming a refused field by its path, `lines[2].quantity`).
//!
//! What the bodies are and how each becomes domain values (parse, don't validate) is
//! [`crate::wire`]: amounts are decimal strings and exact in the currency's minor unit,
//! identifiers are domain newtypes, operator text is checked by `operator::actions`.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::{AppState, RawBody};

/// A write's body, read whole like [`RawBody`], after checking that its `Content-Type` is
/// JSON: `application/json` or any `application/<x>+json`, with any parameters
/// (`; charset=utf-8`). Anything else, or no `Content-Type` at all, is 415
/// `unsupported_media_type`, before the body is read.
#[derive(Debug, Clone)]
pub struct JsonBody(pub bytes::Bytes);

/// True when `value` (a `Content-Type` header) names JSON.
pub fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE);
        match content_type.map(|v| v.to_str()) {
            Some(Ok(v)) if is_json_media_type(v) => {}
            Some(_) => {
                return Err(ApiError::UnsupportedMediaType(
                    "`Content-Type` must be application/json".into(),
                ));
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "`Content-Type` is missing; send application/json".into(),
                ));
            }
        }
        let RawBody(bytes, _) = RawBody::from_request(req, state).await?;
        Ok(JsonBody(bytes))
    }
}

impl JsonBody {
    /// The body as request struct `T` (a `crate::wire` body), refusals naming the field.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::wire::read(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, exceptions, merchant};
    use serde_json::Value;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "json",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    /// One body read as `B` and converted into `T`, as a handler does.
    fn convert<B, T>(raw: &[u8]) -> Result<(), ApiError>
    where
        B: DeserializeOwned,
        T: TryFrom<B, Error = ApiError>,
    {
        T::try_from(wire::read::<B>(raw)?).map(drop)
    }

    /// Every reader of the merchant API and the operator actions on one body; what the
    /// handlers do before publishing anything. Every refusal must be a 400.
    fn read_all(raw: &[u8]) -> Vec<ApiError> {
        [
            convert::<merchant::OrderBody, merchant::Order>(raw),
            convert::<merchant::PaymentRefBody, merchant::PaymentRefAttachment>(raw),
            convert::<merchant::ReceiptBody, merchant::Receipt>(raw),
            convert::<merchant::ReturnBody, merchant::Return>(raw),
            convert::<merchant::InspectionBody, merchant::Inspection>(raw),
            convert::<exceptions::ActionBody, operator::actions::ActionRequest>(raw),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    /// JSON-ish text: merchant field names, nesting, strings with control characters and
    /// long digit runs, duplicated keys.
    fn jsonish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "lines",
            "amount",
            "currency",
            "sku",
            "location",
            "quantity",
            "reference",
            "order_ref",
            "payment_refs",
            "provider",
            "ref",
            "outcome",
            "actor",
            "reason",
        ]);
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            "[0-9]{0,40}(\\.[0-9]{0,40})?".prop_map(|s| format!("\"{s}\"")),
            any::<String>().prop_map(|s| Value::String(s).to_string()),
            "[A-Za-z]{0,4}".prop_map(|s| format!("\"{s}\"")),
            prop::sample::select(vec![
                "\"USD\"",
                "\"restock\"",
                "\"write_off\"",
                "\"stripe\""
            ])
            .prop_map(str::to_owned),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                    let body: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Arbitrary bytes never panic the readers; every refusal is a 400 naming a field.
        #[test]
        fn arbitrary_bytes_are_refused_never_a_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            for e in read_all(&raw) {
                proptest::prop_assert_eq!(e.status().as_u16(), 400);
                proptest::prop_assert!(e.message().starts_with('`'), "{:?}", e);
            }
        }

        /// So does JSON-shaped input, where the readers get further.
        #[test]
        fn json_shaped_input_is_read_or_refused_with_400(text in jsonish()) {
            for e in read_all(text.as_bytes()) {
                proptest::prop_assert_eq!(e.status().as_u16(), 400, "{}", text);
                proptest::prop_assert!(e.message().starts_with('`'), "{:?}", e);
            }
        }
    }
}
