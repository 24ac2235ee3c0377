//! Property tests: every parser and verifier is total over arbitrary bytes (returns `Ok` or a
//! typed error, never panics), and a signed payload whose signed content is mutated never
//! verifies.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use proptest::prelude::*;
use providers::{Error, adyen, ipint, mac, portone, stripe};

/// 256 cases by default; `PROPTEST_CASES` raises it for a longer local run.
fn config() -> ProptestConfig {
    ProptestConfig::default()
}

/// A malformed error always names a field.
fn typed(err: &Error) -> bool {
    match err {
        Error::Malformed { field, .. } => !field.is_empty(),
        _ => true,
    }
}

/// Replaces the byte at `index % len` with `byte` (guaranteed to differ).
fn mutate(body: &[u8], index: usize, byte: u8) -> Vec<u8> {
    let mut out = body.to_vec();
    let i = index % out.len();
    out[i] = if out[i] == byte {
        byte.wrapping_add(1)
    } else {
        byte
    };
    out
}

/// Bytes biased towards JSON syntax so mutations reach deep into the parsers.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec(
            prop::sample::select(b"{}[]\":,0123456789.-eE truefalsnul\\u".to_vec()),
            0..256
        ),
    ]
}

// ---------------------------------------------------------------- PortOne

const P2_BODY: &str = r#"{"currency":"USD","amount":500,"order_ref":"2mbbExY77pp8iC0AQ1ucWymnd3c","channel_order_ref":"20240926HULUNYGP6MA2","merchant_order_ref":"2mbbDi9wX3wAgLUDCnRMbQwkwZm_1","country_code":"US","status":"Success","channel_key":"PAYLETTER","method_name":"Payletter Credit Card","method_key":"PAYLETTER_CREDIT_CARD","signature_hash":"s1WPfsDVVGy/1hBr8ZdcR13GLSYNDEq5oph5ryyOsc8=","status_code":"2000"}"#;
const PORTONE_SECRET: &str = "PORTONE_SECRET";

