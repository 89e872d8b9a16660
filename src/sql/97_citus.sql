-- Scaling out with Citus (issue 20): every tenant's rows on the worker holding its shard, the tenant-scoped
-- functions delegated there. Citus functions are called dynamically, only when the citus extension exists.

-- Internal: the usage rows this node stores, as a filter on tenant_id: "true" without Citus; under Citus the
-- hash ranges of this node's shards of cus_llm_usage (rollups and their snapshots are per node).
CREATE FUNCTION aos_cus_internal.node_rows_filter() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ranges text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN 'true';
    END IF;
    EXECUTE $q$
        SELECT pg_catalog.string_agg(pg_catalog.format('pg_catalog.uuid_hash(tenant_id) BETWEEN %s AND %s',
                                                       s.shardminvalue, s.shardmaxvalue), ' OR ')
          FROM pg_catalog.pg_dist_shard s
          JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
         WHERE s.logicalrelid OPERATOR(pg_catalog.=) 'aos_cus.cus_llm_usage'::pg_catalog.regclass
           AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)$q$
    INTO ranges;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                    WHERE logicalrelid OPERATOR(pg_catalog.=) 'aos_cus.cus_llm_usage'::pg_catalog.regclass) THEN
        RETURN 'true';
    END IF;
    RETURN pg_catalog.format('(%s)', coalesce(ranges, 'false'));
END
$$;
COMMENT ON FUNCTION aos_cus_internal.node_rows_filter() IS
    'internal: filter on tenant_id selecting the rows this node stores (true without Citus, this node''s shard ranges under it)';
REVOKE ALL ON FUNCTION aos_cus_internal.node_rows_filter() FROM PUBLIC;

-- Internal: this node's part in a Citus cluster whose usage is distributed: 'coordinator' (group 0) or 'worker';
-- NULL without Citus or before citus_distribute().
CREATE FUNCTION aos_cus_internal.citus_node() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grp integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT (SELECT groupid FROM pg_catalog.pg_dist_local_group) FROM pg_catalog.pg_dist_partition
              WHERE logicalrelid OPERATOR(pg_catalog.=) ''aos_cus.cus_llm_usage''::pg_catalog.regclass' INTO grp;
    RETURN CASE WHEN grp IS NULL THEN NULL WHEN grp OPERATOR(pg_catalog.=) 0 THEN 'coordinator' ELSE 'worker' END;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_node() IS
    'internal: coordinator or worker of a Citus cluster with distributed usage; NULL otherwise';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_node() FROM PUBLIC;

