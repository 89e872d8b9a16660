#!/usr/bin/env bash
# Sets everything up and runs every test layer; ends with one line "N passed, N failed".
# Layers: C unit tests, libFuzzer, pg_regress, pgTAP (fresh and upgraded install), isolation, the README's examples,
# monitoring, TAP, the Node.js client, Citus (skipped when Citus is not installed).
# Usage: scripts/test.sh [--at '<ISO 8601 instant>'] [--layers unit,fuzz,regress,pgtap,isolation,readme,monitoring,tap,node,citus]
#                        [--tap 'test/t/070_*.pl ...']
#   --at      servers and clients run under a fake clock that starts at that instant (libfaketime)
#   --layers  only these layers (default: all); --tap only these TAP test files (default: test/t/*.pl)
set -uo pipefail
export AOS_CUS_INSTANCE=test
. "$(dirname "$0")/common.sh"
cd "$REPO"

LAYERS=unit,fuzz,regress,pgtap,isolation,readme,monitoring,tap,node,citus
TAP_TESTS=
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--at) AOS_CUS_AT=${2:?--at needs an ISO 8601 instant}; shift 2 ;;
	--layers) LAYERS=${2:?--layers needs a list}; shift 2 ;;
	--tap) TAP_TESTS=${2:?--tap needs test files}; shift 2 ;;
	*) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
# True when the layer is selected.
want() {
	case ",$LAYERS," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

total_passed=0 total_failed=0 total_skipped=0
# Add one layer's counts to the totals and print them.
tally() {
	echo "== $1: $2 passed, $3 failed"
	total_passed=$((total_passed + $2))
	total_failed=$((total_failed + $3))
}
# Count a layer that could not run here as skipped (never as passed).
skip_layer() {
	echo "== $1: skipped: $2"
	total_skipped=$((total_skipped + 1))
}

bash scripts/deps.sh || exit 1
bash scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }

# 1. C unit tests of src/core/.
if want unit; then
out=$(make -s unittest 2>&1); echo "$out"
line=$(echo "$out" | grep -E '^unit: ' | tail -n 1)
if [ -n "$line" ]; then
	tally unit "$(echo "$line" | sed -E 's/unit: ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')"
else
	tally unit 0 1
fi
fi

# 1b. libFuzzer targets of src/core/ (test/fuzz/), FUZZ_SECONDS each.
if want fuzz; then
out=$(bash scripts/run_fuzz.sh 2>&1); echo "$out"
line=$(echo "$out" | grep -E '^fuzz: [0-9]+ passed' | tail -n 1)
if [ -n "$line" ]; then
	tally fuzz "$(echo "$line" | sed -E 's/fuzz: ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')"
else
	tally fuzz 0 1
fi
fi

fake_clock_start || exit 1
bash scripts/cluster.sh destroy
bash scripts/cluster.sh start || { echo "0 passed, 1 failed"; exit 1; }
open_path_for_postgres
OUT=$STATE/out
as_pg mkdir -p "$OUT"
chmod -R o+rX sql expected test

