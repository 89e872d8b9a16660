#!/usr/bin/env bash
# Instructions per transaction (valgrind's callgrind, see compare_instructions in lib.sh): the hot paths against
# their plain-SQL peers, counted instead of timed, so the figures do not move with the machine's load.
#  1. ingest_usage vs INSERT ... ON CONFLICT DO NOTHING of the same row into an unpartitioned copy of
#     cus_llm_usage (as 60_ingest.sh), synchronous_commit = off;
#     and vs the same row in plain SQL by the design issue 19 asks for (a monthly-partitioned copy of cus_llm_usage
#     and a copy of cus_usage_keys, key and row in one statement, as 60_ingest.sh);
#  2. check() on one integration with a budget vs SELECT 1 (the round-trip floor);
#  3. check() with three scopes (integration, tenant, subject:*) and a policy vs SELECT 1 (as 71_scopes.sh).
#  4. the floor of that call: decision_floor() (lib.sh), check()'s shape returning a constant row, vs SELECT 1;
#     then check() against it (what deciding adds), and check() with only two of its ten columns fetched.
# Each line: ours, peer, peer/ours; then the named functions whose cost per transaction differs most.
# Rows start at the clock of the run: the current month's partition, inside the idempotency window, as in production.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=00000000-0000-4000-8000-0000000b6301
I=00000000-0000-4000-8000-0000000b63a1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ingest_peers bench_ir_peer "$T" "$I" "$dir"
cat > "$dir/check1.sql" <<SQL
SELECT * FROM aos_cus.check('$T', '$I', 100, 10);
SQL
cat > "$dir/check3.sql" <<SQL
SELECT * FROM aos_cus.check('$T', '$I', 100, 10, NULL, 'user-1', NULL, 'gpt-4o-mini');
SQL
cat > "$dir/floor3.sql" <<SQL
SELECT * FROM decision_floor('$T', '$I', 100, 10, NULL, 'user-1', NULL, 'gpt-4o-mini');
SQL
cat > "$dir/check3_two.sql" <<SQL
SELECT decision, reason FROM aos_cus.check('$T', '$I', 100, 10, NULL, 'user-1', NULL, 'gpt-4o-mini');
SQL
echo 'SELECT 1;' > "$dir/select1.sql"
install_decision_floor

callgrind_start
PGOPTIONS='-c synchronous_commit=off' \
	compare_instructions "ingest_usage vs INSERT ON CONFLICT (instructions/tx, sync off)" "$dir/ours.sql" "$dir/insert.sql"
PGOPTIONS='-c synchronous_commit=off' \
	compare_instructions "ingest_usage vs the same design in plain SQL (instructions/tx, sync off)" "$dir/ours.sql" "$dir/design.sql"
PGOPTIONS='-c synchronous_commit=off' \
	compare_instructions "ingest_usage vs INSERT ON CONFLICT into a table with our C row check (instructions/tx, sync off)" \
	"$dir/ours.sql" "$dir/insert_c.sql"
compare_instructions "check() one integration vs SELECT 1 (instructions/tx)" "$dir/check1.sql" "$dir/select1.sql"
pg_sql -d "$BENCH_DB" <<SQL
SELECT aos_cus.set_scope_limits('$T', 'tenant', '{"budget_microcents": 9000000000000000000}');
SELECT aos_cus.set_scope_limits('$T', 'subject:*', '{"budget_microcents": 9000000000000000000}');
SELECT aos_cus.set_policy('$T', '$I', '{"models_allow": ["gpt-4o*"], "max_cost_microcents_per_request": 1000000}');
SQL
compare_instructions "check() 3 scopes + policy vs SELECT 1 (instructions/tx)" "$dir/check3.sql" "$dir/select1.sql"
compare_instructions "decision_floor() (check()'s shape, no decision) vs SELECT 1 (instructions/tx)" "$dir/floor3.sql" "$dir/select1.sql"
compare_instructions "check() 3 scopes + policy vs decision_floor() (instructions/tx)" "$dir/check3.sql" "$dir/floor3.sql"
compare_instructions "check() 3 scopes + policy, decision and reason only, vs SELECT 1 (instructions/tx)" "$dir/check3_two.sql" "$dir/select1.sql"
callgrind_stop