-- Internal: runs command on every Citus worker when this node is a Citus coordinator with workers (a no-op
-- otherwise); raises 58000 naming the nodes where it failed. Not part of this node's transaction.
CREATE FUNCTION aos_cus_internal.citus_on_workers(command text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    failed text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT pg_catalog.string_agg(pg_catalog.format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '')
               FROM pg_catalog.run_command_on_workers($1) w
              WHERE (SELECT groupid FROM pg_catalog.pg_dist_local_group) OPERATOR(pg_catalog.=) 0 AND NOT w.success'
        INTO failed USING command;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '58000', MESSAGE = 'on Citus workers: ' || failed;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_on_workers(text) IS
    'internal: runs a command on every Citus worker from the coordinator (no-op without Citus or on a worker)';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_on_workers(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.citus_on_workers(text) TO aos_cus_operator;

-- Internal, run on every node: each sequence of the extension draws from this node's own range
-- [groupid * 2^48 + 1, (groupid + 1) * 2^48 - 1], so ids stay unique cluster-wide (the coordinator is group 0).
CREATE FUNCTION aos_cus_internal.citus_node_sequences() RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grp bigint;
    lo bigint;
    hi bigint;
    seq record;
    n integer := 0;
BEGIN
    EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO grp;
    lo := grp OPERATOR(pg_catalog.*) 281474976710656 OPERATOR(pg_catalog.+) 1;
    hi := (grp OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) 281474976710656 OPERATOR(pg_catalog.-) 1;
    SET LOCAL citus.enable_ddl_propagation = off;
    FOR seq IN SELECT c.oid::pg_catalog.regclass AS rel, s.last_value
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequences s
                   ON s.schemaname OPERATOR(pg_catalog.=) 'aos_cus' AND s.sequencename OPERATOR(pg_catalog.=) c.relname
                WHERE c.relnamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                  AND c.relkind OPERATOR(pg_catalog.=) 'S' LOOP
        IF seq.last_value IS NULL OR seq.last_value OPERATOR(pg_catalog.<) lo THEN
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START %s RESTART %s',
                                      seq.rel, lo, hi, lo, lo);
        ELSE
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START %s', seq.rel, lo, hi, lo);
        END IF;
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_node_sequences() IS
    'internal to citus_distribute(): moves this node''s aos_cus sequences into its own id range';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_node_sequences() FROM PUBLIC;

CREATE FUNCTION aos_cus.citus_distribute() RETURNS TABLE (object text, action text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    f regprocedure;
    done boolean;
BEGIN
    PERFORM aos_cus.assert_platform('citus_distribute()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_distribute() requires the citus extension',
            HINT = 'Install Citus, add citus first to shared_preload_libraries, CREATE EXTENSION citus, add the workers.';
    END IF;
    -- The settle and price triggers run on the shards, on the node that stores the tenant.
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    -- Global tables: one copy on every node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_model_prices'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)' USING t;
        END IF;
        object := t; action := CASE WHEN done THEN 'already reference' ELSE 'reference table' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant tables: sharded by tenant_id, each tenant's rows of every table on the same node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_integrations', 'aos_cus.cus_llm_usage', 'aos_cus.cus_usage_daily',
                             'aos_cus.cus_usage_daily_subject', 'aos_cus.cus_usage_daily_tag', 'aos_cus.cus_ingest_rejects',
                             'aos_cus.cus_enforcement_log', 'aos_cus.cus_health_checks', 'aos_cus.cus_health_history',
                             'aos_cus.cus_credential_sources', 'aos_cus.cus_scope_limits', 'aos_cus.cus_policies'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            IF t OPERATOR(pg_catalog.=) 'aos_cus.cus_integrations' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'')' USING t;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'', colocate_with => ''aos_cus.cus_integrations'')'
                    USING t;
            END IF;
        END IF;
        object := t; action := CASE WHEN done THEN 'already distributed' ELSE 'distributed by tenant_id' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant-scoped functions (first argument tenant_id, not optional) run on the node holding the tenant, also
    -- inside a transaction block (force_delegation: PostgREST runs every request in one).
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                AND p.pronargs OPERATOR(pg_catalog.>=) 1
                AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype
                AND p.proargnames[1] OPERATOR(pg_catalog.=) 'tenant_id'
                AND p.pronargdefaults OPERATOR(pg_catalog.<) p.pronargs
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['assert_tenant', 'request_health_check', 'record_health'])
              ORDER BY 1::text LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1, ''$1'', colocate_with => ''aos_cus.cus_integrations'', force_delegation => true)'
            USING f;
        object := f::text; action := 'delegated by tenant_id';
        RETURN NEXT;
    END LOOP;
    -- Node-disjoint id ranges, on the workers and here.
    PERFORM aos_cus_internal.citus_on_workers('SELECT aos_cus_internal.citus_node_sequences()');
    PERFORM aos_cus_internal.citus_node_sequences();
    object := 'sequences'; action := 'node id ranges';
    RETURN NEXT;
    -- Login bindings are read locally by every node: copy them to the workers (also to workers added since).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', l.login, l.tenant_id))
       FROM aos_cus.cus_tenant_logins l;
    object := 'aos_cus.cus_tenant_logins'; action := 'copied to every worker';
    RETURN NEXT;
    -- Each worker prunes its own hourly rollups and idempotency keys: it needs the same windows.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
                s.partition_interval, s.idempotency_window, s.hourly_retention)),
            aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)',
                s.raw_retention, s.rejects_retention))
       FROM aos_cus.usage_settings() s;
    object := 'aos_cus.cus_usage_settings'; action := 'copied to every worker';
    RETURN NEXT;
    -- Rollups per node: each node folds its own shards with its own snapshots.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) current_user'
            USING 'aos_cus_rollup';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            USING 'aos_cus_rollup', '*/10 * * * *', 'SELECT aos_cus.citus_rollup()';
        object := 'cron job aos_cus_rollup'; action := 'citus_rollup() every 10 minutes';
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus.citus_distribute() IS
    'Citus: distributes the tenant tables by tenant_id, delegates the tenant-scoped functions, gives each node its id range, schedules per-node rollups; idempotent; operator only';
REVOKE ALL ON FUNCTION aos_cus.citus_distribute() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.citus_distribute() TO aos_cus_operator;

CREATE FUNCTION aos_cus.citus_rollup(OUT nodename text, OUT nodeport integer, OUT folded bigint) RETURNS SETOF record
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM aos_cus.assert_platform('citus_rollup()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_rollup() requires the citus extension';
    END IF;
    FOR r IN EXECUTE 'SELECT w.nodename, w.nodeport, w.success, w.result
                        FROM pg_catalog.run_command_on_workers(''SELECT aos_cus.rollup_usage()'') w ORDER BY 1, 2' LOOP
        nodename := r.nodename; nodeport := r.nodeport; folded := NULL;
        IF r.success THEN
            folded := r.result::bigint;
        ELSE
            RAISE WARNING 'rollup_usage() failed on %:%: %', r.nodename, r.nodeport, r.result;
        END IF;
        RETURN NEXT;
    END LOOP;
    -- Time partitions of distributed tables are created (and dropped) from the coordinator only.
    PERFORM aos_cus.maintain_partitions();
END
$$;
COMMENT ON FUNCTION aos_cus.citus_rollup() IS
    'Citus: runs rollup_usage() on every worker (each folds its own shards with its own snapshots), then maintain_partitions() here; folded NULL and a WARNING where it failed; operator only';
REVOKE ALL ON FUNCTION aos_cus.citus_rollup() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.citus_rollup() TO aos_cus_operator;
