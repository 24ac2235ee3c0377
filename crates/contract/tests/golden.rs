//! The golden examples under `schemas/v1/examples/`: each validates against the v1 JSON
//! Schema, decodes into the domain event written out in `common/expected.rs`, re-encodes
//! with the v1 encoder to the same JSON, and upcasts to the v2 envelope the rule says.
//! These files are kept forever; a release that stops decoding one is broken.

#![allow(clippy::unwrap_used)]

mod common;

use common::expected::{T0, expected_kind};
use contract::{DEFAULT_MERCHANT, Envelope, Source, decode, decode_event, v1};
use domain::{Event, EventId, Timestamp};
use serde_json::Value;

#[test]
fn there_is_one_golden_example_per_kind_and_nothing_else() {
    let mut files: Vec<String> = std::fs::read_dir(common::schemas_v1().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = common::KINDS.iter().map(|k| format!("{k}.json")).collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[test]
fn every_golden_example_validates_against_the_schema() {
    let validator = common::envelope_validator();
    for (kind, bytes) in common::goldens() {
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:#?}");
    }
}

#[test]
fn every_golden_example_decodes_into_its_domain_event() {
    for (kind, bytes) in common::goldens() {
        let (envelope, event) = decode_event(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(envelope.kind_name(), kind);
        assert_eq!(
            envelope.event_id().to_string(),
            value["event_id"].as_str().unwrap(),
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
fn every_golden_example_re_encodes_to_the_same_json_with_the_v1_encoder() {
    for (kind, bytes) in common::goldens() {
        let envelope: v1::Envelope = serde_json::from_slice(&bytes).unwrap();
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let encoded: Value = serde_json::from_slice(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(encoded, original, "{kind}");
        let again: v1::Envelope = serde_json::from_slice(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(again, envelope, "{kind}");
    }
}

#[test]
fn every_golden_example_is_what_the_v1_encoder_writes_for_its_domain_event() {
    for (kind, bytes) in common::goldens() {
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let decoded = decode(&bytes).unwrap();
        let built = v1::Envelope::new(
            &expected_kind(kind),
            Source {
                provider: original["source"]["provider"].as_str().unwrap().to_owned(),
                identity: original["source"]["identity"].as_str().unwrap().to_owned(),
            },
            decoded.occurred_at,
            decoded.recorded_at,
            None,
        )
        .unwrap();
        let built = v1::Envelope {
            raw_digest: decoded.raw_digest.clone(),
            ..built
        };
        let encoded: Value = serde_json::from_slice(&built.to_json().unwrap()).unwrap();
        assert_eq!(encoded, original, "{kind}");
    }
}

#[test]
fn every_golden_example_upcasts_to_the_v2_envelope_of_the_rule() {
    for (kind, bytes) in common::goldens() {
        let as_v1: v1::Envelope = serde_json::from_slice(&bytes).unwrap();
        let (upcast, event) = decode_event(&bytes).unwrap();
        let expected = Envelope {
            event_id: as_v1.event_id,
            merchant: DEFAULT_MERCHANT.to_owned(),
            causation_id: None,
            occurred_at: as_v1.occurred_at,
            recorded_at: as_v1.recorded_at,
            source: as_v1.source.clone(),
            raw_digest: as_v1.raw_digest.clone(),
            payload: contract::v2::Payload::V1(as_v1.payload.clone()),
        };
        assert_eq!(upcast, expected, "{kind}");
        assert_eq!(contract::v2::upcast(as_v1.clone()), expected, "{kind}");
        assert_eq!(
            upcast.event_id(),
            as_v1.event_id(),
            "{kind}: the id does not change"
        );
        assert_eq!(
            event,
            as_v1.to_domain().unwrap(),
            "{kind}: nor does the event"
        );
        let written: Value = serde_json::from_slice(&upcast.to_json().unwrap()).unwrap();
        assert_eq!(
            written["version"], 2,
            "{kind}: an upcast event is written as v2"
        );
        assert!(common::envelope_validator_v2().is_valid(&written), "{kind}");
    }
}

#[test]
fn the_v1_reader_of_the_previous_release_refuses_v2_as_unknown() {
    let bytes = common::golden_v2_bytes("payment.captured");
    let e = serde_json::from_slice::<v1::Envelope>(&bytes).unwrap_err();
    assert!(e.to_string().contains("unknown envelope version 2"), "{e}");
}

#[test]
fn envelope_new_digests_the_raw_payload() {
    let source = Source {
        provider: "portone".to_owned(),
        identity: "portone:ord_1:Success:200".to_owned(),
    };
    let kind = expected_kind("payment.captured");
    let raw = br#"{"imp_uid":"imp_1","merchant_uid":"ord_1","status":"paid"}"#;
    let envelope = Envelope::new(
        &kind,
        source,
        Timestamp(T0),
        Timestamp(T0 + 1250),
        Some(raw),
    );
    let golden = decode(&common::golden_bytes("payment.captured")).unwrap();
    assert_eq!(envelope, golden);
    assert_eq!(
        envelope.raw_digest.as_deref(),
        Some(contract::v1::raw_digest(raw).as_str())
    );
}

#[test]
fn serde_deserialize_runs_the_same_checks_as_decode() {
    let bytes = common::golden_bytes("stock.received");
    let via_serde: Envelope = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(via_serde, decode(&bytes).unwrap());
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    value["event_id"] = Value::String(uuid_nil());
    assert!(serde_json::from_value::<Envelope>(value).is_err());
}

fn uuid_nil() -> String {
    "00000000-0000-0000-0000-000000000000".to_owned()
}
