#!/usr/bin/env bash
# Ingest and rollup against plain-SQL peers:
#  1. ingest_usage (jsonb record, validated, priced by the trigger) vs INSERT ... ON CONFLICT (tenant_id, call_id)
#     DO NOTHING of the same row with its cost precomputed, into an unpartitioned copy of cus_llm_usage (a partition's
#     key and indexes, FK, UNIQUE (tenant_id, call_id) where ours has cus_usage_keys, and our row check's bounds as
#     ten SQL CHECKs; no trigger): 1 and 4 clients with synchronous_commit = off (CPU path), and 1 client durable.
#     Also 4 clients against the same INSERT into a copy that keeps our C row check: what ingest adds to a row.
#     Also 4 clients against the plain-SQL form of the design issue 19 asks for (a monthly-partitioned copy of
#     cus_llm_usage and a copy of cus_usage_keys, the key and the row in one statement as ingest.c writes them),
#     which the unpartitioned peer does not pay: what our C path costs on top of the SQL it runs (also at 1 client).
#  2. ingest_usage_batch of 1,000 records vs one multi-row INSERT ... ON CONFLICT DO NOTHING of the same rows
#     (a VALUES list of 1,000 rows: pgbench allows one parameter for the run's call_id prefix).
#  3. rollup_usage() of 10,000 new rows on 1,000,000 already rolled up vs a full recompute
#     (INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE).
# Rows start at the clock of the run: the current month's partition, inside the idempotency window, as in production.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=00000000-0000-4000-8000-0000000b0001
I=00000000-0000-4000-8000-0000000b00a1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Same call, three ways (lib.sh). Random call_ids: every transaction inserts a new row on every side.
ingest_peers bench_peer "$T" "$I" "$dir"
pg_sql -d "$BENCH_DB" -q -c "CREATE TABLE bench_peer_daily (LIKE aos_cus.cus_usage_daily INCLUDING ALL)"
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage vs INSERT ON CONFLICT, 1 client, sync off" "$dir/ours.sql" "$dir/insert.sql"
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage vs the same design in plain SQL, 1 client, sync off" "$dir/ours.sql" "$dir/design.sql"
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage vs INSERT ON CONFLICT, 4 clients, sync off" "$dir/ours.sql" "$dir/insert.sql" -c 4 -j 2
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage vs the same design in plain SQL (partitions + key table), 4 clients, sync off" \
	"$dir/ours.sql" "$dir/design.sql" -c 4 -j 2
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage vs INSERT ON CONFLICT into a copy with our C row check, 4 clients, sync off" \
	"$dir/ours.sql" "$dir/insert_c.sql" -c 4 -j 2
compare "ingest_usage vs INSERT ON CONFLICT, 1 client, durable" "$dir/ours.sql" "$dir/insert.sql"

# Batches of 1,000: one JSON array vs one multi-row VALUES list.
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
	echo '\set r random(1, 1000000000000)'
	printf "SELECT count(*) FROM aos_cus.ingest_usage_batch('%s', replace('[" "$T"
	for i in $(seq 1 1000); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"integration_id": "%s", "call_id": "b@-%d", "model": "gpt-4o", "input_tokens": %d, "output_tokens": 300, "latency_ms": 850, "started_at": "$started"}' "$I" "$i" "$i"
	done
	echo "]', '@', :r::text)::jsonb);"
} > "$dir/oursb.sql"
{
	echo '\set r random(1, 1000000000000)'
	echo "INSERT INTO bench_peer_usage (tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, output_tokens, latency_ms, status, started_at, cost_microcents, price_id)"
	echo "SELECT '$T'::uuid, '$I'::uuid, 'b' || :r || '-' || i, 'openai', 'gpt-4o', 'standard', i, 300, 850, 'success', '$started'::timestamptz, 600000, 1"
	printf 'FROM (VALUES '
	for i in $(seq 1 1000); do
		[ "$i" -gt 1 ] && printf ', '
		printf '(%d)' "$i"
	done
	echo ") AS v (i) ON CONFLICT (tenant_id, call_id) DO NOTHING;"
} > "$dir/peerb.sql"
PGOPTIONS='-c synchronous_commit=off' compare "ingest_usage_batch(1000) vs multi-row INSERT, 1 client, sync off" "$dir/oursb.sql" "$dir/peerb.sql"
compare "ingest_usage_batch(1000) vs multi-row INSERT, 1 client, durable" "$dir/oursb.sql" "$dir/peerb.sql"

