# bench/lib.sh: side-by-side pgbench comparisons on the bench cluster; sourced by bench/*.sh.
# compare NAME OURS.sql PEER.sql [pgbench options...]: runs ours and the peer alternately
# (A B A B, BENCH_ROUNDS times, BENCH_SECONDS each) and prints both median tps and ours/peer.
# OURS_USER / PEER_USER pick the role each side connects as (default: postgres).
export AOS_CUS_INSTANCE=${AOS_CUS_INSTANCE:-bench}
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_DB=${BENCH_DB:-aos_cus}
RESULTS=${BENCH_RESULTS:-$STATE/results.tsv}

# One pgbench run; prints its tps (excluding connection time).
pgbench_tps() {
	local script=$1; shift
	"$BINDIR/pgbench" -n -M prepared -T "$BENCH_SECONDS" "$@" -f "$script" "$BENCH_DB" 2>&1 |
		sed -nE 's/^tps = ([0-9.]+).*/\1/p'
}

# Median of the numbers given as arguments.
median() {
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

# Alternate ours and the peer, then record and print the median ratio.
compare() {
	local name=$1 ours=$2 peer=$3; shift 3
	local a=() b=() i
	for ((i = 0; i < BENCH_ROUNDS; i++)); do
		a+=("$(PGUSER=${OURS_USER:-$PGUSER} pgbench_tps "$ours" "$@")")
		b+=("$(PGUSER=${PEER_USER:-$PGUSER} pgbench_tps "$peer" "$@")")
	done
	local ma mb
	ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
	printf '%s\t%.0f\t%.0f\t%.2f\n' "$name" "$ma" "$mb" "$(echo "$ma / $mb" | bc -l)" | tee -a "$RESULTS"
}

# Time one SQL statement (ms, median of BENCH_ROUNDS) with psql's \timing.
sql_ms() {
	local sql=$1 runs=() i
	for ((i = 0; i < BENCH_ROUNDS; i++)); do
		runs+=("$(printf '\\timing on\n%s\n' "$sql" | "$BINDIR/psql" -X -q -d "$BENCH_DB" 2>&1 | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -n 1)")
	done
	median "${runs[@]}"
}

# Alternate two SQL statements; record and print their median times and peer/ours speed-up.
compare_sql() {
	local name=$1 ours=$2 peer=$3 a=() b=() i
	for ((i = 0; i < BENCH_ROUNDS; i++)); do
		a+=("$(BENCH_ROUNDS=1 sql_ms "$ours")")
		b+=("$(BENCH_ROUNDS=1 sql_ms "$peer")")
	done
	local ma mb
	ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
	printf '%s\t%.1f ms\t%.1f ms\t%.2f\n' "$name" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)" | tee -a "$RESULTS"
}

# decision_floor(): check()'s arguments and result type, returning a constant row without deciding anything
# (bench/floor/, built and installed here only): what any C function of check()'s shape costs to call.
install_decision_floor() {
	make -s -C "$REPO/bench/floor" PG_CONFIG="$PG_CONFIG" install >/dev/null
	pg_sql -d "$BENCH_DB" -q -c "CREATE OR REPLACE FUNCTION public.decision_floor(uuid, uuid, bigint, bigint, text, text, jsonb, text)
		RETURNS aos_cus.decision AS 'decision_floor' LANGUAGE C VOLATILE"
}

# cus_llm_usage_row_check's bounds as plain SQL states them, ten CHECK expressions (what 0.1.0 had): the peers'
# constraints. PostgreSQL reads and plans them for every INSERT statement; ours is one call of a C function.
SQL_ROW_CHECKS="DROP CONSTRAINT cus_llm_usage_row_check,
    ADD CHECK (length(call_id) BETWEEN 1 AND 255), ADD CHECK (length(model) BETWEEN 1 AND 200),
    ADD CHECK (latency_ms >= 0), ADD CHECK (status IN ('success', 'error', 'timeout', 'cancelled', 'blocked')),
    ADD CHECK (length(error_code) <= 200),
    ADD CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384),
    ADD CHECK (octet_length(subject) BETWEEN 1 AND 255),
    ADD CHECK (jsonb_typeof(tags) = 'object' AND pg_column_size(tags) <= 8192),
    ADD CHECK (reasoning_tokens <= output_tokens),
    ADD CHECK (GREATEST(input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
                        reasoning_tokens, input_audio_tokens, output_audio_tokens) <= 1000000000000)"

