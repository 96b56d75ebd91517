//! Test harness: real Postgres servers started for a test and removed after it.
//!
//! Postgres refuses to run as root, and CI runs as root: every Postgres program is then run
//! as the `postgres` OS user, in a fresh directory owned by it. Servers listen on 127.0.0.1 on a
//! free port, with their socket in their own directory, and are stopped (immediate mode) and
//! deleted when the [`server::PgServer`] is dropped, also when a test fails.

pub mod autoctl;
pub mod c_keeper;
pub mod monitor;
pub mod netns;
pub mod procfs;
pub mod server;
pub mod wait;
pub mod writer;
