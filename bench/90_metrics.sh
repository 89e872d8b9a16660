#!/usr/bin/env bash
# metrics() at scale: 10,000 integrations (each with a budget, its enforcement state in shared memory)
# and 200 models, in two databases of the bench cluster that differ only in cus_llm_usage: empty in one,
# 1,000,000 rows in the other. metrics() reads shared memory
# and small catalog tables only, so the two times should be equal (ratio ~1.0). For scale, the plain-SQL
# peer computes the same per-model cost and tokens with GROUP BY over cus_llm_usage.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROWS=${BENCH_METRICS_ROWS:-1000000}

# Both databases' 10,000 integrations must fit in the enforcement table at once (its key includes the database).
pg_sql -d postgres -c "ALTER SYSTEM SET aos_cus.max_integrations = 20000"
bash "$REPO/scripts/cluster.sh" restart

# One database with the extension, 10,000 integrations over 100 tenants and the 200 models used once each.
setup_db() {
	local db=$1
	pg_sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	pg_sql -d "$db" <<'SQL'
CREATE EXTENSION aos_cus;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, health_state, budget_microcents)
SELECT ('00000000-0000-4000-8000-' || lpad((g % 100)::text, 12, '0'))::uuid,
       ('10000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       'i' || g, 'openai', 'enabled', (ARRAY['unknown', 'healthy', 'degraded', 'failing'])[1 + g % 4],
       100000000::bigint * (1 + g % 50)
  FROM generate_series(1, 10000) g;
UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now();
VACUUM ANALYZE aos_cus.cus_integrations;
SQL
}

# One check() per integration loads its enforcement state (budget, period spend) into shared memory.
load_enforcement() {
	pg_sql -d "$1" -Atc "SELECT count((aos_cus.check(tenant_id, id, 0)).decision) FROM aos_cus.cus_integrations" >/dev/null
}

# Insert n usage rows: 100 per integration (integration 1 + (g / 100) % 10000) over the 200 models
# (m-000 .. m-199), in transactions of 100,000 rows so that each touches 1,000 integrations (the
# settlement trigger holds a lock per integration until commit).
insert_usage() {
	local db=$1 n=$2 from
	for ((from = 1; from <= n; from += 100000)); do
		pg_sql -d "$db" -c "
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, input_tokens, output_tokens,
                                   cost_microcents, started_at)
SELECT ('00000000-0000-4000-8000-' || lpad(((1 + (g / 100) % 10000) % 100)::text, 12, '0'))::uuid,
       ('10000000-0000-4000-8000-' || lpad((1 + (g / 100) % 10000)::text, 12, '0'))::uuid,
       'c' || g, 'openai', 'm-' || lpad((g % 200)::text, 3, '0'), 100 + g % 1000, 10 + g % 100,
       1000 + g % 5000, now() - interval '1 second' * (g % 86400)
  FROM generate_series($from, least($from + 99999, $n)) g"
	done
}

setup_db bench_metrics_empty
setup_db bench_metrics_full
echo "loading $ROWS usage rows"
insert_usage bench_metrics_full "$ROWS"
pg_sql -d bench_metrics_full -c "VACUUM ANALYZE aos_cus.cus_llm_usage"
# The empty database gets the same spend per integration as daily aggregates (no usage rows), so both
# report identical budgets; the 200 models are in the (cluster-wide) usage counters already.
pg_sql -d bench_metrics_full -c "\copy (SELECT tenant_id, integration_id, current_date, 'openai', 'm-000', count(*), sum(cost_microcents) FROM aos_cus.cus_llm_usage GROUP BY 1, 2) TO STDOUT" |
	pg_sql -d bench_metrics_empty -c "\copy aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests, cost_microcents) FROM STDIN"
load_enforcement bench_metrics_empty
load_enforcement bench_metrics_full
for db in bench_metrics_empty bench_metrics_full; do
	pg_sql -d "$db" -At -c "
SELECT '$db: usage rows ' || (SELECT count(*) FROM aos_cus.cus_llm_usage) ||
       '; usage_stats entries ' || (SELECT entries_used FROM aos_cus.stat_shmem WHERE area = 'usage_stats') ||
       '; integrations ' || (SELECT count(*) FROM aos_cus.cus_integrations) ||
       ' (' || (SELECT entries_used FROM aos_cus.stat_shmem WHERE area = 'enforcement_integrations') || ' cached)' ||
       '; budget used ratio sum ' || (SELECT round(sum(used_ratio)::numeric, 6) FROM aos_cus.stat_budget) ||
       '; metrics() bytes ' || length(aos_cus.metrics())"
done

# One measurement: 100 calls of metrics() in one statement (a warm backend, as a scraper's connection is).
SCRAPES="SELECT sum(length(aos_cus.metrics())) FROM generate_series(1, 100)"

# metrics() in the full database against the empty one, alternately (ratio = empty/full; 1.0 = no growth).
a=() b=()
for ((i = 0; i < BENCH_ROUNDS * 3; i++)); do
	a+=("$(BENCH_DB=bench_metrics_full BENCH_ROUNDS=1 sql_ms "$SCRAPES")")
	b+=("$(BENCH_DB=bench_metrics_empty BENCH_ROUNDS=1 sql_ms "$SCRAPES")")
done
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
printf '%s\t%.3f ms\t%.3f ms\t%.2f\n' "one metrics() call, $ROWS usage rows vs none (10k integrations, 200 models)" \
	"$(echo "$ma / 100" | bc -l)" "$(echo "$mb / 100" | bc -l)" "$(echo "$mb / $ma" | bc -l)" | tee -a "$RESULTS"

# For scale: the same per-model figures from the usage rows with plain SQL.
BENCH_DB=bench_metrics_full compare_sql "metrics() vs GROUP BY over $ROWS usage rows (per call)" \
	"SELECT length(aos_cus.metrics())" \
	"SELECT count(*) FROM (SELECT provider, model, count(*), sum(cost_microcents), sum(input_tokens), sum(output_tokens)
	   FROM aos_cus.cus_llm_usage GROUP BY provider, model) s"
pg_sql -d postgres -c "DROP DATABASE bench_metrics_empty" -c "DROP DATABASE bench_metrics_full" \
	-c "ALTER SYSTEM RESET aos_cus.max_integrations"
