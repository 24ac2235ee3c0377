//! Everything `stockctl` prints on standard output goes through here, so that a closed pipe
//! (`stockctl events tail | head -1`) ends the command quietly instead of panicking the way
//! `println!` does: a write that fails with `BrokenPipe` becomes [`StdoutClosed`], which
//! `main` turns into a quiet exit.

use std::io::Write as _;

use crate::exit::StdoutClosed;

/// Writes `text` to standard output and flushes it (a follower's lines appear at once).
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(StdoutClosed))
        }
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Prints `value` as pretty JSON followed by a newline.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Prints `value` as one line of JSON (a stream of objects, one per line).
pub fn json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string(value)?))
}

/// `println!` through [`print`]: `outln!(…)?`.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::print("\n") };
    ($($arg:tt)*) => { $crate::out::print(&format!("{}\n", format_args!($($arg)*))) };
}
