//! Log output: `tracing` to stderr, with the level chosen by -v/-q.

use tracing::Level;

/// Sets up logging: warnings by default for commands, info for the service; each -v one
/// level more; -q errors only.
pub fn init(verbose: u8, quiet: bool, service: bool) {
    let base = if service { 1 } else { 0 };
    let level = if quiet {
        Level::ERROR
    } else {
        match verbose + base {
            0 => Level::WARN,
            1 => Level::INFO,
            2 => Level::DEBUG,
            _ => Level::TRACE,
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
