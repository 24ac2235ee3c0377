//! Stripe, Adyen and iPint through HTTP: the published vectors, what is published (and
//! how), and what is refused with nothing published. Property tests throw arbitrary bytes
//! and mutated valid payloads at each endpoint: every answer is a 4xx or a documented 200,
//! and nothing is published for a refused one.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::*;
use ingress::{Clock, Settings};
use proptest::prelude::*;

const T: i64 = 1_700_000_000;
const KEY_A: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const KEY_B: &str = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174";

fn provider_settings(extra: &[(&str, &str)], now: i64) -> Settings {
    let mut map = HashMap::from([
        ("STOCKLEDGER_API_TOKEN".to_owned(), TOKEN.to_owned()),
        ("STOCKLEDGER_PUBLISH_TIMEOUT".to_owned(), "2s".to_owned()),
    ]);
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut s = Settings::from_config(&config::Config::from_map(&map).unwrap()).unwrap();
    s.clock = Clock::fixed(now);
    s
}

fn all_configured(now: i64) -> Settings {
    provider_settings(
        &[
            (
                "STOCKLEDGER_STRIPE_WEBHOOK_SECRET",
                "whsec_test_secret,whsec_old_secret",
            ),
            ("STOCKLEDGER_ADYEN_HMAC_KEY", &format!("{KEY_A},{KEY_B}")),
        ],
        now,
    )
}

