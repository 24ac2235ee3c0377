//! The one strict JSON reader of stockledger's HTTP bodies, with one vocabulary: a body is
//! read **strictly** (one JSON object; a key repeated in any object, at any depth, is an
//! error, never "last wins", so two readers of the same body can never disagree about
//! which value counts; [`insert_unique`] is that rule, once), and every refusal is an
//! [`Error::Malformed`] naming the **field** by its path (`body` for the body as a whole,
//! `data.amount`, `lines[2].quantity`) with a short message (`missing`, `expected a
//! string`, `duplicate key …`).
//!
//! Two entry points, because two kinds of wire format need it:
//!
//! - [`parse_object`]: the whole body as a `serde_json::Value`, duplicate keys refused at
//!   every depth. The pre-pass of a body read into typed serde structs afterwards (the
//!   merchant API and the operator actions: `ingress::wire::read` deserializes the value
//!   with `serde_path_to_error`). serde's derive alone cannot give this rule: a map or a
//!   `Value` member keeps the last of two keys, and a repeated struct field gets another
//!   error, at another path.
//! - `Obj`: the provider bodies' field reader, which keeps each member as its raw JSON
//!   text (`serde_json::value::RawValue`), for what a typed struct cannot keep: the exact
//!   text of a number (PortOne's signed float `amount` is verified and converted from its
//!   text, never through an `f64`) and the members of an object whose keys are not known
//!   in advance (Adyen's `additionalData`).
//!
//! Everything else reads typed structs; a new hand-made reader should not be needed.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Error;

/// Inserts `key` unless the object already has it: the one duplicate-key rule of every
/// JSON reader here.
fn insert_unique<V, E: serde::de::Error>(
    out: &mut BTreeMap<String, V>,
    key: String,
    value: V,
) -> Result<(), E> {
    if out.contains_key(&key) {
        return Err(E::custom(format!("duplicate key `{key}`")));
    }
    out.insert(key, value);
    Ok(())
}

