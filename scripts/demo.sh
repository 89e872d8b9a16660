#!/usr/bin/env bash
# The main job on a throwaway cluster: build, install, start PostgreSQL with aos_cus preloaded,
# load a demo tenant, run the demo steps in demo/*.sql, print what happened, leave the server running.
set -euo pipefail
export AOS_CUS_INSTANCE=demo
. "$(dirname "$0")/common.sh"
cd "$REPO"

echo "== installing missing Debian packages (if any)"
bash scripts/deps.sh
echo "== building and installing aos_cus"
bash scripts/build.sh
echo "== starting a fresh throwaway cluster on port $PORT"
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
    $BINDIR/psql -h $SOCK -p $PORT -U postgres aos_cus
Stop it with:
    bash scripts/cluster.sh stop
MSG
