//! `scripts/cluster` driven from Rust: the production shape (three NATS nodes, haproxy,
//! two ingresses, two ledgers, the exception consumer, PostgreSQL) as processes on loopback,
//! for the cluster fault test and the cluster benchmark. The script restarts any process
//! that dies, as a platform would; [`Cluster::kill9`] and [`Cluster::back`] are how a test
//! kills one and waits for it to return.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TEST_API_TOKEN, TEST_PORTONE_SECRET};

/// How long the cluster may take to be ready (debug binaries, three fsyncing NATS nodes, on
/// a machine that also runs the rest of the suite).
pub const READY_MAX: Duration = Duration::from_secs(300);
/// How long a killed process may take to be back and healthy.
pub const BACK_MAX: Duration = Duration::from_secs(120);
/// How long the script may take to stop everything before its group is killed.
pub const STOP_MAX: Duration = Duration::from_secs(60);

/// The directory of the debug binaries (`scripts/test` builds them first).
pub fn debug_binaries() -> PathBuf {
    for bin in ["ingress", "ledger", "exceptions", "stockctl"] {
        crate::binary(bin);
    }
    crate::binary("ingress")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf()
}

/// `scripts/cluster`, started in its own process group and stopped (SIGTERM, then SIGKILL)
/// when dropped.
pub struct Cluster {
    child: Child,
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Cluster {
    /// Starts `scripts/cluster` with state in `dir`, the binaries of `bin_dir`, the test
    /// API token and PortOne secret, and `env` on top.
    pub fn start(dir: &Path, bin_dir: &Path, env: &[(&str, &str)]) -> Cluster {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let log = std::fs::File::create(dir.join("cluster.out")).expect("cluster log");
        let child = Command::new(root.join("scripts/cluster"))
            .arg("--dir")
            .arg(dir)
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--no-build")
            .env("STOCKLEDGER_API_TOKEN", TEST_API_TOKEN)
            .env("STOCKLEDGER_PORTONE_SECRET_KEY", TEST_PORTONE_SECRET)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting scripts/cluster");
        Cluster {
            child,
            dir: dir.to_path_buf(),
            env: BTreeMap::new(),
        }
    }

    /// Waits until the cluster answers `/readyz` through the load balancer, then reads its
    /// `cluster.env`.
    pub async fn ready(&mut self) {
        let start = Instant::now();
        while !self.dir.join("ready").exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "scripts/cluster exited ({status}) before it was ready:\n{}",
                    self.output()
                );
            }
            assert!(
                start.elapsed() < READY_MAX,
                "the cluster was not ready in {READY_MAX:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = std::fs::read_to_string(self.dir.join("cluster.env")).expect("cluster.env");
        for line in text.lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(v);
                self.env.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    /// A variable of `cluster.env` (`CLUSTER_URL`, `STOCKLEDGER_DATABASE_URL`, …).
    pub fn var(&self, name: &str) -> String {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} in cluster.env"))
            .clone()
    }

    /// What the script printed and its restart log.
    pub fn output(&self) -> String {
        let mut out = std::fs::read_to_string(self.dir.join("cluster.out")).unwrap_or_default();
        out.push_str(&std::fs::read_to_string(self.dir.join("events.log")).unwrap_or_default());
        out
    }

    /// The pid of process `name` now (`nats1`, `ingress2`, `ledger1`, …).
    pub fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pids").join(name))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// The URL that says whether `name` is up again: the NATS node's monitoring `/healthz`
    /// (200 once its JetStream is current), the ingress's and the ledger's `/healthz`.
    pub fn health_url(&self, name: &str) -> String {
        let (list, index) = match name {
            "nats1" | "nats2" | "nats3" => ("CLUSTER_NATS_MONITOR", &name[4..]),
            "ingress1" | "ingress2" => ("CLUSTER_INGRESS_URLS", &name[7..]),
            "ledger1" | "ledger2" => ("CLUSTER_LEDGER_METRICS", &name[6..]),
            other => panic!("no health URL for {other}"),
        };
        let i: usize = index.parse::<usize>().expect("process number") - 1;
        let base = self.var(list).split(',').nth(i).expect("URL").to_owned();
        let base = base.trim_end_matches("/metrics");
        format!("{base}/healthz")
    }

    /// SIGKILL to `name`; returns the pid killed.
    pub fn kill9(&self, name: &str) -> u32 {
        let pid = self.pid(name).expect("a pid file");
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid} ({name})");
        pid
    }

    /// Waits until `name` runs again under a new pid and answers its health check.
    pub async fn back(&self, name: &str, killed: u32, http: &reqwest::Client) -> Duration {
        let start = Instant::now();
        let url = self.health_url(name);
        loop {
            let restarted = self.pid(name).is_some_and(|p| p != killed);
            if restarted
                && http
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < BACK_MAX,
                "{name} was not back within {BACK_MAX:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while start.elapsed() < STOP_MAX {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}
