-- aos_cus 0.1.0 -> 0.2.0: every schema change of the 0.2.0 wave, in the order it landed.
\echo Use "ALTER EXTENSION aos_cus UPDATE TO '0.2.0'" to load this file. \quit

-- Security (issue 13): every function that fixes its search_path puts pg_catalog first and pg_temp last, explicitly,
-- so no type, function or operator can be taken from the caller's temporary schema.
ALTER FUNCTION aos_cus.apply_limits(aos_cus.cus_integrations,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_integration_fields(aos_cus.cus_integrations) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_integration_name(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_keys(jsonb,text,text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.create_integration(uuid,text,text,text,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.daily_aggregates(uuid,uuid,date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.delete_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.disable_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.enable_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.enable_tenant_rls(regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.fold_usage(text,pg_snapshot,pg_snapshot,date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.get_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.health_summary(uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.ingest_usage(uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.ingest_usage_batch(uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.integration_for_update(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.integration_lifecycle() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.keyring_status() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.limit_choice(jsonb,text,text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.limit_integer(jsonb,text,bigint,bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.list_integrations(uuid,text,uuid,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.lock_rollup_state() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.metrics() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.model_info(text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.patch_text(jsonb,text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rebuild_daily(date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.record_health(uuid,uuid,text,integer,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.reprice_usage(timestamp with time zone,timestamp with time zone,boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.request_health_check(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.resolve_credential(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.resolve_model(text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rollup_snapshot() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rollup_usage() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_credential(uuid,uuid,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_encryption_key() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_encryption_key_batch(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.schedule_rollup(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_integration_status(uuid,uuid,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_limits(uuid,uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_price(text,text,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,text,bigint,timestamp with time zone,integer,integer,text[],text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.stale_integrations(interval,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.test_credentials(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.update_integration(uuid,uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.usage_history(uuid,uuid,timestamp with time zone,timestamp with time zone,bigint,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.usage_summary(uuid,uuid,timestamp with time zone,timestamp with time zone) SET search_path = pg_catalog, pg_temp;

-- Security (issue 13, finding 7): the enforcement log is pruned per tenant by its primary key (tenant_id, id),
-- so one tenant's refusals no longer erase another's rows; the global id index pruning used is gone.
DROP INDEX aos_cus.cus_enforcement_log_id_idx;
COMMENT ON TABLE aos_cus.cus_enforcement_log IS 'warned and blocked check() decisions, newest aos_cus.enforcement_log_max_rows per tenant kept';
