//! Issue 14, item 3: evidence packs, over real NATS and both databases. A signed PortOne
//! capture for a registered order with stock moves it; another for an order with too
//! little stock is an `oversold` exception, which an operator resolves. Then the real
//! `stockctl` binary writes the order's and the exception's packs:
//! - the raw body is byte for byte what was sent, its SHA-256 is the envelope's
//!   `raw_digest`, and the pack says it matches and how the sender was verified;
//! - the entries carry the balance before and after, the outcomes and the operator's
//!   action are there, and `summary.html` escapes what it shows;
//! - `stockctl evidence verify` passes (exit 0) on the folder, and fails (exit 1) naming
//!   the file when one byte is altered, a file is deleted, or one is added;
//! - `GET /v1/exceptions/{id}/evidence` answers a zip with the same files (and verifies),
//!   and the console's exception page links the same zip, served only with a session;
//! - the raw stream keeps bodies for `STOCKLEDGER_RAW_RETENTION` (its `max_age`), and a
//!   second delivery of the same webhook stores no second body;
//! - a body older than the retention is reported "expired under
//!   STOCKLEDGER_RAW_RETENTION", and with `0` nothing is stored and the pack says so.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::http::{Client, portone_webhook};
use e2e::wait::eventually;
use e2e::{Harness, ingress_config, test_settings};
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::{Backend, on_both_backends};

on_both_backends!(an_evidence_pack_holds_what_happened_and_detects_tampering);

/// The retention the ingress and stockctl run with.
const RETENTION: &str = "2d";

fn stockctl(h: &Harness, args: &[&str]) -> Output {
    let out = Command::new(e2e::binary("stockctl"))
        .args(args)
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .env("STOCKLEDGER_RAW_RETENTION", RETENTION)
        .output()
        .unwrap();
    eprintln!(
        "stockctl {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `(path, sha256)` of a manifest, without the two files that name the time they were made.
fn timeless(manifest: &Value) -> BTreeMap<String, String> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(p, _)| p != "pack.json" && p != "summary.html")
        .collect()
}

/// `verify` fails with exit 1 and names `path`.
fn fails_naming(h: &Harness, dir: &str, path: &str) {
    let out = stockctl(h, &["evidence", "verify", dir]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(path), "{stderr}");
}

