#!/usr/bin/env bash
# Reservation capacity (issue 14, requirement 6): reserving check()s at a steady 1,000 per second whose callers
# never ingest (failed calls), over 8 tenants, for longer than one reservation TTL (CAPACITY_TTL_S, default 15 s
# instead of the default 10 minutes, so the run stays short). Live reservations climb to rate x TTL and stay there
# as expired ones are popped; no check may fail with 53400. The peer keeps the same reservations in a plain table
# (INSERT ... ON CONFLICT, deleting expired rows in the same statement), same rate; the figures are each side's
# average latency and the ratio peer/ours (> 1: ours is faster).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
TTL_S=${CAPACITY_TTL_S:-15}
RUN_S=$((TTL_S + 10))
RATE=1000
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
SELECT ('b7200000-0000-4000-8000-00000000000' || t)::uuid, ('b7200000-0000-4000-8000-0000000000a' || t)::uuid,
       'capacity', 'openai', 'enabled', 9000000000000000000, 'month'
  FROM generate_series(1, 8) t
ON CONFLICT DO NOTHING;
DROP TABLE IF EXISTS peer_reservation;
CREATE TABLE peer_reservation (tenant_id uuid, call_id text, cost bigint, tokens bigint, expires_at timestamptz,
                               PRIMARY KEY (tenant_id, call_id));
CREATE INDEX ON peer_reservation (expires_at);
SQL
dir=$(mktemp -d)
cat > "$dir/ours.sql" <<'SQL'
\set t random(1, 8)
\set r random(1, 2000000000)
SELECT (aos_cus.check(('b7200000-0000-4000-8000-00000000000' || :t)::uuid, ('b7200000-0000-4000-8000-0000000000a' || :t)::uuid,
                      100, 10, 'cap-' || :client_id || '-' || :r)).decision;
SQL
cat > "$dir/peer.sql" <<SQL
\set t random(1, 8)
\set r random(1, 2000000000)
WITH expired AS (DELETE FROM peer_reservation WHERE expires_at < now())
INSERT INTO peer_reservation VALUES (('b7200000-0000-4000-8000-00000000000' || :t)::uuid, 'cap-' || :client_id || '-' || :r,
                                     100, 10, now() + interval '$TTL_S seconds')
ON CONFLICT (tenant_id, call_id) DO UPDATE SET cost = EXCLUDED.cost, tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at;
SQL

# Sample live reservations once a second while ours runs.
sample() {
	while :; do
		pg_sql -d "$BENCH_DB" -XAtc "SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'reservations_active'" \
			2>/dev/null >> "$dir/live" || true
		sleep 1
	done
}
run() {
	PGOPTIONS="-c synchronous_commit=off -c aos_cus.reservation_ttl=${TTL_S}s" \
		"$BINDIR/pgbench" -n -M prepared -R "$RATE" -T "$RUN_S" -c 4 -j 2 -f "$1" "$BENCH_DB" > "$2" 2>&1 || true
}
sample & sampler=$!
run "$dir/ours.sql" "$dir/ours.out"
kill "$sampler"; wait "$sampler" 2>/dev/null || true
run "$dir/peer.sql" "$dir/peer.out"

field() { sed -nE "s/^$1 = ([0-9.]+).*/\1/p" "$2" | head -n 1; }
processed=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$dir/ours.out")
tps=$(field tps "$dir/ours.out")
aborted=$(grep -c 'aborted' "$dir/ours.out" || true)
full=$(grep -c '53400\|max_reservations' "$dir/ours.out" || true)
peak=$(sort -n "$dir/live" | tail -n 1)
slots=$(pg_sql -d "$BENCH_DB" -XAtc "SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'max_reservations'")
echo "ours: $processed reserving checks in ${RUN_S} s at ${tps} tps (target ${RATE}/s), TTL ${TTL_S} s:" \
	"peak live reservations ${peak} (rate x TTL = $((RATE * TTL_S))), clients aborted ${aborted}, 53400 errors ${full}"
echo "at the default TTL (600 s) ${RATE}/s needs $((RATE * 600)) live reservations; aos_cus.max_reservations = ${slots}"
la=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$dir/ours.out")
lb=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$dir/peer.out")
printf '%s\t%s ms\t%s ms\t%.2f\n' "reserving check() at ${RATE}/s, never ingested, ${RUN_S} s > TTL ${TTL_S} s: latency vs plain-table peer" \
	"$la" "$lb" "$(echo "$lb / $la" | bc -l)" | tee -a "$RESULTS"
rm -rf "$dir"
[ "$aborted" -eq 0 ] && [ "$full" -eq 0 ]
