#!/usr/bin/env bash
# Flat costs as the usage table grows (issue 19): loads BENCH_SCALE_ROWS usage rows (default 20,000,000) over 24
# months for 1,000 tenants, rolled up, and reports: ingest tps (ingest_usage, 1 client, sync off) at full size
# against an empty table (a second database of the same cluster, measured alternately); p50/p99 of usage_summary
# (one tenant, one month), a usage_history page and daily_aggregates (one tenant, one month); an enforcement
# rebuild of one integration; dropping a month of raw rows (set_retention + maintain_partitions); disk size per
# million rows (heap, indexes, keys); the load rate and the time of the first rollup of every row. The reads run
# after a rollup_usage() (as the pg_cron job keeps it current) and report the backend's CPU per run beside p50/p99.
# Size: BENCH_SCALE_ROWS=500000 bash bench/run.sh bench/61_scale.sh.
# The load is a bulk load (as COPY would be): one INSERT ... SELECT per million rows with the triggers off
# (session_replication_role = replica), then the idempotency keys of the rows inside the window in one INSERT
# (what the key trigger plus maintain_partitions() leave); the measured ingest goes through every trigger.
# Ingest at full size is also counted in instructions (callgrind) and in shared buffers per call, against empty.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROWS=${BENCH_SCALE_ROWS:-20000000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The empty table: a second database on the same cluster, measured in alternation with the full one.
EMPTY_DB=${BENCH_DB}_empty
pg_sql -d postgres -q -c "DROP DATABASE IF EXISTS $EMPTY_DB" -c "CREATE DATABASE $EMPTY_DB"
pg_sql -d "$EMPTY_DB" -q -c "CREATE EXTENSION aos_cus"
for db in "$BENCH_DB" "$EMPTY_DB"; do
	pg_sql -d "$db" -q -o /dev/null <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
SELECT ('00000000-0000-4000-8000-0000000e' || lpad(t::text, 4, '0'))::uuid, ('00000000-0000-4000-8000-0000000f' || lpad(t::text, 4, '0'))::uuid,
       's' || t, 'openai'
  FROM generate_series(1, 1000) t;
SELECT count(*) FROM aos_cus.maintain_partitions();
SQL
done
cat > "$dir/ingest.sql" <<'SQL'
\set r random(1, 1000000000000)
\set t random(1, 1000)
SELECT aos_cus.ingest_usage(('00000000-0000-4000-8000-0000000e' || lpad(:t::text, 4, '0'))::uuid,
  ('{"integration_id": "00000000-0000-4000-8000-0000000f' || lpad(:t::text, 4, '0') || '", "call_id": "i' || :r
   || '", "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300, "latency_ms": 850, "started_at": "'
   || now()::text || '"}')::jsonb);
SQL

# 24 monthly partitions first (one row each, moved by maintenance), then the rows straight into them.
pg_sql -d "$BENCH_DB" -q <<SQL
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
SELECT '00000000-0000-4000-8000-0000000e0001', '00000000-0000-4000-8000-0000000f0001', 'seed-' || m, 'openai', 'gpt-4o',
       date_trunc('month', now(), 'UTC') - m * interval '1 month'
  FROM generate_series(1, 24) m;
SELECT count(*) FROM aos_cus.maintain_partitions();
SQL
load_start=$(date +%s.%N)
for ((lo = 1; lo <= ROWS; lo += 1000000)); do
	hi=$((lo + 999999 < ROWS ? lo + 999999 : ROWS))
	PGOPTIONS='-c session_replication_role=replica -c synchronous_commit=off' pg_sql -d "$BENCH_DB" -q <<SQL
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, output_tokens,
                                   latency_ms, cost_microcents, price_id)
