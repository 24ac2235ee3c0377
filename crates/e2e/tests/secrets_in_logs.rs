//! Issue 16, item 9: no configured secret reaches a log, at any level. The real `ingress`
//! and `ledger` binaries run with `RUST_LOG=trace` (every level) and every secret set (the
//! merchant API token, the PortOne secret and key, the Stripe secret, the Adyen HMAC key
//! and Basic password, the iPint key and secret, and a NATS URL with a user and password).
//! They are started before nats-server, so that the connection failures are logged too;
//! then requests are driven through every provider endpoint, one carrying the API token in
//! its query string, and both processes' stdout and stderr are searched for every secret.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use e2e::procs::{Role, free_port, fresh_client, wait_status};
use testkit::NatsServer;
use testkit::{Backend, TestDatabase};

const API_TOKEN: &str = "tok-SECRET-api-7f3a9c";
const OPERATOR_TOKEN: &str = "tok-SECRET-operator-51be2d";
const PORTONE_SECRET: &str = "pos-SECRET-portone-51b2";
const PORTONE_KEY: &str = "pk-SECRET-key-88d1";
const STRIPE_SECRET: &str = "whsec_SECRETstripe93c1";
const ADYEN_HMAC_HEX: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
const ADYEN_PASSWORD: &str = "adyen-SECRET-pw-44e0";
const IPINT_KEY: &str = "ipk-SECRET-key-2d9e";
const IPINT_SECRET: &str = "ips-SECRET-secret-6c7f";
const NATS_PASSWORD: &str = "nats-SECRET-pw-0b5a";

