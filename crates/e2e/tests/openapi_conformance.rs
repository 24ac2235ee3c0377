//! Issue 13: Schemathesis (from PyPI; `scripts/test` installs the pinned version) against a
//! live stockledger: an ingress, a ledger and an exception consumer on real NATS and
//! PostgreSQL, seeded with the order, stock and exception the description's examples name.
//! Schemathesis reads `GET /openapi.json`, generates requests for every operation
//! (examples, the coverage phase's edge values, then random fuzzing) and checks each
//! answer:
//! - `not_a_server_error`: no 5xx (503 is documented as "unavailable" and would be one too:
//!   the stack is healthy throughout, so any 5xx is a bug);
//! - `status_code_conformance`, `content_type_conformance`, `response_headers_conformance`,
//!   `response_schema_conformance`: every answer is one the description lists, with its
//!   media type, headers and body schema.
//!
//! Authentication: the merchant token is sent with every request (`-H Authorization`);
//! Stripe events are signed by the hook in `scripts/schemathesis/hooks.py` with the test's
//! endpoint secret, so generated events reach the event parser. PortOne and Adyen sign
//! inside the body, over members the generator picks; they are fuzzed unsigned and must
//! answer a documented 4xx (their signed paths are `crates/ingress/tests/providers_http.rs`).
//!
//! The run is bounded (`--max-examples`, and a hard timeout here); the summary line with
//! the number of operations tested is printed (`cargo test … -- --nocapture`).
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use e2e::http::{Client, portone_webhook};
use e2e::{Harness, TEST_API_TOKEN, exceptions_settings, ingress_config, test_settings};
use testkit::Backend;

/// The Schemathesis release `scripts/test` installs.
const SCHEMATHESIS: &str = "st";
/// Examples per operation and phase: enough to reach every branch the description names,
/// small enough to keep the run near a minute.
const MAX_EXAMPLES: &str = "100";
/// The whole run's bound.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

const STRIPE_SECRET: &str = "whsec_schemathesis";
const ADYEN_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let h = Harness::new(Backend::Postgres).await.unwrap();
    let _ledger = h.start_ledger(test_settings()).await.unwrap();
    let _exceptions = h.start_exceptions(exceptions_settings()).await.unwrap();
    let cfg = ingress_config(&[
        ("STOCKLEDGER_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
        ("STOCKLEDGER_ADYEN_HMAC_KEY", ADYEN_KEY),
        ("STOCKLEDGER_CONFIRMATION_DEADLINE", "2s"),
        ("STOCKLEDGER_PUBLISH_TIMEOUT", "2s"),
    ])
    .unwrap();
    let ingress = h.start_ingress(&cfg).await.unwrap();
    let base = ingress.url.clone();

    // What the description's examples name: stock of MUG-RED at main, order ORD-1001
    // (registered with the example's content, then paid), so the examples reach the
    // answers that move stock (a return RMA-7 of a sold order, its inspection).
    let client = Client::new(&base);
    client.receive("MUG-RED", 50, "PO-1").await;
    client.register("ORD-1001", "MUG-RED", 2, "25.00").await;
    let (status, body) = client
        .post(
            "/webhooks/portone",
            portone_webhook("PO-TXN-1", "ORD-1001", "Success", "25.00"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    e2e::wait::eventually("ORD-1001 sold", || async {
        client.stock("MUG-RED").await.2 == 2
    })
    .await;

    // And an exception: a captured payment for an order nobody registered.
    let (status, body) = client
        .post(
            "/webhooks/portone",
            portone_webhook("PO-TXN-2", "ORD-GHOST", "Success", "10.00"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exception_id = loop {
        let (_, list) = client
            .api(
                reqwest::Method::GET,
                "/v1/exceptions?reason=unknown_order",
                None,
            )
            .await;
        if let Some(id) = list["exceptions"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no unknown_order exception: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let reports = tempfile::tempdir().unwrap();
    let mut st = tokio::process::Command::new(SCHEMATHESIS);
    st.arg("--config-file")
        .arg(root.join("scripts/schemathesis/schemathesis.toml"))
        .args([
        "run",
        &format!("{base}/openapi.json"),
        "--url",
        &base,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        "--header",
        &format!("Authorization: Bearer {TEST_API_TOKEN}"),
        "--max-examples",
        MAX_EXAMPLES,
        "--phases",
        "examples,coverage,fuzzing",
        // One worker: Hypothesis describes strategies with `ast.parse`, which CPython 3.11
        // can fail with "AST constructor recursion depth mismatch" when threads share it.
        "--workers",
        "1",
        "--seed",
        "13",
        "--generation-deterministic",
        "--report",
        "junit",
        "--report-dir",
    ])
    .arg(reports.path())
    .env("PYTHONPATH", root.join("scripts/schemathesis"))
    .env("SCHEMATHESIS_HOOKS", "hooks")
    .env("STOCKLEDGER_TEST_STRIPE_SECRET", STRIPE_SECRET)
    .env("STOCKLEDGER_TEST_EXCEPTION_ID", &exception_id)
    .env("NO_COLOR", "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = st.spawn().unwrap_or_else(|e| {
        panic!("cannot run `{SCHEMATHESIS}` ({e}): install it with scripts/test or `pip install schemathesis`")
    });
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .expect("schemathesis did not finish in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}); its report is above",
        out.status.code()
    );
    // It really ran, on every operation: the JUnit report names each operation it tested.
    let mut tested = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(reports.path()).unwrap() {
        let xml = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for case in xml.split("<testcase ").skip(1) {
            if let Some(name) = case
                .split("name=\"")
                .nth(1)
                .and_then(|n| n.split('"').next())
            {
                tested.insert(name.to_owned());
            }
        }
    }
    let doc: serde_json::Value = serde_json::from_str(ingress::openapi::document_json()).unwrap();
    let mut described = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            described.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    println!(
        "schemathesis tested {} of the {} described operations: {tested:?}",
        tested.len(),
        described.len()
    );
    // Schemathesis leaves out the operation that serves the description it loaded: that
    // request is the run's first (and `crates/ingress/tests/openapi.rs` checks its bytes).
    described.remove("GET /openapi.json");
    let missing: Vec<_> = described.difference(&tested).collect();
    assert!(missing.is_empty(), "not tested: {missing:?}");
    ingress.stop().await;
}
