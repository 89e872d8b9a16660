#!/usr/bin/env bash
# Monitoring layer, run by scripts/test.sh against the running test cluster:
# promtool check metrics on metrics(), promtool check/test rules, the Grafana dashboard's metric
# names, and a real scrape of prometheus-postgres-exporter with monitoring/postgres_exporter/queries.yaml
# on loopback, whose aos_cus series must equal metrics()' and hold the values a known workload sets.
# Ends with "monitoring: N passed, N failed".
set -uo pipefail
export AOS_CUS_INSTANCE=${AOS_CUS_INSTANCE:-test}
. "$(dirname "$0")/../../scripts/common.sh"
cd "$REPO"

DB=aos_cus_monitoring
EXPORTER_PORT=$((PORT + 7))
WORK=$(mktemp -d)
COMPARE="python3 test/monitoring/prom_compare.py"
passed=0 failed=0
exporter_pid=

# Record one check: name, then a command that must succeed.
check() {
	local name=$1; shift
	if "$@"; then
		echo "ok - $name"; passed=$((passed + 1))
	else
		echo "not ok - $name"; failed=$((failed + 1))
	fi
}

# True when two values are equal (numbers compared as numbers).
same_value() {
	python3 -c 'import sys; a, b = sys.argv[1:]; sys.exit(0 if a == b or float(a) == float(b) else 1)' "$1" "$2" 2>/dev/null ||
		{ echo "    got $1, expected $2"; return 1; }
}

# The value of one series in an exposition file must be as expected.
series_is() {
	same_value "$($COMPARE value "$1" "$2")" "$3"
}

# The series' value lies in [low, high].
series_between() {
	local v
	v=$($COMPARE value "$1" "$2")
	python3 -c 'import sys; v, lo, hi = map(float, sys.argv[1:]); sys.exit(0 if lo <= v <= hi else 1)' "$v" "$3" "$4" ||
		{ echo "    got $v, expected between $3 and $4"; return 1; }
}

# Every name listed in file $1 appears in file $2.
names_subset() {
	local missing
	missing=$(comm -23 "$1" "$2")
	[ -z "$missing" ] || { echo "    not emitted: $(echo $missing)"; return 1; }
}

# psql on the monitoring database, unaligned, tuples only.
msql() {
	pg_sql -d "$DB" -At "$@"
}

cleanup() {
	[ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# A known workload in its own database: integrations in known states, a rollup 300 s ago, zeroed counters.
pg_sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
msql >/dev/null <<'SQL'
CREATE EXTENSION aos_cus;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aos_cus_monitor') THEN
        CREATE ROLE aos_cus_monitor LOGIN IN ROLE pg_monitor;
    END IF;
END $$;
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, health_state, deleted_at)
SELECT ('00000000-0000-0000-0000-00000000000' || (k % 3))::uuid, s || '-' || h || '-' || k, 'openai', s, h,
       CASE WHEN s = 'deleted' THEN now() END
  FROM (VALUES ('enabled', 'healthy', 3), ('enabled', 'failing', 2), ('disabled', 'degraded', 1),
               ('created', 'unknown', 4), ('deleted', 'failing', 5)) AS v(s, h, n),
       LATERAL generate_series(1, n) AS x(k);
UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now() - interval '300 seconds';
SELECT aos_cus.stat_reset();
-- Enforcement and usage: a budget of 1,000,000 micro-cents with warn at 80%, two checks, three
-- committed usage rows (800,000 micro-cents against the budget) and one rolled back, then a check
-- that now warns. A total budget: the clock may pass a month's end while the test runs.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period, warn_at_pct)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'budgeted', 'openai',
        'enabled', 1000000, 'total', 80);
SELECT (aos_cus.check('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 100)).decision
  FROM generate_series(1, 2);
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, input_tokens, output_tokens,
                                   cost_microcents, started_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'm1', 'openai', 'gpt-4o', 100, 20, 400000, now()),
       ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'm2', 'openai', 'gpt-4o', 100, 20, 399950, now());
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, input_tokens, output_tokens,
                                   cost_microcents, started_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'm3', 'anthropic', E'claude "q"\n', 5, 1, 50, now());
