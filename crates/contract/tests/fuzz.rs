//! `decode` never panics: not on arbitrary bytes, not on golden examples with values
//! swapped, removed or added anywhere, of either version. And the decoder is never looser
//! than the schemas: whatever it accepts, the JSON Schema of the version it claims accepts
//! too.

#![allow(clippy::unwrap_used)]

mod common;

use contract::decode;
use proptest::prelude::*;
use serde_json::{Value, json};

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!("")),
        Just(json!("100.50")),
        Just(json!("2026-11-20T10:00:00Z")),
        ".{0,20}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"sku": "a", "location": "b", "quantity": 1}])),
    ]
}

/// Every path (as JSON pointer) to a value inside `v`, the root included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    AddKey(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), replacement()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), "[a-z_]{1,8}", replacement())
            .prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
    ]
}

fn apply(v: &mut Value, m: &Mutation) {
    let mut ps = Vec::new();
    pointers(v, String::new(), &mut ps);
    match m {
        Mutation::Replace(i, new) => *v.pointer_mut(&ps[i % ps.len()]).unwrap() = new.clone(),
        Mutation::Remove(i) => {
            let p = &ps[i % ps.len()];
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            match v.pointer_mut(parent).unwrap() {
                Value::Object(m) => {
                    m.remove(last);
                }
                Value::Array(a) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                _ => {}
            }
        }
        Mutation::AddKey(i, k, new) => {
            if let Value::Object(m) = v.pointer_mut(&ps[i % ps.len()]).unwrap() {
                m.insert(k.clone(), new.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_goldens_never_panic_and_the_decoder_is_never_looser_than_the_schema(
        kind in 0usize..common::KINDS.len(),
        v2 in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let kind = common::KINDS[kind];
        let golden = if v2 { common::golden_v2_bytes(kind) } else { common::golden_bytes(kind) };
        let mut v: Value = serde_json::from_slice(&golden).unwrap();
        for m in &mutations {
            apply(&mut v, m);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        if decode(&bytes).is_ok() {
            prop_assert!(common::schema_of_its_version_accepts(&v), "decoded but the schema refuses: {v:#}");
        }
    }

    #[test]
    fn truncated_and_bit_flipped_goldens_never_panic(kind in 0usize..common::KINDS.len(), v2 in any::<bool>(), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
        let kind = common::KINDS[kind];
        let mut bytes = if v2 { common::golden_v2_bytes(kind) } else { common::golden_bytes(kind) };
        let i = flip.0 % bytes.len();
        bytes[i] ^= flip.1;
        let _ = decode(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = decode(&bytes);
    }
}
