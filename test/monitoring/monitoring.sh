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
msql <<'SQL'
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
SQL

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
	series_between "$WORK/metrics.prom" aos_cus_rollup_lag_seconds 300 330
check "metrics(): event counters read 0 after stat_reset()" \
	series_is "$WORK/metrics.prom" aos_cus_ingest_inserted_total 0

# 3. Alert rules: syntax and unit tests (each alert has a firing and a non-firing case).
check "promtool check rules" bash -c "promtool check rules monitoring/prometheus/aos_cus_alerts.yml >/dev/null"
check "promtool test rules" bash -c "cd monitoring/prometheus && promtool test rules aos_cus_alerts_test.yml >/dev/null"
check "every alert has a firing and a non-firing unit test" python3 - <<'PY'
import re, sys
rules = re.findall(r'- alert: (\S+)', open('monitoring/prometheus/aos_cus_alerts.yml').read())
tests = open('monitoring/prometheus/aos_cus_alerts_test.yml').read()
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
	--disable-default-metrics --disable-settings-metrics --log.level=warn > "$WORK/exporter.log" 2>&1 &
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
check "exporter: rollup lag is 300 s" series_between "$WORK/exporter.prom" aos_cus_rollup_lag_seconds 300 330
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
check "every metric the dashboard queries is emitted" names_subset "$WORK/names_dashboard" "$WORK/emitted"
$COMPARE expr-names monitoring/prometheus/aos_cus_alerts.yml > "$WORK/names_alerts"
check "every metric the alert rules use is emitted" names_subset "$WORK/names_alerts" "$WORK/emitted"

kill "$exporter_pid" 2>/dev/null; wait "$exporter_pid" 2>/dev/null; exporter_pid=
pg_sql -d postgres -c "DROP DATABASE $DB"
echo "monitoring: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
