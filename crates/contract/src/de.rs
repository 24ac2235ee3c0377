//! Reading the parsed envelope into the typed wire structs with serde, reporting a refusal
//! as a [`ContractError`] that names the field by its JSON path (`payload.lines[0].sku`)
//! and says what is wrong in the contract's words rather than serde's.
//!
//! Every serde read of the envelope goes through [`read`], so the one translation of
//! serde's wording ([`contract_error`]) is the only place a message is decided.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ContractError;

/// Deserializes `T` from `value`, which sits at path `at` in the envelope (`""` for the
/// root). Reading from the already parsed [`Value`] keeps decoding to one parse, and its
/// objects (sorted, no repeated key) are what the decoder has always read.
pub(crate) fn read<'a, T: Deserialize<'a>>(value: &'a Value, at: &str) -> Result<T, ContractError> {
    serde_path_to_error::deserialize(value)
        .map(|o: Object<T>| o.0)
        .map_err(|e| contract_error(&e, at))
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
    if quoted(&inner, "unknown field `").is_some() {
        // serde's own refusal of a key: serde_path_to_error puts the key in the path.
        return ContractError::new(path, "is not a field of this object");
    }
    // The whole rest is the key: a key may hold a backtick.
    if let Some(name) = inner
        .strip_prefix(NOT_A_FIELD)
        .and_then(|r| r.strip_suffix('`'))
    {
        // A refusal decided after the object was read ([`not_a_field`]): at its path.
        return ContractError::new(join(&path, name), "is not a field of this object");
    }
    let variant = inner.strip_prefix("unknown variant `");
    // The last `, expected` is serde's: the value before it is the sender's text.
    if let Some((got, expected)) = variant.and_then(|r| r.rsplit_once("`, expected ")) {
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

/// How [`not_a_field`] words its refusal, for [`contract_error`] to recognise.
const NOT_A_FIELD: &str = "not a field: `";

/// The refusal of `key`, decided by a `Deserialize` impl after it read the whole object
/// (serde's own `unknown_field` would be reported at the object's path, like a key serde
/// refused itself, and the two could not be told apart).
pub(crate) fn not_a_field<E: de::Error>(key: &str) -> E {
    E::custom(format_args!("{NOT_A_FIELD}{key}`"))
}

/// serde's `expected …` in JSON's terms.
fn json_expected(expected: &str) -> &str {
    match expected {
        "u64" => "a non-negative integer",
        "i64" => "a 64-bit integer",
        "a sequence" => "an array",
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

/// A struct read from a JSON object only. serde's derive also reads a struct from an
/// array of its fields in order, which the contract never allowed.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        // The same map access, so the path of every member is still tracked.
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// Serde helper for a struct that must be a JSON object.
pub(crate) fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Object::deserialize(d).map(|o| o.0)
}

/// Serde helper for a required key whose value is an object or `null` (with
/// `deserialize_with`, serde reports a missing `Option` field instead of defaulting it).
pub(crate) fn nullable_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|o| o.0))
}

/// Serde helper for an array of objects.
pub(crate) fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Vec::<Object<T>>::deserialize(d).map(|v| v.into_iter().map(|o| o.0).collect())
}

/// Serde helper for a required key whose value is a string or `null`; a refusal says
/// both.
pub(crate) fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(NullableString)
}

struct NullableString;

impl Visitor<'_> for NullableString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Serde helper for a unit-variant enum written as a string (`"confirmation"`). The
/// derive alone would also take `{"confirmation": null}`, which the contract never did.
pub(crate) fn word<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let s = String::deserialize(d)?;
    T::deserialize(s.into_deserializer()).map_err(|e: de::value::Error| de::Error::custom(e))
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
