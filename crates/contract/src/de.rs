//! Reading the parsed envelope into the typed wire structs with serde, reporting a refusal
//! as a [`ContractError`] that names the field by its JSON path (`payload.lines[0].sku`)
//! and says what is wrong in the contract's words rather than serde's.
//!
//! Every serde read of the envelope goes through [`read`], so the one translation of
//! serde's wording ([`contract_error`]) is the only place a message is decided.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ContractError;

/// Deserializes `T` from `value`, which sits at path `at` in the envelope (`""` for the
/// root). Reading from the already parsed [`Value`] keeps decoding to one parse, and its
/// objects (sorted, no repeated key) are what the decoder has always read.
pub(crate) fn read<'a, T: Deserialize<'a>>(value: &'a Value, at: &str) -> Result<T, ContractError> {
    serde_path_to_error::deserialize(value).map_err(|e| contract_error(&e, at))
}

/// The contract's error for a serde refusal at path `at` + the error's own path.
///
/// serde reports a missing or unknown field at the path of the object that holds it, and
/// words type errors in Rust's terms (`u64`, `struct Line`); the contract names the field
/// itself and speaks JSON. Custom messages (a bad time, an order without a reference) are
/// already the contract's words and pass through.
fn contract_error(e: &serde_path_to_error::Error<serde_json::Error>, at: &str) -> ContractError {
    let inner = e.inner().to_string();
    let own = e.path().to_string();
    // `.` is serde_path_to_error's name for the root of what was read.
    let path = if own == "." {
        at.to_owned()
    } else {
        join(at, &own)
    };
    if let Some(name) = quoted(&inner, "missing field `") {
        return ContractError::new(join(&path, name), "is required");
    }
    if let Some(name) = quoted(&inner, "unknown field `") {
        // Some versions of serde_path_to_error already put the key in the path.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            join(&path, name)
        };
        return ContractError::new(field, "is not a field of this object");
    }
    let variant = inner.strip_prefix("unknown variant `");
    if let Some((got, expected)) = variant.and_then(|r| r.split_once("`, expected ")) {
        let expected = expected.replace('`', "\"");
        return ContractError::new(path, format!("must be {expected}, got {got:?}"));
    }
    let mistyped = inner
        .strip_prefix("invalid type: ")
        .or_else(|| inner.strip_prefix("invalid value: "));
    if let Some((got, expected)) = mistyped.and_then(|m| m.rsplit_once(", expected ")) {
        return ContractError::new(
            path,
            format!("must be {}, got {}", json_expected(expected), json_got(got)),
        );
    }
    ContractError::new(path, inner)
}

/// serde's `expected …` in JSON's terms.
fn json_expected(expected: &str) -> &str {
    match expected {
        "u64" => "a non-negative integer",
        "i64" => "a 64-bit integer",
        "a sequence" => "an array",
        // The unit-variant enums (`mode`, `outcome`, …) are strings on the wire.
        e if e.starts_with("enum ") => "a string",
        e if e.starts_with("struct ") || e == "a map" => "an object",
        e => e,
    }
}

/// serde's description of the value it got (`integer `7``, `null`), as a JSON type.
fn json_got(got: &str) -> &'static str {
    match got.split([' ', '`']).next().unwrap_or_default() {
        "null" | "unit" => "null",
        "boolean" => "a boolean",
        "integer" | "floating" => "a number",
        "string" | "char" => "a string",
        "sequence" => "an array",
        "map" => "an object",
        _ => "another value",
    }
}

/// The text between `prefix` (at the start of `s`) and the next backtick.
fn quoted<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    s.strip_prefix(prefix)?.split('`').next()
}

/// The path of `key` inside the object at `at`.
fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// Serde helper for a required key whose value may be `null`: with `deserialize_with`,
/// serde reports a missing `Option` field instead of defaulting it to `None`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// Serde helper for an optional key (with `#[serde(default)]`) that, present, must not be
/// `null`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The UUID `s` writes, when `s` is its canonical form (lowercase, hyphenated), the only
/// way ids are written on the wire. Compared in a stack buffer: every decoded event has
/// at least one id, and a `String` per id was the only allocation of the check.
pub(crate) fn canonical_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s)
        .ok()
        .filter(|u| u.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == s)
}
