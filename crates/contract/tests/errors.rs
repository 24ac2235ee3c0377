//! Error cases: each refusal lands in the [`DecodeError`] variant a consumer branches on,
//! and a field error names the field by its JSON path. The schema refuses the same
//! documents where a schema can say so. Most cases use v1 golden examples (v1 is read
//! forever); the `v2_` cases cover what v2 added and that v2 keeps v1's errors.

#![allow(clippy::unwrap_used)]

mod common;

use contract::{DecodeError, decode};
use serde_json::{Value, json};

fn golden(kind: &str) -> Value {
    serde_json::from_slice(&common::golden_bytes(kind)).unwrap()
}

fn decode_value(v: &Value) -> Result<contract::Envelope, DecodeError> {
    decode(&serde_json::to_vec(v).unwrap())
}

/// Asserts `v` is refused as `Invalid` naming `field`, and that the schema refuses it too.
fn assert_invalid(v: &Value, field: &str) {
    match decode_value(v) {
        Err(DecodeError::Invalid { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected Invalid {{ field: {field} }}, got {other:?}"),
    }
}

fn assert_schema_refuses(v: &Value) {
    assert!(
        !common::envelope_validator().is_valid(v),
        "the schema accepts {v:#}"
    );
}

#[test]
fn not_json_is_undecodable() {
    for bytes in [&b"not json"[..], b"", b"{\"schema\":", b"\xff\xfe"] {
        assert!(
            matches!(decode(bytes), Err(DecodeError::Undecodable { .. })),
            "{bytes:?}"
        );
    }
}

#[test]
fn not_an_object_is_undecodable() {
    for v in [
        json!([1, 2]),
        json!("stockledger.event"),
        json!(null),
        json!(1),
    ] {
        assert!(
            matches!(decode_value(&v), Err(DecodeError::Undecodable { .. })),
            "{v}"
        );
    }
}

#[test]
fn a_wrong_or_missing_schema_name_is_undecodable() {
    let mut v = golden("payment.captured");
    v["schema"] = json!("someone.else");
    assert!(matches!(
        decode_value(&v),
        Err(DecodeError::Undecodable { .. })
    ));
    assert_schema_refuses(&v);
    v["schema"] = json!(1);
    assert!(matches!(
        decode_value(&v),
        Err(DecodeError::Undecodable { .. })
    ));
    v.as_object_mut().unwrap().remove("schema");
    assert!(matches!(
        decode_value(&v),
        Err(DecodeError::Undecodable { .. })
    ));
}

#[test]
fn an_unreadable_version_is_undecodable() {
    let mut v = golden("payment.captured");
    for bad in [json!("1"), json!(-1), json!(1.5), json!(null)] {
        v["version"] = bad.clone();
        assert!(
            matches!(decode_value(&v), Err(DecodeError::Undecodable { .. })),
            "{bad}"
        );
    }
    v.as_object_mut().unwrap().remove("version");
    assert!(matches!(
        decode_value(&v),
        Err(DecodeError::Undecodable { .. })
    ));
}

#[test]
fn an_unknown_version_is_unknown_version() {
    let mut v = golden("payment.captured");
    v["version"] = json!(99);
    assert_eq!(
        decode_value(&v),
        Err(DecodeError::UnknownVersion { version: 99 })
    );
    assert_schema_refuses(&v);
    v["version"] = json!(0);
    assert_eq!(
        decode_value(&v),
        Err(DecodeError::UnknownVersion { version: 0 })
    );
}

#[test]
fn an_unknown_version_is_reported_before_its_fields_are_read() {
    let v = json!({"schema": "stockledger.event", "version": 3, "whatever": true});
    assert_eq!(
        decode_value(&v),
        Err(DecodeError::UnknownVersion { version: 3 })
    );
}

#[test]
fn a_missing_order_ref_names_the_field() {
    for kind in [
        "order.registered",
        "order.payment_ref_attached",
        "return.received",
        "reservation.expired",
    ] {
        let mut v = golden(kind);
        v["payload"].as_object_mut().unwrap().remove("order_ref");
        assert_invalid(&v, "payload.order_ref");
        assert_schema_refuses(&v);
    }
}

#[test]
fn a_float_amount_is_invalid() {
    let mut v = golden("order.registered");
    v["payload"]["amount"] = json!(100.5);
    assert_invalid(&v, "payload.amount");
    assert_schema_refuses(&v);

    let mut v = golden("payment.captured");
    v["payload"]["amount"] = json!(100.5);
    assert_invalid(&v, "payload.amount");
    assert_schema_refuses(&v);

    let mut v = golden("payment.captured");
    v["payload"]["amount"]["amount"] = json!(100.5);
    assert_invalid(&v, "payload.amount.amount");
    assert_schema_refuses(&v);
}

#[test]
fn an_amount_in_exponent_or_signed_form_is_invalid() {
    for bad in ["1e3", "-1", "+1", "1.", ".5", "1,5", ""] {
        let mut v = golden("payment.captured");
        v["payload"]["amount"]["amount"] = json!(bad);
        assert_invalid(&v, "payload.amount.amount");
        assert_schema_refuses(&v);
    }
}

#[test]
fn an_event_id_that_does_not_match_the_identity_names_event_id() {
    let mut v = golden("payment.captured");
    v["source"]["identity"] = json!("portone:ord_1:Success:201");
    assert_invalid(&v, "event_id");

    let mut v = golden("payment.captured");
    let upper = v["event_id"].as_str().unwrap().to_uppercase();
    v["event_id"] = json!(upper);
    assert_invalid(&v, "event_id");
    assert_schema_refuses(&v);
}

#[test]
fn an_unknown_kind_names_kind() {
    let mut v = golden("payment.captured");
    v["kind"] = json!("payment.teleported");
    assert_invalid(&v, "kind");
    assert_schema_refuses(&v);
}

#[test]
fn a_payload_of_another_kind_is_invalid() {
    let mut v = golden("payment.captured");
    v["kind"] = json!("stock.received");
    assert!(matches!(decode_value(&v), Err(DecodeError::Invalid { .. })));
    assert_schema_refuses(&v);
}

#[test]
fn fields_deep_in_the_payload_are_named_by_path() {
    let mut v = golden("order.registered");
    v["payload"]["lines"][1]
        .as_object_mut()
        .unwrap()
        .remove("sku");
    assert_invalid(&v, "payload.lines[1].sku");
    assert_schema_refuses(&v);

    let mut v = golden("order.registered");
    v["payload"]["lines"][0]["quantity"] = json!(0);
    assert_invalid(&v, "payload.lines[0].quantity");
    assert_schema_refuses(&v);

    let mut v = golden("order.registered");
    v["payload"]["lines"][0]["location"] = json!("");
    assert_invalid(&v, "payload.lines[0].location");
    assert_schema_refuses(&v);

    let mut v = golden("order.registered");
    v["payload"]["lines"] = json!([]);
    assert_invalid(&v, "payload.lines");
    assert_schema_refuses(&v);

    let mut v = golden("order.registered");
    v["payload"]["payment_refs"][0]
        .as_object_mut()
        .unwrap()
        .remove("ref");
    assert_invalid(&v, "payload.payment_refs[0].ref");
    assert_schema_refuses(&v);

    let mut v = golden("payment.voided");
    v["payload"]["order"]
        .as_object_mut()
        .unwrap()
        .remove("payment_ref");
    assert_invalid(&v, "payload.order.payment_ref");
    assert_schema_refuses(&v);

    let mut v = golden("payment.captured");
    v["payload"]["amount"]["currency"] = json!("usd");
    assert_invalid(&v, "payload.amount.currency");
    assert_schema_refuses(&v);
}

#[test]
fn nullable_fields_are_required_keys() {
    for (kind, field) in [
        ("payment.voided", "amount"),
        ("chargeback.opened", "deadline"),
    ] {
        let mut v = golden(kind);
        v["payload"].as_object_mut().unwrap().remove(field);
        assert_invalid(&v, &format!("payload.{field}"));
        assert_schema_refuses(&v);
    }
    let mut v = golden("stock.received");
    v.as_object_mut().unwrap().remove("raw_digest");
    assert_invalid(&v, "raw_digest");
    assert_schema_refuses(&v);
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let mut v = golden("payment.captured");
    v["extra"] = json!(1);
    assert_invalid(&v, "extra");
    assert_schema_refuses(&v);

    let mut v = golden("payment.captured");
    v["payload"]["order"]["provider"] = json!("stripe");
    assert_invalid(&v, "payload.order.provider");
    assert_schema_refuses(&v);

    let mut v = golden("stock.corrected");
    v["payload"]["note"] = json!("x");
    assert_invalid(&v, "payload.note");
    assert_schema_refuses(&v);
}

#[test]
fn bad_values_are_named() {
    let cases: [(&str, &str, Value, &str); 8] = [
        (
            "payment.captured",
            "/occurred_at",
            json!("2026-11-20T10:00:00+01:00"),
            "occurred_at",
        ),
        (
            "payment.captured",
            "/recorded_at",
            json!("2026-11-20T10:00:00.1234Z"),
            "recorded_at",
        ),
        (
            "payment.captured",
            "/raw_digest",
            json!("sha256:ABC"),
            "raw_digest",
        ),
        (
            "payment.captured",
            "/source/provider",
            json!(""),
            "source.provider",
        ),
        (
            "stock.corrected",
            "/payload/delta",
            json!(0),
            "payload.delta",
        ),
        (
            "payment.authorized",
            "/payload/mode",
            json!("maybe"),
            "payload.mode",
        ),
        (
            "reservation.expired",
            "/payload/reservation",
            json!("not-a-uuid"),
            "payload.reservation",
        ),
        (
            "chargeback.opened",
            "/payload/deadline",
            json!("tomorrow"),
            "payload.deadline",
        ),
    ];
    for (kind, pointer, bad, field) in cases {
        let mut v = golden(kind);
        *v.pointer_mut(pointer).unwrap() = bad;
        assert_invalid(&v, field);
        assert_schema_refuses(&v);
    }
}

#[test]
fn an_oversized_envelope_is_undecodable() {
    let bytes = vec![b' '; contract::ENVELOPE_LEN_MAX_BYTES + 1];
    assert!(matches!(
        decode(&bytes),
        Err(DecodeError::Undecodable { .. })
    ));
}

#[test]
fn control_characters_in_identifiers_are_refused() {
    let mut v = golden("stock.received");
    v["payload"]["sku"] = json!("SKU\u{1}A");
    assert_invalid(&v, "payload.sku");
    assert_schema_refuses(&v);
}

// ---- v2 ------------------------------------------------------------------------------

fn golden_v2(kind: &str) -> Value {
    serde_json::from_slice(&common::golden_v2_bytes(kind)).unwrap()
}

fn assert_v2_schema_refuses(v: &Value) {
    assert!(
        !common::envelope_validator_v2().is_valid(v),
        "the v2 schema accepts {v:#}"
    );
}

#[test]
fn v2_merchant_and_causation_id_are_required_keys() {
    for field in ["merchant", "causation_id"] {
        let mut v = golden_v2("payment.voided");
        v.as_object_mut().unwrap().remove(field);
        assert_invalid(&v, field);
        assert_v2_schema_refuses(&v);
    }
}

#[test]
fn v2_bad_merchants_are_named() {
    let long = "m".repeat(201);
    for bad in [
        json!(""),
        json!("acme\u{7}"),
        json!(long),
        json!(null),
        json!(7),
    ] {
        let mut v = golden_v2("stock.received");
        v["merchant"] = bad.clone();
        assert_invalid(&v, "merchant");
        assert_v2_schema_refuses(&v);
    }
}

#[test]
fn v2_bad_causation_ids_are_named() {
    let upper = golden_v2("payment.authorized")["event_id"]
        .as_str()
        .unwrap()
        .to_uppercase();
    for bad in [json!("not-a-uuid"), json!(upper), json!(""), json!(1)] {
        let mut v = golden_v2("payment.captured");
        v["causation_id"] = bad.clone();
        assert_invalid(&v, "causation_id");
        assert_v2_schema_refuses(&v);
    }
    // An event cannot cause itself: the decoder is stricter than a schema can be.
    let mut v = golden_v2("payment.captured");
    v["causation_id"] = v["event_id"].clone();
    assert_invalid(&v, "causation_id");
}

#[test]
fn v2_objects_are_closed_and_v1_does_not_take_v2_fields() {
    let mut v = golden_v2("payment.captured");
    v["tenant"] = json!("x");
    assert_invalid(&v, "tenant");
    assert_v2_schema_refuses(&v);

    let mut v = golden("payment.captured");
    v["merchant"] = json!("acme-outdoor");
    assert_invalid(&v, "merchant");
    assert_schema_refuses(&v);

    let mut v = golden_v2("payment.captured");
    v["version"] = json!(1);
    assert_invalid(&v, "causation_id");
}

#[test]
fn v2_keeps_v1_errors_with_their_paths() {
    let mut v = golden_v2("order.registered");
    v["payload"]["lines"][1]
        .as_object_mut()
        .unwrap()
        .remove("sku");
    assert_invalid(&v, "payload.lines[1].sku");
    assert_v2_schema_refuses(&v);

    let mut v = golden_v2("payment.captured");
    v["source"]["identity"] = json!("portone:ord_1:Success:201");
    assert_invalid(&v, "event_id");

    let mut v = golden_v2("payment.captured");
    v["kind"] = json!("payment.teleported");
    assert_invalid(&v, "kind");
    assert_v2_schema_refuses(&v);

    let mut v = golden_v2("payment.captured");
    v["payload"]["amount"]["amount"] = json!(100.5);
    assert_invalid(&v, "payload.amount.amount");
    assert_v2_schema_refuses(&v);
}

#[test]
fn v2_an_unknown_version_is_still_unknown_version() {
    let mut v = golden_v2("payment.captured");
    v["version"] = json!(3);
    assert_eq!(
        decode_value(&v),
        Err(DecodeError::UnknownVersion { version: 3 })
    );
    assert_v2_schema_refuses(&v);
}

#[test]
fn v2_a_policy_change_names_a_policy_in_its_canonical_text_and_who_and_why() {
    for bad in [
        json!("sometimes"),
        json!(""),
        json!("deduct_on_capture, stripe=reserve_on_authorization"),
        json!("stripe=deduct_on_capture"),
        json!("deduct_on_capture,stripe=deduct_on_capture"),
        json!("reserve_on_authorization,stripe=deduct_on_capture,adyen=deduct_on_capture"),
        json!(7),
    ] {
        let mut v = golden_v2("policy.changed");
        v["payload"]["policy"] = bad.clone();
        assert_invalid(&v, "payload.policy");
    }
    // What the schema can say: not a policy list at all.
    for bad in [json!("sometimes"), json!(""), json!(" deduct_on_capture")] {
        let mut v = golden_v2("policy.changed");
        v["payload"]["policy"] = bad;
        assert_v2_schema_refuses(&v);
    }
    for field in ["actor", "reason"] {
        let mut v = golden_v2("policy.changed");
        v["payload"][field] = json!("  ");
        assert_invalid(&v, &format!("payload.{field}"));
        assert_v2_schema_refuses(&v);
    }
}
