#!/usr/bin/env bash
# Row-level security cost: a tenant's integrations read through RLS (tenant from aos_cus.tenant_id)
# against the same read by a superuser with a literal WHERE tenant_id = ... and no RLS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider)
SELECT ('00000000-0000-4000-8000-' || lpad((g % 1000)::text, 12, '0'))::uuid, 'i' || g, 'openai'
  FROM generate_series(1, 20000) g;
ANALYZE aos_cus.cus_integrations;
DROP ROLE IF EXISTS bench_app;
CREATE ROLE bench_app LOGIN IN ROLE aos_cus_app;
SQL
dir=$(mktemp -d)
cat > "$dir/ours.sql" <<'SQL'
\set t random(0, 999)
SELECT set_config('aos_cus.tenant_id', '00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'), false);
SELECT count(*) FROM aos_cus.cus_integrations;
SQL
cat > "$dir/peer.sql" <<'SQL'
\set t random(0, 999)
SELECT set_config('application_name', '00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'), false);
SELECT count(*) FROM aos_cus.cus_integrations WHERE tenant_id = ('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid;
SQL
OURS_USER=bench_app compare "tenant read via RLS vs literal WHERE (1 client)" "$dir/ours.sql" "$dir/peer.sql"
rm -rf "$dir"
