//! Shared test helpers: the paths of `schemas/v1`, the golden examples, and a JSON Schema
//! validator built from the files on disk.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

/// The kinds of v1.
pub const KINDS: [&str; 16] = contract::v1::KINDS;

/// `schemas/v1` at the repository root.
pub fn schemas_v1() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/v1")
}

/// The golden example of `kind`, as bytes.
pub fn golden_bytes(kind: &str) -> Vec<u8> {
    let path = schemas_v1().join("examples").join(format!("{kind}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every golden example, as (kind, bytes).
pub fn goldens() -> Vec<(&'static str, Vec<u8>)> {
    KINDS.iter().map(|k| (*k, golden_bytes(k))).collect()
}

fn load(rel: &str) -> Value {
    let path = schemas_v1().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A validator for the envelope schema, with the shared definitions and every payload
/// schema registered under their `$id`s so nothing is fetched.
pub fn envelope_validator() -> jsonschema::Validator {
    let mut docs = vec![load("common.schema.json")];
    docs.extend(
        KINDS
            .iter()
            .map(|k| load(&format!("payloads/{k}.schema.json"))),
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
        .build(&load("envelope.schema.json"))
        .unwrap()
}
