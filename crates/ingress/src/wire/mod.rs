//! The HTTP API's wire types: every JSON body the ingress reads from a merchant or an
//! operator, and every JSON body it answers with, as plain serde structs and enums, one
//! module per area. They are the API's description: a later OpenAPI derive (utoipa or
//! similar) can read them as they are, which is why they hold plain strings, numbers and
//! enums with documented fields rather than domain types.
//!
//! - [`merchant`]: the merchant API's request bodies (orders, payment references,
//!   receipts, returns, inspections), their conversion into domain values, and the
//!   answers of its writes and reads.
//! - [`exceptions`]: the operator action body of `/v1/exceptions/{id}/…` and the queue
//!   list.
//! - [`ops`]: `/healthz` and `/readyz`.
//! - [`error`]: the error body every failure has, and PortOne's confirmation refusal.
//!
//! **Reading** ([`read`]) is two steps, each done in one place: the strict reader of
//! `providers::json` ([`providers::parse_object`]) checks that the body is one JSON object
//! without a repeated key at any depth (serde alone would take the last of two keys in a
//! nested map, and refuses a repeated struct field with another message); then
//! `serde_path_to_error` reads the request struct, so a refusal names the field by its
//! path (`lines[2].quantity`). Then each handler converts the wire struct into domain
//! values (`TryFrom`, "parse, don't validate"), each refusal naming its field too.
//!
//! **Required fields are `Option`s** on the request structs: absent and `null` are both
//! "missing", and the refusal must say `` `lines`: missing `` naming the field, which serde's
//! own "missing field" error (reported at the parent's path) does not. The conversion
//! says which fields are required; so does each field's documentation.
//!
//! **Answers keep their bytes.** The answers were built with `serde_json::json!` before,
//! whose objects (serde_json without `preserve_order`, as in this workspace) print their
//! keys sorted. The answer structs declare their fields in that same alphabetical order,
//! so every answer is byte-for-byte what it was; the tests of each module pin it.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub mod error;
pub mod exceptions;
pub mod merchant;
pub mod ops;
pub mod providers;
pub mod schema;

/// Reads a request body into `T`: one JSON object, no key repeated in any object at any
/// depth (`field` `body` otherwise), and the shape of `T`, refusals naming the field by
/// its path.
pub fn read<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let value = ::providers::parse_object(raw)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        // `.` is the root: the body as a whole.
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::malformed(field, e.inner().to_string())
    })
}

/// The path of member `key` of the object at `at` (`""` for the body itself).
pub(crate) fn path(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// A required member: `None` (absent or `null`) is refused as missing, naming it.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::malformed(field, "missing"))
}

/// A member turned into a domain value by `parse`, a refusal naming it.
pub(crate) fn parsed<S, T, E: std::fmt::Display>(
    value: S,
    field: &str,
    parse: impl FnOnce(S) -> Result<T, E>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::malformed(field, e.to_string()))
}
