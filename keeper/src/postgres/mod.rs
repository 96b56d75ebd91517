//! The local Postgres: its programs, data directory, configuration files, HBA rules, the
//! server process, SQL on it, and the password file and verifiers that keep its secrets out
//! of command lines, environments and logs.

pub mod conf;
pub mod controldata;
pub mod hba;
pub mod local;
pub mod passfile;
pub mod pgdata;
pub mod programs;
pub mod scram;
pub mod server;
