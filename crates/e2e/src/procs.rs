//! The real role binaries (`ingress`, `ledger`) started as processes for tests that need a
//! process-level property: an open-file limit, what reaches stdout and stderr, starting
//! before NATS. Each process writes its output to a file of its own and is killed when its
//! [`Role`] is dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (taken for a moment, then released for the process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One role process.
pub struct Role {
    child: Child,
    /// Where its stdout and stderr go.
    pub log_path: PathBuf,
    pub name: String,
}

impl Role {
    /// Starts workspace binary `bin` with exactly `env` on top of `PATH` and `HOME` (no
    /// other variable of the test's environment leaks in), under an open-file limit of
    /// `nofile` when given (`ulimit -n` in a `bash -c` that then `exec`s the binary).
    pub fn spawn(bin: &str, nofile: Option<u32>, env: &[(&str, String)]) -> Role {
        let path = crate::binary(bin);
        let dir = std::env::temp_dir().join(testkit::unique_name(&format!("role_{bin}")));
        std::fs::create_dir_all(&dir).expect("role log directory");
        let log_path = dir.join(format!("{bin}.log"));
        let log = File::create(&log_path).expect("role log file");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(r#"ulimit -n "$1" && exec "$2""#)
                    .arg("bash")
                    .arg(n.to_string())
                    .arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.env_clear();
        for keep in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log);
        let child = cmd.spawn().expect("starting the role binary");
        Role {
            child,
            log_path,
            name: bin.to_owned(),
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it printed so far, without terminal colour codes.
    pub fn output(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// Stops it with SIGKILL and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.log_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until `role` has printed `text`, at most `timeout`; panics with its output if not.
pub async fn wait_output(role: &Role, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !role.output().contains(text) {
        assert!(
            Instant::now() < deadline,
            "{} did not print {text:?}:\n{}",
            role.name,
            role.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `GET {base}{path}` until it answers `status`, at most `timeout`. Each attempt
/// uses a fresh connection.
pub async fn wait_status(base: &str, path: &str, status: u16, timeout: Duration) -> bool {
    let client = fresh_client();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}{path}")).send().await
            && r.status().as_u16() == status
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A client that opens a new connection for every request (no pooling) and gives up on
/// one request after 5 s.
pub fn fresh_client() -> reqwest::Client {
    ingress::install_tls_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}
