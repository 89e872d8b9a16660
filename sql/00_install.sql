-- Install, drop and install again: the script is clean and repeatable.
CREATE EXTENSION aos_cus;
SELECT extversion FROM pg_extension WHERE extname = 'aos_cus';
-- Every table with a tenant_id column has row-level security (expect no rows).
SELECT c.relname AS tenant_table_without_rls
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'aos_cus' AND c.relkind = 'r' AND NOT c.relrowsecurity
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id');
DROP EXTENSION aos_cus;
SELECT count(*) AS leftover_relations FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'aos_cus';
CREATE EXTENSION aos_cus;
-- Roles survive DROP EXTENSION and are reused.
SELECT rolname FROM pg_roles WHERE rolname LIKE 'aos\_cus\_%' ORDER BY 1;
-- The schema is not relocatable.
ALTER EXTENSION aos_cus SET SCHEMA public;
