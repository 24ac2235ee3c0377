//! `stockctl ledger …` (verify, migrate, rebuild, export) and `stockctl portone
//! sign-webhook`: the commands that look at or prepare the ledger database as a whole.

use anyhow::Context as _;
use clap::Subcommand;

use crate::exit::{self, Exit};
use crate::{ctx, out, outln};

/// The ledger subcommands.
#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Recompute every balance from the entries, check that every (SKU, location) sequence
    /// has no gap and that every entry belongs to an event whose outcome is `moved`.
    /// Read-only: safe to run at any time, also while the services run; it never creates
    /// or migrates a database. Exit code 1 and a report (text, or JSON with --json) on any
    /// mismatch; exit code 3 when there is no migrated ledger database at --database-url
    /// (the message names it; nothing was created).
    Verify,
    /// Create or update the ledger database schema (--database-url). Idempotent and safe to
    /// run at any time; run it before starting new versions of the services, so that
    /// several processes never race to migrate an embedded SQLite file.
    Migrate,
    /// Rebuild the ledger from the first message of the event stream: after the database
    /// was lost, replaced by an empty one or restored from an older backup (the ledger then
    /// applies nothing and every role reports `ledger_behind_stream`), or `--into` a new
    /// database to move to (SQLite to PostgreSQL). Every role reports not ready while it
    /// runs; the ledger process resumes by itself when it is done. Safe to run again: what
    /// is already in the ledger is skipped. See docs/operations.md, "Recovery".
    Rebuild(crate::rebuild::RebuildArgs),
    /// Print the ledger in a canonical form (every table, rows in key order, one JSON array
    /// per row), so that two ledgers can be compared with `diff`: the one before a loss and
    /// its rebuild, a rebuild and a second one. Read-only: safe at any time, also while the
    /// services run; never creates or migrates a database (exit code 3 when there is none).
    Export,
}

/// The PortOne helpers.
#[derive(Subcommand)]
pub enum PortoneCommand {
    /// Print a PortOne payment webhook body signed with your secret key
    /// (STOCKLEDGER_PORTONE_SECRET_KEY), ready to POST to /webhooks/portone. Prints only;
    /// safe to run at any time. `stockctl trigger portone` builds and sends one.
    SignWebhook(SignWebhookArgs),
}

/// Arguments of `stockctl portone sign-webhook`.
#[derive(clap::Args)]
pub struct SignWebhookArgs {
    /// The merchant's order reference (`merchant_order_ref`).
    #[arg(long)]
    pub merchant_order_ref: String,
    /// PortOne's payment reference (`order_ref`).
    #[arg(long)]
    pub order_ref: String,
    /// Payment status: Success, Failed, Expired, Cancelled, Pending, …
    #[arg(long, default_value = "Success")]
    pub status: String,
    /// Status code as PortOne sends it.
    #[arg(long, default_value = "2000")]
    pub status_code: String,
    /// Amount as a decimal, e.g. 100.50.
    #[arg(long)]
    pub amount: String,
    /// Currency code.
    #[arg(long)]
    pub currency: String,
    /// The payment channel's own order reference (`channel_order_ref`).
    #[arg(long, default_value = "")]
    pub channel_order_ref: String,
    /// The payment channel (`channel_key`).
    #[arg(long, default_value = "PAYLETTER")]
    pub channel_key: String,
    /// The customer's country (`country_code`).
    #[arg(long, default_value = "US")]
    pub country_code: String,
    /// The payment method (`method_name`).
    #[arg(long, default_value = "Card")]
    pub method_name: String,
    /// The secret key; defaults to STOCKLEDGER_PORTONE_SECRET_KEY.
    #[arg(long, env = "STOCKLEDGER_PORTONE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
}

/// Runs one ledger subcommand.
pub async fn run(cmd: LedgerCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        LedgerCommand::Verify => verify(json).await,
        LedgerCommand::Migrate => migrate(json).await,
        LedgerCommand::Rebuild(args) => crate::rebuild::run(args, json).await,
        LedgerCommand::Export => export().await,
    }
}

/// `stockctl portone sign-webhook`: prints the signed body (always JSON).
pub fn portone(cmd: PortoneCommand, _json: bool) -> anyhow::Result<Exit> {
    let PortoneCommand::SignWebhook(a) = cmd;
    let amount: rust_decimal::Decimal = a
        .amount
        .parse()
        .map_err(|_| exit::usage("--amount must be a decimal such as 100.50"))?;
    let body = crate::messages::portone_body(
        &crate::messages::PortonePayment {
            merchant_order_ref: &a.merchant_order_ref,
            order_ref: &a.order_ref,
            status: &a.status,
            status_code: &a.status_code,
            amount,
            currency: &a.currency,
            channel_order_ref: &a.channel_order_ref,
            channel_key: &a.channel_key,
            country_code: &a.country_code,
            method_name: &a.method_name,
        },
        &a.secret_key,
    )?;
    outln!("{body}")?;
    Ok(Exit::Success)
}

async fn migrate(json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    // Connecting runs the migrations.
    let store = ctx::store_for_writing(&cfg).await?;
    store.close().await;
    if json {
        out::json(&serde_json::json!({"migrated": true}))?;
    } else {
        outln!("ledger database is up to date")?;
    }
    Ok(Exit::Success)
}

async fn export() -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    // Already JSON, one array per row.
    out::print(&store.canonical_export().await?)?;
    Ok(Exit::Success)
}

/// How long `ledger verify` tries NATS for the stream-position check before leaving it out.
const VERIFY_NATS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where the ledger stands against the event stream: `Some(line)` when it is behind,
/// `None` when it is current or NATS cannot be asked (said on stderr).
async fn behind_stream(cfg: &config::Config, store: &store::Store) -> Option<String> {
    let standing = tokio::time::timeout(VERIFY_NATS_TIMEOUT, async {
        let bus = ctx::bus(cfg).await.ok()?;
        operator::standing::standing(&bus, store).await.ok()
    })
    .await
    .ok()
    .flatten();
    match standing {
        Some(s) if s.is_behind() => Some(s.describe()),
        Some(_) => None,
        None => {
            eprintln!(
                "stockctl: NATS not reachable: the ledger was not compared with the event stream"
            );
            None
        }
    }
}

async fn verify(json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    // Read-only: never create or migrate a database here.
    let store = ctx::store_for_reading(&cfg).await?;
    let mut report = store.verify().await.context("verifying the ledger")?;
    if let Some(line) = behind_stream(&cfg, &store).await {
        report
            .problems
            .push(store::VerifyProblem::BehindStream { detail: line });
    }
    if json {
        out::json(&report)?;
    } else {
        outln!(
            "{} entries, {} balances, {} processed events: {}",
            report.entries,
            report.balances,
            report.processed_events,
            if report.is_ok() { "OK" } else { "MISMATCH" }
        )?;
        for p in &report.problems {
            outln!("  {}", serde_json::to_string(p)?)?;
        }
    }
    Ok(if report.is_ok() {
        Exit::Success
    } else {
        Exit::Problem
    })
}
