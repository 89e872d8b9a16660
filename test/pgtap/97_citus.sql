-- Citus (issue 20) on a server without Citus: citus_distribute() and citus_rollup() refuse with 0A000 naming
-- Citus; tenants are refused first; every node stores every row; trigger checks accept a Citus shard of their
-- table ("<table>_<shard id>") and nothing else.
BEGIN;
SELECT plan(9);

SELECT throws_ok($$SELECT * FROM aos_cus.citus_distribute()$$, '0A000',
    'citus_distribute() requires the citus extension', 'citus_distribute() without Citus: 0A000 naming it');
SELECT throws_ok($$SELECT * FROM aos_cus.citus_rollup()$$, '0A000',
    'citus_rollup() requires the citus extension', 'citus_rollup() without Citus: 0A000 naming it');
SET LOCAL aos_cus.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SELECT throws_ok($$SELECT * FROM aos_cus.citus_distribute()$$, '42501', NULL,
    'citus_distribute() refuses a session acting for a tenant');
RESET aos_cus.tenant_id;
CREATE ROLE tap_citus_admin IN ROLE aos_cus_admin;
SET LOCAL ROLE tap_citus_admin;
SELECT throws_ok($$SELECT * FROM aos_cus.citus_distribute()$$, '42501', NULL,
    'citus_distribute() is not for aos_cus_admin');
RESET ROLE;
SELECT is(aos_cus_internal.node_rows_filter(), 'true', 'without Citus this node stores every row');

-- Shard-like names: the trigger check accepts <table>_<digits> in schema aos_cus only.
CREATE TABLE aos_cus.cus_model_prices_102008 (id int);
CREATE TABLE aos_cus.cus_model_prices_1a (id int);
CREATE TABLE aos_cus.cus_model_prices_ (id int);
CREATE TABLE public.cus_model_prices_102009 (id int);
CREATE TRIGGER t AFTER INSERT ON aos_cus.cus_model_prices_102008 FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();
CREATE TRIGGER t AFTER INSERT ON aos_cus.cus_model_prices_1a FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();
CREATE TRIGGER t AFTER INSERT ON aos_cus.cus_model_prices_ FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();
CREATE TRIGGER t AFTER INSERT ON public.cus_model_prices_102009 FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();
SELECT lives_ok($$INSERT INTO aos_cus.cus_model_prices_102008 VALUES (1)$$, 'a shard of cus_model_prices is accepted');
SELECT throws_ok($$INSERT INTO aos_cus.cus_model_prices_1a VALUES (1)$$, '39P01',
    'aos_cus_internal.prices_changed() may only be attached to aos_cus.cus_model_prices, not to aos_cus.cus_model_prices_1a',
    'a suffix that is not a shard id is refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_model_prices_ VALUES (1)$$, '39P01',
    'aos_cus_internal.prices_changed() may only be attached to aos_cus.cus_model_prices, not to aos_cus.cus_model_prices_',
    'an empty shard id is refused');
SELECT throws_ok($$INSERT INTO public.cus_model_prices_102009 VALUES (1)$$, '39P01',
    'aos_cus_internal.prices_changed() may only be attached to aos_cus.cus_model_prices, not to public.cus_model_prices_102009',
    'a shard-like name outside schema aos_cus is refused');

SELECT * FROM finish();
ROLLBACK;