BEGIN;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, input_tokens, output_tokens,
                                   cost_microcents, started_at)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'm4', 'openai', 'gpt-4o', 7, 7, 7, now());
ROLLBACK;
SELECT (aos_cus.check('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 100)).decision;
-- Ingest through the API on another integration: two inserted, one duplicate, one rejected.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b2', 'ingested', 'openai', 'enabled');
SELECT status FROM aos_cus.ingest_usage('00000000-0000-0000-0000-00000000000b',
    '{"integration_id": "00000000-0000-0000-0000-0000000000b2", "call_id": "ing-1", "provider": "openai",
      "model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 10, "started_at": "2026-01-01T00:00:00Z"}');
SELECT status FROM aos_cus.ingest_usage('00000000-0000-0000-0000-00000000000b',
    '{"integration_id": "00000000-0000-0000-0000-0000000000b2", "call_id": "ing-1", "provider": "openai",
      "model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 10, "started_at": "2026-01-01T00:00:00Z"}');
SELECT status FROM aos_cus.ingest_usage_batch('00000000-0000-0000-0000-00000000000b',
    '[{"integration_id": "00000000-0000-0000-0000-0000000000b2", "call_id": "ing-2", "provider": "openai",
       "model": "gpt-4o-mini", "input_tokens": 500, "output_tokens": 20, "started_at": "2026-01-01T00:00:00Z"},
      {"call_id": "ing-bad", "provider": "openai"}]');
-- Webhooks: one endpoint, made after the checks (nothing pending), with known delivery counters.
SELECT webhook_id IS NOT NULL FROM aos_cus.create_webhook('00000000-0000-0000-0000-00000000000b', 'https://hooks.example.com/monitoring');
UPDATE aos_cus.cus_webhooks SET delivered = 5, failed = 3, retried = 2, dead_lettered = 1;
SQL
# Times come from the server's clock (which may be faked), never the machine's.
server_epoch() {
	msql -c "SELECT extract(epoch FROM now())::bigint"
}
workload_at=$(server_epoch)
# Upper bound of the rollup lag now: 300 s plus the time since the workload set it (and a few seconds of slack).
lag_max() {
	echo $((300 + $(server_epoch) - workload_at + 3))
}

# 1. metrics() is valid exposition text that promtool's linter accepts, as the monitoring role.
PGUSER=aos_cus_monitor msql -c "SELECT aos_cus.metrics()" > "$WORK/metrics.prom"
check "metrics() runs as a pg_monitor member" test -s "$WORK/metrics.prom"
lint=$(promtool check metrics < "$WORK/metrics.prom" 2>&1); rc=$?
[ -z "$lint" ] || echo "$lint" | sed 's/^/    /'
check "promtool check metrics accepts metrics() (no lint findings)" [ "$rc" -eq 0 -a -z "$lint" ]
check "every family has HELP and TYPE and the aos_cus_ prefix" python3 - "$WORK/metrics.prom" <<'PY'
import re, sys
help_, type_, names = set(), {}, set()
for line in open(sys.argv[1]):
    if line.startswith('# HELP '): help_.add(line.split()[2])
    elif line.startswith('# TYPE '): type_[line.split()[2]] = line.split()[3]
    elif line.strip(): names.add(re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', line).group(0))
bad = [n for n in names | set(type_) if not n.startswith('aos_cus_') or n not in help_ or n not in type_]
bad += [n for n, t in type_.items() if (t == 'counter') != n.endswith('_total')]
print('    bad families:', bad) if bad else None
sys.exit(1 if bad else 0)
PY
check "metrics() is refused to a role without pg_monitor or aos_cus_admin" \
	bash -c "! $BINDIR/psql -X -q -d $DB -U aos_cus_monitor -c 'SET ROLE aos_cus_app; SELECT aos_cus.metrics()' >/dev/null 2>&1"

# 2. Values the workload set, read from metrics().
check "metrics(): enabled+failing integrations = 2 (deleted ones not counted)" \
	series_is "$WORK/metrics.prom" 'aos_cus_integrations{status="enabled",health_state="failing"}' 2
check "metrics(): enabled+healthy = 3, disabled+degraded = 1, created+unknown = 4" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_integrations{status=\"enabled\",health_state=\"healthy\"}' | grep -qx 3.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_integrations{status=\"disabled\",health_state=\"degraded\"}' | grep -qx 1.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_integrations{status=\"created\",health_state=\"unknown\"}' | grep -qx 4.0"
check "metrics(): rollup lag is 300 s after a rollup 300 s ago" \
	series_between "$WORK/metrics.prom" aos_cus_rollup_lag_seconds 300 "$(lag_max)"
check "metrics(): ingest inserted = 2, duplicate = 1, rejected = 1 after stat_reset() and the workload" bash -c "
	$COMPARE value $WORK/metrics.prom aos_cus_ingest_inserted_total | grep -qx 2.0 &&
	$COMPARE value $WORK/metrics.prom aos_cus_ingest_duplicate_total | grep -qx 1.0 &&
	$COMPARE value $WORK/metrics.prom aos_cus_ingest_rejected_total | grep -qx 1.0"
mini_cost=$(msql -c "SELECT sum(cost_microcents) FROM aos_cus.cus_llm_usage WHERE model = 'gpt-4o-mini'")
check "ingest priced the gpt-4o-mini rows ($mini_cost micro-cents)" test "${mini_cost:-0}" -gt 0
check "metrics(): gpt-4o-mini cost equals its two ingested rows, input tokens = 1500" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_cost_microcents_total{provider=\"openai\",model=\"gpt-4o-mini\"}' | grep -qx '$mini_cost.0' &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",type=\"input\"}' | grep -qx 1500.0"
check "metrics(): gpt-4o: 2 committed requests, 799,950 micro-cents, 200 input and 40 output tokens (rollback not counted)" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_requests_total{provider=\"openai\",model=\"gpt-4o\"}' | grep -qx 2.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_cost_microcents_total{provider=\"openai\",model=\"gpt-4o\"}' | grep -qx 799950.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_tokens_total{provider=\"openai\",model=\"gpt-4o\",type=\"input\"}' | grep -qx 200.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_usage_tokens_total{provider=\"openai\",model=\"gpt-4o\",type=\"output\"}' | grep -qx 40.0"
check "metrics(): a model name with a quote and a newline is escaped" \
	grep -qF 'aos_cus_usage_cost_microcents_total{provider="anthropic",model="claude \"q\"\n"} 50' "$WORK/metrics.prom"
check "metrics(): decisions allowed/ok = 2, warned/budget_warning = 1" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_decisions_total{decision=\"allowed\",reason=\"ok\"}' | grep -qx 2.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_decisions_total{decision=\"warned\",reason=\"budget_warning\"}' | grep -qx 1.0"
check "metrics(): budget used ratio 0.8 (800,000 of 1,000,000) and warn ratio 0.8 for the budgeted integration" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_budget_used_ratio{tenant_id=\"00000000-0000-0000-0000-00000000000b\",integration_id=\"00000000-0000-0000-0000-0000000000b1\"}' | grep -qx 0.8 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_budget_warn_ratio{tenant_id=\"00000000-0000-0000-0000-00000000000b\",integration_id=\"00000000-0000-0000-0000-0000000000b1\"}' | grep -qx 0.8"
webhook=$(msql -c "SELECT tenant_id || '\",webhook_id=\"' || id FROM aos_cus.cus_webhooks")
check "metrics(): webhook deliveries delivered 5, failed 3, retried 2, dead-lettered 1; nothing pending" bash -c "
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_deliveries_total{tenant_id=\"$webhook\",outcome=\"delivered\"}' | grep -qx 5.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_deliveries_total{tenant_id=\"$webhook\",outcome=\"failed\"}' | grep -qx 3.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_deliveries_total{tenant_id=\"$webhook\",outcome=\"retried\"}' | grep -qx 2.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_deliveries_total{tenant_id=\"$webhook\",outcome=\"dead_lettered\"}' | grep -qx 1.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_pending{tenant_id=\"$webhook\"}' | grep -qx 0.0 &&
	$COMPARE value $WORK/metrics.prom 'aos_cus_webhook_oldest_pending_age_seconds{tenant_id=\"$webhook\"}' | grep -qx 0.0"

# 3. Alert rules: syntax and unit tests (each alert has a firing and a non-firing case).
check "promtool check rules" bash -c "promtool check rules monitoring/prometheus/*.yml >/dev/null"
check "promtool test rules" bash -c "cd monitoring/prometheus/tests && promtool test rules aos_cus_alerts_test.yml >/dev/null"
check "every alert has a firing and a non-firing unit test" python3 - <<'PY'
import re, sys
rules = re.findall(r'- alert: (\S+)', open('monitoring/prometheus/aos_cus_alerts.yml').read())
tests = open('monitoring/prometheus/tests/aos_cus_alerts_test.yml').read()
cases = re.findall(r'alertname: (\S+)\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\s*- interval|\Z)', tests, re.S)
fire = {a for a, body in cases if 'exp_labels' in body}
quiet = {a for a, body in cases if body.strip().startswith('[]')}
missing = [a for a in rules if a not in fire or a not in quiet]
print('    missing cases for:', missing) if missing else None
sys.exit(1 if missing or len(rules) < 6 else 0)
PY

# 4. A real scrape: prometheus-postgres-exporter on loopback with our queries, as the pg_monitor role.
DATA_SOURCE_NAME="host=$SOCK port=$PORT user=aos_cus_monitor dbname=$DB sslmode=disable" \
	prometheus-postgres-exporter --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
	--extend.query-path=monitoring/postgres_exporter/queries.yaml \
	--disable-default-metrics --disable-settings-metrics --log.level=info > "$WORK/exporter.log" 2>&1 &
exporter_pid=$!
for _ in $(seq 1 50); do
	curl -sf "http://127.0.0.1:$EXPORTER_PORT/metrics" -o "$WORK/exporter.prom" && grep -q '^aos_cus_' "$WORK/exporter.prom" && break
	sleep 0.2
done
PGUSER=aos_cus_monitor msql -c "SELECT aos_cus.metrics()" > "$WORK/metrics.prom"
check "exporter serves /metrics on 127.0.0.1:$EXPORTER_PORT" test -s "$WORK/exporter.prom"
grep -i error "$WORK/exporter.log" | sed 's/^/    /'
check "exporter ran every aos_cus query without error" bash -c "
	grep -qx 'pg_exporter_last_scrape_error 0' $WORK/exporter.prom && ! grep -qi 'error' $WORK/exporter.log"
check "exporter: enabled+failing integrations = 2" \
	series_is "$WORK/exporter.prom" 'aos_cus_integrations{status="enabled",health_state="failing"}' 2
check "exporter: rollup lag is 300 s" series_between "$WORK/exporter.prom" aos_cus_rollup_lag_seconds 300 "$(lag_max)"
check "exporter: gpt-4o cost = 799,950 micro-cents" \
	series_is "$WORK/exporter.prom" 'aos_cus_usage_cost_microcents_total{provider="openai",model="gpt-4o"}' 799950
check "exporter: warned/budget_warning decisions = 1" \
	series_is "$WORK/exporter.prom" 'aos_cus_decisions_total{decision="warned",reason="budget_warning"}' 1
check "exporter: usage_stats capacity = aos_cus.usage_stats_max_models + 8" \
	series_is "$WORK/exporter.prom" 'aos_cus_shmem_entries_capacity{table="usage_stats"}' \
	"$(msql -c "SELECT current_setting('aos_cus.usage_stats_max_models')::int + 8")"
$COMPARE sampled "$WORK/metrics.prom" > "$WORK/sampled_metrics"
$COMPARE sampled "$WORK/exporter.prom" > "$WORK/sampled_exporter"
check "exporter and metrics() have samples under the same aos_cus metric names" diff "$WORK/sampled_metrics" "$WORK/sampled_exporter"
check "exporter and metrics() series agree in labels and values (lag aside)" \
	$COMPARE same "$WORK/metrics.prom" "$WORK/exporter.prom" aos_cus_rollup_lag_seconds

# 5. Dashboard and alerts use only names that are emitted.
$COMPARE names "$WORK/metrics.prom" "$WORK/exporter.prom" > "$WORK/emitted"
check "Grafana dashboard JSON parses and has panels" bash -c "jq -e '.panels | length > 0' monitoring/grafana/aos_cus_dashboard.json >/dev/null"
$COMPARE expr-names monitoring/grafana/aos_cus_dashboard.json > "$WORK/names_dashboard"
check "dashboard covers spend, tokens, decisions, health and rollup lag" bash -c "
	grep -qx aos_cus_usage_cost_microcents_total $WORK/names_dashboard && grep -qx aos_cus_usage_tokens_total $WORK/names_dashboard &&
	grep -qx aos_cus_decisions_total $WORK/names_dashboard && grep -qx aos_cus_integrations $WORK/names_dashboard &&
	grep -qx aos_cus_rollup_lag_seconds $WORK/names_dashboard"
check "dashboard has a Webhooks row with deliveries, backlog and its oldest age" bash -c "
	jq -e '[.panels[] | select(.type == \"row\" and .title == \"Webhooks\")] | length == 1' monitoring/grafana/aos_cus_dashboard.json >/dev/null &&
	grep -qx aos_cus_webhook_deliveries_total $WORK/names_dashboard && grep -qx aos_cus_webhook_pending $WORK/names_dashboard &&
	grep -qx aos_cus_webhook_oldest_pending_age_seconds $WORK/names_dashboard"
check "every metric the dashboard queries is emitted" names_subset "$WORK/names_dashboard" "$WORK/emitted"
# The SQL panel (hourly rollups) runs as written, Grafana's time filter macro expanded to everything, and after a
# rollup shows the spend of the workload's calls inside the hourly retention.
dashboard_sql_total() {
	local sql total
	sql=$(jq -r '.panels[].targets[]? | select(.rawSql) | .rawSql' monitoring/grafana/aos_cus_dashboard.json |
		sed 's/\$__timeFilter(\([a-z_.]*\))/\1 IS NOT NULL/')
	[ -n "$sql" ] || { echo "    no SQL panel"; return 1; }
	msql -c "SELECT aos_cus.rollup_usage()" > /dev/null || return 1
	total=$(msql -c "SELECT coalesce(sum(spend_usd), 0) FROM ($sql) p") || return 1
	[ "$total" != 0 ] || { echo "    no spend"; return 1; }
	same_value "$total" "$(msql -c "SELECT sum(cost_microcents) / 1e8 FROM aos_cus.cus_llm_usage
		WHERE started_at >= date_trunc('hour', now() - (SELECT hourly_retention FROM aos_cus.usage_settings()), 'UTC')")"
}
check "the dashboard's hourly panel reads cus_usage_hourly" dashboard_sql_total
$COMPARE expr-names monitoring/prometheus/aos_cus_alerts.yml > "$WORK/names_alerts"
check "every metric the alert rules use is emitted" names_subset "$WORK/names_alerts" "$WORK/emitted"

kill "$exporter_pid" 2>/dev/null; wait "$exporter_pid" 2>/dev/null; exporter_pid=
pg_sql -d postgres -c "DROP DATABASE $DB"
echo "monitoring: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
