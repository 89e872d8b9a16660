-- Time partitions of cus_llm_usage and cus_ingest_rejects, the idempotency window and retention (issue 19).
-- A DEFAULT partition takes every row no time partition holds, so no insert ever fails for want of one;
-- maintain_partitions() (run by rollup_usage(), hence by the pg_cron job) creates the partitions ahead,
-- moves the default partition's rows into partitions of their own, drops partitions past retention and
-- prunes idempotency keys past the window.

-- Windows and layout; no row means the defaults of usage_settings() (a row is user data, kept by pg_dump).
CREATE TABLE aos_cus.cus_usage_settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    partition_interval  interval NOT NULL CHECK (partition_interval IN ('1 day', '7 days', '1 mon', '3 mons', '1 year')),
    idempotency_window  interval NOT NULL CHECK (idempotency_window >= interval '1 day'),
    raw_retention       interval CHECK (raw_retention >= interval '1 day'),
    rejects_retention   interval CHECK (rejects_retention >= interval '1 day'),
    hourly_retention    interval NOT NULL CHECK (hourly_retention >= interval '1 day'),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_usage_settings IS 'partition interval, idempotency window and retention (set_partitioning(), set_retention())';
REVOKE ALL ON aos_cus.cus_usage_settings FROM aos_cus_admin;
GRANT SELECT ON aos_cus.cus_usage_settings TO aos_cus_operator;
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_usage_settings', '');

CREATE FUNCTION aos_cus.usage_settings(OUT partition_interval interval, OUT idempotency_window interval,
                                       OUT raw_retention interval, OUT rejects_retention interval,
                                       OUT hourly_retention interval)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(s.partition_interval, interval '1 month'), coalesce(s.idempotency_window, interval '35 days'),
           s.raw_retention, CASE WHEN s.id IS NULL THEN interval '30 days' ELSE s.rejects_retention END,
           coalesce(s.hourly_retention, interval '35 days')
      FROM (SELECT) d LEFT JOIN aos_cus.cus_usage_settings s ON true
$$;
COMMENT ON FUNCTION aos_cus.usage_settings() IS
    'settings in force: partition interval (1 month), idempotency window (35 days), raw and rejects retention (forever, 30 days), hourly retention (35 days)';

-- Internal: the bounds of every time partition of tbl (not the default one), in order.
CREATE FUNCTION aos_cus_internal.partition_bounds(tbl regclass, OUT part regclass, OUT lower timestamptz, OUT upper timestamptz)
    RETURNS SETOF record LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid,
           LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                           $r$FROM \('([^']+)'\) TO \('([^']+)'\)$r$) b
     WHERE i.inhparent OPERATOR(pg_catalog.=) tbl AND b IS NOT NULL
     ORDER BY 2
$$;
COMMENT ON FUNCTION aos_cus_internal.partition_bounds(regclass) IS 'internal: each time partition of tbl with its [lower, upper) bounds';
REVOKE ALL ON FUNCTION aos_cus_internal.partition_bounds(regclass) FROM PUBLIC;

-- Internal: the start of the partition period holding ts (UTC days, ISO weeks, months, quarters, years).
CREATE FUNCTION aos_cus_internal.partition_start(ts timestamptz, step interval) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.date_trunc(CASE step WHEN interval '1 day' THEN 'day' WHEN interval '7 days' THEN 'week'
                                          WHEN interval '1 month' THEN 'month' WHEN interval '3 months' THEN 'quarter'
                                          ELSE 'year' END, ts, 'UTC');
COMMENT ON FUNCTION aos_cus_internal.partition_start(timestamptz, interval) IS 'internal: start of the partition period holding ts';
REVOKE ALL ON FUNCTION aos_cus_internal.partition_start(timestamptz, interval) FROM PUBLIC;

-- Internal: a new partition [lower, upper) of tbl holding the default partition's rows of that range, built with
-- the default partition's keys and indexes and attached (the parent's triggers and foreign key are cloned). The
-- default partition is detached meanwhile (moving its rows fires no trigger); inserts wait for the commit.
CREATE FUNCTION aos_cus_internal.add_partition(tbl regclass, lower timestamptz, upper timestamptz) RETURNS regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel name := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
    col name := CASE rel WHEN 'cus_llm_usage' THEN 'started_at' ELSE 'rejected_at' END;
    name text := rel || '_p' || pg_catalog.to_char(lower AT TIME ZONE 'UTC', 'YYYYMMDD');
    def text := pg_catalog.format('aos_cus.%I', rel || '_default');
    part text := pg_catalog.format('aos_cus.%I', name);
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE %s DETACH PARTITION %s', tbl, def);
    EXECUTE pg_catalog.format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)', part, def);
    EXECUTE pg_catalog.format('WITH m AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) $1 AND %I OPERATOR(pg_catalog.<) $2 RETURNING *) '
                              'INSERT INTO %s SELECT * FROM m', def, col, col, part) USING lower, upper;
    EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', tbl, part, lower, upper);
    EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', tbl, def);
    -- Reached through the parent only: no grant, and row-level security without a policy.
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
    EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', part,
                              pg_catalog.format('%s rows with %s in [%s, %s)', rel, col, lower, upper));
    -- Made by ALTER EXTENSION UPDATE, it would be a member of the extension: partitions are data.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid OPERATOR(pg_catalog.=) part::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.=) 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION aos_cus DROP TABLE %s', part);
    END IF;
    RETURN part::pg_catalog.regclass;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.add_partition(regclass, timestamptz, timestamptz) IS
    'internal to maintain_partitions(): a new time partition holding the default partition''s rows of its range';
