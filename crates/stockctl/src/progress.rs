//! The progress bar of long commands (`replay`, `ledger rebuild`): drawn with `indicatif` on
//! standard error only when standard error is a terminal, so that a log file or a pipe
//! gets no `\r` lines, only the summary.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How the bar looks: the bar, the count, the rate and the time left.
const TEMPLATE: &str = "[{bar:30}] {pos}/{len} {per_sec} ETA {eta}";

/// A bar, or nothing when there is no terminal to draw on.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar on standard error when it is a terminal.
    pub fn on_terminal() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("#>."));
        }
        Progress(Some(bar))
    }

    /// `done` of `total` events.
    pub fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