# The single-record ingest and its plain-SQL peers (60_ingest, 63_instructions), for tenant T and integration I
# (created here): writes DIR/ours.sql (ingest_usage), DIR/insert.sql (INSERT ... ON CONFLICT DO NOTHING of the same
# row, cost precomputed, into PREFIX_usage: an unpartitioned copy of a partition with UNIQUE (tenant_id, call_id), the
# FK and SQL_ROW_CHECKS), DIR/insert_c.sql (the same into PREFIX_usage_c, which keeps our C row check instead) and
# DIR/design.sql (the same row by issue 19's design in plain SQL: PREFIX_parted, partitioned by month
# with this month's partition a copy of a partition, and PREFIX_keys, a copy of cus_usage_keys, key and row in one
# statement as ingest.c writes them; SQL_ROW_CHECKS too). Rows start at the run's clock, in the current month's partition.
ingest_peers() {
	local pre=$1 t=$2 i=$3 dir=$4
	pg_sql -d "$BENCH_DB" -q -o /dev/null <<SQL
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
VALUES ('$t', '$i', '$pre', 'openai', 'enabled', 9000000000000000000, 'month');
SELECT count(*) FROM aos_cus.maintain_partitions();
CREATE TABLE ${pre}_usage (LIKE aos_cus.cus_llm_usage_default INCLUDING ALL, UNIQUE (tenant_id, call_id));
ALTER TABLE ${pre}_usage ADD FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id);
ALTER TABLE ${pre}_usage $SQL_ROW_CHECKS;
CREATE TABLE ${pre}_usage_c (LIKE aos_cus.cus_llm_usage_default INCLUDING ALL, UNIQUE (tenant_id, call_id));
ALTER TABLE ${pre}_usage_c ADD FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id);
CREATE TABLE ${pre}_keys (LIKE aos_cus.cus_usage_keys INCLUDING ALL);
CREATE TABLE ${pre}_parted (LIKE aos_cus.cus_llm_usage INCLUDING ALL) PARTITION BY RANGE (started_at);
CREATE TABLE ${pre}_parted_m (LIKE aos_cus.cus_llm_usage_default INCLUDING ALL);
DO \$\$ BEGIN
    EXECUTE format('ALTER TABLE ${pre}_parted ATTACH PARTITION ${pre}_parted_m FOR VALUES FROM (%L) TO (%L)',
                   date_trunc('month', now(), 'UTC'), date_trunc('month', now(), 'UTC') + interval '1 month');
END \$\$;
CREATE TABLE ${pre}_parted_default PARTITION OF ${pre}_parted DEFAULT;
ALTER TABLE ${pre}_parted $SQL_ROW_CHECKS;
ALTER TABLE ${pre}_parted ADD FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id);
SQL
	local cols="tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, output_tokens, latency_ms, status, started_at, cost_microcents, price_id"
	local row="'$t', '$i', 'c' || :r, 'openai', 'gpt-4o', 'standard', 1200, 300, 850, 'success', now(), 600000, 1"
	cat > "$dir/ours.sql" <<SQL
\set r random(1, 1000000000000)
SELECT aos_cus.ingest_usage('$t', ('{"integration_id": "$i", "call_id": "c' || :r || '", "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300, "latency_ms": 850, "started_at": "' || now()::text || '"}')::jsonb);
SQL
	cat > "$dir/insert.sql" <<SQL
\set r random(1, 1000000000000)
INSERT INTO ${pre}_usage ($cols) VALUES ($row) ON CONFLICT (tenant_id, call_id) DO NOTHING;
SQL
	cat > "$dir/insert_c.sql" <<SQL
\set r random(1, 1000000000000)
INSERT INTO ${pre}_usage_c ($cols) VALUES ($row) ON CONFLICT (tenant_id, call_id) DO NOTHING;
SQL
	cat > "$dir/design.sql" <<SQL
\set r random(1, 1000000000000)
WITH k AS (INSERT INTO ${pre}_keys (tenant_id, call_id, usage_id, started_at, ingested_at)
           VALUES ('$t', 'c' || :r, nextval('aos_cus.cus_llm_usage_id_seq'), now(), now())
           ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING usage_id)
INSERT INTO ${pre}_parted (id, $cols) SELECT k.usage_id, $row FROM k;
SQL
}