# Read "N tests passed" / "N of M tests failed" lines of pg_regress-style output.
regress_tally() {
	local name=$1 log=$2 p f
	if grep -qE 'All [0-9]+ tests passed' "$log"; then
		p=$(grep -oE 'All [0-9]+ tests passed' "$log" | grep -oE '[0-9]+'); f=0
	elif grep -qE '[0-9]+ of [0-9]+ tests failed' "$log"; then
		f=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log" | awk '{print $1}')
		p=$(( $(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log" | awk '{print $3}') - f ))
	else
		p=0; f=1
	fi
	tally "$name" "$p" "$f"
}

# Tally a prove / pg_prove log: "Tests=N" minus the failed subtests; no "Result: PASS" and no count is a failure.
prove_tally() {
	local name=$1 log=$2 n f
	n=$(grep -oE 'Tests=[0-9]+' "$log" | grep -oE '[0-9]+' || echo 0)
	f=$(grep -oE 'Failed [0-9]+/[0-9]+ subtests' "$log" | awk '{split($2,a,"/"); s+=a[1]} END {print s+0}')
	grep -q 'Result: PASS' "$log" || [ "$f" -gt 0 ] || f=1
	tally "$name" "$((n - f < 0 ? 0 : n - f))" "$f"
}

# The Makefile defines the pg_regress, isolation and TAP suites; these run its PGXS targets against the test
# cluster (installcheck with one suite each, so each layer keeps its own output folder and tally).
installcheck() {
	local out=$1; shift
	as_pg make -s --no-print-directory installcheck "$@" \
		EXTRA_REGRESS_OPTS="--host=$SOCK --port=$PORT --user=postgres --outputdir=$out"
}

# 2. pg_regress: sql/ + expected/.
if want regress; then
installcheck "$OUT/regress" ISOLATION= TAP_TESTS= > "$OUT/regress.log" 2>&1
cat "$OUT/regress.log"
[ -f "$OUT/regress/regression.diffs" ] && head -n 200 "$OUT/regress/regression.diffs"
regress_tally regress "$OUT/regress.log"
fi

# 3. pgTAP under test/pgtap/, against a fresh install and against the oldest version updated to the current one.
oldest=$(ls src/sql/aos_cus--*--*.sql 2>/dev/null | sed -E 's|.*aos_cus--([^-]+)--.*|\1|' | sort -V | head -n 1)
current=$(sed -nE "s/^default_version = '(.*)'/\1/p" aos_cus.control)
want pgtap && for variant in fresh upgraded; do
	db=aos_cus_tap_$variant
	pg_sql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	pg_sql -d "$db" -c "CREATE EXTENSION pgtap"
	if [ "$variant" = upgraded ]; then
		# The oldest release, filled through its own API, updated; test/upgrade/verify.sql checks the data
		# (and removes it, so the suite below runs on the updated database as on a fresh one).
		pg_sql -d "$db" -c "CREATE EXTENSION aos_cus VERSION '${oldest:-$current}'"
		pg_sql -d "$db" -f "test/upgrade/fill_${oldest:-$current}.sql" > /dev/null
		pg_sql -d "$db" -c "ALTER EXTENSION aos_cus UPDATE"
		pg_prove -h "$SOCK" -p "$PORT" -U postgres -d "$db" test/upgrade/verify.sql > "$OUT/upgrade_data.log" 2>&1
		cat "$OUT/upgrade_data.log"
		prove_tally "upgrade data (${oldest:-$current} filled, updated)" "$OUT/upgrade_data.log"
	else
		pg_sql -d "$db" -c "CREATE EXTENSION aos_cus"
	fi
	"$BINDIR/pg_dump" --binary-upgrade --schema-only -d "$db" > "$OUT/schema_$variant.dump"
	pg_prove -h "$SOCK" -p "$PORT" -U postgres -d "$db" test/pgtap/*.sql > "$OUT/pgtap_$variant.log" 2>&1
	cat "$OUT/pgtap_$variant.log"
	prove_tally "pgtap ($variant from ${oldest:-$current})" "$OUT/pgtap_$variant.log"
done
# 3b. The updated schema equals the fresh one: every object, definition, grant and comment of the extension
# (pg_dump --binary-upgrade dumps extension members), normalized for OIDs and order.
if want pgtap; then
	for variant in fresh upgraded; do
		python3 test/upgrade/normalize_dump.py "$OUT/schema_$variant.dump" > "$OUT/schema_$variant.norm"
	done
	if diff -u "$OUT/schema_fresh.norm" "$OUT/schema_upgraded.norm" > "$OUT/schema.diff"; then
		tally "upgrade schema (${oldest:-$current} updated = fresh $current)" 1 0
	else
		head -n 100 "$OUT/schema.diff"
		tally "upgrade schema (${oldest:-$current} updated = fresh $current)" 0 1
	fi
fi

# 4. Isolation specs under test/isolation/specs/, expected output in test/isolation/expected/.
if want isolation; then
installcheck "$OUT/isolation" REGRESS= TAP_TESTS= > "$OUT/isolation.log" 2>&1
cat "$OUT/isolation.log"
[ -f "$OUT/isolation/regression.diffs" ] && head -n 200 "$OUT/isolation/regression.diffs"
regress_tally isolation "$OUT/isolation.log"
fi

# 4b. README.md is a test: its SQL and shell examples run in order on a fresh database with the extension created
# as the README says, and print what it shows (scripts/readme_test.py states the conventions).
if want readme; then
pg_sql -d postgres -c "DROP DATABASE IF EXISTS aos_cus_readme" -c "CREATE DATABASE aos_cus_readme"
pg_sql -d aos_cus_readme -c "CREATE EXTENSION aos_cus"
PATH="$BINDIR:$PATH" python3 scripts/readme_test.py aos_cus_readme > "$OUT/readme.log" 2>&1
cat "$OUT/readme.log"
line=$(grep -E '^readme: [0-9]+ passed, [0-9]+ failed' "$OUT/readme.log" | tail -n 1)
if [ -n "$line" ]; then
	tally readme "$(echo "$line" | sed -E 's/readme: ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')"
else
	tally readme 0 1
fi
fi

# 5. Monitoring: promtool on metrics() and the alert rules, the dashboard's names, a real exporter scrape.
if want monitoring; then
bash test/monitoring/monitoring.sh > "$OUT/monitoring.log" 2>&1
cat "$OUT/monitoring.log"
line=$(grep -E '^monitoring: [0-9]+ passed, [0-9]+ failed' "$OUT/monitoring.log" | tail -n 1)
if [ -n "$line" ]; then
	tally monitoring "$(echo "$line" | sed -E 's/monitoring: ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')"
else
	tally monitoring 0 1
fi
fi

# 6. TAP tests under test/t/ with PostgreSQL::Test::Cluster (their own clusters, as postgres; under --at each
# node's clock starts at the instant, see test/t/AosCusTest.pm).
if want tap; then
as_pg mkdir -p "$OUT/tap"
as_pg make -s --no-print-directory prove_installcheck TAP_OUT="$OUT/tap" ${TAP_TESTS:+PROVE_TESTS="$TAP_TESTS"} \
	> "$OUT/tap.log" 2>&1
cat "$OUT/tap.log"
prove_tally tap "$OUT/tap.log"
fi

# 7. The Node.js client (clients/node): npm ci, tsc (type errors fail the layer), node:test against a mock
# provider and the client's own cluster (scripts/cluster.sh with AOS_CUS_INSTANCE=node, port base + 9), which
# its tests stop and start; destroyed afterwards.
if want node; then
(cd clients/node && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p . &&
	node --test --test-concurrency=1 --test-reporter=tap build/test/*.test.js) > "$OUT/node.log" 2>&1
cat "$OUT/node.log"
p=$(grep -oE '^# pass [0-9]+' "$OUT/node.log" | grep -oE '[0-9]+' | tail -n 1)
f=$(grep -oE '^# fail [0-9]+' "$OUT/node.log" | grep -oE '[0-9]+' | tail -n 1)
# A test cancelled (its before() hook failed, e.g. npm could not install the tiktoken oracle) is a failure.
c=$(grep -oE '^# cancelled [0-9]+' "$OUT/node.log" | grep -oE '[0-9]+' | tail -n 1)
[ -z "$f" ] || f=$((f + ${c:-0}))
if [ -n "$p" ] && [ -n "$f" ]; then tally node "$p" "$f"; else tally node 0 1; fi
AOS_CUS_INSTANCE=node bash scripts/cluster.sh destroy
fi

# 8. Citus (test/citus/*.pl): a loopback coordinator and two workers of PostgreSQL::Test::Cluster, when Citus is
# installed in this PostgreSQL (it is not part of Debian; the layer is skipped otherwise).
if want citus; then
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ]; then
	skip_layer citus 'citus not installed'
else
	as_pg mkdir -p "$OUT/citus"
	(cd "$OUT/citus" && as_pg env PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" REPO="$REPO" \
		TESTDIR="$OUT/citus" PG_CONFIG="$PG_CONFIG" \
		prove --timer -I "$PGXS_DIR/src/test/perl" -I "$REPO/test/t" "$REPO"/test/citus/*.pl) > "$OUT/citus.log" 2>&1
	cat "$OUT/citus.log"
	prove_tally citus "$OUT/citus.log"
fi
fi

[ "${AOS_CUS_KEEP:-}" = 1 ] || bash scripts/cluster.sh stop
if [ "$total_skipped" -gt 0 ]; then
	echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
else
	echo "$total_passed passed, $total_failed failed"
fi
[ "$total_failed" -eq 0 ]
