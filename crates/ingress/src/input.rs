//! Reading the merchant API's JSON bodies into domain values, naming the field of every
//! refusal by its path (`lines[2].quantity`). Parse, don't validate: what comes out is a
//! domain newtype that cannot be wrong.
//!
//! Amounts are decimal strings (`"100.50"`); a JSON number for an amount is refused, so a
//! float never gets near money. An amount is exact or refused, never rounded: more digits
//! than a decimal holds, or more decimal places than the currency's minor unit
//! (`Money::parse_strict`: `10.001` USD, `100.5` KRW), is a 400 naming the field. Unknown
//! fields are refused too, so a typo (`"qty"`) is an error rather than a silently missing
//! value.
//!
//! The body is read by the providers' strict JSON reader (`providers::parse_object`): a key
//! repeated in any object is a 400, never "last wins", exactly as on the provider
//! endpoints. A write must say it is JSON: [`JsonBody`] answers 415 to any other (or no)
//! `Content-Type`. Every string that reaches the ledger is a domain newtype (identifiers:
//! at most `domain::types::IDENTIFIER_LEN_MAX` bytes, no control characters) or checked
//! operator text (`exceptions::actions`), so neither database ever sees a NUL, an escape
//! sequence or an unbounded string.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use domain::{InspectionOutcome, Line, Lines, Location, Money, Quantity, Sku, StockKey};
use serde_json::{Map, Value};

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
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(JsonBody(bytes))
    }
}

/// A JSON object at a path, for field-naming errors.
pub struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

/// Parses a whole request body, which must be one JSON object without a repeated key
/// (`providers::parse_object`, the provider endpoints' reader).
pub fn parse_body(raw: &[u8]) -> Result<Value, ApiError> {
    providers::parse_object(raw).map_err(ApiError::from)
}

