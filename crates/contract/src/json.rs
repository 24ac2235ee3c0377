//! Path-aware reading of a `serde_json::Value`: every helper knows the JSON path of what
//! it reads, so a missing or mistyped field is reported as `payload.lines[0].sku`, not as
//! a serde message about line and column.

use domain::Timestamp;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::ContractError;
use crate::wire_time;

/// A JSON object and its path from the envelope's root (empty for the root itself).
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

/// The JSON type of `v`, for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: String, expected: &str, got: &Value) -> ContractError {
    ContractError::new(path, format!("must be {expected}, got {}", type_name(got)))
}

impl<'a> Obj<'a> {
    /// The object `v` found at `path`.
    pub(crate) fn from_value(v: &'a Value, path: String) -> Result<Self, ContractError> {
        match v {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(wrong_type(path, "an object", other)),
        }
    }

    /// The root object.
    pub(crate) fn root(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            path: String::new(),
        }
    }

    /// The path of `key` inside this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Refuses any key not in `allowed`: v1 objects are closed, a new field is a new
    /// version.
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ContractError> {
        self.only_with(allowed, &[])
    }

    /// Like [`Obj::only`], also letting through the fields a newer version `added` (which
    /// that version's reader reads).
    pub(crate) fn only_with(&self, allowed: &[&str], added: &[&str]) -> Result<(), ContractError> {
        let known = |k: &str| allowed.contains(&k) || added.contains(&k);
        match self.map.keys().find(|k| !known(k.as_str())) {
            Some(k) => Err(ContractError::new(
                self.path_of(k),
                "is not a field of this object",
            )),
            None => Ok(()),
        }
    }

    /// The value at `key`, which must be present (it may be `null`).
    pub(crate) fn get(&self, key: &str) -> Result<&'a Value, ContractError> {
        self.map
            .get(key)
            .ok_or_else(|| ContractError::new(self.path_of(key), "is required"))
    }

    /// The string at `key`.
    pub(crate) fn string(&self, key: &str) -> Result<String, ContractError> {
        match self.get(key)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong_type(self.path_of(key), "a string", other)),
        }
    }

    /// The string or `null` at `key` (the key itself is required).
    pub(crate) fn nullable_string(&self, key: &str) -> Result<Option<String>, ContractError> {
        match self.get(key)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(wrong_type(self.path_of(key), "a string or null", other)),
        }
    }

    /// The non-negative integer at `key`.
    pub(crate) fn u64(&self, key: &str) -> Result<u64, ContractError> {
        let v = self.get(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(self.path_of(key), "a non-negative integer", v))
    }

    /// The signed 64-bit integer at `key`.
    pub(crate) fn i64(&self, key: &str) -> Result<i64, ContractError> {
        let v = self.get(key)?;
        v.as_i64()
            .ok_or_else(|| wrong_type(self.path_of(key), "a 64-bit integer", v))
    }

    /// The object at `key`.
    pub(crate) fn object(&self, key: &str) -> Result<Obj<'a>, ContractError> {
        Obj::from_value(self.get(key)?, self.path_of(key))
    }

    /// The object or `null` at `key` (the key itself is required).
    pub(crate) fn nullable_object(&self, key: &str) -> Result<Option<Obj<'a>>, ContractError> {
        match self.get(key)? {
            Value::Null => Ok(None),
            v => Obj::from_value(v, self.path_of(key)).map(Some),
        }
    }

    /// The objects of the array at `key`, each with its path (`key[i]`).
    pub(crate) fn objects(&self, key: &str) -> Result<Vec<Obj<'a>>, ContractError> {
        let path = self.path_of(key);
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Obj::from_value(v, format!("{path}[{i}]")))
                .collect(),
            other => Err(wrong_type(path, "an array", other)),
        }
    }

    /// The RFC 3339 UTC time at `key`.
    pub(crate) fn time(&self, key: &str) -> Result<Timestamp, ContractError> {
        let s = self.string(key)?;
        wire_time::parse(&s).map_err(|m| ContractError::new(self.path_of(key), m))
    }

    /// The RFC 3339 UTC time or `null` at `key` (the key itself is required).
    pub(crate) fn nullable_time(&self, key: &str) -> Result<Option<Timestamp>, ContractError> {
        match self.nullable_string(key)? {
            None => Ok(None),
            Some(s) => wire_time::parse(&s)
                .map(Some)
                .map_err(|m| ContractError::new(self.path_of(key), m)),
        }
    }
}

/// The UUID `s` writes, when `s` is its canonical form (lowercase, hyphenated), the only
/// way ids are written on the wire. Compared in a stack buffer: every decoded event has
/// at least one id, and a `String` per id was the only allocation of the check.
pub(crate) fn canonical_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s)
        .ok()
        .filter(|u| u.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == s)
}
