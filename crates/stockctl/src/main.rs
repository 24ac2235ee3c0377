//! `stockctl`: the operator's command-line tool. It talks to the ledger database and NATS
//! with the same configuration as the services (environment variables, or the global
//! `--database-url` and `--nats-url`); only `trigger` talks to the ingress, as a provider
//! would. Every subcommand's `--help` says when it is safe to run; the exit codes are
//! [`exit`]'s.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod books;
mod ctx;
mod events;
mod evidence;
mod exceptions;
mod exit;
mod messages;
mod out;
mod policy;
mod progress;
mod reads;
mod rebuild;
mod reconcile;
mod replay;
mod status;
mod stock;
mod trigger;
mod whatif;
mod whatif_html;

/// mimalloc rather than the system allocator: `stockctl whatif` applies a whole history twice
/// in memory with a few dozen small allocations per event, and runs about 30% faster with it
/// (`scripts/bench-whatif`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "stockctl",
    version,
    about = "Operate a stockledger deployment.",
    after_help = "Exit codes: 0 success; 1 the command ran and found a problem (a failed check, \
                  an unmatched item, a refusal, not found); 2 usage error; 3 NATS, the \
                  database or the ingress unavailable."
)]
struct Cli {
    /// The ledger database (sqlite://… or postgres://…).
    #[arg(
        long,
        global = true,
        env = "STOCKLEDGER_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database_url: Option<String>,
    /// The NATS server(s), comma-separated for a cluster.
    #[arg(
        long,
        global = true,
        env = "STOCKLEDGER_NATS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    nats_url: Option<String>,
    /// Print the result as JSON (one object; `events tail` prints one object per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Where the deployment stands: the events stream's last sequence, the ledger
    /// consumer's acknowledged position and lag, the ledger database's checkpoint, the
    /// exception queue and the dead letters, and whether the roles are ready. Read-only:
    /// safe at any time. Exit code 1 when the ledger is behind the stream (not ready).
    Status,
    /// Stock: show balances, or correct them by hand.
    #[command(subcommand)]
    Stock(stock::StockCommand),
    /// Orders.
    #[command(subcommand)]
    Order(reads::OrderCommand),
    /// The events stream and the events the ledger processed.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Check the ledger's books.
    #[command(subcommand)]
    Ledger(books::LedgerCommand),
    /// Re-apply a range of the events stream to the ledger (recovery). Safe to run while the
    /// services run and any number of times: already processed events are recorded
    /// duplicates and move nothing. Refuses an unbounded range without --all-history, an
    /// empty or reversed range (exit 2), and a subject that matches no event (exit 1).
    Replay(replay::ReplayArgs),
    /// The daily reconciliation of one day (UTC): payment events against stock movements,
    /// movements against their causes, and the providers' reports against the ledger
    /// (docs/operations.md, "Reconciliation"). Safe to run at any time and any number of
    /// times: it reads the ledger and writes only the run, its items and one exception per
    /// new unmatched item. Exit code 1 when anything is unmatched; 2 when a report cannot
    /// be read (naming the file, line and column).
    Reconcile(reconcile::ReconcileArgs),
    /// The stock policy: when payments move stock (see docs/trigger-matrix.md).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Work the exception queue: list, show, retry, resolve (see docs/operations.md).
    #[command(subcommand)]
    Exceptions(exceptions::ExceptionsCommand),
    /// Evidence packs of an order or an exception, and their check (docs/operations.md).
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Send a correctly signed test message from a provider to the ingress, like
    /// `stripe trigger`, or print it with --print.
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
    /// What another stock policy would have done to the recorded history: applies the
    /// whole events stream in memory twice, under the policy in force as recorded
    /// (STOCKLEDGER_STOCK_POLICY at the start, then every recorded policy change; the
    /// configured reservation TTL) and under --policy, and compares oversells, declines,
    /// blocked stock, expiries, exceptions and the orders whose outcome differs, in total and
    /// per SKU (docs/operations.md, "Before changing the stock policy: a what-if"). Safe to
    /// run at any time: it only reads the stream, opens no database and writes nothing but
    /// the --html file.
    Whatif(whatif::WhatifArgs),
    /// PortOne helpers.
    #[command(subcommand)]
    Portone(books::PortoneCommand),
    /// Print a shell completion script: `stockctl completions bash > /etc/bash_completion.d/stockctl`.
    /// Prints only; safe at any time.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    ctx::set(ctx::Overrides {
        database_url: cli.database_url.clone(),
        nats_url: cli.nats_url.clone(),
    });
    match run(cli.command, cli.json).await {
        Ok(code) => code.into(),
        Err(e) if e.is::<exit::StdoutClosed>() => exit::Exit::Success.into(),
        Err(e) => {
            let code = exit::classify(&e);
            let _ = writeln!(std::io::stderr(), "stockctl: {}", exit::describe(&e));
            code.into()
        }
    }
}

async fn run(command: Command, json: bool) -> anyhow::Result<exit::Exit> {
    match command {
        Command::Status => status::run(json).await,
        Command::Stock(cmd) => stock::run(cmd, json).await,
        Command::Order(cmd) => reads::order(cmd, json).await,
        Command::Events(cmd) => events::run(cmd, json).await,
        Command::Ledger(cmd) => books::run(cmd, json).await,
        Command::Replay(args) => replay::run(args, json).await,
        Command::Exceptions(cmd) => exceptions::run(cmd, json).await,
        Command::Policy(cmd) => policy::run(cmd, json).await,
        Command::Reconcile(args) => reconcile::run(args, json).await,
        Command::Evidence(cmd) => evidence::run(cmd, json).await,
        Command::Trigger(cmd) => trigger::run(cmd, json).await,
        Command::Whatif(args) => whatif::run(args, json).await,
        Command::Portone(cmd) => books::portone(cmd, json),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stockctl", &mut script);
            out::print(&String::from_utf8_lossy(&script))?;
            Ok(exit::Exit::Success)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every argument of every command says what it is, and every command that does
    /// something says when it is safe to run.
    #[test]
    fn every_argument_has_help_and_every_command_says_when_it_is_safe() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            let subs: Vec<_> = cmd
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            if subs.is_empty() {
                let about = cmd
                    .get_long_about()
                    .or(cmd.get_about())
                    .map(|a| a.to_string().to_lowercase())
                    .unwrap_or_default();
                if !about.contains("safe") {
                    missing.push(format!("{path}: no word on when it is safe"));
                }
            }
            for sub in subs {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "stockctl", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
