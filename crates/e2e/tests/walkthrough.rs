//! The README walkthrough, as written, is a test: its shell blocks (between the
//! `walkthrough:start` and `walkthrough:end` markers) run one after the other against a real
//! ingress, ledger, NATS and database, and every `# → text` line must appear in the output
//! of its block. If the README drifts from the product, this fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use e2e::{Harness, TEST_API_TOKEN, TEST_PORTONE_SECRET, ingress_config, test_settings};
use testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_on_sqlite() {
    walkthrough(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_on_postgres() {
    walkthrough(Backend::Postgres).await;
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shell blocks of the walkthrough, in order.
fn blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    let section = &readme[start..end];
    let mut out = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("closing fence");
        out.push(body[..close].to_owned());
        rest = &body[close + 3..];
    }
    assert!(out.len() >= 6, "the walkthrough has its steps");
    out
}

/// The directory holding the `stockctl` binary built with the workspace (`scripts/test`
/// builds every target before running tests).
fn stockctl_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let dir = target.join("debug");
    assert!(
        dir.join("stockctl").exists(),
        "build stockctl first: cargo build -p stockctl (scripts/test does)"
    );
    dir
}

async fn walkthrough(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let work = tempfile_dir();
    let path = format!(
        "{}:{}",
        stockctl_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks().into_iter().enumerate() {
        let url = ingress.url.clone();
        let (block_run, path, work) = (block.clone(), path.clone(), work.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &block_run])
                .current_dir(&work)
                .env("STOCKLEDGER_URL", url)
                .env("STOCKLEDGER_API_TOKEN", TEST_API_TOKEN)
                .env("STOCKLEDGER_PORTONE_SECRET_KEY", TEST_PORTONE_SECRET)
                .env("PATH", path)
                .output()
                .expect("bash runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "step {} failed:\n{block}\nstdout: {stdout}\nstderr: {stderr}",
            i + 1
        );
        for expected in block.lines().filter_map(|l| l.trim().strip_prefix("# → ")) {
            assert!(
                stdout.contains(expected),
                "step {}: expected {expected:?} in the output of\n{block}\ngot: {stdout}",
                i + 1
            );
        }
    }
    let report = h.store.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    ingress.stop().await;
    ledger.stop().await;
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(testkit::unique_name("walkthrough"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
