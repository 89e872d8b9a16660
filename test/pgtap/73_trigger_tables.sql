-- Every aos_cus trigger function refuses a table other than its own (security review, finding 10: attaching
-- usage_settle_trigger to a table with other column types crashed the server with SIGSEGV).
BEGIN;
SELECT plan(15);

CREATE TABLE public.not_usage (tenant_id int, integration_id text, call_id int, started_at text, cost_microcents text,
                               status text, id int);
INSERT INTO public.not_usage VALUES (1, 'x', 2, 'y', 'z', 'enabled', 3);

CREATE TRIGGER t1 AFTER INSERT ON public.not_usage FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_settle_trigger();
SELECT throws_ok($$INSERT INTO public.not_usage VALUES (1, 'x', 2, 'y', 'z', 'enabled', 3)$$, '39P01',
    'aos_cus_internal.usage_settle_trigger() may only be attached to aos_cus.cus_llm_usage, not to public.not_usage',
    'usage_settle_trigger on another table raises (no crash)');
DROP TRIGGER t1 ON public.not_usage;

CREATE TRIGGER t2 BEFORE INSERT ON public.not_usage FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_price_trigger();
SELECT throws_ok($$INSERT INTO public.not_usage VALUES (1, 'x', 2, 'y', NULL, 'enabled', 3)$$, '39P01',
    'aos_cus_internal.usage_price_trigger() may only be attached to aos_cus.cus_llm_usage, not to public.not_usage',
    'usage_price_trigger on another table raises');
DROP TRIGGER t2 ON public.not_usage;

CREATE TRIGGER t3 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.limits_changed_trigger();
SELECT throws_ok($$UPDATE public.not_usage SET id = 4$$, '39P01',
    'aos_cus_internal.limits_changed_trigger() may only be attached to aos_cus.cus_integrations, not to public.not_usage',
    'limits_changed_trigger on another table raises');
DROP TRIGGER t3 ON public.not_usage;

CREATE TRIGGER t4 AFTER INSERT ON public.not_usage FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.health_queue_wake();
SELECT throws_ok($$INSERT INTO public.not_usage VALUES (1, 'x', 2, 'y', 'z', 'enabled', 3)$$, '39P01',
    'aos_cus_internal.health_queue_wake() may only be attached to aos_cus.cus_health_checks, not to public.not_usage',
    'health_queue_wake on another table raises');
DROP TRIGGER t4 ON public.not_usage;

CREATE TRIGGER t5 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();
SELECT throws_ok($$UPDATE public.not_usage SET id = 5$$, '39P01',
    'aos_cus_internal.prices_changed() may only be attached to aos_cus.cus_model_prices, not to public.not_usage',
    'prices_changed on another table raises');
DROP TRIGGER t5 ON public.not_usage;

CREATE TRIGGER t6 BEFORE UPDATE ON public.not_usage FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.integration_lifecycle();
SELECT throws_ok($$UPDATE public.not_usage SET status = 'deleted'$$, '39P01',
    'aos_cus_internal.integration_lifecycle() may only be attached to aos_cus.cus_integrations, not to public.not_usage',
    'integration_lifecycle on another table raises');
DROP TRIGGER t6 ON public.not_usage;

CREATE TRIGGER t7 BEFORE UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.platform_table_guard();
SELECT throws_ok($$UPDATE public.not_usage SET id = 6$$, '39P01',
    'aos_cus_internal.platform_table_guard() may only be attached to aos_cus.* (its own tables), not to public.not_usage',
    'platform_table_guard on a table outside aos_cus raises');
DROP TRIGGER t7 ON public.not_usage;

CREATE TRIGGER t8 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.tenant_logins_changed();
SELECT throws_ok($$UPDATE public.not_usage SET id = 7$$, '39P01',
    'aos_cus_internal.tenant_logins_changed() may only be attached to aos_cus.cus_tenant_logins, not to public.not_usage',
    'tenant_logins_changed on another table raises');
DROP TRIGGER t8 ON public.not_usage;

CREATE TRIGGER t9 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.scope_limits_changed_trigger();
SELECT throws_ok($$UPDATE public.not_usage SET id = 8$$, '39P01',
    'aos_cus_internal.scope_limits_changed_trigger() may only be attached to aos_cus.cus_scope_limits, not to public.not_usage',
    'scope_limits_changed_trigger on another table raises');
DROP TRIGGER t9 ON public.not_usage;

CREATE TRIGGER t10 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.policies_changed_trigger();
SELECT throws_ok($$UPDATE public.not_usage SET id = 9$$, '39P01',
    'aos_cus_internal.policies_changed_trigger() may only be attached to aos_cus.cus_policies, not to public.not_usage',
    'policies_changed_trigger on another table raises');
DROP TRIGGER t10 ON public.not_usage;

CREATE TRIGGER t11 AFTER UPDATE ON public.not_usage FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.webhook_queue_wake();
SELECT throws_ok($$UPDATE public.not_usage SET id = 10$$, '39P01',
    'aos_cus_internal.webhook_queue_wake() may only be attached to aos_cus.cus_webhook_deliveries, not to public.not_usage',
    'webhook_queue_wake on another table raises');
DROP TRIGGER t11 ON public.not_usage;

CREATE TRIGGER t12 BEFORE INSERT ON public.not_usage FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_key_trigger();
SELECT throws_ok($$INSERT INTO public.not_usage VALUES (1, 'x', 2, 'y', 'z', 'enabled', 3)$$, '39P01',
    'aos_cus_internal.usage_key_trigger() may only be attached to aos_cus.cus_llm_usage, not to public.not_usage',
    'usage_key_trigger on another table raises');
DROP TRIGGER t12 ON public.not_usage;

-- A partition passes for its root table only: one named like a usage partition, of another table, is refused.
CREATE TABLE aos_cus.not_usage_parent (LIKE public.not_usage) PARTITION BY LIST (id);
CREATE TABLE aos_cus.cus_llm_usage_p20990101 PARTITION OF aos_cus.not_usage_parent FOR VALUES IN (3);
CREATE TRIGGER t13 AFTER INSERT ON aos_cus.not_usage_parent FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_settle_trigger();
SELECT throws_ok($$INSERT INTO aos_cus.not_usage_parent VALUES (1, 'x', 2, 'y', 'z', 'enabled', 3)$$, '39P01',
    'aos_cus_internal.usage_settle_trigger() may only be attached to aos_cus.cus_llm_usage, not to aos_cus.cus_llm_usage_p20990101',
    'a partition of another table is refused');
DROP TABLE aos_cus.not_usage_parent;

SELECT is((SELECT count(*) FROM public.not_usage), 1::bigint, 'no refused statement changed the table');
-- Every trigger function of aos_cus is among those above.
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'aos_cus_internal'::regnamespace AND p.prorettype = 'trigger'::regtype),
          ARRAY['health_queue_wake', 'integration_lifecycle', 'limits_changed_trigger', 'platform_table_guard',
                'policies_changed_trigger', 'prices_changed', 'scope_limits_changed_trigger', 'tenant_logins_changed',
                'usage_key_trigger', 'usage_price_trigger', 'usage_settle_trigger', 'webhook_queue_wake'],
          'every aos_cus trigger function (all in aos_cus_internal) is covered');

SELECT * FROM finish();
ROLLBACK;
