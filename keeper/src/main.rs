//! `pg_autoctl`: the keeper. Issue 3 builds it; for now it only reports its version.

fn main() {
    println!("pg_autoctl version {}", env!("CARGO_PKG_VERSION"));
    println!("pg_autoctl extension version 2.0");
}
