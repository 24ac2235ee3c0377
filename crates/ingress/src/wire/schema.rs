//! The OpenAPI schemas of the wire's scalars whose rules live in the domain: an
//! identifier (SKU, location, order reference, …), a quantity, and a provider's amount. Built from the domain's
//! own limits (`domain::types::IDENTIFIER_LEN_MAX`, `domain::types::QUANTITY_MAX`), so the
//! API description and the checks it describes cannot drift apart.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// No control character (what `domain::types` refuses in an identifier): C0, DEL and C1.
const NO_CONTROL_CHARACTERS: &str = r"^[^\u0000-\u001F\u007F-\u009F]+$";

/// An identifier: a non-empty string of at most `IDENTIFIER_LEN_MAX` bytes without control
/// characters. (JSON Schema counts characters; the limit is in UTF-8 bytes, which the
/// description says.)
pub fn identifier() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(domain::types::IDENTIFIER_LEN_MAX))
        .pattern(Some(NO_CONTROL_CHARACTERS))
        .description(Some(format!(
            "An identifier: 1 to {} UTF-8 bytes, no control characters.",
            domain::types::IDENTIFIER_LEN_MAX
        )))
        .build()
}

/// A quantity of units: a whole number from 1 to `QUANTITY_MAX`.
pub fn quantity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(1))
        .maximum(Some(domain::types::QUANTITY_MAX))
        .description(Some("Units: a whole number from 1."))
        .build()
}

/// An amount a provider sends as a JSON number (PortOne): a non-negative `number` with no
/// binary-float `format`, since the ingress reads its exact text into a decimal
/// (`providers::portone`), never through a float of its own.
pub fn provider_amount() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
        .description(Some(
            "A JSON number as the provider sends it, read from its exact text into a decimal.",
        ))
        .build()
}
