#!/usr/bin/env bash
# Layered budgets (issue 14): check() across three scopes (integration, tenant, subject) with a policy
# against the round-trip floor (SELECT 1) at 1 and 4 clients on one integration; a reserving check()
# across the three scopes against a PL/pgSQL peer that locks the three spend rows FOR UPDATE (in one
# order) and adds the estimate to each, 4 clients, durable and with synchronous_commit = off.
# The floor of the first two: decision_floor() (lib.sh), a C function of check()'s shape that decides nothing,
# against SELECT 1, and check() against that floor.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
VALUES ('b7100000-0000-4000-8000-000000000001', 'b7100000-0000-4000-8000-0000000000a1', 'scopes', 'openai', 'enabled',
        9000000000000000000, 'month')
ON CONFLICT DO NOTHING;
SELECT aos_cus.set_scope_limits('b7100000-0000-4000-8000-000000000001', 'tenant', '{"budget_microcents": 9000000000000000000}');
SELECT aos_cus.set_scope_limits('b7100000-0000-4000-8000-000000000001', 'subject:*', '{"budget_microcents": 9000000000000000000}');
SELECT aos_cus.set_policy('b7100000-0000-4000-8000-000000000001', 'b7100000-0000-4000-8000-0000000000a1',
                          '{"models_allow": ["gpt-4o*"], "max_cost_microcents_per_request": 1000000}');
DROP TABLE IF EXISTS peer_scope_spend;
CREATE TABLE peer_scope_spend (tenant_id uuid, scope text, budget bigint, spent bigint, PRIMARY KEY (tenant_id, scope));
INSERT INTO peer_scope_spend VALUES ('b7100000-0000-4000-8000-000000000001', 'integration', 9000000000000000000, 0),
    ('b7100000-0000-4000-8000-000000000001', 'subject:user-1', 9000000000000000000, 0),
    ('b7100000-0000-4000-8000-000000000001', 'tenant', 9000000000000000000, 0);
CREATE OR REPLACE FUNCTION peer_scope_check(p_tenant uuid, p_subject text, p_est bigint, p_call_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
    SELECT count(*) INTO n FROM (SELECT 1 FROM peer_scope_spend
      WHERE tenant_id = p_tenant AND scope IN ('integration', 'tenant', 'subject:' || p_subject) AND spent + p_est <= budget
      ORDER BY scope FOR UPDATE) s;
    IF n < 3 THEN
        RETURN 'blocked';
    END IF;
    UPDATE peer_scope_spend SET spent = spent + p_est
     WHERE tenant_id = p_tenant AND scope IN ('integration', 'tenant', 'subject:' || p_subject);
    RETURN 'allowed';
END $$;
SQL
dir=$(mktemp -d)
cat > "$dir/check.sql" <<'SQL'
SELECT * FROM aos_cus.check('b7100000-0000-4000-8000-000000000001', 'b7100000-0000-4000-8000-0000000000a1', 100, 10, NULL, 'user-1', NULL, 'gpt-4o-mini');
SQL
cat > "$dir/floor.sql" <<'SQL'
SELECT * FROM decision_floor('b7100000-0000-4000-8000-000000000001', 'b7100000-0000-4000-8000-0000000000a1', 100, 10, NULL, 'user-1', NULL, 'gpt-4o-mini');
SQL
install_decision_floor
cat > "$dir/select1.sql" <<'SQL'
SELECT 1;
SQL
cat > "$dir/reserve.sql" <<'SQL'
\set r random(1, 2000000000)
SELECT * FROM aos_cus.check('b7100000-0000-4000-8000-000000000001', 'b7100000-0000-4000-8000-0000000000a1', 100, 10, 'bench-' || :r, 'user-1', NULL, 'gpt-4o-mini');
SQL
cat > "$dir/peer.sql" <<'SQL'
\set r random(1, 2000000000)
SELECT peer_scope_check('b7100000-0000-4000-8000-000000000001', 'user-1', 100, 'bench-' || :r);
SQL
compare "check() 3 scopes + policy vs SELECT 1 (1 client)" "$dir/check.sql" "$dir/select1.sql" -c 1 -j 1
compare "check() 3 scopes + policy vs SELECT 1 (4 clients)" "$dir/check.sql" "$dir/select1.sql" -c 4 -j 2
compare "decision_floor() vs SELECT 1 (1 client)" "$dir/floor.sql" "$dir/select1.sql" -c 1 -j 1
compare "decision_floor() vs SELECT 1 (4 clients)" "$dir/floor.sql" "$dir/select1.sql" -c 4 -j 2
compare "check() 3 scopes + policy vs decision_floor() (4 clients)" "$dir/check.sql" "$dir/floor.sql" -c 4 -j 2
PGOPTIONS='-c synchronous_commit=off -c aos_cus.reservation_ttl=50ms' \
	compare "reserving check() 3 scopes vs PL/pgSQL 3 rows FOR UPDATE (4 clients, sync_commit off)" "$dir/reserve.sql" "$dir/peer.sql" -c 4 -j 2
PGOPTIONS='-c aos_cus.reservation_ttl=50ms' \
	compare "reserving check() 3 scopes vs PL/pgSQL 3 rows FOR UPDATE (4 clients, durable)" "$dir/reserve.sql" "$dir/peer.sql" -c 4 -j 2
rm -rf "$dir"
