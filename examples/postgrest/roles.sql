-- Roles PostgREST needs in front of aos_cus. Run once as a superuser after CREATE EXTENSION aos_cus.
-- PostgREST connects as authenticator and switches, per request, to the role named by the JWT's
-- "role" claim; aos_cus reads the tenant from the JWT's "tenant_id" claim (request.jwt.claims).
-- No role reachable from a JWT may be aos_cus_operator (the platform): tenant_admin in aos_cus_admin
-- is scoped to the tenant of its claims, and without a tenant_id claim it sees nothing.
-- Do not bind authenticator with aos_cus.bind_login(): it serves every tenant (bind it only when this
-- PostgREST instance serves exactly one tenant, which then holds whatever the JWT claims).
CREATE ROLE authenticator LOGIN NOINHERIT;           -- give it a password or a certificate
CREATE ROLE web_anon NOLOGIN;                         -- anonymous requests: no rights at all
CREATE ROLE tenant_admin NOLOGIN IN ROLE aos_cus_admin;  -- a tenant's administrators: manage integrations
CREATE ROLE tenant_app NOLOGIN IN ROLE aos_cus_app;      -- a tenant's services: check, ingest, read
GRANT web_anon, tenant_admin, tenant_app TO authenticator;