REVOKE ALL ON FUNCTION aos_cus_internal.add_partition(regclass, timestamptz, timestamptz) FROM PUBLIC;

-- Internal: partitions of tbl ahead of now, the default partition's rows in their own, past retention dropped.
-- Internal: whether this node stores usage rows started in [lower, upper) that no rollup has folded yet (under
-- Citus, the rows of this node's shards, judged by this node's own rollup snapshot).
CREATE FUNCTION aos_cus_internal.usage_unfolded(lower timestamptz, upper timestamptz) RETURNS boolean
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unfolded boolean;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM aos_cus.cus_llm_usage u, aos_cus.cus_rollup_state s
                             WHERE u.started_at OPERATOR(pg_catalog.>=) $1 AND u.started_at OPERATOR(pg_catalog.<) $2
                               AND u.ingest_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin(s.last_snapshot)
                               AND NOT pg_catalog.pg_visible_in_snapshot(u.ingest_xid, s.last_snapshot) AND '
            OPERATOR(pg_catalog.||) aos_cus_internal.node_rows_filter() OPERATOR(pg_catalog.||) ')'
        INTO unfolded USING lower, upper;
    RETURN unfolded;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.usage_unfolded(timestamptz, timestamptz) IS
    'internal: true when this node stores usage rows of the range that are not rolled up yet';
REVOKE ALL ON FUNCTION aos_cus_internal.usage_unfolded(timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION aos_cus_internal.maintain_table(tbl regclass, step interval, retention interval)
    RETURNS TABLE (action text, partition_name text)
    -- Bounds are UTC months (a month added in another zone ends elsewhere), written and read back as ISO text.
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' AS $$
DECLARE
    rel name := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
    col name := CASE rel WHEN 'cus_llm_usage' THEN 'started_at' ELSE 'rejected_at' END;
    def text := pg_catalog.format('aos_cus.%I', rel || '_default');
    ahead timestamptz := pg_catalog.now() + step + interval '1 day';
    r timestamptz;
    lo timestamptz;
    hi timestamptz;
    unfolded boolean;
    p record;
BEGIN
    -- Ahead: contiguous from the last partition (or the current period) to past now + one period.
    LOOP
        lo := GREATEST((SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b),
                       aos_cus_internal.partition_start(pg_catalog.now(), step));
        EXIT WHEN lo > ahead;
        action := 'created';
        partition_name := aos_cus_internal.add_partition(tbl, lo, aos_cus_internal.partition_start(lo, step) + step)::text;
        RETURN NEXT;
    END LOOP;
    -- Rows in the default partition: each in the gap between partitions that holds it, cut to its period.
    LOOP
        EXECUTE pg_catalog.format('SELECT min(%I) FROM %s', col, def) INTO r;
        EXIT WHEN r IS NULL;
        lo := GREATEST(aos_cus_internal.partition_start(r, step),
                       (SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) r));
        hi := LEAST(aos_cus_internal.partition_start(r, step) + step,
                    (SELECT min(b.lower) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.lower OPERATOR(pg_catalog.>) r));
        action := 'moved';
        partition_name := aos_cus_internal.add_partition(tbl, lo, hi)::text;
        RETURN NEXT;
    END LOOP;
    IF retention IS NULL THEN
        RETURN;
    END IF;
    -- Retention: whole partitions ending before now - retention; usage only once every row is rolled up.
    FOR p IN SELECT * FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) pg_catalog.now() - retention LOOP
        -- A Citus coordinator asks each worker about the rows it stores (before the lock, which reaches their shards).
        IF rel OPERATOR(pg_catalog.=) 'cus_llm_usage' AND aos_cus_internal.citus_node() OPERATOR(pg_catalog.=) 'coordinator' THEN
            EXECUTE 'SELECT pg_catalog.bool_or(NOT w.success OR w.result::pg_catalog.bool) FROM pg_catalog.run_command_on_workers($1) w'
                INTO unfolded USING pg_catalog.format('SELECT aos_cus_internal.usage_unfolded(%L, %L)', p.lower, p.upper);
            CONTINUE WHEN unfolded;
        END IF;
        EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', p.part);
        IF rel OPERATOR(pg_catalog.=) 'cus_llm_usage' THEN
            CONTINUE WHEN aos_cus_internal.citus_node() IS NULL AND aos_cus_internal.usage_unfolded(p.lower, p.upper);
            DELETE FROM aos_cus.cus_usage_keys k
             WHERE k.started_at OPERATOR(pg_catalog.>=) p.lower AND k.started_at OPERATOR(pg_catalog.<) p.upper;
        END IF;
        action := 'dropped';
        partition_name := p.part::text;
        EXECUTE pg_catalog.format('ALTER TABLE %s DETACH PARTITION %s', tbl, p.part);
        EXECUTE pg_catalog.format('DROP TABLE %s', p.part);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.maintain_table(regclass, interval, interval) IS 'internal to maintain_partitions(): one partitioned table';
