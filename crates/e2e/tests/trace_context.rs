//! The trace context of a request travels with the event it causes: a caller's W3C
//! `traceparent` reaches the message in JetStream (and so the ledger, which logs the event
//! under the same trace id), and a request without one gets a new trace of its own.
#![allow(clippy::unwrap_used)]

use bus::trace::TraceContext;
use e2e::{Harness, TEST_API_TOKEN, ingress_config, test_settings};
use testkit::Backend;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Every event in the events stream with the trace context it was published with, as
/// (the event's JSON text, its trace).
async fn traced_events(h: &Harness) -> Vec<(String, Option<TraceContext>)> {
    let stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.namespace().events_stream())
        .await
        .unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        // The trace rides beside the message id, never instead of it: JetStream's dedupe
        // still sees every event's id.
        let msg_id = msg
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned());
        assert!(msg_id.is_some_and(|id| !id.is_empty()), "{:?}", msg.headers);
        for (part, trace) in bus::group::split_traced(Some(&msg.headers), &msg.payload) {
            out.push((String::from_utf8(part.to_vec()).unwrap(), trace));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_id_travels_with_its_event_and_others_get_their_own() {
    let h = Harness::new(Backend::Sqlite).await.unwrap();
    let _ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let http = e2e::http::reqwest_client();
    for (reference, traceparent) in [("traced", Some(CALLER)), ("untraced", None)] {
        let mut req = http
            .post(format!("{}/v1/stock/receipts", ingress.url))
            .bearer_auth(TEST_API_TOKEN)
            .json(&serde_json::json!({
                "sku": "tee", "location": "main", "quantity": 1, "reference": reference
            }));
        if let Some(t) = traceparent {
            req = req.header("traceparent", t);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert!(status == 200 || status == 201, "{status}");
    }
    let events = traced_events(&h).await;
    let trace_of = |reference: &str| {
        events
            .iter()
            .find(|(text, _)| text.contains(&format!("\"{reference}\"")))
            .and_then(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no traced event for {reference}: {events:?}"))
    };
    let traced = trace_of("traced");
    assert_eq!(traced.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        traced.to_string(),
        CALLER,
        "the ingress continues the trace as a new span"
    );
    let own = trace_of("untraced");
    assert_ne!(own.trace_id(), traced.trace_id());
    ingress.stop().await;
}
