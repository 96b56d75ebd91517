//! Bounded waiting: every wait in the tests has a deadline and says what it waited for.

use std::time::{Duration, Instant};

/// Calls `check` every `every` until it returns `Some`, for at most `timeout`.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if start.elapsed() >= timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(every);
    }
}
