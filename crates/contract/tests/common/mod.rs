//! Shared test helpers: the paths of `schemas/v1` and `schemas/v2`, the golden examples of
//! each version, JSON Schema validators built from the files on disk, and what every
//! golden example must decode into ([`expected`]).

#![allow(dead_code, clippy::unwrap_used)]

pub mod expected;

use std::path::PathBuf;

use serde_json::Value;

/// The kinds of v1 (all of them v2's too, with v1's payloads).
pub const KINDS: [&str; 16] = contract::v1::KINDS;

/// The v2 golden examples: one per v2 kind, a correction naming its actor (the field
/// v2 added to `stock.corrected`) and a confirmation with its `answer_by` (the field v2
/// added to `payment.authorized`) and an authorization naming its payment method (the
/// other field v2 added to it).
pub const GOLDENS_V2: [&str; 21] = {
    let k = contract::v2::KINDS;
    [
        k[0],
        k[1],
        k[2],
        k[3],
        k[4],
        k[5],
        k[6],
        k[7],
        k[8],
        k[9],
        k[10],
        k[11],
        k[12],
        k[13],
        k[14],
        k[15],
        k[16],
        k[17],
        "stock.corrected.by-actor",
        "payment.authorized.answer-by",
        "payment.authorized.payment-method",
    ]
};

/// The kind of a golden example's name (`stock.corrected.by-actor` is a `stock.corrected`).
pub fn kind_of(golden: &str) -> &str {
    golden
        .strip_suffix(".by-actor")
        .or_else(|| golden.strip_suffix(".answer-by"))
        .or_else(|| golden.strip_suffix(".payment-method"))
        .unwrap_or(golden)
}

/// True for the golden examples of what v1 can say too (not a kind or field v2 added).
pub fn has_v1_twin(golden: &str) -> bool {
    KINDS.contains(&golden)
}

/// `schemas/` at the repository root.
pub fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// `schemas/v1` at the repository root.
pub fn schemas_v1() -> PathBuf {
    schemas().join("v1")
}

/// `schemas/v2` at the repository root.
pub fn schemas_v2() -> PathBuf {
    schemas().join("v2")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The v1 golden example of `kind`, as bytes.
pub fn golden_bytes(kind: &str) -> Vec<u8> {
    read(schemas_v1().join("examples").join(format!("{kind}.json")))
}

/// The v2 golden example of `kind`, as bytes.
pub fn golden_v2_bytes(kind: &str) -> Vec<u8> {
    read(schemas_v2().join("examples").join(format!("{kind}.json")))
}

/// Every v1 golden example, as (kind, bytes).
pub fn goldens() -> Vec<(&'static str, Vec<u8>)> {
    KINDS.iter().map(|k| (*k, golden_bytes(k))).collect()
}

/// Every v2 golden example, as (name, bytes); see [`kind_of`].
pub fn goldens_v2() -> Vec<(&'static str, Vec<u8>)> {
    GOLDENS_V2
        .iter()
        .map(|k| (*k, golden_v2_bytes(k)))
        .collect()
}

fn load(rel: &str) -> Value {
    serde_json::from_slice(&read(schemas().join(rel))).unwrap()
}

/// A validator for `envelope` (a path under `schemas/`), with v1's shared definitions and
/// payload schemas registered under their `$id`s so nothing is fetched.
fn validator(envelope: &str) -> jsonschema::Validator {
    let mut docs = vec![load("v1/common.schema.json")];
    docs.extend(
        KINDS
            .iter()
            .map(|k| load(&format!("v1/payloads/{k}.schema.json"))),
    );
    docs.extend(
        [
            "stock.corrected",
            "exception.action",
            "payment.authorized",
            "policy.changed",
        ]
        .iter()
        .map(|k| load(&format!("v2/payloads/{k}.schema.json"))),
    );
    let mut registry = jsonschema::Registry::new();
    for doc in docs {
        let id = doc["$id"].as_str().unwrap().to_owned();
        registry = registry.add(id, doc).unwrap();
    }
    let registry = registry.prepare().unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&load(envelope))
        .unwrap()
}

/// A validator for the v1 envelope schema.
pub fn envelope_validator() -> jsonschema::Validator {
    validator("v1/envelope.schema.json")
}

/// A validator for the v2 envelope schema (which refers to v1's payloads by `$id`).
pub fn envelope_validator_v2() -> jsonschema::Validator {
    validator("v2/envelope.schema.json")
}

/// Whether the schema of the version `v` claims accepts `v` (no known version: no).
pub fn schema_of_its_version_accepts(v: &Value) -> bool {
    match v.get("version").and_then(Value::as_u64) {
        Some(1) => envelope_validator().is_valid(v),
        Some(2) => envelope_validator_v2().is_valid(v),
        _ => false,
    }
}
