#!/usr/bin/env bash
# Stops the demo started by scripts/demo.sh and removes its directory.
set -uo pipefail

DEMO_DIR=${DEMO_DIR:-/tmp/pgaf-demo}
PG_BIN=/usr/lib/postgresql/15/bin
RUN_AS=(runuser -u postgres --)
[ "$(id -u)" = 0 ] || RUN_AS=()

[ -d "$DEMO_DIR" ] || { echo "no demo in $DEMO_DIR"; exit 0; }

for pidfile in "$DEMO_DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # the keeper runs in its own session: stop it and its Postgres together
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
done
for _ in $(seq 1 30); do
    alive=0
    for pidfile in "$DEMO_DIR"/*.pid; do
        [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 1
done
for pidfile in "$DEMO_DIR"/*.pid; do
    [ -e "$pidfile" ] && kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null
done
for data in "$DEMO_DIR"/*/; do
    [ -f "$data/PG_VERSION" ] && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
done
rm -rf "$DEMO_DIR"
echo "demo stopped"