# Instructions per transaction: load-independent, so a busy machine cannot skew them. callgrind_start restarts
# the bench cluster with its postmaster (and so every backend) under valgrind's callgrind; compare_instructions
# NAME OURS.sql PEER.sql runs each script once to warm shared state, then for 200 and for 600 transactions on one
# connection each and takes (Ir(600) - Ir(200)) / 400 of that backend, so connection start and first-use caches
# cancel out; it prints both and peer/ours (> 1 means ours runs fewer instructions), then the named functions whose
# own cost per transaction differs most. OURS_DB / PEER_DB pick each side's database (default: BENCH_DB).
# callgrind_stop restarts the cluster normally.
CALLGRIND_DIR=$STATE/callgrind
callgrind_start() {
	command -v valgrind >/dev/null || { [ "$(id -u)" -ne 0 ] || apt-get install -y -qq valgrind >/dev/null; }
	bash "$REPO/scripts/cluster.sh" stop
	rm -rf "$CALLGRIND_DIR"
	as_pg mkdir -p "$CALLGRIND_DIR"
	as_pg sh -c "valgrind --tool=callgrind --trace-children=yes --callgrind-out-file='$CALLGRIND_DIR/cg.%p' \
		'$BINDIR/postgres' -D '$PGDATA_DIR' -c autovacuum=off > '$CALLGRIND_DIR/postmaster.log' 2>&1 &"
	local i
	for ((i = 0; i < 300; i++)); do
		"$BINDIR/pg_isready" -q -h "$SOCK" -p "$PORT" && break
		sleep 1
	done
}
callgrind_stop() {
	as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 300 stop >/dev/null
	bash "$REPO/scripts/cluster.sh" start
}
# The profile of the one backend that ran SCRIPT for N transactions (the largest new profile).
callgrind_run() {
	local n=$1 script=$2 out=$3 before f s best=0 bf=
	before=$(ls "$CALLGRIND_DIR"/cg.* 2>/dev/null | sort)
	"$BINDIR/pgbench" -n -M prepared -t "$n" -f "$script" "$BENCH_DB" > /dev/null 2>&1
	sleep 3
	for f in $(comm -13 <(echo "$before") <(ls "$CALLGRIND_DIR"/cg.* | sort)); do
		s=$(sed -n 's/^summary: //p' "$f" | head -n 1)
		[ "${s:-0}" -gt "$best" ] && best=$s bf=$f
	done
	cp "$bf" "$out"
}
compare_instructions() {
	local name=$1 ours=$2 peer=$3 d out
	d=$(mktemp -d)
	# A first run loads what every later backend shares (enforcement entries, caches), so it is not counted.
	local od=${OURS_DB:-$BENCH_DB} pd=${PEER_DB:-$BENCH_DB}
	BENCH_DB=$od callgrind_run 50 "$ours" "$d/warm"; BENCH_DB=$pd callgrind_run 50 "$peer" "$d/warm"
	BENCH_DB=$od callgrind_run 200 "$ours" "$d/ours.200"; BENCH_DB=$od callgrind_run 600 "$ours" "$d/ours.600"
	BENCH_DB=$pd callgrind_run 200 "$peer" "$d/peer.200"; BENCH_DB=$pd callgrind_run 600 "$peer" "$d/peer.600"
	out=$(python3 - "$name" "$d" <<'PY'
import re, subprocess, sys
name, d = sys.argv[1], sys.argv[2]
def costs_of(f, inclusive):
    out = subprocess.run(['callgrind_annotate', '--inclusive=' + inclusive, '--threshold=100', f],
                         capture_output=True, text=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)$', line)
        if m and '=>' not in line:
            fn = re.sub(r' \[.*', '', m.group(2))
            costs[fn] = costs.get(fn, 0) + int(m.group(1).replace(',', ''))
    return costs
def per_tx(side, inclusive):
    a, b = costs_of(f'{d}/{side}.200', inclusive), costs_of(f'{d}/{side}.600', inclusive)
    return {k: (b.get(k, 0) - a.get(k, 0)) / 400 for k in set(a) | set(b)}
o, p = per_tx('ours', 'yes'), per_tx('peer', 'yes')
print(f"{name}\t{o['PROGRAM TOTALS']:.0f} Ir\t{p['PROGRAM TOTALS']:.0f} Ir\t{p['PROGRAM TOTALS'] / o['PROGRAM TOTALS']:.2f}")
# Where the difference is: self cost per transaction of named functions (Debian's postgres keeps only exported names).
o, p = per_tx('ours', 'no'), per_tx('peer', 'no')
named = [k for k in set(o) | set(p) if ':' in k and not k.startswith('???:0x') and "'" not in k]
for k in sorted(named, key=lambda k: -abs(o.get(k, 0) - p.get(k, 0)))[:12]:
    print(f"#   {o.get(k, 0) - p.get(k, 0):+9.0f} Ir/tx self  {k[:100]}")
PY
)
	echo "$out"
	head -n 1 <<< "$out" >> "$RESULTS"
	rm -rf "$d"
}