# Rollup: 1,000,000 rows over 200 integrations, 30 days and 5 models, rolled up; then 10,000 new rows.
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
SELECT ('00000000-0000-4000-8000-0000000c' || lpad(t::text, 4, '0'))::uuid, ('00000000-0000-4000-8000-0000000d' || lpad(t::text, 4, '0'))::uuid, 'r' || t, 'openai'
  FROM generate_series(1, 200) t;
CREATE PROCEDURE bench_add_usage(prefix text, n integer) LANGUAGE sql AS $$
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, output_tokens, latency_ms, cost_microcents, price_id)
SELECT ('00000000-0000-4000-8000-0000000c' || lpad(t::text, 4, '0'))::uuid, ('00000000-0000-4000-8000-0000000d' || lpad(t::text, 4, '0'))::uuid,
       prefix || g, 'openai', (ARRAY['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'gpt-4.1', 'gpt-4.1-mini'])[1 + g % 5],
       timestamptz '2026-01-01' + (g % 30) * interval '1 day' + (g % 86400) * interval '1 second', g % 4000, g % 700, g % 3000, g % 90000, 1
  FROM generate_series(1, n) g, LATERAL (SELECT 1 + g % 200 AS t) x
$$;
CALL bench_add_usage('m', 1000000);
VACUUM ANALYZE aos_cus.cus_llm_usage;
SELECT aos_cus.rollup_usage();
SQL
# Each measured rollup folds 10,000 fresh rows (a new call_id prefix per round); only its time is taken.
ours_sql="CALL bench_add_usage('n' || (random() * 1e15)::bigint || '-', 10000); SELECT aos_cus.rollup_usage();"
peer='INSERT INTO bench_peer_daily AS d SELECT tenant_id, integration_id, (started_at AT TIME ZONE '"'UTC'"')::date, provider, model,
  count(*), count(*) FILTER (WHERE status <> '"'success'"'), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(cache_write_1h_tokens), sum(output_tokens), sum(reasoning_tokens), sum(input_audio_tokens), sum(output_audio_tokens),
  coalesce(sum(cost_microcents), 0), count(*) FILTER (WHERE cost_microcents IS NULL), coalesce(sum(latency_ms), 0), coalesce(max(latency_ms), 0), now()
  FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (tenant_id, integration_id, day, provider, model) DO UPDATE SET requests = excluded.requests, errors = excluded.errors,
  input_tokens = excluded.input_tokens, cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
  cache_write_1h_tokens = excluded.cache_write_1h_tokens, output_tokens = excluded.output_tokens, reasoning_tokens = excluded.reasoning_tokens,
  input_audio_tokens = excluded.input_audio_tokens, output_audio_tokens = excluded.output_audio_tokens, cost_microcents = excluded.cost_microcents,
  unpriced_requests = excluded.unpriced_requests, latency_sum_ms = excluded.latency_sum_ms, latency_max_ms = excluded.latency_max_ms, updated_at = now();'
a=() b=()
for ((i = 0; i < BENCH_ROUNDS; i++)); do
	a+=("$(BENCH_ROUNDS=1 sql_ms "$ours_sql")")
	b+=("$(BENCH_ROUNDS=1 sql_ms "$peer")")
done
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
printf '%s\t%.1f ms\t%.1f ms\t%.2f\n' "rollup_usage (10,000 new on 1,000,000) vs full recompute" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)" | tee -a "$RESULTS"
pg_sql -d "$BENCH_DB" -c "SELECT count(*) AS usage_rows, $BENCH_ROUNDS * 10000 AS added_by_measured_rollups FROM aos_cus.cus_llm_usage"