async fn an_evidence_pack_holds_what_happened_and_detects_tampering(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let cfg = ingress_config(&[("STOCKLEDGER_RAW_RETENTION", RETENTION)]).unwrap();
    let ingress = h.start_ingress(&cfg).await.unwrap();
    let client = Client::new(&ingress.url);

    // One order that moves stock, one that oversells.
    client.receive("mug-ev", 3, "po-ev-1").await;
    client.register("order-ev-1", "mug-ev", 1, "30").await;
    client.register("order-ev-2", "mug-ev", 5, "150").await;
    let paid = portone_webhook("pp-ev-1", "order-ev-1", "Success", "30");
    for _ in 0..2 {
        // The second delivery is PortOne retrying the same webhook.
        let (status, body) = client.post("/webhooks/portone", paid.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let oversold = portone_webhook("pp-ev-2", "order-ev-2", "Success", "150");
    let (status, body) = client.post("/webhooks/portone", oversold.clone()).await;
    assert_eq!(status, 200, "{body}");
    eventually("an oversold exception", || async {
        h.store
            .queue_list(&store::QueueFilter::default())
            .await
            .is_ok_and(|rows| rows.iter().any(|r| r.reason == "oversold"))
    })
    .await;
    let id = h
        .store
        .queue_list(&store::QueueFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.reason == "oversold")
        .unwrap()
        .id;
    let (status, body) = client
        .api(
            reqwest::Method::POST,
            &format!("/v1/exceptions/{id}/resolve"),
            Some(serde_json::json!({"actor": "alice <ops>", "reason": "customer refunded"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    h.settled().await.unwrap();

    // The order's pack.
    let tmp = tempfile::tempdir().unwrap();
    let order_dir = tmp.path().join("order");
    let order_dir_s = order_dir.to_str().unwrap();
    let out = stockctl(
        &h,
        &["evidence", "order", "order-ev-1", "--out", order_dir_s],
    );
    assert!(out.status.success());
    let verification = json(&order_dir.join("raw/verification.json"));
    let portone = verification
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["provider"] == "portone")
        .expect("the webhook's event")
        .clone();
    let event_id = portone["event_id"].as_str().unwrap();
    let raw = std::fs::read(order_dir.join(format!("raw/{event_id}.json"))).unwrap();
    assert_eq!(raw, paid, "the raw body is what was sent");
    let envelope_file = std::fs::read_dir(order_dir.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(&format!("-{event_id}.json")))
        .expect("the event's envelope");
    let envelope = json(&envelope_file);
    assert_eq!(envelope["raw_digest"], format!("sha256:{}", sha256(&raw)));
    assert_eq!(portone["raw"]["status"], "kept");
    assert_eq!(portone["raw"]["matches_raw_digest"], true);
    assert!(
        portone["verified_by"]
            .as_str()
            .unwrap()
            .contains("signature_hash")
    );
    let entries = json(&order_dir.join("ledger/entries.json"));
    let sale = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == event_id)
        .expect("the capture's entry");
    assert_eq!(sale["balance_before"]["available"], 3);
    assert_eq!(sale["balance_after"]["available"], 2);
    assert_eq!(sale["balance_after"]["sold"], 1);
    let outcomes = json(&order_dir.join("ledger/outcomes.json"));
    assert!(
        outcomes
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["event_id"] == event_id && o["outcome"] == "moved"),
        "{outcomes}"
    );

    // The exception's pack: the row, the operator's action, escaped in the summary.
    let exc_dir = tmp.path().join("exception");
    let exc_dir_s = exc_dir.to_str().unwrap();
    let out = stockctl(&h, &["evidence", "exception", &id, "--out", exc_dir_s]);
    assert!(out.status.success());
    assert_eq!(json(&exc_dir.join("exception.json"))["reason"], "oversold");
    let actions = json(&exc_dir.join("actions.json"));
    assert_eq!(actions[0]["action"], "resolve");
    assert_eq!(actions[0]["actor"], "alice <ops>");
    let summary = std::fs::read_to_string(exc_dir.join("summary.html")).unwrap();
    assert!(summary.contains("alice &lt;ops&gt;") && !summary.contains("alice <ops>"));
    let oversold_raw = std::fs::read(exc_dir.join(format!("raw/{id}.json"))).unwrap();
    assert_eq!(oversold_raw, oversold);
    assert_eq!(
        stockctl(&h, &["evidence", "exception", "no-such-exception"])
            .status
            .code(),
        Some(1)
    );

    // Verification: intact, then one byte altered, a file deleted, a file added.
    assert_eq!(
        stockctl(&h, &["evidence", "verify", order_dir_s])
            .status
            .code(),
        Some(0)
    );
    let raw_path = order_dir.join(format!("raw/{event_id}.json"));
    let mut altered = raw.clone();
    altered[0] ^= 1;
    std::fs::write(&raw_path, &altered).unwrap();
    fails_naming(&h, order_dir_s, &format!("raw/{event_id}.json"));
    std::fs::remove_file(&raw_path).unwrap();
    fails_naming(&h, order_dir_s, &format!("raw/{event_id}.json"));
    std::fs::write(&raw_path, &raw).unwrap();
    std::fs::write(order_dir.join("ledger/extra.json"), b"{}").unwrap();
    fails_naming(&h, order_dir_s, "ledger/extra.json");
    std::fs::remove_file(order_dir.join("ledger/extra.json")).unwrap();
    assert_eq!(
        stockctl(&h, &["evidence", "verify", order_dir_s])
            .status
            .code(),
        Some(0)
    );

    // The HTTP download: the same files as stockctl's pack, and it verifies.
    let resp = e2e::http::reqwest_client()
        .get(format!("{}/v1/exceptions/{id}/evidence", ingress.url))
        .bearer_auth(e2e::TEST_API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let zip_bytes = resp.bytes().await.unwrap();
    let zip_path = tmp.path().join("download.zip");
    std::fs::write(&zip_path, &zip_bytes).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
    let mut manifest = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("manifest.json").unwrap(), &mut manifest).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        timeless(&manifest),
        timeless(&json(&exc_dir.join("manifest.json")))
    );
    assert_eq!(
        stockctl(&h, &["evidence", "verify", zip_path.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let (status, _) = client
        .api(reqwest::Method::GET, "/v1/exceptions/nope/evidence", None)
        .await;
    assert_eq!(status, 404);

    // The console: the exception page links the download, served behind the session only.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let download = format!("{}/console/exceptions/{id}/evidence", ingress.url);
    let r = browser.get(&download).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "no session, no evidence");
    let r = browser
        .post(format!("{}/console/login", ingress.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", e2e::TEST_API_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = browser
        .get(format!("{}/console/exceptions/{id}", ingress.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("href=\"/console/exceptions/{id}/evidence\"")));
    assert!(page.contains("Download evidence"));
    let r = browser
        .get(&download)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");

    // The raw stream: the retention as configured, one body per event despite the retry.
    let mut raw_stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.namespace().raw_stream())
        .await
        .unwrap();
    let info = raw_stream.info().await.unwrap();
    assert_eq!(info.config.max_age, Duration::from_secs(2 * 86_400));
    assert_eq!(info.state.messages, 2, "two webhooks, three deliveries");

    ingress.stop().await;
    ledger.stop().await;
}

/// The `raw` status of the PortOne event in `order`'s pack.
fn raw_of_order(h: &Harness, dir: &Path, order: &str) -> Value {
    let out = stockctl(
        h,
        &["evidence", "order", order, "--out", dir.to_str().unwrap()],
    );
    assert!(out.status.success());
    json(&dir.join("raw/verification.json"))
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["provider"] == "portone")
        .expect("the webhook's event")["raw"]
        .clone()
}

/// One paid order through an ingress with `retention`; the ingress is stopped after.
async fn paid_order(h: &Harness, retention: &str, order: &str) {
    let cfg = ingress_config(&[("STOCKLEDGER_RAW_RETENTION", retention)]).unwrap();
    let ingress = h.start_ingress(&cfg).await.unwrap();
    let client = Client::new(&ingress.url);
    client.receive("cup-ev", 1, &format!("po-{order}")).await;
    client.register(order, "cup-ev", 1, "10").await;
    let body = portone_webhook(&format!("pp-{order}"), order, "Success", "10");
    let (status, text) = client.post("/webhooks/portone", body).await;
    assert_eq!(status, 200, "{text}");
    h.settled().await.unwrap();
    ingress.stop().await;
}

async fn raw_message_count(h: &Harness) -> u64 {
    let mut stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.namespace().raw_stream())
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bodies_expire_under_the_retention_or_are_not_kept() {
    let h = Harness::new(Backend::Sqlite).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // `0` first (the stream keeps its 30 days, so absence is not expiry): nothing is
    // stored, and the pack says the body was not kept.
    paid_order(&h, "0", "order-exp-2").await;
    assert_eq!(raw_message_count(&h).await, 0);
    let raw = raw_of_order(&h, &tmp.path().join("none"), "order-exp-2");
    assert_eq!(raw["status"], "not_kept", "{raw}");

    // Kept for one second, then gone: the pack says why.
    paid_order(&h, "1s", "order-exp-1").await;
    eventually("the raw body expires", || async {
        raw_message_count(&h).await == 0
    })
    .await;
    let raw = raw_of_order(&h, &tmp.path().join("expired"), "order-exp-1");
    assert_eq!(raw["status"], "expired", "{raw}");
    assert!(
        raw["detail"]
            .as_str()
            .unwrap()
            .contains("STOCKLEDGER_RAW_RETENTION")
    );

    ledger.stop().await;
}
