-- aos_cus install script, built from src/sql/[0-9][0-9]_*.sql in name order.
\echo Use "CREATE EXTENSION aos_cus" to load this file. \quit

-- The extension lives in pg_catalog (aos_cus.control) and creates its schemas itself, so they are members of it:
-- DROP EXTENSION removes them with everything in them.
CREATE SCHEMA aos_cus;
COMMENT ON SCHEMA aos_cus IS 'aos_cus API: the functions, tables and views README.md documents';

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

-- Helpers of the API (validation, triggers, rollup steps) live apart from it: PostgREST exposes only schema aos_cus,
-- and pg_proc of aos_cus is exactly the README's function list. The roles may look names up here because the API
-- functions they call run with their rights; each helper grants EXECUTE only to the roles whose API calls it.
CREATE SCHEMA aos_cus_internal;
COMMENT ON SCHEMA aos_cus_internal IS 'aos_cus helpers: not API, not exposed by PostgREST';
GRANT USAGE ON SCHEMA aos_cus_internal TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker, aos_cus_operator;
