-- aos_cus install script, built from src/sql/[0-9][0-9]_*.sql in name order.
\echo Use "CREATE EXTENSION aos_cus" to load this file. \quit

-- Roles are cluster-wide: create them when missing, never drop them (they may own grants elsewhere).
-- aos_cus_operator is the platform: it holds every right of aos_cus_admin and alone may act for no
-- tenant (every tenant's rows) and run what spans every tenant (prices, rollups, statistics, keys).
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['aos_cus_admin', 'aos_cus_app', 'aos_cus_reader', 'aos_cus_worker', 'aos_cus_operator']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

GRANT aos_cus_admin TO aos_cus_operator;
GRANT USAGE ON SCHEMA aos_cus TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker, aos_cus_operator;
