//! The stock-change message (v1): the golden example validates against
//! `schemas/stock-change/v1.schema.json` and parses; what the ledger writes validates too.

#![allow(clippy::unwrap_used)]

use contract::stock_change::StockChange;
use domain::{Balance, EventId, Location, Sku, StockKey, Timestamp};

fn schemas() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/stock-change")
}

fn load(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(schemas().join(rel)).unwrap()).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&load("v1.schema.json"))
        .unwrap()
}

#[test]
fn golden_example_validates_and_parses() {
    let golden = load("examples/payment.captured.json");
    assert!(validator().is_valid(&golden));
    let change = StockChange::parse(golden.to_string().as_bytes()).expect("parses");
    assert_eq!(
        (change.sku.as_str(), change.seq, change.balances.sold),
        ("tee-black-m", 7, 2)
    );
}

#[test]
fn what_the_ledger_writes_validates() {
    let key = StockKey {
        sku: Sku::parse("A.1/ü").unwrap(),
        location: Location::parse("main").unwrap(),
    };
    let balance = Balance {
        available: 3,
        reserved: 1,
        sold: 2,
        returned: 0,
        written_off: 0,
        external: -6,
        seq: 9,
    };
    let change = StockChange::new(
        &key,
        &balance,
        EventId::from_dedupe_key("x"),
        "payment.authorized",
        Timestamp(1_763_600_000_000),
    );
    let json: serde_json::Value = serde_json::from_slice(&change.to_json().unwrap()).unwrap();
    assert!(validator().is_valid(&json), "{json}");
    assert_eq!(StockChange::parse(&change.to_json().unwrap()), Some(change));
}

#[test]
fn other_versions_are_not_read_as_v1() {
    let mut golden = load("examples/payment.captured.json");
    golden["version"] = serde_json::json!(2);
    assert_eq!(StockChange::parse(golden.to_string().as_bytes()), None);
}
