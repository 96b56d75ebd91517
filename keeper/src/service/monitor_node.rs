//! The service on the monitor node: keep its Postgres running (restarting it after a crash),
//! keep the extension at our version, and log the state changes the monitor notifies.

use std::time::Duration;

use super::signals::{StopRequest, Stopper};
use crate::exit::CliResult;
use crate::monitor::EXTENSION_VERSION;
use crate::node_setup::NodeContext;
use crate::postgres::server::StopMode;

/// Runs the monitor's service until stopped.
pub async fn run(mut node: NodeContext, stopper: &mut Stopper) -> CliResult<()> {
    tracing::info!(pgdata = %node.pgdata().display(), "pg_autoctl monitor service started");
    let mut listener: Option<crate::monitor::Monitor> = None;
    loop {
        if let Some(request) = stopper.requested() {
            let mode = match request {
                StopRequest::Immediate => StopMode::Immediate,
                _ => StopMode::Fast,
            };
            node.drop_local();
            return node.server.stop(mode, Duration::from_secs(60)).await;
        }
        stopper.take_reload();
        if !node.server.is_running() {
            tracing::warn!("the monitor's Postgres is not running: starting it");
            listener = None;
            if let Err(e) = node.server.start().await {
                tracing::error!(error = %e.message, "cannot start Postgres");
                stopper.sleep(Duration::from_secs(1)).await;
                continue;
            }
            if let Err(e) = update_extension(&mut node).await {
                tracing::error!(error = %e.message, "cannot update the pgautofailover extension");
            }
        }
        if listener
            .as_ref()
            .is_none_or(crate::monitor::Monitor::is_closed)
        {
            listener = connect_listener(&node).await;
        }
        match listener.as_mut() {
            Some(l) => {
                tokio::select! {
                    n = l.next_notification(Duration::from_secs(1)) => match n {
                        Ok(Some(n)) => log_notification(&n.channel, &n.payload),
                        Ok(None) => {}
                        Err(_) => listener = None,
                    },
                    () = stopper.wait() => {}
                }
            }
            None => stopper.sleep(Duration::from_secs(1)).await,
        }
    }
}

/// `ALTER EXTENSION pgautofailover UPDATE` when it is older than ours.
async fn update_extension(node: &mut NodeContext) -> CliResult<()> {
    let pg = &node.config.pg;
    let local = crate::postgres::local::LocalPg::connect(
        &pg.pgdata,
        &pg.host,
        pg.port,
        &pg.username,
        "pg_auto_failover",
        Some(&node.paths.passfile),
    )
    .await?;
    local
        .execute(&format!(
            "DO $$ BEGIN IF (SELECT extversion FROM pg_extension WHERE extname = 'pgautofailover') <> '{EXTENSION_VERSION}' THEN ALTER EXTENSION pgautofailover UPDATE TO '{EXTENSION_VERSION}'; END IF; END $$"
        ))
        .await
}

async fn connect_listener(node: &NodeContext) -> Option<crate::monitor::Monitor> {
    let uri = crate::node_setup::local_monitor_uri(&node.config);
    let mut monitor = crate::monitor::Monitor::connect(&uri, "pg_autoctl listener")
        .await
        .map_err(|e| tracing::debug!(error = %e, "listener"))
        .ok()?;
    monitor.listen("state").await.ok()?;
    monitor.listen("log").await.ok()?;
    Some(monitor)
}

/// Logs a notification: state changes as a structured line, log messages as they are.
fn log_notification(channel: &str, payload: &str) {
    use fsm::vocab::printable;
    if channel == "state" {
        match serde_json::from_str::<serde_json::Value>(payload) {
            Ok(v) => tracing::info!(
                formation = %printable(v["formation"].as_str().unwrap_or("")),
                group = v["groupId"].as_i64().unwrap_or(0),
                node = %printable(v["name"].as_str().unwrap_or("")),
                node_id = v["nodeId"].as_i64().unwrap_or(0),
                reported = %printable(v["reportedState"].as_str().unwrap_or("")),
                assigned = %printable(v["goalState"].as_str().unwrap_or("")),
                "state change"
            ),
            Err(_) => tracing::info!(payload = %printable(payload), "state change"),
        }
    } else {
        tracing::info!(message = %printable(payload), "monitor");
    }
}
