-- Where the current tenant comes from, and the assert_tenant() rules.
SELECT aos_cus.current_tenant() IS NULL AS no_tenant;
SET aos_cus.tenant_id = '00000000-0000-0000-0000-00000000000a';
SELECT aos_cus.current_tenant();
-- A JWT claim (PostgREST) wins over the setting.
SELECT set_config('request.jwt.claims', '{"role":"aos_cus_app","tenant_id":"00000000-0000-0000-0000-00000000000b"}', false) IS NOT NULL AS claims_set;
SELECT aos_cus.current_tenant();
-- Claims without tenant_id fall back to the setting.
SELECT set_config('request.jwt.claims', '{"role":"aos_cus_app"}', false) IS NOT NULL AS claims_set;
SELECT aos_cus.current_tenant();
-- Malformed values are refused with a precise SQLSTATE.
\set VERBOSITY sqlstate
SET aos_cus.tenant_id = 'not-a-uuid';
SELECT set_config('request.jwt.claims', '{"tenant_id": 42}', false) IS NOT NULL AS claims_set;
SELECT aos_cus.current_tenant();
SELECT set_config('request.jwt.claims', '{"tenant_id": "nope"}', false) IS NOT NULL AS claims_set;
SELECT aos_cus.current_tenant();
SELECT set_config('request.jwt.claims', '{not json', false) IS NOT NULL AS claims_set;
SELECT aos_cus.current_tenant();
\set VERBOSITY default
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_cleared;
-- assert_tenant: matching tenant passes, another tenant is 42501, NULL is refused.
SELECT aos_cus.assert_tenant('00000000-0000-0000-0000-00000000000a');
SELECT aos_cus.assert_tenant('00000000-0000-0000-0000-00000000000b');
SELECT aos_cus.assert_tenant(NULL);
-- Without a tenant only admins may act; an app role may not.
RESET aos_cus.tenant_id;
SELECT aos_cus.assert_tenant('00000000-0000-0000-0000-00000000000b');
CREATE ROLE aos_cus_regress_app LOGIN IN ROLE aos_cus_app;
SET ROLE aos_cus_regress_app;
SELECT aos_cus.assert_tenant('00000000-0000-0000-0000-00000000000b');
RESET ROLE;
DROP ROLE aos_cus_regress_app;
