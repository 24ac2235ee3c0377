//! Reading the merchant API's JSON bodies into domain values, naming the field of every
//! refusal by its path (`lines[2].quantity`). Parse, don't validate: what comes out is a
//! domain newtype that cannot be wrong.
//!
//! Amounts are decimal strings (`"100.50"`); a JSON number for an amount is refused, so a
//! float never gets near money. Unknown fields are refused too, so a typo (`"qty"`) is an
//! error rather than a silently missing value.

use domain::{InspectionOutcome, Line, Lines, Location, Money, Quantity, Sku, StockKey};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A JSON object at a path, for field-naming errors.
pub struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

/// Parses a whole request body, which must be one JSON object.
pub fn parse_body(raw: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::malformed("body", format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::malformed("body", "expected a JSON object"));
    }
    Ok(value)
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
        let amount = domain::types::parse_amount(amount)
            .map_err(|e| ApiError::malformed(&amount_path, e.to_string()))?;
        let currency = self.parsed(currency_key, domain::Currency::parse)?;
        Ok(Money { amount, currency })
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
}
