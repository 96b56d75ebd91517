#!/usr/bin/env bash
# Builds, once, an isolated PostgreSQL 15 tree holding pg_auto_failover 2.0's monitor
# extension (Debian package postgresql-15-auto-failover): a copy of the system's
# /usr/lib/postgresql/15 and /usr/share/postgresql/15 with the package unpacked over it.
# Postgres is relocatable: the copy's programs find their libraries and extensions inside the
# copy, so the two `pgautofailover` extensions never meet. The system's files are not touched.
# Prints the tree's pg_ctl.
set -euo pipefail

TREE=${PGAF20_TREE:-/var/tmp/pgaf20-tree}
PG_CTL="$TREE/usr/lib/postgresql/15/bin/pg_ctl"

if [ -f "$TREE/.ready" ]; then
    echo "$PG_CTL"
    exit 0
fi
rm -rf "$TREE"
mkdir -p "$TREE/usr/lib/postgresql" "$TREE/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$TREE/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$TREE/usr/share/postgresql/"
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
(
    cd "$download"
    chmod 777 "$download"   # apt's sandbox user writes here
    apt-get download -q postgresql-15-auto-failover >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get download -q postgresql-15-auto-failover >/dev/null; }
)
dpkg -x "$download"/postgresql-15-auto-failover_*.deb "$TREE"
sharedir=$("$TREE/usr/lib/postgresql/15/bin/pg_config" --sharedir)
if [ "$sharedir" != "$TREE/usr/share/postgresql/15" ]; then
    echo "the copied Postgres does not relocate: its sharedir is $sharedir" >&2
    exit 1
fi
grep -q "default_version = '2.0'" "$TREE/usr/share/postgresql/15/extension/pgautofailover.control"
chmod -R a+rX "$TREE"
chmod a+rx "$(dirname "$TREE")" 2>/dev/null || true
touch "$TREE/.ready"
echo "$PG_CTL"