impl<'a> Obj<'a> {
    /// The top-level object of a body parsed by [`parse_body`].
    pub fn root(value: &'a Value) -> Result<Obj<'a>, ApiError> {
        Obj::at(value, String::new())
    }

    fn at(value: &'a Value, path: String) -> Result<Obj<'a>, ApiError> {
        match value.as_object() {
            Some(map) => Ok(Obj { path, map }),
            None => Err(ApiError::malformed(
                if path.is_empty() {
                    "body".to_owned()
                } else {
                    path
                },
                "expected an object",
            )),
        }
    }

    /// The path of member `key`.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Refuses any member not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::malformed(
                self.path_of(k),
                format!("unknown field; expected one of {allowed:?}"),
            )),
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required string member.
    pub fn str(&self, key: &str) -> Result<&'a str, ApiError> {
        match self.get(key) {
            None => Err(ApiError::malformed(self.path_of(key), "missing")),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::malformed(self.path_of(key), "expected a string")),
        }
    }

    /// A required string member turned into a domain value by `parse`.
    pub fn parsed<T, E: std::fmt::Display>(
        &self,
        key: &str,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Result<T, ApiError> {
        let s = self.str(key)?;
        parse(s).map_err(|e| ApiError::malformed(self.path_of(key), e.to_string()))
    }

    /// An optional string member (absent or `null`: `None`) turned into a domain value by
    /// `parse`.
    pub fn optional_parsed<T, E: std::fmt::Display>(
        &self,
        key: &str,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.parsed(key, parse).map(Some),
        }
    }

    /// A required quantity: a JSON integer from 1 to the domain's maximum.
    pub fn quantity(&self, key: &str) -> Result<Quantity, ApiError> {
        let path = self.path_of(key);
        let n = match self.get(key) {
            None => return Err(ApiError::malformed(path, "missing")),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| ApiError::malformed(&path, "expected a positive whole number"))?,
            Some(_) => return Err(ApiError::malformed(path, "expected a whole number")),
        };
        Quantity::new(n).map_err(|e| ApiError::malformed(path, e.to_string()))
    }

    /// A required amount with its currency: `amount` must be a decimal string.
    pub fn money(&self, amount_key: &str, currency_key: &str) -> Result<Money, ApiError> {
        let amount_path = self.path_of(amount_key);
        let amount = match self.get(amount_key) {
            None => return Err(ApiError::malformed(amount_path, "missing")),
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Number(_)) => {
                return Err(ApiError::malformed(
                    amount_path,
                    "amounts are decimal strings such as \"100.50\", never JSON numbers",
                ));
            }
            Some(_) => {
                return Err(ApiError::malformed(
                    amount_path,
                    "expected a decimal string such as \"100.50\"",
                ));
            }
        };
        domain::types::parse_amount(amount)
            .map_err(|e| ApiError::malformed(&amount_path, e.to_string()))?;
        let currency = self.parsed(currency_key, domain::Currency::parse)?;
        Money::parse_strict(amount, currency.as_str())
            .map_err(|e| ApiError::malformed(amount_path, e.to_string()))
    }

    /// An optional array member; absent and `null` are empty.
    pub fn array(&self, key: &str) -> Result<Vec<Obj<'a>>, ApiError> {
        let path = self.path_of(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Obj::at(v, format!("{path}[{i}]")))
                .collect(),
            Some(_) => Err(ApiError::malformed(path, "expected an array")),
        }
    }

    /// Required, non-empty `lines`: `[{"sku","location","quantity"}]`, merged by
    /// (SKU, location).
    pub fn lines(&self, key: &str) -> Result<Lines, ApiError> {
        if self.get(key).is_none() {
            return Err(ApiError::malformed(self.path_of(key), "missing"));
        }
        let mut out = Vec::new();
        for line in self.array(key)? {
            line.only(&["sku", "location", "quantity"])?;
            out.push(Line {
                key: line.stock_key()?,
                quantity: line.quantity("quantity")?,
            });
        }
        Lines::new(out).map_err(|e| ApiError::malformed(self.path_of(key), e.to_string()))
    }

    /// `sku` and `location` members.
    pub fn stock_key(&self) -> Result<StockKey, ApiError> {
        Ok(StockKey {
            sku: self.parsed("sku", Sku::parse)?,
            location: self.parsed("location", Location::parse)?,
        })
    }

    /// `outcome`: `restock` or `write_off`.
    pub fn inspection_outcome(&self, key: &str) -> Result<InspectionOutcome, ApiError> {
        self.parsed(key, |s| match s {
            "restock" => Ok(InspectionOutcome::Restock),
            "write_off" => Ok(InspectionOutcome::WriteOff),
            _ => Err("expected \"restock\" or \"write_off\""),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Malformed { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amounts_must_be_strings() {
        let v = parse_body(br#"{"amount": 100.5, "currency": "USD"}"#).expect("json");
        let o = Obj::root(&v).expect("object");
        let e = o.money("amount", "currency").expect_err("number refused");
        assert_eq!(field_of(e), "amount");
        let v = parse_body(br#"{"amount": "100.50", "currency": "usd"}"#).expect("json");
        let m = Obj::root(&v)
            .expect("object")
            .money("amount", "currency")
            .expect("money");
        assert_eq!(m.currency.as_str(), "USD");
        let v = parse_body(br#"{"amount": "1e3", "currency": "USD"}"#).expect("json");
        assert_eq!(
            field_of(
                Obj::root(&v)
                    .expect("object")
                    .money("amount", "currency")
                    .expect_err("exp")
            ),
            "amount"
        );
    }

    #[test]
    fn line_errors_name_the_path() {
        let v = parse_body(br#"{"lines":[{"sku":"a","location":"m","quantity":1},{"sku":"b","location":"m","quantity":0}]}"#)
            .expect("json");
        let e = Obj::root(&v)
            .expect("object")
            .lines("lines")
            .expect_err("zero");
        assert_eq!(field_of(e), "lines[1].quantity");
        let v = parse_body(br#"{"lines":[{"sku":"a","location":"m","qty":1}]}"#).expect("json");
        assert_eq!(
            field_of(
                Obj::root(&v)
                    .expect("object")
                    .lines("lines")
                    .expect_err("typo")
            ),
            "lines[0].qty"
        );
        let v = parse_body(br#"{}"#).expect("json");
        assert_eq!(
            field_of(
                Obj::root(&v)
                    .expect("object")
                    .lines("lines")
                    .expect_err("missing")
            ),
            "lines"
        );
        assert_eq!(field_of(parse_body(b"{").expect_err("bad json")), "body");
    }

    fn money_of(body: &str) -> Result<Money, ApiError> {
        let v = parse_body(body.as_bytes())?;
        Obj::root(&v)?.money("amount", "currency")
    }

    #[test]
    fn money_is_exact_or_refused_naming_the_field() {
        for body in [
            r#"{"amount": "19.99999999999999999999999999999", "currency": "USD"}"#,
            r#"{"amount": "0.0000000000000000000000000000001", "currency": "USD"}"#,
            r#"{"amount": "10.001", "currency": "USD"}"#,
            r#"{"amount": "100.5", "currency": "KRW"}"#,
            r#"{"amount": "1.0001", "currency": "BHD"}"#,
        ] {
            let e = money_of(body).expect_err(body);
            assert_eq!(field_of(e), "amount", "{body}");
        }
        let m = money_of(r#"{"amount": "1.005", "currency": "bhd"}"#).expect("BHD has 3");
        assert_eq!(m.amount.to_string(), "1.005");
        let m = money_of(r#"{"amount": "1000.00", "currency": "KRW"}"#).expect("trailing zeros");
        assert_eq!(m.amount.to_string(), "1000.00");
        let e = money_of(r#"{"amount": "10", "currency": "U\u0000D"}"#).expect_err("nul");
        assert_eq!(field_of(e), "currency");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            r#"{"lines":[],"amount":"10.00","amount":"99.00","currency":"USD"}"#,
            r#"{"lines":[{"sku":"a","sku":"b","location":"m","quantity":1}]}"#,
        ] {
            let e = parse_body(body.as_bytes()).expect_err(body);
            assert_eq!(field_of(e.clone()), "body");
            assert!(e.message().contains("duplicate key"), "{e:?}");
        }
    }

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

    /// Every reader of the merchant API on one body; what the handlers do before
    /// publishing anything.
    fn read_all(raw: &[u8]) -> Result<(), ApiError> {
        let v = parse_body(raw)?;
        let o = Obj::root(&v)?;
        let _ = o.only(&["lines", "amount", "currency", "payment_refs", "sku"]);
        let _ = o.lines("lines");
        let _ = o.money("amount", "currency");
        let _ = o.stock_key();
        let _ = o.quantity("quantity");
        let _ = o.inspection_outcome("outcome");
        let _ = o.optional_parsed("reference", domain::ReturnRef::parse);
        for r in o.array("payment_refs")? {
            let _ = r.parsed("provider", domain::Provider::parse);
        }
        Ok(())
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
            "payment_refs",
            "provider",
            "ref",
            "outcome",
        ]);
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            "[0-9]{0,40}(\\.[0-9]{0,40})?".prop_map(|s| format!("\"{s}\"")),
            any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
            "[A-Za-z]{0,4}".prop_map(|s| format!("\"{s}\"")),
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

        /// Arbitrary bytes never panic the merchant API's readers; every refusal is a 400
        /// naming a field.
        #[test]
        fn arbitrary_bytes_are_refused_never_a_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Err(e) = read_all(&raw) {
                proptest::prop_assert_eq!(e.status().as_u16(), 400);
            }
        }

        /// So does JSON-shaped input, where the readers get further.
        #[test]
        fn json_shaped_input_is_read_or_refused_with_400(text in jsonish()) {
            if let Err(e) = read_all(text.as_bytes()) {
                proptest::prop_assert_eq!(e.status().as_u16(), 400, "{}", text);
            }
        }
    }
}