REVOKE ALL ON FUNCTION aos_cus_internal.maintain_table(regclass, interval, interval) FROM PUBLIC;

CREATE FUNCTION aos_cus.maintain_partitions() RETURNS TABLE (table_name text, action text, partition_name text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg record := aos_cus.usage_settings();
BEGIN
    PERFORM aos_cus.assert_platform('maintain_partitions()');
    -- A Citus worker refuses DDL on distributed tables: their partitions are made and dropped on the coordinator.
    IF aos_cus_internal.citus_node() IS DISTINCT FROM 'worker' THEN
        RETURN QUERY SELECT 'cus_llm_usage', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_llm_usage', cfg.partition_interval, cfg.raw_retention) m;
        RETURN QUERY SELECT 'cus_ingest_rejects', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_ingest_rejects', cfg.partition_interval, cfg.rejects_retention) m;
    END IF;
    -- Local tables of each node (under Citus, of the worker holding the tenant).
    DELETE FROM aos_cus.cus_usage_hourly h WHERE h.hour OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.hourly_retention;
    -- A key lives while its row started, or was ingested, inside the window. The keys written since the last run are
    -- summarized first, so the BRIN index of ingested_at leaves out every block range of younger keys.
    PERFORM pg_catalog.brin_summarize_new_values('aos_cus.cus_usage_keys_ingested_at_idx'::pg_catalog.regclass);
    DELETE FROM aos_cus.cus_usage_keys k WHERE k.started_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window
                                           AND k.ingested_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window;
END
$$;
COMMENT ON FUNCTION aos_cus.maintain_partitions() IS
    'creates time partitions ahead, moves default-partition rows into their own, drops partitions past retention, prunes hourly rollups and idempotency keys; rollup_usage() runs it';

-- Internal: the settings row, made from the defaults when missing, for an update.
CREATE FUNCTION aos_cus_internal.lock_usage_settings() RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO aos_cus.cus_usage_settings (partition_interval, idempotency_window, raw_retention, rejects_retention, hourly_retention)
    SELECT s.partition_interval, s.idempotency_window, s.raw_retention, s.rejects_retention, s.hourly_retention
      FROM aos_cus.usage_settings() s
    ON CONFLICT (id) DO UPDATE SET updated_at = pg_catalog.now()
$$;
COMMENT ON FUNCTION aos_cus_internal.lock_usage_settings() IS 'internal: makes and locks the settings row';
REVOKE ALL ON FUNCTION aos_cus_internal.lock_usage_settings() FROM PUBLIC;

CREATE FUNCTION aos_cus.set_retention(raw interval, rejects interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_retention()');
    IF raw < interval '1 day' OR rejects < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('retention raw %s, rejects %s: each must be NULL (forever) or at least 1 day',
                                        coalesce(raw::text, 'NULL'), coalesce(rejects::text, 'NULL'));
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings SET raw_retention = raw, rejects_retention = rejects;
    -- Under Citus each worker prunes its own hourly rollups and keys by its own copy of the settings.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)', raw, rejects));
END
$$;
COMMENT ON FUNCTION aos_cus.set_retention(interval, interval) IS
    'keeps raw usage rows and ingest rejects this long (NULL: forever); maintain_partitions() drops whole partitions past it';

CREATE FUNCTION aos_cus.set_partitioning(partition_interval interval DEFAULT NULL, idempotency_window interval DEFAULT NULL,
                                         hourly_retention interval DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_partitioning()');
    IF partition_interval NOT IN (interval '1 day', interval '7 days', interval '1 month', interval '3 months', interval '1 year') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('partition_interval "%s" is not one of 1 day, 7 days, 1 month, 3 months, 1 year', partition_interval);
    END IF;
    IF idempotency_window < interval '1 day' OR hourly_retention < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format(
            'idempotency_window %s, hourly_retention %s: each must be at least 1 day', idempotency_window, hourly_retention);
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings s
       SET partition_interval = coalesce(set_partitioning.partition_interval, s.partition_interval),
           idempotency_window = coalesce(set_partitioning.idempotency_window, s.idempotency_window),
           hourly_retention = coalesce(set_partitioning.hourly_retention, s.hourly_retention);
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
        set_partitioning.partition_interval, set_partitioning.idempotency_window, set_partitioning.hourly_retention));
END
$$;
COMMENT ON FUNCTION aos_cus.set_partitioning(interval, interval, interval) IS
    'partition interval of new partitions, idempotency window and hourly rollup retention (NULL keeps the current value)';

REVOKE ALL ON FUNCTION aos_cus.usage_settings(), aos_cus.maintain_partitions(), aos_cus.set_retention(interval, interval),
    aos_cus.set_partitioning(interval, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.usage_settings(), aos_cus.maintain_partitions(), aos_cus.set_retention(interval, interval),
    aos_cus.set_partitioning(interval, interval, interval) TO aos_cus_operator;