/// Messages in the callbacks stream.
async fn callbacks(world: &World) -> u64 {
    let mut stream = world
        .bus
        .jetstream()
        .get_stream(world.namespace.callbacks_stream())
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

// ---- Stripe ----------------------------------------------------------------------------

const VECTOR_BODY: &str = r#"{"id":"evt_test_webhook","object":"event"}"#;
const VECTOR_V1: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";

fn stripe_body(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","object":"event","type":"payment_intent.succeeded","created":{T},"data":{{"object":{{"id":"pi_9","object":"payment_intent","amount":1999,"currency":"usd","metadata":{{"order_ref":"ord-9"}}}}}}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_vector_3_6_rotation_header_verifies_over_http() {
    let world = World::shared().await;
    let ingress = world.ingress(all_configured(T)).await;
    // The vector's body has no `type`: the signature passes (not 401) and the body is 400.
    let header = format!(
        "t={T},v1={},v1={VECTOR_V1},v0={}",
        "0".repeat(64),
        "1".repeat(64)
    );
    let (status, reply) = ingress
        .post_raw(
            "/webhooks/stripe",
            VECTOR_BODY.into(),
            &[("stripe-signature", &header)],
        )
        .await;
    assert_eq!(
        (status, reply["message"].as_str()),
        (400, Some("`type`: missing")),
        "{reply}"
    );
    // The same header with only `v0` matching is a downgrade: refused.
    let v0_only = format!("t={T},v1={},v0={VECTOR_V1}", "0".repeat(64));
    let (status, _) = ingress
        .post_raw(
            "/webhooks/stripe",
            VECTOR_BODY.into(),
            &[("stripe-signature", &v0_only)],
        )
        .await;
    assert_eq!(status, 401);
    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_signed_event_is_published_once_and_a_stale_one_is_refused() {
    let world = World::shared().await;
    let body = stripe_body("evt_9");
    let sig = providers::stripe::sign(&body, "whsec_test_secret", T);
    let stale = world.ingress(all_configured(T + 301)).await;
    let (status, reply) = stale
        .post_raw(
            "/webhooks/stripe",
            body.clone(),
            &[("stripe-signature", &sig)],
        )
        .await;
    assert_eq!(status, 401, "{reply}");
    assert!(world.events().await.is_empty());

    let fresh = world.ingress(all_configured(T + 300)).await;
    for _ in 0..2 {
        let (status, reply) = fresh
            .post_raw(
                "/webhooks/stripe",
                body.clone(),
                &[("stripe-signature", &sig)],
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let events = world.events().await;
    assert_eq!(events.len(), 1);
    let (subject, msg_id, env) = &events[0];
    assert!(
        subject.ends_with(".events.stripe.payment.captured"),
        "{subject}"
    );
    assert_eq!(msg_id, &event_id("stripe:evt_9"));
    assert_eq!(env["payload"]["order"]["order_ref"], "ord-9");
    assert_eq!(env["payload"]["amount"]["amount"], "19.99");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_rotated_secret_is_accepted_and_unknown_types_are_ignored() {
    let world = World::shared().await;
    let ingress = world.ingress(all_configured(T)).await;
    let body = stripe_body("evt_old");
    let sig = providers::stripe::sign(&body, "whsec_old_secret", T);
    let (status, _) = ingress
        .post_raw("/webhooks/stripe", body, &[("stripe-signature", &sig)])
        .await;
    assert_eq!(status, 200);
    let unknown = r#"{"id":"evt_u","object":"event","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}"#.to_string().into_bytes();
    let sig = providers::stripe::sign(&unknown, "whsec_test_secret", T);
    let (status, _) = ingress
        .post_raw("/webhooks/stripe", unknown, &[("stripe-signature", &sig)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        world.events().await.len(),
        1,
        "the unknown type published nothing"
    );
    let (_, metrics) = ingress.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains(
        "stockledger_provider_ignored_total{provider=\"stripe\",type=\"customer.created\"} 1"
    ));
    // No secret configured: 401.
    let none = world.ingress(provider_settings(&[], T)).await;
    let body = stripe_body("evt_x");
    let sig = providers::stripe::sign(&body, "whsec_test_secret", T);
    let (status, _) = none
        .post_raw("/webhooks/stripe", body, &[("stripe-signature", &sig)])
        .await;
    assert_eq!(status, 401);
}

// ---- Adyen -----------------------------------------------------------------------------

fn adyen_batch(items: &[String]) -> Vec<u8> {
    let wrapped: Vec<String> = items
        .iter()
        .map(|i| format!(r#"{{"NotificationRequestItem":{i}}}"#))
        .collect();
    format!(
        r#"{{"live":"false","notificationItems":[{}]}}"#,
        wrapped.join(",")
    )
    .into_bytes()
}

fn library_item(sig: &str) -> String {
    format!(
        r#"{{"additionalData":{{"hmacSignature":"{sig}"}},"amount":{{"currency":"EUR","value":1130}},"eventCode":"AUTHORISATION","merchantAccountCode":"TestMerchant","merchantReference":"TestPayment-1407325143704","pspReference":"7914073381342284","success":"true"}}"#
    )
}

fn real_item(psp: &str, mref_json: &str, sig: &str) -> String {
    format!(
        r#"{{"additionalData":{{"hmacSignature":"{sig}"}},"amount":{{"currency":"EUR","value":1000}},"eventCode":"AUTHORISATION","eventDate":"2021-01-01T01:00:00+01:00","merchantAccountCode":"AntoniStroinski","merchantReference":{mref_json},"pspReference":"{psp}","reason":"","success":"true"}}"#
    )
}

const REAL: [(&str, &str, &str, &str); 4] = [
    (
        "M8NB66SBZSGLNK82",
        r#"":slashes are fun""#,
        ":slashes are fun",
        "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA=",
    ),
    (
        "T7FD4VM4D3RZNN82",
        r#""\\\\slashes are fun""#,
        "\\\\slashes are fun",
        "nIgT81gaB5oJpn2jPXupDq68iRo2wUlBsuYjtYfwKqo=",
    ),
    (
        "X3GWNS6KJ8NKGK82",
        r#""//slashes are fun""#,
        "//slashes are fun",
        "9Z0xdpG9Xi3zcmXv14t/BvMBut77O/Xq9D4CQXSDUi4=",
    ),
    (
        "ZVWN7D3WSMK2WN82",
        r#""\\:/\\/slashes are fun""#,
        "\\:/\\/slashes are fun",
        "CZErGCNQaSsxbaQfZaJlakqo7KPP+mIa8a+wx3yNs9A=",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyen_published_vectors_are_accepted_with_either_key() {
    let world = World::shared().await;
    let ingress = world.ingress(all_configured(T)).await;
    let body = adyen_batch(&[library_item("coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=")]);
    let (status, reply) = ingress.post_raw("/webhooks/adyen", body, &[]).await;
    assert_eq!((status, reply.as_str()), (200, Some("[accepted]")));
    for (psp, json, _, sig) in REAL {
        let (status, reply) = ingress
            .post_raw(
                "/webhooks/adyen",
                adyen_batch(&[real_item(psp, json, sig)]),
                &[],
            )
            .await;
        assert_eq!((status, reply.as_str()), (200, Some("[accepted]")), "{psp}");
    }
    let events = world.events().await;
    assert_eq!(events.len(), 5);
    let first = &events[0].2;
    assert_eq!(first["kind"], "payment.authorized");
    assert_eq!(first["payload"]["mode"], "notification");
    assert_eq!(first["payload"]["amount"]["amount"], "11.30");
    assert_eq!(
        events[0].1,
        event_id("adyen:7914073381342284:AUTHORISATION:true")
    );
    for (i, (_, _, order_ref, _)) in REAL.iter().enumerate() {
        assert_eq!(events[i + 1].2["payload"]["order"]["order_ref"], *order_ref);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyen_batch_with_one_forged_item_is_refused_whole() {
    let world = World::shared().await;
    let ingress = world.ingress(all_configured(T)).await;
    let good = library_item("coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=");
    let forged = real_item("M8NB66SBZSGLNK82", r#""another-order""#, REAL[0].3);
    let (status, reply) = ingress
        .post_raw("/webhooks/adyen", adyen_batch(&[good.clone(), forged]), &[])
        .await;
    assert_eq!(status, 401, "{reply}");
    assert!(world.events().await.is_empty());
    // Basic auth, when configured, is checked too.
    let basic = world
        .ingress(provider_settings(
            &[
                ("STOCKLEDGER_ADYEN_HMAC_KEY", KEY_A),
                ("STOCKLEDGER_ADYEN_BASIC_USER", "adyen"),
                ("STOCKLEDGER_ADYEN_BASIC_PASSWORD", "pa:ss"),
            ],
            T,
        ))
        .await;
    let (status, _) = basic
        .post_raw(
            "/webhooks/adyen",
            adyen_batch(std::slice::from_ref(&good)),
            &[],
        )
        .await;
    assert_eq!(status, 401);
    let wrong = format!("Basic {}", b64("adyen:nope"));
    let (status, _) = basic
        .post_raw(
            "/webhooks/adyen",
            adyen_batch(std::slice::from_ref(&good)),
            &[("authorization", &wrong)],
        )
        .await;
    assert_eq!(status, 401);
    assert!(world.events().await.is_empty());
    let right = format!("Basic {}", b64("adyen:pa:ss"));
    let (status, _) = basic
        .post_raw(
            "/webhooks/adyen",
            adyen_batch(&[good]),
            &[("authorization", &right)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(world.events().await.len(), 1);
}

fn b64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- iPint -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipint_callback_is_stored_once_as_a_trigger_and_publishes_no_event() {
    let world = World::shared().await;
    let ingress = world.ingress(provider_settings(&[], T)).await;
    let body =
        br#"{"invoice_id":"voZ3pYmiE16FLaSfFmytouwFfcjR4Zom8","status":"COMPLETED"}"#.to_vec();
    for _ in 0..3 {
        let (status, reply) = ingress.post_raw("/webhooks/ipint", body.clone(), &[]).await;
        assert_eq!((status, reply), (200, serde_json::Value::Null));
    }
    assert_eq!(callbacks(&world).await, 1);
    assert!(
        world.events().await.is_empty(),
        "an unsigned callback is never an event"
    );
    let (status, reply) = ingress
        .post_raw(
            "/webhooks/ipint",
            br#"{"status":"COMPLETED"}"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(callbacks(&world).await, 1);
}

// ---- properties ------------------------------------------------------------------------

/// A request to mutate: (path, body, headers).
type ValidRequest = (&'static str, Vec<u8>, Vec<(String, String)>);

/// Valid payloads to mutate.
fn valid_requests() -> Vec<ValidRequest> {
    let stripe = stripe_body("evt_p");
    let sig = providers::stripe::sign(&stripe, "whsec_test_secret", T);
    vec![
        (
            "/webhooks/stripe",
            stripe,
            vec![("stripe-signature".into(), sig)],
        ),
        (
            "/webhooks/adyen",
            adyen_batch(&[library_item("coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=")]),
            vec![],
        ),
        (
            "/webhooks/ipint",
            br#"{"invoice_id":"inv_1","status":"FAILED"}"#.to_vec(),
            vec![],
        ),
    ]
}

fn mutate(mut body: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for (pos, byte, op) in edits {
        if body.is_empty() {
            body.push(*byte);
            continue;
        }
        let i = pos % body.len();
        match op % 3 {
            0 => body[i] = *byte,
            1 => {
                body.remove(i);
            }
            _ => body.insert(i, *byte),
        }
    }
    body
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    world: World,
    ingress: Ingress,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (world, ingress) = rt.block_on(async {
        let world = World::shared().await;
        let ingress = world.ingress(all_configured(T)).await;
        (world, ingress)
    });
    Fixture { rt, world, ingress }
}

impl Fixture {
    /// Posts and checks the answer; returns whether something was stored.
    fn check(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<(), TestCaseError> {
        self.rt.block_on(async {
            let before = (
                self.world.events().await.len(),
                callbacks(&self.world).await,
            );
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (status, reply) = self.ingress.post_raw(path, body, &h).await;
            let after = (
                self.world.events().await.len(),
                callbacks(&self.world).await,
            );
            prop_assert!(
                status == 200 || (400..500).contains(&status),
                "{path}: {status} {reply}"
            );
            if status != 200 {
                prop_assert_eq!(
                    before,
                    after,
                    "{} refused with {} but stored something",
                    path,
                    status
                );
            }
            Ok(())
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_or_accepted_never_an_error(
        which in 0usize..3,
        body in prop::collection::vec(any::<u8>(), 0..512),
        sig in "[ -~]{0,80}",
    ) {
        thread_local!(static F: Fixture = fixture());
        let (path, _, _) = &valid_requests()[which];
        let headers = vec![("stripe-signature".to_owned(), sig)];
        F.with(|f| f.check(path, body, &headers))?;
    }

    #[test]
    fn mutated_valid_payloads_are_refused_or_accepted_never_an_error(
        which in 0usize..3,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        thread_local!(static F: Fixture = fixture());
        let (path, body, headers) = valid_requests().swap_remove(which);
        let body = mutate(body, &edits);
        F.with(|f| f.check(path, body, &headers))?;
    }
}
