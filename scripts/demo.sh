#!/usr/bin/env bash
# The main job on a throwaway cluster: build, install, start PostgreSQL with aos_cus preloaded,
# load a demo tenant, run the demo steps in demo/*.sql, print what happened, leave the server running.
# Usage: scripts/demo.sh [--at '<ISO 8601 instant>']   (--at: the server and psql run under a fake clock from then on)
set -euo pipefail
export AOS_CUS_INSTANCE=demo
. "$(dirname "$0")/common.sh"
cd "$REPO"
while [ $# -gt 0 ]; do
	case "$1" in
	--at) AOS_CUS_AT=${2:?--at needs an ISO 8601 instant}; shift 2 ;;
	*) echo "demo.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

echo "== installing missing Debian packages (if any)"
bash scripts/deps.sh
echo "== building and installing aos_cus"
bash scripts/build.sh
echo "== starting a fresh throwaway cluster on port $PORT"
fake_clock_start
bash scripts/cluster.sh destroy
bash scripts/cluster.sh start
pg_sql -d aos_cus -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION aos_cus"

for step in demo/[0-9][0-9]_*.sql; do
	echo
	echo "== $(sed -n '1s/^-- //p' "$step")"
	pg_sql -d aos_cus -f "$step"
done

cat <<MSG

The demo cluster is running (data in .aos_cus/demo, log in .aos_cus/demo/server.log).
Connect with:
    ${FAKETIME:+LD_PRELOAD=$FAKETIME_LIB FAKETIME=$FAKETIME }$BINDIR/psql -h $SOCK -p $PORT -U postgres aos_cus
Stop it with:
    bash scripts/cluster.sh stop
MSG