SELECT ('00000000-0000-4000-8000-0000000e' || lpad(t::text, 4, '0'))::uuid, ('00000000-0000-4000-8000-0000000f' || lpad(t::text, 4, '0'))::uuid,
       'l' || g, 'openai', (ARRAY['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'gpt-4.1', 'gpt-4.1-mini'])[1 + g % 5],
       now() - (g::numeric / $ROWS) * interval '730 days', g % 4000, g % 700, g % 3000, g % 90000, 1
  FROM generate_series($lo, $hi) g, LATERAL (SELECT 1 + g % 1000 AS t) x;
SQL
done
pg_sql -d "$BENCH_DB" -q <<'SQL'
INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)
SELECT u.tenant_id, u.call_id, u.id, u.started_at, u.ingested_at FROM aos_cus.cus_llm_usage u
 WHERE u.started_at >= now() - (SELECT idempotency_window FROM aos_cus.usage_settings()) AND u.call_id LIKE 'l%';
SQL
load_s=$(echo "$(date +%s.%N) - $load_start" | bc -l)
printf '%s\t%.0f s\t%.0f rows/s\n' "bulk load of $ROWS rows (with keys)" "$load_s" "$(echo "$ROWS / $load_s" | bc -l)" | tee -a "$RESULTS"
printf '%s\t%.1f s\n' "first rollup_usage() of $ROWS rows" \
	"$(echo "$(BENCH_ROUNDS=1 sql_ms 'SELECT aos_cus.rollup_usage();') / 1000" | bc -l)" | tee -a "$RESULTS"
pg_sql -d "$BENCH_DB" -q -c "VACUUM ANALYZE aos_cus.cus_llm_usage" -c "VACUUM ANALYZE aos_cus.cus_usage_keys"
full=() empty=()
for ((i = 0; i < BENCH_ROUNDS; i++)); do
	full+=("$(PGOPTIONS='-c synchronous_commit=off' pgbench_tps "$dir/ingest.sql")")
	empty+=("$(BENCH_DB=$EMPTY_DB PGOPTIONS='-c synchronous_commit=off' pgbench_tps "$dir/ingest.sql")")
done
full_tps=$(median "${full[@]}"); empty_tps=$(median "${empty[@]}")
printf '%s\t%.0f\t%.0f\t%.2f\n' "ingest_usage tps at $ROWS rows vs empty (1 client, sync off)" "$full_tps" "$empty_tps" \
	"$(echo "$full_tps / $empty_tps" | bc -l)" | tee -a "$RESULTS"
# The same ingest counted instead of timed (callgrind, see lib.sh), which a busy machine cannot skew, and the
# shared buffers each ingest touches (pg_stat_database's counters around 2,000 calls; its backend flushes them at exit).
callgrind_start
PGOPTIONS='-c synchronous_commit=off' OURS_DB=$BENCH_DB PEER_DB=$EMPTY_DB \
	compare_instructions "ingest_usage at $ROWS rows vs empty (instructions/tx, sync off)" "$dir/ingest.sql" "$dir/ingest.sql"
callgrind_stop
for db in "$BENCH_DB" "$EMPTY_DB"; do
	pg_sql -d "$db" -Atq -c "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()" > "$dir/b0"
	PGOPTIONS='-c synchronous_commit=off' "$BINDIR/pgbench" -n -M prepared -t 2000 -f "$dir/ingest.sql" "$db" > /dev/null
	sleep 1
	pg_sql -d "$db" -Atq -c "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()" > "$dir/b1"
	paste -d'|' "$dir/b0" "$dir/b1" | awk -F'|' -v n="shared buffers per ingest at $db" \
		'{printf "%s\thit %.1f\tread %.2f\n", n, ($3 - $1) / 2000, ($4 - $2) / 2000}' | tee -a "$RESULTS"
done

# The reads below run as after the pg_cron job's next rollup_usage(): the rows the ingest runs added are folded.
printf '%s\t%s rows\n' "rollup_usage() before the reads" "$(pg_sql -d "$BENCH_DB" -Atc 'SELECT aos_cus.rollup_usage()')" | tee -a "$RESULTS"

# p50 and p99 (ms) of a statement run 100 times in one psql session (\timing, after one unmeasured run), and
# that backend's CPU per run (utime + stime from /proc, in 10 ms ticks), which a busy machine disturbs less.
percentiles() {
	local name=$1 sql=$2
	{ printf 'SELECT pg_backend_pid() AS pid \\gset\n\\setenv PID :pid\n%s\n' "$sql"
	  printf '\\! awk %s /proc/$PID/stat > %s/cpu0\n\\timing on\n' "'{print \$14 + \$15}'" "$dir"
	  for ((i = 0; i < 100; i++)); do printf '%s\n' "$sql"; done
	  printf '\\timing off\n\\! awk %s /proc/$PID/stat > %s/cpu1\n' "'{print \$14 + \$15}'" "$dir"; } > "$dir/p.sql"
	"$BINDIR/psql" -X -q -d "$BENCH_DB" -o /dev/null -f "$dir/p.sql" 2>&1 | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | sort -g > "$dir/times"
	awk -v n="$name" -v ticks="$(( $(cat "$dir/cpu1") - $(cat "$dir/cpu0") ))" -v hz="$(getconf CLK_TCK)" '{a[NR]=$1}
		END {printf "%s\tp50 %.2f ms\tp99 %.2f ms\tbackend CPU %.2f ms per run\n", n, a[int(NR*0.5)], a[int(NR*0.99)], ticks * 1000 / hz / NR}' \
		"$dir/times" | tee -a "$RESULTS"
}
T="'00000000-0000-4000-8000-0000000e0042'"
M="date_trunc('month', now(), 'UTC') - interval '6 months'"
percentiles "usage_summary (one tenant, one month)" "SELECT count(*) FROM aos_cus.usage_summary($T, NULL, $M, $M + interval '1 month');"
percentiles "usage_history page of 100" "SELECT count(*) FROM aos_cus.usage_history($T, NULL, $M, $M + interval '1 month');"
percentiles "daily_aggregates (one tenant, one month)" "SELECT count(*) FROM aos_cus.daily_aggregates($T, NULL, ($M AT TIME ZONE 'UTC')::date, ($M AT TIME ZONE 'UTC')::date + 30);"
percentiles "enforcement rebuild (limits changed, then current_usage)" \
	"SELECT aos_cus.set_limits($T, '00000000-0000-4000-8000-0000000f0042', '{\"budget_microcents\": 100000000000, \"budget_period\": \"total\"}') IS NULL, (SELECT spent_microcents FROM aos_cus.current_usage($T, '00000000-0000-4000-8000-0000000f0042'));"
pg_sql -d "$BENCH_DB" -At <<'SQL' | tee -a "$RESULTS"
SELECT 'disk per million rows (heap + indexes + keys)', pg_size_pretty(
         ((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'aos_cus.cus_llm_usage'::regclass)
          + pg_total_relation_size('aos_cus.cus_usage_keys')) * 1000000 / (SELECT count(*) FROM aos_cus.cus_llm_usage));
SQL
printf '%s\t%.1f ms\n' "drop the oldest month (set_retention + maintain_partitions)" \
	"$(sql_ms "SELECT aos_cus.set_retention(now() - (SELECT min(lower) FROM aos_cus_internal.partition_bounds('aos_cus.cus_llm_usage')) - interval '32 days', NULL); SELECT count(*) FROM aos_cus.maintain_partitions();")" | tee -a "$RESULTS"
