-- Observability: metrics() for Prometheus and the stat_* views
SELECT status, health_state, integrations FROM aos_cus.stat_health WHERE integrations > 0;
SELECT * FROM aos_cus.stat_shmem;
SELECT line FROM regexp_split_to_table(aos_cus.metrics(), E'\n') AS line
 WHERE line LIKE 'aos_cus_ingest_%' OR line LIKE 'aos_cus_usage_%' OR line LIKE 'aos_cus_rollup_lag%'
    OR line LIKE 'aos_cus_budget_%' OR (line ~ '^aos_cus_(integrations|decisions_total)\{' AND line NOT LIKE '% 0');
