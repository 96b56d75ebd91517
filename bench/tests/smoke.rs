//! The bench's smoke test: `pgaf-bench --quick` (our system only) runs one short iteration of
//! every measurement end to end and writes a report with every figure and no lost rows.
//! The benchmark itself is `make bench`, not part of `make test`.

use std::process::Command;

use serde_json::Value;

#[test]
fn one_short_iteration_of_every_measurement_runs() {
    let dir = harness::server::TempDir::new("bench-smoke");
    let out = dir.path().join("benchmarks.md");
    let results = dir.path().join("results");
    let status = Command::new(env!("CARGO_BIN_EXE_pgaf-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .arg("--results")
        .arg(&results)
        .status()
        .expect("run pgaf-bench");
    assert!(status.success(), "pgaf-bench --quick failed: {status}");

    let report = std::fs::read_to_string(&out).expect("the report");
    for figure in [
        "## Host-loss failover",
        "## Postgres crash on the primary (keeper alive)",
        "## Planned switchover",
        "## Monitor heartbeat throughput (pgbench, node_active)",
        "## Monitor CPU with 100 nodes heartbeating every second",
        "## Idle keeper footprint",
    ] {
        assert!(report.contains(figure), "{figure} missing from\n{report}");
    }

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    let records = json["records"].as_array().expect("records");
    let value = |figure: &str, metric: &str| -> Vec<f64> {
        records
            .iter()
            .filter(|r| r["figure"] == figure && r["metric"] == metric)
            .filter_map(|r| r["value"].as_f64())
            .collect()
    };
    for figure in [
        "Host-loss failover",
        "Postgres crash on the primary (keeper alive)",
        "Planned switchover",
    ] {
        let lost = value(figure, "rows lost");
        assert!(!lost.is_empty(), "{figure}: no rows-lost value");
        assert!(
            lost.iter().all(|v| *v == 0.0),
            "{figure}: acknowledged rows lost: {lost:?}"
        );
    }
    let back = value("Host-loss failover", "writes back (s)");
    assert!(back.iter().all(|v| *v > 0.0), "writes back: {back:?}");
    let calls = value(
        "Monitor heartbeat throughput (pgbench, node_active)",
        "calls/s",
    );
    assert!(calls.len() >= 4, "heartbeat figures: {calls:?}");
    assert!(
        calls.iter().all(|v| *v > 0.0),
        "heartbeat figures: {calls:?}"
    );
    let rss = value("Idle keeper footprint", "RSS (MiB)");
    assert!(rss.len() == 1 && rss[0] > 0.0, "keeper RSS: {rss:?}");
    assert!(results.join("results.csv").exists());
}
