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
pg_sql -d "$BENCH_DB" <<SQL
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
VALUES ('$T', '$I', 'instructions', 'openai', 'enabled', 9000000000000000000, 'month');
SELECT count(*) FROM aos_cus.maintain_partitions();
CREATE TABLE bench_ir_peer_usage (LIKE aos_cus.cus_llm_usage_default INCLUDING ALL, UNIQUE (tenant_id, call_id));
ALTER TABLE bench_ir_peer_usage ADD FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id);
CREATE TABLE bench_ir_peer_keys (LIKE aos_cus.cus_usage_keys INCLUDING ALL);
CREATE TABLE bench_ir_peer_parted (LIKE aos_cus.cus_llm_usage INCLUDING ALL) PARTITION BY RANGE (started_at);
CREATE TABLE bench_ir_peer_parted_m (LIKE aos_cus.cus_llm_usage_default INCLUDING ALL);
DO \$\$ BEGIN
    EXECUTE format('ALTER TABLE bench_ir_peer_parted ATTACH PARTITION bench_ir_peer_parted_m FOR VALUES FROM (%L) TO (%L)',
                   date_trunc('month', now(), 'UTC'), date_trunc('month', now(), 'UTC') + interval '1 month');
END \$\$;
CREATE TABLE bench_ir_peer_parted_default PARTITION OF bench_ir_peer_parted DEFAULT;
ALTER TABLE bench_ir_peer_parted ADD FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id);
SQL
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/ingest.sql" <<SQL
\set r random(1, 1000000000000)
SELECT aos_cus.ingest_usage('$T', ('{"integration_id": "$I", "call_id": "i' || :r || '", "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300, "latency_ms": 850, "started_at": "' || now()::text || '"}')::jsonb);
SQL
cat > "$dir/insert.sql" <<SQL
\set r random(1, 1000000000000)
INSERT INTO bench_ir_peer_usage (tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, output_tokens, latency_ms, status, started_at, cost_microcents, price_id)
VALUES ('$T', '$I', 'i' || :r, 'openai', 'gpt-4o', 'standard', 1200, 300, 850, 'success', now(), 600000, 1) ON CONFLICT (tenant_id, call_id) DO NOTHING;
SQL
cat > "$dir/design.sql" <<SQL
\set r random(1, 1000000000000)
WITH k AS (INSERT INTO bench_ir_peer_keys (tenant_id, call_id, usage_id, started_at, ingested_at)
           VALUES ('$T', 'i' || :r, nextval('aos_cus.cus_llm_usage_id_seq'), now(), now())
           ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING usage_id)
INSERT INTO bench_ir_peer_parted (id, tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, output_tokens, latency_ms, status, started_at, cost_microcents, price_id)
SELECT k.usage_id, '$T', '$I', 'i' || :r, 'openai', 'gpt-4o', 'standard', 1200, 300, 850, 'success', now(), 600000, 1 FROM k;
SQL
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
	compare_instructions "ingest_usage vs INSERT ON CONFLICT (instructions/tx, sync off)" "$dir/ingest.sql" "$dir/insert.sql"
PGOPTIONS='-c synchronous_commit=off' \
	compare_instructions "ingest_usage vs the same design in plain SQL (instructions/tx, sync off)" "$dir/ingest.sql" "$dir/design.sql"
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
