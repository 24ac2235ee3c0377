//! The golden examples under `schemas/v2/examples/`: each validates against the v2 JSON
//! Schema, decodes into the domain event written out in `common/expected.rs` (the same
//! event as the v1 example of its kind: same id, same payload), carries its merchant and
//! cause, re-encodes to the same JSON, and is what the encoder writes. Kept forever.

#![allow(clippy::unwrap_used)]

mod common;

use common::expected::expected_kind;
use contract::{Envelope, Source, decode, decode_event};
use domain::{Event, EventId};
use serde_json::Value;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn there_is_one_golden_example_per_kind_and_nothing_else() {
    let mut files: Vec<String> = std::fs::read_dir(common::schemas_v2().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = common::GOLDENS_V2
        .iter()
        .map(|k| format!("{k}.json"))
        .collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[test]
fn every_golden_example_validates_against_the_v2_schema_and_not_the_v1_schema() {
    let v2 = common::envelope_validator_v2();
    let v1 = common::envelope_validator();
    for (kind, bytes) in common::goldens_v2() {
        let value = json(&bytes);
        let errors: Vec<String> = v2
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:#?}");
        assert!(!v1.is_valid(&value), "{kind}: v1 is closed");
    }
}

#[test]
fn every_golden_example_decodes_into_its_domain_event_and_carries_merchant_and_cause() {
    for (kind, bytes) in common::goldens_v2() {
        let (envelope, event) = decode_event(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let value = json(&bytes);
        assert_eq!(envelope.kind_name(), common::kind_of(kind));
        assert_eq!(
            envelope.event_id().to_string(),
            value["event_id"].as_str().unwrap()
        );
        assert_eq!(
            envelope.merchant,
            value["merchant"].as_str().unwrap(),
            "{kind}"
        );
        assert_eq!(
            envelope.causation_id.map(|c| c.to_string()),
            value["causation_id"].as_str().map(str::to_owned),
            "{kind}"
        );
        let identity = value["source"]["identity"].as_str().unwrap();
        let expected = Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::parse(value["source"]["provider"].as_str().unwrap())
                .unwrap(),
            recorded_at: contract::wire_time::parse(value["recorded_at"].as_str().unwrap())
                .unwrap(),
            kind: expected_kind(kind),
        };
        assert_eq!(event, expected, "{kind}");
        assert_eq!(envelope.to_domain().unwrap(), expected, "{kind}");
    }
}

#[test]
fn the_v1_and_v2_examples_of_a_kind_are_the_same_event() {
    for (kind, bytes) in common::goldens_v2() {
        if !common::has_v1_twin(kind) {
            continue;
        }
        let (v2, from_v2) = decode_event(&bytes).unwrap();
        let (v1, from_v1) = decode_event(&common::golden_bytes(kind)).unwrap();
        assert_eq!(from_v2, from_v1, "{kind}");
        assert_eq!(v2.payload, v1.payload, "{kind}");
        assert_eq!(v2.source, v1.source, "{kind}");
    }
}

#[test]
fn every_golden_example_re_encodes_to_the_same_json() {
    for (kind, bytes) in common::goldens_v2() {
        let envelope = decode(&bytes).unwrap();
        let encoded = json(&envelope.to_json().unwrap());
        assert_eq!(encoded, json(&bytes), "{kind}");
        assert_eq!(
            decode(&envelope.to_json().unwrap()).unwrap(),
            envelope,
            "{kind}"
        );
        let via_serde: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(via_serde, envelope, "{kind}");
    }
}

#[test]
fn every_golden_example_is_what_the_encoder_writes_for_its_domain_event() {
    for (kind, bytes) in common::goldens_v2() {
        let original = json(&bytes);
        let decoded = decode(&bytes).unwrap();
        let mut built = Envelope::new(
            &expected_kind(kind),
            Source {
                provider: original["source"]["provider"].as_str().unwrap().to_owned(),
                identity: original["source"]["identity"].as_str().unwrap().to_owned(),
            },
            decoded.occurred_at,
            decoded.recorded_at,
            None,
        )
        .with_merchant(original["merchant"].as_str().unwrap());
        if let Some(cause) = original["causation_id"].as_str() {
            built = built.caused_by(cause.parse().unwrap());
        }
        if let Some(answer_by) = original["payload"]["answer_by"].as_str() {
            built = built.with_answer_by(contract::wire_time::parse(answer_by).unwrap());
        }
        let built = Envelope {
            raw_digest: decoded.raw_digest.clone(),
            ..built
        };
        assert_eq!(json(&built.to_json().unwrap()), original, "{kind}");
    }
}

#[test]
fn a_confirmations_answer_by_is_not_content_and_only_a_confirmation_has_one() {
    let with = common::golden_v2_bytes("payment.authorized.answer-by");
    let without = common::golden_v2_bytes("payment.authorized");
    let (a, from_a) = decode_event(&with).unwrap();
    let (b, from_b) = decode_event(&without).unwrap();
    assert_eq!(from_a, from_b, "one domain event");
    assert_eq!(a.content_digest(), b.content_digest(), "one content");
    assert_eq!(
        a.answer_by(),
        Some(contract::wire_time::parse("2026-11-20T10:00:07.250Z").unwrap())
    );
    assert_eq!(b.answer_by(), None);
    // A notification has no answer to be due.
    let mut v = json(&with);
    v["payload"]["mode"] = Value::from("notification");
    let err = decode_event(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("payload.answer_by"), "{err}");
    v["payload"]["mode"] = Value::from("confirmation");
    v["payload"]["answer_by"] = Value::from("tomorrow");
    let err = decode_event(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("payload.answer_by"), "{err}");
}

#[test]
fn a_payment_method_is_content_and_the_decoder_is_as_strict_as_the_schema() {
    let with = common::golden_v2_bytes("payment.authorized.payment-method");
    let (envelope, event) = decode_event(&with).unwrap();
    let domain::EventKind::PaymentAuthorized { method, .. } = &event.kind else {
        panic!("{event:?}");
    };
    assert_eq!(method.as_ref().map(|m| m.as_str()), Some("klarna_account"));
    // Content: without it the event, and its digest, differ.
    let mut v = json(&with);
    v["payload"]
        .as_object_mut()
        .unwrap()
        .remove("payment_method");
    let (plain, plain_event) = decode_event(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_ne!(plain_event, event);
    assert_ne!(plain.content_digest(), envelope.content_digest());
    // Without it, the payload is v1's, byte for byte.
    assert_eq!(
        json(&plain.to_json().unwrap())["payload"],
        v["payload"],
        "v1's payload"
    );
    assert!(matches!(
        plain.payload,
        contract::v2::Payload::V1(contract::v1::Payload::PaymentAuthorized(_))
    ));
    // A notification never gets an answer deadline, even with a method.
    let still = envelope
        .clone()
        .with_answer_by(contract::wire_time::parse("2026-11-20T10:00:07Z").unwrap());
    assert_eq!(still, envelope);
    // What the schema refuses, the decoder refuses.
    let schema = common::envelope_validator_v2();
    for bad in [
        Value::Null,
        Value::from(""),
        Value::from("klarna account"),
        Value::from("klärna"),
        Value::from("k".repeat(65)),
        Value::from(7),
    ] {
        v["payload"]["payment_method"] = bad.clone();
        assert!(!schema.is_valid(&v), "{bad}");
        let err = decode_event(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("payload.payment_method"),
            "{bad}: {err}"
        );
    }
    for good in [
        "card",
        "card_present",
        "klarna_paynow",
        "mc",
        "directEbanking",
        "k".repeat(64).as_str(),
    ] {
        v["payload"]["payment_method"] = Value::from(good);
        assert!(schema.is_valid(&v), "{good}");
        let (_, e) = decode_event(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(
            matches!(&e.kind, domain::EventKind::PaymentAuthorized { method: Some(m), .. } if m.as_str() == good),
            "{good}"
        );
    }
}

#[test]
fn the_encoder_writes_version_2_with_the_default_merchant_and_no_cause() {
    let (kind, bytes) = &common::goldens_v2()[0];
    let decoded = decode(bytes).unwrap();
    let built = Envelope::new(
        &expected_kind(kind),
        decoded.source.clone(),
        decoded.occurred_at,
        decoded.recorded_at,
        None,
    );
    let written = json(&built.to_json().unwrap());
    assert_eq!(written["version"], contract::CURRENT_VERSION);
    assert_eq!(written["merchant"], contract::DEFAULT_MERCHANT);
    assert_eq!(written["causation_id"], Value::Null);
}

#[test]
fn encoding_in_a_merchant_scope_is_encoding_the_envelope_with_that_merchant() {
    for (kind, bytes) in common::goldens_v2() {
        let envelope = decode(&bytes).unwrap();
        assert_eq!(
            envelope.to_json_in("shop-9").unwrap(),
            envelope.clone().with_merchant("shop-9").to_json().unwrap(),
            "{kind}"
        );
    }
}

#[test]
fn a_received_message_is_kept_as_the_exact_text_it_was() {
    for (kind, bytes) in common::goldens_v2() {
        let received = contract::decode_received(&bytes).unwrap();
        assert_eq!(received.text.as_bytes(), &bytes[..], "{kind}");
        assert_eq!(received.event.id, received.envelope.event_id, "{kind}");
        assert_eq!(
            received.envelope.event_id,
            EventId::from_dedupe_key(&received.envelope.source.identity),
            "{kind}"
        );
    }
    let mut not_utf8 = common::golden_v2_bytes("payment.captured");
    not_utf8.insert(1, 0xff);
    match contract::decode_received(&not_utf8) {
        Err(contract::DecodeError::Undecodable { message }) => {
            assert!(message.starts_with("not JSON"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
