//! The local Postgres: its programs, data directory, configuration files, HBA rules, the
//! server process, and SQL on it.

pub mod conf;
pub mod controldata;
pub mod hba;
pub mod local;
pub mod pgdata;
pub mod programs;
pub mod server;
