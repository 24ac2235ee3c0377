//! The real binaries as child processes: finding them, starting `ingress` and `ledger`
//! against a harness's NATS namespace and database, their peak memory, and running
//! `stockctl replay` while sampling its memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use e2e::{Harness, TEST_API_TOKEN, TEST_PORTONE_SECRET};

/// The three binaries the bench drives.
pub struct Binaries {
    pub ingress: PathBuf,
    pub ledger: PathBuf,
    pub stockctl: PathBuf,
}

impl Binaries {
    /// The release binaries (`--bench`) or the debug ones (smoke run).
    pub fn find(release: bool) -> anyhow::Result<Binaries> {
        Ok(Binaries {
            ingress: binary("ingress", release)?,
            ledger: binary("ledger", release)?,
            stockctl: binary("stockctl", release)?,
        })
    }
}

fn binary(name: &str, release: bool) -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let profile = if release { "release" } else { "debug" };
    let path = target.join(profile).join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it first (`cargo build {}-p {name}`; scripts/bench-http does)",
        path.display(),
        if release { "--release " } else { "" }
    );
    Ok(path)
}

/// A child process, killed when dropped.
pub struct Proc(Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Fails if the process has exited (a crashed service would only show up as timeouts).
    pub fn ensure_running(&mut self, name: &str) -> anyhow::Result<()> {
        match self.0.try_wait()? {
            Some(status) => anyhow::bail!("{name} exited early: {status}"),
            None => Ok(()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The variables [`command`] and [`spawn`] set themselves (any value in the bench's
/// environment is overridden).
pub const SET_BY_BENCH: [&str; 7] = [
    "STOCKLEDGER_NATS_URL",
    "STOCKLEDGER_NATS_NAMESPACE",
    "STOCKLEDGER_DATABASE_URL",
    "STOCKLEDGER_API_TOKEN",
    "STOCKLEDGER_PORTONE_SECRET_KEY",
    "STOCKLEDGER_HTTP_ADDR",
    "STOCKLEDGER_LEDGER_METRICS_ADDR",
];

/// A command for `bin` configured for the harness `h`, like a deployment would be. The
/// bench's own environment is inherited, so any `STOCKLEDGER_*` setting given to the bench
/// (`STOCKLEDGER_FETCH_BATCH_MAX`, …) reaches the services; the connection settings below
/// override it.
pub fn command(bin: &PathBuf, h: &Harness) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .env("STOCKLEDGER_API_TOKEN", TEST_API_TOKEN)
        .env("STOCKLEDGER_PORTONE_SECRET_KEY", TEST_PORTONE_SECRET)
        // Several ledger processes on one host: each its own ops port.
        .env("STOCKLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // One loopback client stands for PortOne here, far beyond one merchant's checkout rate:
    // the per-source limit of confirmations (decision 30) would measure itself, not the
    // service. Set the variable to bench with the limit.
    if std::env::var_os("STOCKLEDGER_CONFIRMATIONS_PER_SECOND").is_none() {
        cmd.env("STOCKLEDGER_CONFIRMATIONS_PER_SECOND", "0");
    }
    cmd
}

/// Starts a service binary serving HTTP on `http_addr`.
pub fn spawn(bin: &PathBuf, h: &Harness, http_addr: &str) -> anyhow::Result<Proc> {
    let child = command(bin, h)
        .env("STOCKLEDGER_HTTP_ADDR", http_addr)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Proc(child))
}

/// A free loopback address for the ingress.
pub fn free_addr() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Waits until the ingress at `base` answers `/healthz`.
pub async fn wait_ready(base: &str, ingress: &mut Proc) -> anyhow::Result<()> {
    let probe = e2e::http::reqwest_client();
    let started = Instant::now();
    loop {
        let answer = probe.get(format!("{base}/healthz")).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        ingress.ensure_running("ingress")?;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the ingress did not answer /healthz within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Peak resident memory (VmHWM) of a running process, in MiB; `None` once it is gone.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// What a `stockctl` run printed, how long it took and its peak memory.
pub struct Finished {
    pub stdout: String,
    pub elapsed: Duration,
    pub peak_rss_mib: f64,
}

/// Runs `stockctl args…` against the harness to completion, sampling its VmHWM every
/// 10 ms (the last sample before exit is its peak). Fails if it exits unsuccessfully.
pub async fn run_stockctl(bin: &PathBuf, h: &Harness, args: &[&str]) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let mut child = command(bin, h)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null()) // its progress bar
        .spawn()
        .context("starting stockctl")?;
    let pid = child.id();
    let mut peak = 0.0f64;
    let status = loop {
        if let Some(rss) = peak_rss_mib(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout)?;
    }
    anyhow::ensure!(
        status.success(),
        "stockctl {args:?} failed ({status}): {stdout}"
    );
    Ok(Finished {
        stdout,
        elapsed,
        peak_rss_mib: peak,
    })
}