fn signed_portone_webhook(order_ref: &str) -> Vec<u8> {
    let fields = providers::portone::PaymentSignatureFields {
        amount: "10.00".parse().expect("decimal"),
        channel_key: "PAYLETTER",
        channel_order_ref: "CH-1",
        country_code: "US",
        currency: "USD",
        merchant_order_ref: "order-secret-1",
        method_name: "Card",
        order_ref,
        status: "Success",
    };
    let signature = providers::portone::sign_payment_webhook(&fields, PORTONE_SECRET);
    serde_json::json!({
        "currency": "USD", "amount": 10.00, "order_ref": order_ref, "channel_order_ref": "CH-1",
        "merchant_order_ref": "order-secret-1", "country_code": "US", "status": "Success",
        "channel_key": "PAYLETTER", "method_name": "Card", "status_code": "2000",
        "signature_hash": signature,
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_even_at_trace_level() {
    let mut nats = NatsServer::start().await.expect("nats-server");
    nats.stop().await.expect("stop nats-server");
    let db = TestDatabase::new(Backend::Sqlite).await.expect("database");
    let addr = format!("127.0.0.1:{}", free_port());
    let nats_url = format!("nats://natsuser:{NATS_PASSWORD}@127.0.0.1:{}", nats.port());
    let env = vec![
        ("STOCKLEDGER_HTTP_ADDR", addr.clone()),
        ("STOCKLEDGER_NATS_URL", nats_url),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            testkit::unique_name("secrets"),
        ),
        ("STOCKLEDGER_DATABASE_URL", db.url().to_owned()),
        ("STOCKLEDGER_API_TOKEN", API_TOKEN.to_owned()),
        ("STOCKLEDGER_OPERATOR_TOKEN", OPERATOR_TOKEN.to_owned()),
        ("STOCKLEDGER_PORTONE_SECRET_KEY", PORTONE_SECRET.to_owned()),
        ("STOCKLEDGER_PORTONE_KEY", PORTONE_KEY.to_owned()),
        (
            "STOCKLEDGER_STRIPE_WEBHOOK_SECRET",
            STRIPE_SECRET.to_owned(),
        ),
        ("STOCKLEDGER_ADYEN_HMAC_KEY", ADYEN_HMAC_HEX.to_owned()),
        ("STOCKLEDGER_ADYEN_BASIC_USER", "adyenuser".to_owned()),
        (
            "STOCKLEDGER_ADYEN_BASIC_PASSWORD",
            ADYEN_PASSWORD.to_owned(),
        ),
        // Nothing listens there: the verification fails, and is logged, locally.
        (
            "STOCKLEDGER_IPINT_API_URL",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        ("STOCKLEDGER_IPINT_API_KEY", IPINT_KEY.to_owned()),
        ("STOCKLEDGER_IPINT_API_SECRET", IPINT_SECRET.to_owned()),
        ("STOCKLEDGER_IPINT_TIMEOUT", "1s".to_owned()),
        // Tests run side by side: the ledger's ops port is any free one.
        ("STOCKLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0".to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ];
    let mut ledger = Role::spawn("ledger", None, &env);
    // Both would migrate a new SQLite file at once otherwise ("database is locked").
    e2e::procs::wait_output(&ledger, "ledger starting", Duration::from_secs(15)).await;
    let mut ingress = Role::spawn("ingress", None, &env);
    let base = format!("http://{addr}");
    assert!(
        wait_status(&base, "/healthz", 200, Duration::from_secs(15)).await,
        "the ingress does not serve:\n{}",
        ingress.output()
    );
    // Connection attempts with the credentials fail meanwhile, and are logged.
    for role in [&ingress, &ledger] {
        e2e::procs::wait_output(role, "nats: IO error", Duration::from_secs(15)).await;
    }
    nats.restart().await.expect("nats-server starts");
    assert!(
        wait_status(&base, "/readyz", 200, Duration::from_secs(15)).await,
        "not ready once NATS came:\n{}",
        ingress.output()
    );

    let http = fresh_client();
    let send = |req: reqwest::RequestBuilder| async move {
        req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    // The token in the query string as well as in the header.
    let s = send(
        http.get(format!(
            "{base}/v1/stock/tee-secret?token={API_TOKEN}&key={PORTONE_SECRET}"
        ))
        .bearer_auth(API_TOKEN),
    )
    .await;
    // Authenticated and answered: the SKU has no entry (404 `unknown_sku`).
    assert_eq!(s, 404);
    // A console login with the operator token, and a wrong one.
    for token in [OPERATOR_TOKEN, "wrong-operator-token"] {
        send(
            http.post(format!("{base}/console/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}")),
        )
        .await;
    }
    send(http.get(format!("{base}/healthz?password={NATS_PASSWORD}"))).await;
    send(
        http.get(format!("{base}/v1/stock/tee-secret"))
            .bearer_auth("wrong-token"),
    )
    .await;
    let s = send(
        http.post(format!("{base}/webhooks/portone"))
            .header("content-type", "application/json")
            .body(signed_portone_webhook("po-secret-1")),
    )
    .await;
    assert_eq!(s, 200, "the signed PortOne webhook");
    send(
        http.post(format!("{base}/portone/inventory-confirmation"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"portone_key":"{PORTONE_KEY}","merchant_order_ref":"order-secret-2","portone_order_ref":"po-secret-2","amount":10,"currency":"USD"}}"#
            )),
    )
    .await;
    send(
        http.post(format!("{base}/webhooks/stripe"))
            .header("stripe-signature", "t=1,v1=00")
            .header("content-type", "application/json")
            .body(r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#),
    )
    .await;
    send(
        http.post(format!("{base}/webhooks/adyen"))
            .basic_auth("adyenuser", Some(ADYEN_PASSWORD))
            .header("content-type", "application/json")
            .body(r#"{"live":"false","notificationItems":[]}"#),
    )
    .await;
    send(
        http.post(format!("{base}/webhooks/ipint"))
            .header("content-type", "application/json")
            .body(r#"{"invoice_id":"inv-secret-1","transaction_status":"COMPLETED"}"#),
    )
    .await;
    // Let the iPint worker try its verification and the ledger apply what came.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ingress.kill();
    ledger.kill();

    let ingress_log = ingress.output();
    let ledger_log = ledger.output();
    assert!(
        ingress_log.contains("path=/v1/stock/tee-secret"),
        "the debug log does not show the requests, so it proves nothing:\n{ingress_log}"
    );
    for (name, log) in [("ingress", &ingress_log), ("ledger", &ledger_log)] {
        // The connection failures with the credentials were logged, and searched.
        assert!(
            log.contains("nats: IO error"),
            "{name} logged no failed NATS connection"
        );
        let lower = log.to_lowercase();
        for secret in [
            API_TOKEN,
            OPERATOR_TOKEN,
            PORTONE_SECRET,
            PORTONE_KEY,
            STRIPE_SECRET,
            ADYEN_HMAC_HEX,
            ADYEN_PASSWORD,
            IPINT_KEY,
            IPINT_SECRET,
            NATS_PASSWORD,
        ] {
            assert!(
                !lower.contains(&secret.to_lowercase()),
                "the {name} log shows {secret}:\n{}",
                log.lines()
                    .filter(|l| l.to_lowercase().contains(&secret.to_lowercase()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
