//! `stockctl` as an operator runs it (the real binary) against a real NATS, ledger database,
//! ledger and ingress: every read command in text and JSON, `status`, `events get` and a
//! following `events tail`, `trigger` for every provider (sent, and `--print`ed messages
//! that the providers' own verification accepts), the exit codes of the spec (0/1/2/3), a
//! closed pipe, no `\r` when nothing is a terminal, completions, and a replay of a subject
//! that matches nothing.
#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use e2e::Harness;
use e2e::http::Client;
use serde_json::Value;
use testkit::Backend;
use tokio::io::AsyncBufReadExt as _;

const STRIPE_SECRET: &str = "whsec_cli_secret";
const ADYEN_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
/// The longest any one stockctl run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

fn stockctl() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_stockctl"));
    c.env_remove("STOCKLEDGER_DATABASE_URL")
        .env_remove("STOCKLEDGER_NATS_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

async fn output(mut c: tokio::process::Command) -> Output {
    tokio::time::timeout(RUN_TIMEOUT, c.output())
        .await
        .expect("stockctl finished in time")
        .expect("stockctl runs")
}

/// Runs stockctl with `args` and no services configured.
async fn bare(args: &[&str]) -> Output {
    let mut c = stockctl();
    c.args(args);
    output(c).await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// A stockledger with its ledger, exception process and ingress running.
struct Stack {
    h: Harness,
    client: Client,
    ingress_url: String,
    _roles: (e2e::LedgerTask, e2e::IngressTask, e2e::ExceptionsTask),
}

impl Stack {
    async fn new(backend: Backend) -> Stack {
        let h = Harness::new(backend).await.unwrap();
        let ledger = h.start_ledger(e2e::test_settings()).await.unwrap();
        let exceptions = h
            .start_exceptions(e2e::exceptions_settings())
            .await
            .unwrap();
        let cfg = e2e::ingress_config(&[
            ("STOCKLEDGER_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
            ("STOCKLEDGER_ADYEN_HMAC_KEY", ADYEN_KEY),
        ])
        .unwrap();
        let ingress = h.start_ingress(&cfg).await.unwrap();
        let client = Client::new(&ingress.url);
        Stack {
            ingress_url: ingress.url.clone(),
            client,
            h,
            _roles: (ledger, ingress, exceptions),
        }
    }

    /// stockctl configured for this stockledger through the environment.
    fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = stockctl();
        c.args(args)
            .env("STOCKLEDGER_NATS_URL", &self.h.nats_url)
            .env(
                "STOCKLEDGER_NATS_NAMESPACE",
                self.h.bus.namespace().as_str(),
            )
            .env("STOCKLEDGER_DATABASE_URL", self.h.db.url())
            .env("STOCKLEDGER_PORTONE_SECRET_KEY", e2e::TEST_PORTONE_SECRET)
            .env("STOCKLEDGER_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
            .env("STOCKLEDGER_ADYEN_HMAC_KEY", ADYEN_KEY)
            .env("STOCKLEDGER_OPERATOR", "tester");
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        output(self.cmd(args)).await
    }

    /// Runs and asserts exit code 0.
    async fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args).await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}\nstdout: {}\nstderr: {}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    async fn trigger(&self, args: &[&str]) -> Output {
        let mut all = vec!["trigger"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &self.ingress_url]);
        self.ok(&all).await
    }

    /// Waits until `order` is in `state` (read with `order show --json`).
    async fn order_state(&self, order: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let o = self.run(&["order", "show", order, "--json"]).await;
            if o.status.success() {
                let v = json(&o);
                if v["state"] == state {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "order {order} never became {state}: {}",
                stdout(&o)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_spec_without_any_service() {
    // 2: clap's own usage errors, and ranges that cannot be replayed.
    assert_eq!(bare(&["no-such-command"]).await.status.code(), Some(2));
    assert_eq!(bare(&["stock", "show"]).await.status.code(), Some(2));
    for args in [
        &["replay", "--from-seq", "10", "--to-seq", "5"][..],
        &["replay", "--from-seq", "0"],
        &["replay"],
    ] {
        let o = bare(args).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
    // 3: NATS or the database unreachable (closed ports, a database that is not there).
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    for args in [
        &["status", "--nats-url", "nats://127.0.0.1:1"][..],
        &["events", "tail", "--nats-url", "nats://127.0.0.1:1"],
        &["stock", "show", "tee", "--database-url", &missing],
        &["order", "show", "o-1", "--database-url", &missing, "--json"],
        &["ledger", "verify", "--database-url", &missing],
        &[
            "events",
            "get",
            "x",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
    ] {
        let o = bare(args).await;
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    assert!(!dir.path().join("none.db").exists(), "nothing was created");
    // 1: the command ran and found nothing (an empty but real ledger).
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    assert!(
        bare(&["ledger", "migrate", "--database-url", &url])
            .await
            .status
            .success()
    );
    for args in [
        &["order", "show", "o-1"][..],
        &["stock", "show", "tee"],
        &["events", "get", "00000000-0000-0000-0000-000000000000"],
        &["exceptions", "show", "nope"],
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--database-url", &url]);
        let o = bare(&all).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_a_closed_pipe() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bare(&["completions", shell]).await;
        assert!(o.status.success(), "{shell}");
        let script = stdout(&o);
        assert!(
            script.len() > 1000 && script.contains("stockctl") && script.contains("trigger"),
            "{shell}: {script}"
        );
    }
    // A reader that stops early: no panic, no "Broken pipe" message.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} completions zsh | head -1",
            env!("CARGO_BIN_EXE_stockctl")
        ))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_live_stockledger_on_sqlite() {
    every_command_against_a_live_stockledger(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_live_stockledger_on_postgres() {
    every_command_against_a_live_stockledger(Backend::Postgres).await;
}

async fn every_command_against_a_live_stockledger(backend: Backend) {
    let s = Stack::new(backend).await;
    s.client.receive("tee", 10, "rcv-1").await;
    for order in ["o-po", "o-st", "o-ad"] {
        s.client.register(order, "tee", 1, "20.00").await;
    }

    // trigger: every provider, sent to the ingress; the ledger applies each.
    let o = s
        .trigger(&[
            "portone",
            "success",
            "--order",
            "o-po",
            "--amount",
            "20.00",
            "--currency",
            "USD",
        ])
        .await;
    assert!(stdout(&o).contains("200"), "{}", stdout(&o));
    s.order_state("o-po", "sold").await;
    s.trigger(&[
        "stripe",
        "payment_intent.succeeded",
        "--order",
        "o-st",
        "--amount",
        "20.00",
        "--currency",
        "USD",
        "--json",
    ])
    .await;
    s.order_state("o-st", "sold").await;
    let o = s
        .trigger(&[
            "adyen",
            "AUTHORISATION",
            "--order",
            "o-ad",
            "--amount",
            "20.00",
            "--currency",
            "USD",
            "--json",
        ])
        .await;
    assert_eq!(json(&o)["status"], 200);
    assert_eq!(json(&o)["response"], "[accepted]");
    let order = s.order_state("o-ad", "reserved").await;
    // iPint: accepted and queued for verification (the callbacks stream holds it).
    let callbacks = s.h.bus.namespace().callbacks_stream();
    let before = s.h.bus.stream_last_seq(&callbacks).await.unwrap();
    let o = s
        .trigger(&["ipint", "COMPLETED", "--invoice", "inv-1"])
        .await;
    assert!(stderr(&o).contains("verif"), "{}", stderr(&o));
    assert_eq!(
        s.h.bus.stream_last_seq(&callbacks).await.unwrap(),
        before + 1
    );

    // --print: messages the providers' own verification accepts.
    print_verifies(&s).await;

    // stock show / order show / events get, in text and JSON.
    let o = s.ok(&["stock", "show", "tee"]).await;
    assert!(stdout(&o).contains("AVAILABLE") && stdout(&o).contains("main"));
    let v = json(&s.ok(&["stock", "show", "tee", "--json"]).await);
    let main = &v["locations"][0];
    assert_eq!(
        (&main["available"], &main["reserved"], &main["sold"]),
        (&Value::from(7), &Value::from(1), &Value::from(2))
    );
    let o = s.ok(&["order", "show", "o-ad"]).await;
    assert!(stdout(&o).contains("reserved"), "{}", stdout(&o));
    let event_id = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "moved")
        .and_then(|e| e["event_id"].as_str())
        .unwrap()
        .to_owned();
    let v = json(&s.ok(&["events", "get", &event_id, "--json"]).await);
    assert_eq!(v["outcome"], "moved");
    assert_eq!(v["order_ref"], "o-ad");
    assert!(v["stream_seq"].as_i64().unwrap() > 0);
    assert_eq!(v["envelope"]["event_id"], event_id.as_str());
    let o = s.ok(&["events", "get", &event_id]).await;
    assert!(stdout(&o).contains("envelope"), "{}", stdout(&o));

    // status: text and JSON, ready.
    let o = s.ok(&["status"]).await;
    assert!(
        stdout(&o).contains("readiness          ready"),
        "{}",
        stdout(&o)
    );
    let v = json(&s.ok(&["status", "--json"]).await);
    assert_eq!(v["ready"], true);
    assert!(v["stream"]["last_seq"].as_u64().unwrap() >= 7);

    // exceptions stats: a readable table, JSON, and the OpenMetrics text on request.
    let o = s.ok(&["exceptions", "stats"]).await;
    assert!(stdout(&o).contains("not resolved"), "{}", stdout(&o));
    let v = json(&s.ok(&["exceptions", "stats", "--json"]).await);
    assert!(v["unresolved_total"].is_i64());
    let o = s.ok(&["exceptions", "stats", "--openmetrics"]).await;
    assert!(stdout(&o).contains("stockledger_dlq_depth"));

    // stock correct without --apply, as JSON.
    let v = json(
        &s.ok(&[
            "stock",
            "correct",
            "--sku",
            "tee",
            "--location",
            "main",
            "--delta=-1",
            "--reason",
            "count",
            "--evidence",
            "sheet-1",
            "--approved-by",
            "ann",
            "--json",
        ])
        .await,
    );
    assert_eq!(
        (&v["applied"], &v["available_now"]),
        (&false.into(), &7.into())
    );

    // events tail: what is stored, then a new event while it follows.
    let lines = stdout(
        &s.ok(&["events", "tail", "--no-follow", "--last", "100", "--json"])
            .await,
    );
    let tailed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(tailed.len() >= 7, "{lines}");
    assert!(
        tailed
            .iter()
            .any(|e| e["event"]["event_id"] == event_id.as_str())
    );
    follow_sees_a_new_event(&s).await;

    // A closed pipe on a real read, and no `\r` anywhere when nothing is a terminal.
    let sh = s.cmd(&[]);
    let sh = sh.as_std();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} events tail --no-follow --last 100 | head -1",
            env!("CARGO_BIN_EXE_stockctl")
        ))
        .envs(sh.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let o = s.ok(&["replay", "--from-seq", "1", "--dry-run"]).await;
    assert!(stdout(&o).contains("replayed"), "{}", stdout(&o));
    assert!(!o.stdout.contains(&b'\r') && !o.stderr.contains(&b'\r'));

    // A replay of a subject that matches nothing: exit 1, naming the subject.
    let subject = format!("{}.events.nobody.>", s.h.bus.namespace().as_str());
    for subject in [subject.as_str(), "elsewhere.events.>"] {
        let o = s
            .run(&["replay", "--subject", subject, "--from-seq", "1"])
            .await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(subject), "{}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
    // A NATS server without this namespace's stream: named, exit 1 (not "unavailable").
    for args in [&["status"][..], &["events", "tail", "--no-follow"]] {
        let mut c = s.cmd(args);
        c.env("STOCKLEDGER_NATS_NAMESPACE", "nothere_cli");
        let o = output(c).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("NOTHERE_CLI_EVENTS"), "{}", stderr(&o));
    }
    // The global flags instead of the environment.
    let mut c = stockctl();
    c.args([
        "stock",
        "show",
        "tee",
        "--json",
        "--database-url",
        s.h.db.url(),
    ]);
    let o = output(c).await;
    assert_eq!(json(&o)["sku"], "tee");
}

/// `trigger … --print --json` for each signed provider: the message verifies with the
/// providers' functions the ingress uses.
async fn print_verifies(s: &Stack) {
    let print = |provider: &'static str, event: &'static str| async move {
        let o = s
            .ok(&[
                "trigger",
                provider,
                event,
                "--order",
                "o-x",
                "--amount",
                "12.50",
                "--currency",
                "USD",
                "--print",
                "--json",
            ])
            .await;
        json(&o)
    };
    let v = print("stripe", "charge.refunded").await;
    let body = v["body"].as_str().unwrap();
    let header = v["headers"]["stripe-signature"].as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    providers::stripe::verify_signature(body.as_bytes(), header, &[STRIPE_SECRET.into()], now, 300)
        .unwrap();
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["data"]["object"]["amount_refunded"], 1250);

    let v = print("adyen", "CAPTURE").await;
    let batch = providers::adyen::parse_batch(v["body"].as_str().unwrap().as_bytes()).unwrap();
    let key = providers::adyen::parse_hmac_key(ADYEN_KEY).unwrap();
    providers::adyen::verify_batch(&batch, &[key]).unwrap();
    assert_eq!(batch.items[0].original_reference, "psp-o-x");

    let v = print("portone", "cancelled").await;
    let hook =
        providers::portone::parse_payment_webhook(v["body"].as_str().unwrap().as_bytes()).unwrap();
    providers::portone::verify_payment_webhook(&hook, e2e::TEST_PORTONE_SECRET).unwrap();

    // Without a secret the message cannot be made: a usage error naming the variable.
    let mut c = s.cmd(&[
        "trigger",
        "stripe",
        "payment_intent.succeeded",
        "--order",
        "o",
        "--amount",
        "1",
        "--currency",
        "USD",
        "--print",
    ]);
    c.env_remove("STOCKLEDGER_STRIPE_WEBHOOK_SECRET");
    let o = output(c).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("STOCKLEDGER_STRIPE_WEBHOOK_SECRET"));
}

/// `events tail` follows: an event accepted after it started is printed.
async fn follow_sees_a_new_event(s: &Stack) {
    let mut c = s.cmd(&["events", "tail", "--last", "0"]);
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Give it a moment to take its starting position, then accept a receipt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.client.receive("tee", 1, "rcv-tail").await;
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("tail printed the new event in time")
        .unwrap()
        .unwrap();
    assert!(line.contains("stock.received"), "{line}");
    child.kill().await.unwrap();
}
