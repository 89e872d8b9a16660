#!/usr/bin/env bash
# Health API costs against plain-SQL peers on 20,000 integrations of 1,000 tenants:
# request_health_check() (tenant check, coalescing, queue insert with the commit-time wake trigger)
# against a bare INSERT ... ON CONFLICT DO NOTHING into a trigger-less copy of the queue, and
# health_summary(tenant) against the same GROUP BY written by hand. Writes use synchronous_commit=off.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
SELECT ('00000000-0000-4000-8000-' || lpad((g % 1000)::text, 12, '0'))::uuid,
       ('10000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'h' || g, 'openai', 'enabled'
  FROM generate_series(0, 19999) g
ON CONFLICT DO NOTHING;
ANALYZE aos_cus.cus_integrations;
DROP TABLE IF EXISTS public.bench_health_checks;
CREATE TABLE public.bench_health_checks (LIKE aos_cus.cus_health_checks INCLUDING ALL);
SQL
dir=$(mktemp -d)
cat > "$dir/ours_request.sql" <<'SQL'
\set g random(0, 19999)
SELECT aos_cus.request_health_check(('00000000-0000-4000-8000-' || lpad((:g % 1000)::text, 12, '0'))::uuid,
                                    ('10000000-0000-4000-8000-' || lpad(:g::text, 12, '0'))::uuid);
SQL
cat > "$dir/peer_request.sql" <<'SQL'
\set g random(0, 19999)
INSERT INTO public.bench_health_checks (tenant_id, integration_id)
SELECT i.tenant_id, i.id FROM aos_cus.cus_integrations i
 WHERE i.tenant_id = ('00000000-0000-4000-8000-' || lpad((:g % 1000)::text, 12, '0'))::uuid
   AND i.id = ('10000000-0000-4000-8000-' || lpad(:g::text, 12, '0'))::uuid
   AND i.status <> 'deleted'
   AND (i.health_checked_at IS NULL OR i.health_checked_at <= now() - interval '1 minute')
ON CONFLICT DO NOTHING;
SQL
cat > "$dir/ours_summary.sql" <<'SQL'
\set t random(0, 999)
SELECT * FROM aos_cus.health_summary(('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid);
SQL
cat > "$dir/peer_summary.sql" <<'SQL'
\set t random(0, 999)
SELECT health_state, count(*) FROM aos_cus.cus_integrations
 WHERE tenant_id = ('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid AND status <> 'deleted'
 GROUP BY health_state;
SQL
PGOPTIONS='-c synchronous_commit=off' compare "request_health_check vs bare INSERT ON CONFLICT (sync commit off, 1 client)" \
	"$dir/ours_request.sql" "$dir/peer_request.sql"
compare "request_health_check vs bare INSERT ON CONFLICT (durable, 1 client)" "$dir/ours_request.sql" "$dir/peer_request.sql"
compare "health_summary(tenant) vs hand-written GROUP BY (1 client)" "$dir/ours_summary.sql" "$dir/peer_summary.sql"
pg_sql -d "$BENCH_DB" -c 'DROP TABLE public.bench_health_checks'
rm -rf "$dir"
