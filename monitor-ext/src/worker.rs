//! Placeholder.
pub fn register_launcher() {}
