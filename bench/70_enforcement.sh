#!/usr/bin/env bash
# Enforcement: check() against the round-trip floor (SELECT 1) at 1 and 4 clients, and a reserving
# check() against the usual do-it-yourself PL/pgSQL budget check (SELECT ... FOR UPDATE, then
# UPDATE of a spend row), 4 clients on one integration. The peer writes, so both sides run with
# synchronous_commit = off (CPU paths); the durable figure is printed beside it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period,
                                      token_limit, rpm, tpm)
VALUES ('b7000000-0000-4000-8000-000000000001', 'b7000000-0000-4000-8000-0000000000a1', 'bench', 'openai', 'enabled',
        9000000000000000000, 'month', 9000000000000000000, 2000000000, 9000000000000000000);
DROP TABLE IF EXISTS peer_budget;
CREATE TABLE peer_budget (tenant_id uuid, integration_id uuid, period_start timestamptz, budget bigint, spent bigint,
                          PRIMARY KEY (tenant_id, integration_id));
INSERT INTO peer_budget VALUES ('b7000000-0000-4000-8000-000000000001', 'b7000000-0000-4000-8000-0000000000a1',
                                date_trunc('month', now()), 9000000000000000000, 0);
-- The do-it-yourself check: lock the spend row, compare, add the estimate.
CREATE OR REPLACE FUNCTION peer_check(p_tenant uuid, p_integration uuid, p_est bigint, p_call_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r peer_budget;
BEGIN
    SELECT * INTO r FROM peer_budget WHERE tenant_id = p_tenant AND integration_id = p_integration FOR UPDATE;
    IF r.spent + p_est > r.budget THEN
        RETURN 'blocked';
    END IF;
    UPDATE peer_budget SET spent = spent + p_est WHERE tenant_id = p_tenant AND integration_id = p_integration;
    RETURN 'allowed';
END $$;
SQL
dir=$(mktemp -d)
cat > "$dir/check.sql" <<'SQL'
SELECT * FROM aos_cus.check('b7000000-0000-4000-8000-000000000001', 'b7000000-0000-4000-8000-0000000000a1', 100, 10);
SQL
cat > "$dir/select1.sql" <<'SQL'
SELECT 1;
SQL
cat > "$dir/reserve.sql" <<'SQL'
\set r random(1, 2000000000)
SELECT * FROM aos_cus.check('b7000000-0000-4000-8000-000000000001', 'b7000000-0000-4000-8000-0000000000a1', 100, 10, 'bench-' || :r);
SQL
cat > "$dir/peer.sql" <<'SQL'
\set r random(1, 2000000000)
SELECT peer_check('b7000000-0000-4000-8000-000000000001', 'b7000000-0000-4000-8000-0000000000a1', 100, 'bench-' || :r);
SQL
compare "check() vs SELECT 1 (1 client)" "$dir/check.sql" "$dir/select1.sql" -c 1 -j 1
compare "check() vs SELECT 1 (4 clients)" "$dir/check.sql" "$dir/select1.sql" -c 4 -j 2
# Reservations live aos_cus.reservation_ttl; a short one keeps the bench's live set small.
PGOPTIONS='-c synchronous_commit=off -c aos_cus.reservation_ttl=50ms' \
	compare "reserving check() vs PL/pgSQL FOR UPDATE peer (4 clients, sync_commit off)" "$dir/reserve.sql" "$dir/peer.sql" -c 4 -j 2
PGOPTIONS='-c aos_cus.reservation_ttl=50ms' \
	compare "reserving check() vs PL/pgSQL FOR UPDATE peer (4 clients, durable)" "$dir/reserve.sql" "$dir/peer.sql" -c 4 -j 2
rm -rf "$dir"
