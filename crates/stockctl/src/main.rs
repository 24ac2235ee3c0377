//! `stockctl`: the operator's command-line tool. It talks to the ledger database (and, for
//! later commands, NATS) with the same configuration as the services; it never talks to the
//! ingress. Every subcommand's `--help` says when it is safe to run.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod exceptions;
mod rebuild;
mod replay;
mod stock;

#[derive(Parser)]
#[command(
    name = "stockctl",
    version,
    about = "Operate a stockledger deployment."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Check the ledger's books.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// PortOne helpers.
    #[command(subcommand)]
    Portone(PortoneCommand),
    /// Re-apply a range of the events stream to the ledger (recovery). Safe to run while the
    /// services run and any number of times: already processed events are recorded
    /// duplicates and move nothing. Refuses an unbounded range without --all-history.
    Replay(replay::ReplayArgs),
    /// Work the exception queue: list, show, retry, resolve (see docs/operations.md).
    #[command(subcommand)]
    Exceptions(exceptions::ExceptionsCommand),
    /// Correct stock by hand, with reason, evidence and approver.
    #[command(subcommand)]
    Stock(stock::StockCommand),
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Recompute every balance from the entries, check that every (SKU, location) sequence
    /// has no gap and that every entry belongs to an event whose outcome is `moved`.
    /// Read-only: safe to run at any time, also while the services run; it never creates
    /// or migrates a database. Exit code 1 and a report (text, or JSON with --json) on any
    /// mismatch; exit code 3 when there is no migrated ledger database at
    /// STOCKLEDGER_DATABASE_URL (the message names it; nothing was created).
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or update the ledger database schema (STOCKLEDGER_DATABASE_URL). Idempotent
    /// and safe to run at any time; run it before starting new versions of the services,
    /// so that several processes never race to migrate an embedded SQLite file.
    Migrate,
    /// Rebuild the ledger from the first message of the event stream: after the database
    /// was lost, replaced by an empty one or restored from an older backup (the ledger then
    /// applies nothing and every role reports `ledger_behind_stream`), or `--into` a new
    /// database to move to (SQLite to PostgreSQL). Every role reports not ready while it
    /// runs; the ledger process resumes by itself when it is done. Safe to run again: what
    /// is already in the ledger is skipped. See docs/operations.md, "Recovery".
    Rebuild(rebuild::RebuildArgs),
    /// Print the ledger in a canonical form (every table, rows in key order, one JSON array
    /// per row), so that two ledgers can be compared with `diff`: the one before a loss and
    /// its rebuild, a rebuild and a second one. Read-only; never creates or migrates a
    /// database (exit code 3 when there is none).
    Export,
}

