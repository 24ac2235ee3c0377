//! `stockctl`'s exit codes, decided in one place from the error a command returns
//! (`docs/operations.md`, "Exit codes"): 0 success; 1 the command ran and found a problem
//! (a failed check, an unmatched item, a refusal, something not found); 2 a usage error
//! (clap's own, and arguments that parse but make no sense together); 3 NATS, the database
//! or the ingress unavailable.
//!
//! Commands return `anyhow` errors; [`classify`] walks the error's chain once for the typed
//! errors underneath (the store's, the bus's, the configuration's, reqwest's) or for the
//! markers below, so a command says what it means (`Usage`, `Unavailable`) only where no
//! typed error says it already.

use std::fmt;
use std::process::ExitCode;

/// What the process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Success,
    /// The command ran and found a problem (a failed check, a refusal, not found).
    Problem,
    /// The command line (or the configuration it reads) makes no sense.
    Usage,
    /// NATS, the database or the ingress could not be reached; nothing was changed.
    Unavailable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Problem => 1,
            Exit::Usage => 2,
            Exit::Unavailable => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// Arguments that parse but cannot be run (an empty range, a bad time): exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

/// Something the command needs could not be reached: exit code 3.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// The command ran and found a problem (not found, refused, nothing matched): exit code 1.
#[derive(Debug)]
pub struct Problem(pub String);

/// Standard output was closed by its reader (`stockctl … | head -1`): stop quietly.
#[derive(Debug)]
pub struct StdoutClosed;

macro_rules! display_error {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for $t {}
    )*};
}
display_error!(Usage, Unavailable, Problem);

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output closed")
    }
}
impl std::error::Error for StdoutClosed {}

/// A usage error with this message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// A problem found, with this message.
pub fn problem(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Problem(message.into()))
}

/// Something unreachable, with this message.
pub fn unavailable(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Unavailable(message.into()))
}

/// The error and its causes in one line, leaving out a cause whose text its parent
/// already quoted (many errors repeat their source in their own message).
pub fn describe(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The exit code an error means: the first error in the chain that says.
pub fn classify(e: &anyhow::Error) -> Exit {
    e.chain().find_map(exit_of).unwrap_or(Exit::Problem)
}

/// What one error in a chain says about the exit code, if anything.
fn exit_of(e: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if e.is::<Usage>() || e.is::<config::ConfigError>() {
        return Some(Exit::Usage);
    }
    if e.is::<Unavailable>() {
        return Some(Exit::Unavailable);
    }
    if e.is::<Problem>() {
        return Some(Exit::Problem);
    }
    if let Some(s) = e.downcast_ref::<store::StoreError>() {
        return Some(store_exit(s));
    }
    if let Some(b) = e.downcast_ref::<bus::BusError>() {
        return Some(bus_exit(b));
    }
    // Errors that wrap a store or bus error transparently (their `source` skips it).
    if let Some(l) = e.downcast_ref::<ledger::LedgerError>() {
        return match l {
            ledger::LedgerError::Bus(b) => Some(bus_exit(b)),
            ledger::LedgerError::Store(s) => Some(store_exit(s)),
            // Settings that cannot work together (a hold longer than the deliveries
            // allow): the configuration is the caller's to change.
            ledger::LedgerError::Settings(_) => Some(Exit::Usage),
            ledger::LedgerError::Ops(_) => None,
        };
    }
    if let Some(s) = e.downcast_ref::<operator::standing::StandingError>() {
        return Some(match s {
            operator::standing::StandingError::Bus(b) => bus_exit(b),
            operator::standing::StandingError::Store(s) => store_exit(s),
        });
    }
    if let Some(g) = e.downcast_ref::<operator::gauges::GaugeError>() {
        return match g {
            operator::gauges::GaugeError::Bus(b) => Some(bus_exit(b)),
            operator::gauges::GaugeError::Store(s) => Some(store_exit(s)),
            operator::gauges::GaugeError::Encode(_) => None,
        };
    }
    if let Some(c) = e.downcast_ref::<service::connect::ConnectError>() {
        return match c {
            service::connect::ConnectError::Namespace(_) => Some(Exit::Usage),
            // The source (a bus or store error) decides.
            _ => None,
        };
    }
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return (r.is_connect() || r.is_timeout()).then_some(Exit::Unavailable);
    }
    None
}

/// A bus error's exit code: NATS not answering is 3, NATS answering no is 1.
fn bus_exit(e: &bus::BusError) -> Exit {
    match e {
        bus::BusError::Unavailable(_) => Exit::Unavailable,
        bus::BusError::Refused(_) => Exit::Problem,
    }
}

/// A store error's exit code. A missing or unmigrated ledger database is "the database
/// unavailable" (3): the command could not look at any ledger, which is not the same as
/// finding a problem in one (`docs/decisions.md`, decision 42).
fn store_exit(e: &store::StoreError) -> Exit {
    use store::StoreError as E;
    match e {
        E::Unavailable(_) | E::Missing(_) | E::NotMigrated(_) => Exit::Unavailable,
        E::UnsupportedUrl(_) => Exit::Usage,
        E::Conflict | E::Corrupt(_) | E::Migrate(_) | E::Database(_) => Exit::Problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_under_context_decide_the_code() {
        let e = anyhow::Error::new(store::StoreError::Missing("x".into())).context("opening");
        assert_eq!(classify(&e), Exit::Unavailable);
        let e = anyhow::Error::new(bus::BusError::unavailable("down")).context("connecting");
        assert_eq!(classify(&e), Exit::Unavailable);
        let e = anyhow::Error::new(bus::BusError::refused("no stream"));
        assert_eq!(classify(&e), Exit::Problem);
        assert_eq!(classify(&usage("bad range").context("replay")), Exit::Usage);
        assert_eq!(classify(&anyhow::anyhow!("anything else")), Exit::Problem);
        let e = anyhow::Error::new(store::StoreError::UnsupportedUrl("mysql://".into()));
        assert_eq!(classify(&e), Exit::Usage);
        // Transparent wrappers hide the wrapped error from the chain: still classified.
        let e = anyhow::Error::new(ledger::LedgerError::Bus(bus::BusError::unavailable("x")));
        assert_eq!(classify(&e), Exit::Unavailable);
        let e = anyhow::Error::new(operator::standing::StandingError::Store(
            store::StoreError::Unavailable(store::sqlx::Error::PoolTimedOut),
        ));
        assert_eq!(classify(&e), Exit::Unavailable);
    }
}
