//! The one place a stockledger process reads the wall clock. Everything below receives time
//! as data (`domain::Timestamp`): the trigger matrix never reads a clock, so a replay
//! decides by the events' own times.

use std::time::{SystemTime, UNIX_EPOCH};

use domain::Timestamp;

/// Milliseconds since the Unix epoch, now. A clock before 1970 reads as 0 and one past
/// the year 292 million as `i64::MAX`: neither happens on a working machine, and neither
/// may panic a process that holds payments.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_this_code_was_written() {
        // 2026-01-01T00:00:00Z.
        assert!(now().0 > 1_767_225_600_000);
    }
}