fn signed_portone_body(fields: &[String; 8], amount: f64, secret: &str) -> Vec<u8> {
    let [
        channel_key,
        channel_order_ref,
        country_code,
        currency,
        merchant_order_ref,
        method_name,
        order_ref,
        status,
    ] = fields;
    let decimal: rust_decimal::Decimal = format!("{amount}").parse().unwrap_or_default();
    let signed = portone::PaymentSignatureFields {
        amount: decimal,
        channel_key,
        channel_order_ref,
        country_code,
        currency,
        merchant_order_ref,
        method_name,
        order_ref,
        status,
    };
    let sig = portone::sign_payment_webhook(&signed, secret);
    serde_json::json!({
        "amount": amount, "channel_key": channel_key, "channel_order_ref": channel_order_ref,
        "country_code": country_code, "currency": currency, "merchant_order_ref": merchant_order_ref,
        "method_name": method_name, "order_ref": order_ref, "status": status,
        "status_code": "2000", "signature_hash": sig,
    })
    .to_string()
    .into_bytes()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn portone_parsers_are_total(raw in jsonish_bytes()) {
        if let Err(e) = portone::parse_payment_webhook(&raw) { prop_assert!(typed(&e)); }
        if let Err(e) = portone::parse_inventory_confirmation(&raw) { prop_assert!(typed(&e)); }
        if let Err(e) = portone::parse_refund_webhook(&raw) { prop_assert!(typed(&e)); }
    }

    #[test]
    fn portone_mutated_body_never_verifies_with_other_signed_content(index in any::<usize>(), byte in any::<u8>()) {
        let original = portone::parse_payment_webhook(P2_BODY.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mutated = mutate(P2_BODY.as_bytes(), index, byte);
        if let Ok(hook) = portone::parse_payment_webhook(&mutated) {
            let changed = portone::payment_string_to_sign(&hook.signature_fields())
                != portone::payment_string_to_sign(&original.signature_fields())
                || hook.signature_hash != original.signature_hash;
            let verdict = portone::verify_payment_webhook(&hook, PORTONE_SECRET);
            if changed { prop_assert_eq!(verdict, Err(Error::BadSignature)); } else { prop_assert_eq!(verdict, Ok(())); }
        }
    }

    #[test]
    fn portone_sign_then_verify_round_trips_and_field_changes_fail(
        fields in proptest::array::uniform8("[a-zA-Z0-9 ~*#/%+&=._\u{AC00}-\u{AC10}-]{1,12}"),
        cents in 0u64..10_000_000_000,
        which in 0usize..9,
    ) {
        let amount = cents as f64 / 100.0;
        let body = signed_portone_body(&fields, amount, PORTONE_SECRET);
        let hook = portone::parse_payment_webhook(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(portone::verify_payment_webhook(&hook, PORTONE_SECRET), Ok(()));
        prop_assert_eq!(portone::verify_payment_webhook(&hook, "another secret"), Err(Error::BadSignature));
        let mut forged = hook.clone();
        match which {
            0 => forged.amount += rust_decimal::Decimal::new(1, 2),
            1 => forged.channel_key.push('x'),
            2 => forged.channel_order_ref.push('x'),
            3 => forged.country_code.push('x'),
            4 => forged.currency.push('x'),
            5 => forged.merchant_order_ref.push('x'),
            6 => forged.method_name.push('x'),
            7 => forged.order_ref.push('x'),
            _ => forged.status.push('x'),
        }
        prop_assert_eq!(portone::verify_payment_webhook(&forged, PORTONE_SECRET), Err(Error::BadSignature));
    }

    /// The amount is signed in Go's `FormatFloat(f, 'f', -1, 64)` form whatever JSON spelling
    /// (plain, exponent) carried the float.
    #[test]
    fn portone_amount_is_signed_in_go_shortest_form(value in 1e-6f64..1e15, exponent_form in any::<bool>()) {
        let text = if exponent_form { format!("{value:e}") } else { serde_json::to_string(&value).unwrap_or_default() };
        let body = P2_BODY.replace(r#""amount":500"#, &format!(r#""amount":{text}"#));
        let hook = portone::parse_payment_webhook(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let signed = portone::payment_string_to_sign(&hook.signature_fields());
        let expected_prefix = format!("amount={value}&");
        prop_assert!(signed.starts_with(&expected_prefix), "{} vs {}", signed, expected_prefix);
    }
}

// ---------------------------------------------------------------- Stripe

const STRIPE_BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
const STRIPE_T: i64 = 1_700_000_000;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stripe_parse_and_verify_are_total(raw in jsonish_bytes(), header in ".{0,200}", now in any::<i64>(), tol in any::<i64>()) {
        if let Err(e) = stripe::parse_event(&raw) { prop_assert!(typed(&e)); }
        let secrets = vec!["whsec_test_secret".to_owned()];
        let verdict = stripe::verify_signature(&raw, &header, &secrets, now, tol);
        prop_assert!(verdict != Ok(()) || header.contains("v1="));
        if let Ok(event) = stripe::parse_event(&raw) { let _ = stripe::classify(&event); }
    }

    #[test]
    fn stripe_mutated_body_never_verifies(index in any::<usize>(), byte in any::<u8>()) {
        let secrets = vec!["whsec_test_secret".to_owned()];
        let header = stripe::sign(STRIPE_BODY, "whsec_test_secret", STRIPE_T);
        prop_assert_eq!(stripe::verify_signature(STRIPE_BODY, &header, &secrets, STRIPE_T, 300), Ok(()));
        let mutated = mutate(STRIPE_BODY, index, byte);
        prop_assert_eq!(stripe::verify_signature(&mutated, &header, &secrets, STRIPE_T, 300), Err(Error::BadSignature));
    }

    #[test]
    fn stripe_mutated_header_never_verifies(index in any::<usize>(), byte in any::<u8>()) {
        let secrets = vec!["whsec_test_secret".to_owned()];
        let header = stripe::sign(STRIPE_BODY, "whsec_test_secret", STRIPE_T);
        let mutated = mutate(header.as_bytes(), index, byte);
        if let Ok(mutated) = std::str::from_utf8(&mutated) {
            let verdict = stripe::verify_signature(STRIPE_BODY, mutated, &secrets, STRIPE_T, 300);
            // Only a change of hex-digit case in the signature (or whitespace the parser trims)
            // leaves the signed content intact.
            let same_content = mutated.to_ascii_lowercase() == header || mutated.replace(' ', "") == header;
            if !same_content { prop_assert_ne!(verdict, Ok(())); }
        }
    }

    #[test]
    fn stripe_any_secret_in_rotation_verifies(secrets in proptest::collection::vec("[a-z_0-9]{1,40}", 1..4), pick in any::<prop::sample::Index>(), body in proptest::collection::vec(any::<u8>(), 0..128)) {
        let secret = pick.get(&secrets).clone();
        let header = stripe::sign(&body, &secret, STRIPE_T);
        prop_assert_eq!(stripe::verify_signature(&body, &header, &secrets, STRIPE_T, 300), Ok(()));
    }
}

// ---------------------------------------------------------------- Adyen

const ADYEN_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const ADYEN_BATCH: &str = r#"{"live":"false","notificationItems":[{"NotificationRequestItem":{"additionalData":{"hmacSignature":"1T8eBFpcnRxgrvG9PJpXjcwmrilaMBUbtH83r1nGqW0=","modification.action":"refund"},"amount":{"currency":"EUR","value":1000},"eventCode":"CANCEL_OR_REFUND","eventDate":"2021-01-01T01:00:00+01:00","merchantAccountCode":"YOUR_MERCHANT_ACCOUNT","merchantReference":"YOUR_MERCHANT_REFERENCE","originalReference":"9913140798220028","paymentMethod":"visa","pspReference":"QFQTPCQ8HXSKGK82","reason":"","success":"true"}}]}"#;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn adyen_parse_and_verify_are_total(raw in jsonish_bytes(), auth in proptest::option::of(".{0,80}")) {
        let keys = vec![adyen::parse_hmac_key(ADYEN_KEY).unwrap_or_default()];
        match adyen::parse_batch(&raw) {
            Ok(batch) => {
                let _ = adyen::verify_batch(&batch, &keys);
                for item in &batch.items { let _ = adyen::classify(item); }
            }
            Err(e) => prop_assert!(typed(&e)),
        }
        let verdict = adyen::verify_basic_auth(auth.as_deref(), "user", "pass");
        prop_assert!(verdict == Err(Error::BadCredentials) || verdict == Ok(()));
    }

    #[test]
    fn adyen_mutated_item_never_verifies_with_other_signed_content(index in any::<usize>(), byte in any::<u8>()) {
        let keys = vec![adyen::parse_hmac_key(ADYEN_KEY).unwrap_or_default()];
        let original = adyen::parse_batch(ADYEN_BATCH.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(adyen::verify_batch(&original, &keys), Ok(()));
        let mutated = mutate(ADYEN_BATCH.as_bytes(), index, byte);
        if let Ok(batch) = adyen::parse_batch(&mutated) {
            let changed = batch.items.len() != 1
                || batch.items[0].string_to_sign() != original.items[0].string_to_sign()
                || batch.items[0].hmac_signature != original.items[0].hmac_signature;
            let verdict = adyen::verify_batch(&batch, &keys);
            if changed { prop_assert_ne!(verdict, Ok(())); } else { prop_assert_eq!(verdict, Ok(())); }
        }
    }

    #[test]
    fn adyen_basic_auth_round_trips(user in "[^:]{1,20}", pass in ".{1,20}") {
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
        prop_assert_eq!(adyen::verify_basic_auth(Some(&header), &user, &pass), Ok(()));
        let wrong = format!("{pass}x");
        prop_assert_eq!(adyen::verify_basic_auth(Some(&header), &user, &wrong), Err(Error::BadCredentials));
    }
}

// ---------------------------------------------------------------- iPint

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ipint_parsers_are_total(raw in jsonish_bytes()) {
        if let Err(e) = ipint::parse_callback(&raw) { prop_assert!(typed(&e)); }
        match ipint::parse_invoice(&raw) {
            Ok(invoice) => { let _ = ipint::classify(&invoice); }
            Err(e) => prop_assert!(typed(&e)),
        }
    }

    #[test]
    fn ipint_signature_shape_and_sensitivity(secret in ".{0,40}", nonce in "[0-9]{1,16}", id in "[A-Za-z0-9]{1,40}", index in any::<usize>(), byte in any::<u8>()) {
        let path = format!("/invoice?id={id}");
        let sig = ipint::sign_request(&secret, &nonce, &path);
        prop_assert_eq!(sig.len(), 96);
        prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let mutated = mutate(path.as_bytes(), index, byte);
        if let Ok(mutated) = String::from_utf8(mutated) {
            prop_assert_ne!(ipint::sign_request(&secret, &nonce, &mutated), sig);
        }
    }
}

// ---------------------------------------------------------------- MAC helpers

proptest! {
    #![proptest_config(config())]

    /// The block-size key preparation in `mac` agrees with the `hmac` crate for every key length.
    #[test]
    fn mac_matches_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..300), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        use hmac::{Hmac, Mac};
        let mut a = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        a.update(&msg);
        prop_assert_eq!(a.finalize().into_bytes().to_vec(), mac::hmac_sha256(&key, &msg).to_vec());
        let mut b = Hmac::<sha2::Sha384>::new_from_slice(&key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        b.update(&msg);
        prop_assert_eq!(b.finalize().into_bytes().to_vec(), mac::hmac_sha384(&key, &msg).to_vec());
    }
}