/// Any JSON value, read with [`insert_unique`] at every depth.
struct StrictValue(serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::SeqAccess;
        use serde_json::{Map, Number, Value};

        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = StrictValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Number(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Number(v.into())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StrictValue, E> {
                Number::from_f64(v)
                    .map(|n| StrictValue(Value::Number(n)))
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_none<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
                StrictValue::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictValue(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(StrictValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let StrictValue(value) = map.next_value()?;
                    insert_unique::<_, A::Error>(&mut out, key, value)?;
                }
                Ok(StrictValue(Value::Object(
                    out.into_iter().collect::<Map<_, _>>(),
                )))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Parses a whole body that must be one JSON object, refusing a key repeated in any object
/// at any depth, invalid UTF-8, lone surrogates, trailing data and nesting deeper than
/// serde_json's recursion limit (128). The error names `body`. The strict pre-pass of a
/// body then read into typed structs (the merchant API, the operator actions).
pub fn parse_object(raw: &[u8]) -> Result<serde_json::Value, Error> {
    let StrictValue(value) = serde_json::from_slice::<StrictValue>(raw)
        .map_err(|e| Error::malformed("body", format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::malformed("body", "expected a JSON object"));
    }
    Ok(value)
}

/// The members of one JSON object, values kept as raw text borrowed from the input.
struct RawMap<'a>(BTreeMap<String, &'a RawValue>);

impl<'de> Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    insert_unique::<_, A::Error>(&mut out, key, value)?;
                }
                Ok(RawMap(out))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// A parsed JSON object with its dotted path, for field-naming errors.
pub(crate) struct Obj<'a> {
    path: String,
    fields: BTreeMap<String, &'a RawValue>,
}

impl<'a> Obj<'a> {
    /// Parses a whole request body, which must be one JSON object.
    pub(crate) fn parse_body(raw: &'a [u8]) -> Result<Self, Error> {
        let map: RawMap<'a> =
            serde_json::from_slice(raw).map_err(|e| Error::malformed("body", e.to_string()))?;
        Ok(Obj {
            path: String::new(),
            fields: map.0,
        })
    }

    /// Parses `text` (the raw text of a nested value) as an object at `path`.
    fn parse_nested(text: &'a str, path: String) -> Result<Self, Error> {
        match serde_json::from_str::<RawMap<'a>>(text) {
            Ok(map) => Ok(Obj {
                path,
                fields: map.0,
            }),
            Err(e) => Err(Error::malformed(path, format!("expected an object: {e}"))),
        }
    }

    /// The dotted path of member `key`.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// The raw text of member `key`, `None` when absent or `null`.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a str> {
        let text = self.fields.get(key)?.get();
        if text == "null" { None } else { Some(text) }
    }

    /// An optional string member (`null` and absent both give `None`).
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, Error> {
        match self.raw(key) {
            None => Ok(None),
            Some(text) => serde_json::from_str::<String>(text)
                .map(Some)
                .map_err(|_| Error::malformed(self.path_of(key), "expected a string")),
        }
    }

    /// An optional string member defaulting to the empty string.
    pub(crate) fn str_or_empty(&self, key: &str) -> Result<String, Error> {
        Ok(self.opt_str(key)?.unwrap_or_default())
    }

    /// A required, non-empty string member.
    pub(crate) fn req_str(&self, key: &str) -> Result<String, Error> {
        match self.opt_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(Error::malformed(self.path_of(key), "must not be empty")),
            None => Err(Error::malformed(self.path_of(key), "missing")),
        }
    }

    /// An optional integer member (must be a JSON integer that fits `i64`).
    pub(crate) fn opt_i64(&self, key: &str) -> Result<Option<i64>, Error> {
        match self.raw(key) {
            None => Ok(None),
            Some(text) => serde_json::from_str::<i64>(text)
                .map(Some)
                .map_err(|_| Error::malformed(self.path_of(key), "expected an integer")),
        }
    }

    /// An optional boolean member.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.raw(key) {
            None => Ok(None),
            Some(text) => serde_json::from_str::<bool>(text)
                .map(Some)
                .map_err(|_| Error::malformed(self.path_of(key), "expected a boolean")),
        }
    }

    /// The exact text of a JSON-number member, `None` when absent or `null`.
    pub(crate) fn opt_number_text(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.raw(key) {
            None => Ok(None),
            Some(text) if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                Ok(Some(text))
            }
            Some(_) => Err(Error::malformed(self.path_of(key), "expected a number")),
        }
    }

    /// An optional nested object member.
    pub(crate) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, Error> {
        match self.raw(key) {
            None => Ok(None),
            Some(text) => Obj::parse_nested(text, self.path_of(key)).map(Some),
        }
    }

    /// A required nested object member.
    pub(crate) fn req_obj(&self, key: &str) -> Result<Obj<'a>, Error> {
        self.opt_obj(key)?
            .ok_or_else(|| Error::malformed(self.path_of(key), "missing"))
    }

    /// A required array member whose elements are all objects.
    pub(crate) fn req_obj_array(&self, key: &str) -> Result<Vec<Obj<'a>>, Error> {
        let path = self.path_of(key);
        let text = self
            .raw(key)
            .ok_or_else(|| Error::malformed(path.clone(), "missing"))?;
        let items: Vec<&'a RawValue> = serde_json::from_str(text)
            .map_err(|_| Error::malformed(path.clone(), "expected an array"))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Obj::parse_nested(item.get(), format!("{path}[{i}]")))
            .collect()
    }

    /// All members whose value is a JSON string, as owned pairs (other value types are skipped).
    pub(crate) fn string_members(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                serde_json::from_str::<String>(v.get())
                    .ok()
                    .map(|s| (k.clone(), s))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicate_keys() {
        let err = Obj::parse_body(br#"{"a":"1","a":"2"}"#).err();
        assert!(matches!(err, Some(Error::Malformed { field, .. }) if field == "body"));
    }

    #[test]
    fn names_nested_paths() {
        let obj = Obj::parse_body(br#"{"a":{"b":[{"c":5}]}}"#).ok();
        let obj = obj.and_then(|o| o.opt_obj("a").ok().flatten());
        let items = obj.map(|a| a.req_obj_array("b"));
        let Some(Ok(items)) = items else {
            panic!("expected items")
        };
        let err = items[0].opt_str("c").err();
        assert!(matches!(err, Some(Error::Malformed { field, .. }) if field == "a.b[0].c"));
    }

    #[test]
    fn raw_values_exclude_surrounding_whitespace() {
        let obj = Obj::parse_body(b" { \"n\" :\t 500 \n, \"z\" :  null } ");
        let Ok(obj) = obj else { panic!("parse") };
        assert_eq!(obj.opt_number_text("n").ok().flatten(), Some("500"));
        assert_eq!(obj.raw("z"), None);
    }

    #[test]
    fn parse_object_refuses_duplicates_at_any_depth() {
        for body in [
            r#"{"amount":"10.00","amount":"99.00"}"#,
            r#"{"lines":[{"sku":"a","sku":"b"}]}"#,
            r#"{"a":{"b":{"c":1,"c":1}}}"#,
        ] {
            let err = parse_object(body.as_bytes()).err();
            assert!(
                matches!(&err, Some(Error::Malformed { field, message }) if field == "body" && message.contains("duplicate key")),
                "{body}: {err:?}"
            );
        }
        let ok = parse_object(br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"b":{"a":1}}"#);
        assert_eq!(
            ok.ok(),
            serde_json::from_str(r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"b":{"a":1}}"#).ok()
        );
        assert!(parse_object(b"[1]").is_err());
        assert!(
            parse_object(br#"{"a":"\ud800"}"#).is_err(),
            "lone surrogate"
        );
        assert!(parse_object(b"{} {}").is_err(), "trailing data");
        let mut deep = String::new();
        deep.push_str(&"{\"a\":".repeat(10_000));
        assert!(parse_object(deep.as_bytes()).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut body = String::from("{\"a\":");
        body.push_str(&"[".repeat(100_000));
        assert!(Obj::parse_body(body.as_bytes()).is_err());
    }
}
