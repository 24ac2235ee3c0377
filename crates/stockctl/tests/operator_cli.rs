//! `stockctl`'s operator commands as an operator runs them (the real binary): a stock
//! correction without reason, evidence or approver is refused before anything is
//! contacted; every acting command's `--help` says when it is safe; `exceptions list`
//! reads an empty queue.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn stockctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stockctl"))
}

#[test]
fn a_correction_without_reason_evidence_or_approver_is_refused() {
    // NATS and the database point nowhere: the refusal happens before either is used.
    let out = stockctl()
        .args([
            "stock",
            "correct",
            "--sku",
            "tee",
            "--location",
            "main",
            "--delta=-2",
            "--reason",
            "count",
            "--actor",
            "ann",
            "--apply",
        ])
        .env("STOCKLEDGER_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "STOCKLEDGER_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .output()
        .expect("run stockctl");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("--evidence") && err.contains("--approved-by"),
        "{err}"
    );
    assert!(!err.contains("--reason,"), "{err}");
}

#[test]
fn every_acting_command_says_when_it_is_safe() {
    for args in [
        ["exceptions", "retry", "--help"].as_slice(),
        &["exceptions", "resolve", "--help"],
        &["exceptions", "list", "--help"],
        &["exceptions", "show", "--help"],
        &["stock", "correct", "--help"],
    ] {
        let out = stockctl().args(args).output().expect("run stockctl");
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(
            out.status.success() && help.contains("safe"),
            "{args:?}: {help}"
        );
    }
}

#[test]
fn list_reads_an_empty_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let out = stockctl()
        .args(["exceptions", "list", "--json"])
        .env("STOCKLEDGER_DATABASE_URL", &url)
        .output()
        .expect("run stockctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = stockctl()
        .args(["exceptions", "show", "nope"])
        .env("STOCKLEDGER_DATABASE_URL", &url)
        .output()
        .expect("run stockctl");
    assert_eq!(out.status.code(), Some(1));
}
