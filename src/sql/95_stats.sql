-- Event counters kept in shared memory (stats.c).
CREATE FUNCTION aos_cus.stat_counters(OUT name text, OUT value bigint) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_counters'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_counters() IS 'event counters of every tenant since server start (needs shared_preload_libraries)';
REVOKE ALL ON FUNCTION aos_cus.stat_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.stat_counters() TO aos_cus_operator;
