//! `stockctl evidence`: evidence packs (`operator::evidence`, `docs/operations.md`,
//! "Evidence packs"). `order REF` and `exception ID` gather one from the ledger database
//! and the raw stream and write it as a folder (or a `.zip`); `verify PATH` checks a pack
//! against its chained manifest and names the first file missing, altered or added.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use operator::evidence::{self, EvidenceError, Subject};

use crate::exit::{self, Exit};
use crate::{ctx, out, outln};

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Write the evidence pack of an order: its events as received and recorded, the raw
    /// provider bodies, the entries with balances before and after, the outcomes, its
    /// exceptions and their operator actions. Read-only: safe at any time.
    Order {
        /// The order reference.
        order_ref: String,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Write the evidence pack of one exception: the row, its operator actions, its event
    /// and its order's. Read-only: safe at any time.
    Exception {
        /// The exception id (`stockctl exceptions list`).
        id: String,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Check a pack (a folder or a .zip) against its manifest.json: exit 0 when intact, 1
    /// naming the first file missing, altered or added. Read-only: safe at any time.
    Verify {
        /// The pack's folder or .zip file.
        path: PathBuf,
        /// The manifest head recorded when the pack was made: also fails when the manifest
        /// was rewritten as a whole.
        #[arg(long, value_name = "HEX")]
        head: Option<String>,
    },
}

#[derive(Args)]
pub struct OutArgs {
    /// Where to write the pack: a new folder, or a file ending in .zip (default
    /// evidence-<order|exception>-<id> in the current folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write a .zip file instead of a folder (the same files).
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    zip: Option<PathBuf>,
}

/// Runs one evidence subcommand.
pub async fn run(cmd: EvidenceCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        EvidenceCommand::Order { order_ref, out } => {
            let default = format!("evidence-order-{order_ref}");
            make(Subject::Order(order_ref), out, default, json).await
        }
        EvidenceCommand::Exception { id, out } => {
            let default = format!("evidence-exception-{id}");
            make(Subject::Exception(id), out, default, json).await
        }
        EvidenceCommand::Verify { path, head } => verify(&path, head.as_deref(), json),
    }
}

async fn make(
    subject: Subject,
    args: OutArgs,
    default: String,
    json: bool,
) -> anyhow::Result<Exit> {
    let target = args
        .zip
        .or(args.out)
        .unwrap_or_else(|| PathBuf::from(safe(&default)));
    let as_zip = target
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if target.exists() && (as_zip || !is_empty_dir(&target)) {
        return Err(exit::usage(format!(
            "{} exists: evidence is written to a new folder or file",
            target.display()
        )));
    }
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    let bus = ctx::bus(&cfg).await?;
    let input = evidence::gather(&store, &bus, subject, service::now().0)
        .await
        .map_err(|e| match e {
            EvidenceError::NotFound(m) => exit::problem(m),
            EvidenceError::Unavailable(m) => exit::unavailable(m),
            EvidenceError::Corrupt(e) => anyhow::Error::new(e),
        })?;
    let pack = evidence::build(&input);
    let manifest = if as_zip {
        let (manifest, bytes) = pack.to_zip()?;
        std::fs::write(&target, bytes)?;
        manifest
    } else {
        pack.write_dir(&target)?
    };
    if json {
        out::json(&serde_json::json!({
            "path": target,
            "files": manifest.files.len(),
            "head": manifest.head,
            "events": input.events.len(),
            "entries": input.entries.len(),
            "exceptions": input.exceptions.len(),
        }))?;
    } else {
        outln!(
            "wrote {} ({} files: {} events, {} entries, {} exceptions)",
            target.display(),
            manifest.files.len(),
            input.events.len(),
            input.entries.len(),
            input.exceptions.len()
        )?;
        outln!(
            "manifest head {} (record it to pin the pack: stockctl evidence verify --head)",
            manifest.head
        )?;
    }
    Ok(Exit::Success)
}

fn verify(path: &Path, head: Option<&str>, json: bool) -> anyhow::Result<Exit> {
    if !path.exists() {
        return Err(exit::usage(format!("{} does not exist", path.display())));
    }
    let mut v = evidence::verify_path(path)?;
    if let (None, Some(expected), Some(actual)) = (&v.problem, head, &v.head)
        && !expected.eq_ignore_ascii_case(actual)
    {
        v.problem = Some(evidence::Problem::ChainBroken("head".into()));
    }
    if json {
        out::json(&v)?;
        return Ok(if v.intact() {
            Exit::Success
        } else {
            Exit::Problem
        });
    }
    match &v.problem {
        None => {
            outln!(
                "intact: {} files, manifest head {}",
                v.files,
                v.head.as_deref().unwrap_or("")
            )?;
            Ok(Exit::Success)
        }
        Some(evidence::Problem::ChainBroken(at)) if at == "head" && head.is_some() => {
            Err(exit::problem(
                "manifest.json's head is not the one given with --head: the pack was rewritten",
            ))
        }
        Some(problem) => Err(exit::problem(problem.to_string())),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// A default file name from an id: path separators and other odd characters become `_`.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