#[derive(Subcommand)]
enum PortoneCommand {
    /// Print a PortOne payment webhook body signed with your secret key
    /// (STOCKLEDGER_PORTONE_SECRET_KEY), ready to POST to /webhooks/portone. Prints only;
    /// safe to run at any time.
    SignWebhook {
        /// The merchant's order reference (`merchant_order_ref`).
        #[arg(long)]
        merchant_order_ref: String,
        /// PortOne's payment reference (`order_ref`).
        #[arg(long)]
        order_ref: String,
        /// Payment status: Success, Failed, Expired, Cancelled, Pending, …
        #[arg(long, default_value = "Success")]
        status: String,
        /// Status code as PortOne sends it.
        #[arg(long, default_value = "2000")]
        status_code: String,
        /// Amount as a decimal, e.g. 100.50.
        #[arg(long)]
        amount: String,
        /// Currency code.
        #[arg(long)]
        currency: String,
        #[arg(long, default_value = "")]
        channel_order_ref: String,
        #[arg(long, default_value = "PAYLETTER")]
        channel_key: String,
        #[arg(long, default_value = "US")]
        country_code: String,
        #[arg(long, default_value = "Card")]
        method_name: String,
        /// The secret key; defaults to STOCKLEDGER_PORTONE_SECRET_KEY.
        #[arg(long, env = "STOCKLEDGER_PORTONE_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stockctl: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ledger(LedgerCommand::Verify { json }) => verify(json).await,
        Command::Ledger(LedgerCommand::Migrate) => migrate().await,
        Command::Ledger(LedgerCommand::Rebuild(args)) => rebuild::run(args).await,
        Command::Ledger(LedgerCommand::Export) => export().await,
        Command::Replay(args) => replay::run(args).await,
        Command::Exceptions(cmd) => exceptions::run(cmd).await,
        Command::Stock(cmd) => stock::run(cmd).await,
        Command::Portone(PortoneCommand::SignWebhook {
            merchant_order_ref,
            order_ref,
            status,
            status_code,
            amount,
            currency,
            channel_order_ref,
            channel_key,
            country_code,
            method_name,
            secret_key,
        }) => {
            let decimal: rust_decimal::Decimal = amount
                .parse()
                .context("--amount must be a decimal such as 100.50")?;
            let fields = providers::portone::PaymentSignatureFields {
                amount: decimal,
                channel_key: &channel_key,
                channel_order_ref: &channel_order_ref,
                country_code: &country_code,
                currency: &currency,
                merchant_order_ref: &merchant_order_ref,
                method_name: &method_name,
                order_ref: &order_ref,
                status: &status,
            };
            let signature = providers::portone::sign_payment_webhook(&fields, &secret_key);
            let amount_json: serde_json::Value =
                serde_json::from_str(&decimal.normalize().to_string()).context("amount")?;
            let body = serde_json::json!({
                "amount": amount_json,
                "channel_key": channel_key,
                "channel_order_ref": channel_order_ref,
                "country_code": country_code,
                "currency": currency,
                "merchant_order_ref": merchant_order_ref,
                "method_name": method_name,
                "order_ref": order_ref,
                "status": status,
                "status_code": status_code,
                "signature_hash": signature,
            });
            println!("{body}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn migrate() -> anyhow::Result<ExitCode> {
    let cfg = config::Config::from_env().context("reading configuration")?;
    // Connecting runs the migrations.
    let store = store::Store::connect(&cfg.database.url, &store::StoreOptions::default())
        .await
        .context("migrating the ledger database")?;
    store.close().await;
    println!("ledger database is up to date");
    Ok(ExitCode::SUCCESS)
}

/// `ledger verify` found no ledger to check (a wrong path, a missing or unmigrated
/// database): nothing was created or changed.
const EXIT_NO_LEDGER: u8 = 3;

/// Opens the configured ledger database for reading: never creates or migrates it. `Err`
/// carries the exit code after saying why.
async fn open_for_reading(cfg: &config::Config) -> anyhow::Result<Result<store::Store, ExitCode>> {
    match store::Store::open_existing(&cfg.database.url, &store::StoreOptions::default()).await {
        Ok(s) => Ok(Ok(s)),
        Err(e @ (store::StoreError::Missing(_) | store::StoreError::NotMigrated(_))) => {
            eprintln!("stockctl: {e}; nothing was created (STOCKLEDGER_DATABASE_URL)");
            Ok(Err(ExitCode::from(EXIT_NO_LEDGER)))
        }
        Err(e) => Err(e).context("opening the ledger database"),
    }
}

async fn export() -> anyhow::Result<ExitCode> {
    let cfg = config::Config::from_env().context("reading configuration")?;
    let store = match open_for_reading(&cfg).await? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    print!("{}", store.canonical_export().await?);
    Ok(ExitCode::SUCCESS)
}

/// How long `ledger verify` tries NATS for the stream-position check before leaving it out.
const VERIFY_NATS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where the ledger stands against the event stream: `Some(line)` when it is behind,
/// `None` when it is current or NATS cannot be asked (said on stderr).
async fn behind_stream(cfg: &config::Config, store: &store::Store) -> Option<String> {
    let mut bus_cfg = service::connect::bus_config(cfg).ok()?;
    bus_cfg.retry_initial_connect = false;
    let standing = tokio::time::timeout(VERIFY_NATS_TIMEOUT, async {
        let bus = bus::Bus::connect(bus_cfg).await.ok()?;
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

async fn verify(json: bool) -> anyhow::Result<ExitCode> {
    let cfg = config::Config::from_env().context("reading configuration")?;
    // Read-only: never create or migrate a database here.
    let store = match open_for_reading(&cfg).await? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut report = store.verify().await?;
    if let Some(line) = behind_stream(&cfg, &store).await {
        report
            .problems
            .push(store::VerifyProblem::BehindStream { detail: line });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} entries, {} balances, {} processed events: {}",
            report.entries,
            report.balances,
            report.processed_events,
            if report.is_ok() { "OK" } else { "MISMATCH" }
        );
        for p in &report.problems {
            println!("  {}", serde_json::to_string(p)?);
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
