#!/usr/bin/env bash
# Runs the benchmarks (all bench/[0-9]*.sh, or those named) on a fresh bench cluster and prints a
# table: for pgbench workloads "ours tps, peer tps, ours/peer"; for SQL statements "ours, peer, speed-up".
set -euo pipefail
export AOS_CUS_INSTANCE=${AOS_CUS_INSTANCE:-bench}
. "$(dirname "$0")/../scripts/common.sh"
cd "$REPO"
command -v bc >/dev/null || { [ "$(id -u)" -ne 0 ] || apt-get install -y -qq bc >/dev/null; }
bash scripts/deps.sh
bash scripts/build.sh
bash scripts/cluster.sh destroy
bash scripts/cluster.sh start
pg_sql -d aos_cus -c "CREATE EXTENSION aos_cus"
: > "$STATE/results.tsv"
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(bench/[0-9]*.sh)
for s in "${scripts[@]}"; do
	echo "== $s"
	bash "$s"
done
echo
echo "== results (median of alternating runs; ratio > 1 means ours is faster)"
column -t -s $'\t' "$STATE/results.tsv"
bash scripts/cluster.sh stop
