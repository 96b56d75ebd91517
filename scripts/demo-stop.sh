#!/usr/bin/env bash
# Stops the demo started by scripts/demo.sh and removes its directory: each pg_autoctl
# service stops its own Postgres on SIGTERM; whatever is left is stopped by force.
set -uo pipefail

DEMO_DIR=${DEMO_DIR:-/tmp/pgaf-demo}
PG_BIN=/usr/lib/postgresql/15/bin
RUN_AS=(runuser -u postgres --)
[ "$(id -u)" = 0 ] || RUN_AS=()

[ -d "$DEMO_DIR" ] || { echo "no demo in $DEMO_DIR"; exit 0; }

# nodes first, the monitor last
pidfiles=()
for pidfile in "$DEMO_DIR"/node_*.pid "$DEMO_DIR"/monitor.pid; do
    [ -e "$pidfile" ] && pidfiles+=("$pidfile")
done
for pidfile in "${pidfiles[@]}"; do
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null
done
for data in "$DEMO_DIR"/*/; do
    [ -f "$data/PG_VERSION" ] && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
done
rm -rf "$DEMO_DIR"
echo "demo stopped"
