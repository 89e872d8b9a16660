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
