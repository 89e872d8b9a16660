-- Request quotas (issue 14, requirements 1 and 5): rph and rpd on integrations and scopes, validation, the
-- request_quota decision (blocked, warned, retry_after_ms to the period's end), explain_check, reads, and the count
-- kept across a limits change and rebuilt from usage rows. Autocommit: a limits change applies when it commits.
-- The zone keeps the hour boundary at least 20 minutes away from now (UTC turns hours at :00, Asia/Kolkata at :30).
SET TimeZone = 'UTC';
SELECT plan(29);

SELECT gen_random_uuid() AS t, gen_random_uuid() AS ih, gen_random_uuid() AS id, gen_random_uuid() AS iw,
       gen_random_uuid() AS ir, gen_random_uuid() AS is_,
       CASE WHEN extract(minute FROM now()) BETWEEN 20 AND 39 THEN 'UTC' ELSE 'Asia/Kolkata' END AS zone \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:'t', :'ih', 'hourly', 'openai', 'enabled'), (:'t', :'id', 'daily', 'openai', 'enabled'),
       (:'t', :'iw', 'warned', 'openai', 'enabled'), (:'t', :'ir', 'rebuilt', 'openai', 'enabled'),
       (:'t', :'is_', 'scoped', 'openai', 'enabled');

-- Validation: a positive integer or null, 22003/22023 naming the field, through set_limits and set_scope_limits.
SELECT throws_like(format($$SELECT aos_cus.set_limits(%L, %L, '{"rph": 0}')$$, :'t', :'ih'), '%limits.rph%',
    'rph 0 is refused, naming limits.rph');
SELECT throws_ok(format($$SELECT aos_cus.set_limits(%L, %L, '{"rpd": -1}')$$, :'t', :'ih'), '22003', NULL,
    'a negative rpd: 22003');
SELECT throws_ok(format($$SELECT aos_cus.set_limits(%L, %L, '{"rph": 1.5}')$$, :'t', :'ih'), '22023', NULL,
    'a fractional rph: 22023');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'subject:*', '{"rpd": "10"}')$$, :'t'), '22023', NULL,
    'set_scope_limits validates rpd the same way');
SELECT throws_ok(format($$SELECT aos_cus.set_limits(%L, %L, '{"rph": 2147483648}')$$, :'t', :'ih'), '22003', NULL,
    'rph past the integer range: 22003');

SELECT lives_ok(format($$SELECT aos_cus.set_limits(%L, %L, jsonb_build_object('rph', 3, 'timezone', %L)),
                               aos_cus.set_limits(%L, %L, jsonb_build_object('rpd', 2, 'timezone', %L)),
                               aos_cus.set_limits(%L, %L, jsonb_build_object('rph', 1, 'mode', 'warn', 'timezone', %L)),
                               aos_cus.set_scope_limits(%L, 'subject:*', jsonb_build_object('rph', 2, 'timezone', %L))$$,
                       :'t', :'ih', :'zone', :'t', :'id', :'zone', :'t', :'iw', :'zone', :'t', :'zone'), 'limits set');
SELECT is((aos_cus.get_integration(:'t', :'ih')).limits -> 'rph', '3', 'get_integration returns rph');
SELECT is((SELECT limits -> 'rph' FROM aos_cus.scope_limits(:'t') WHERE scope = 'subject:*'), '2',
    'scope_limits returns a scope''s rph');
SELECT is((SELECT limits ->> 'rpd' FROM aos_cus.scope_limits(:'t') WHERE scope = 'integration:' || :'id'), '2',
    'and an integration''s rpd');
SELECT is((SELECT (rph, rpd)::text FROM aos_cus.integration_limits(:'t', :'ih')), '(3,)', 'integration_limits returns rph and rpd');

-- The hour: three admitted, the fourth blocked until the hour ends.
SELECT is((SELECT array_agg(decision::text ORDER BY n) FROM generate_series(1, 4) n, aos_cus.check(:'t', :'ih', n - n + 1, 0)),
    ARRAY['allowed', 'allowed', 'allowed', 'blocked'], 'rph 3: three admitted, the fourth blocked');
SELECT is((SELECT (reason, scope, dimension)::text FROM aos_cus.check(:'t', :'ih', 1, 0)),
    format('(request_quota,integration:%s,rph)', :'ih'), 'reason request_quota, dimension rph');
SELECT cmp_ok((SELECT abs(retry_after_ms - extract(epoch FROM date_trunc('hour', now(), :'zone') + interval '1 hour'
                                                              - clock_timestamp()) * 1000)
                  FROM aos_cus.check(:'t', :'ih', 1, 0)), '<', 1000::numeric, 'retry_after_ms is the time until the hour ends');
SELECT is((SELECT count(*) FROM aos_cus.cus_enforcement_log WHERE tenant_id = :'t' AND reason = 'request_quota'), 3::bigint,
    'the refusals are logged with reason request_quota');

-- The day: rpd 2.
SELECT is((SELECT array_agg(decision::text ORDER BY n) FROM generate_series(1, 3) n, aos_cus.check(:'t', :'id', n - n + 1, 0)),
    ARRAY['allowed', 'allowed', 'blocked'], 'rpd 2: the third blocked');
SELECT is((SELECT (dimension, retry_after_ms > 0 AND retry_after_ms <= 25 * 3600 * 1000)::text FROM aos_cus.check(:'t', :'id', 1, 0)),
    '(rpd,t)', 'dimension rpd, retry_after_ms within the day');

-- Warn mode: over the quota, warned and admitted.
SELECT is((SELECT array_agg((decision, reason)::text ORDER BY n) FROM generate_series(1, 2) n, aos_cus.check(:'t', :'iw', n - n + 1, 0)),
    ARRAY['(allowed,ok)', '(warned,request_quota)'], 'warn mode: over rph, warned with request_quota');

-- explain_check shows both limits with the period, counting nothing.
SELECT is((SELECT (limit_value, used, remaining, estimate, period_start = date_trunc('hour', now(), :'zone'), verdict)::text
             FROM aos_cus.explain_check(:'t', :'ih', 1, 0) WHERE dimension = 'rph'),
    '(3,3,0,1,t,exceeded)', 'explain_check: rph 3, 3 used, the hour in the limit''s zone, exceeded');
SELECT is((SELECT (limit_value, used, period_start = date_trunc('day', now(), :'zone'), verdict)::text
             FROM aos_cus.explain_check(:'t', :'id', 1, 0) WHERE dimension = 'rpd'),
    '(2,2,t,exceeded)', 'explain_check: rpd 2 in the day of the limit''s zone');

-- A limits change keeps the hour's count: rph raised to 5 admits two more, not five.
SELECT lives_ok(format($$SELECT aos_cus.set_limits(%L, %L, '{"rph": 5}')$$, :'t', :'ih'), 'rph raised to 5');
SELECT is((SELECT array_agg(decision::text ORDER BY n) FROM generate_series(1, 3) n, aos_cus.check(:'t', :'ih', n - n + 1, 0)),
    ARRAY['allowed', 'allowed', 'blocked'], 'after the change, the count of the hour stands: two more, then blocked');

-- A first load counts the period's usage rows: two calls ingested, rph 3 then admits one.
SELECT is((SELECT count(*) FROM generate_series(1, 2) n,
                  aos_cus.ingest_usage(:'t', jsonb_build_object('integration_id', :'ir', 'call_id', 'rq-' || n, 'model', 'gpt-4o',
                                       'input_tokens', 1, 'output_tokens', 1, 'started_at', now())) r WHERE r.status = 'inserted'),
    2::bigint, 'two calls ingested');
SELECT lives_ok(format($$SELECT aos_cus.set_limits(%L, %L, jsonb_build_object('rph', 3, 'timezone', %L))$$, :'t', :'ir', :'zone'),
    'rph 3 set after them');
SELECT is((SELECT array_agg(decision::text ORDER BY n) FROM generate_series(1, 2) n, aos_cus.check(:'t', :'ir', n - n + 1, 0)),
    ARRAY['allowed', 'blocked'], 'the ingested calls count: one more admitted');

-- subject:* rph 2: each subject its own count.
SELECT is((SELECT array_agg(s || ':' || decision ORDER BY n, s) FROM generate_series(1, 3) n, unnest(ARRAY['ann', 'bo']) s,
                  aos_cus.check(:'t', :'is_', n - n + 1, 0, NULL, s)),
    ARRAY['ann:allowed', 'bo:allowed', 'ann:allowed', 'bo:allowed', 'ann:blocked', 'bo:blocked'],
    'subject:* rph 2: each subject blocked at its third request');

-- The hour rph counts starts at date_trunc('hour', t, zone) and ends at the first instant that value changes, right
-- across DST changes: every minute around New York's, Lord Howe's (30-minute shift) and Troll's (2-hour shift)
-- transitions of 2026.
CREATE TEMP TABLE dst_minutes AS
SELECT w.zone, t, date_trunc('hour', t, w.zone) AS s,
       (SELECT t + m * interval '1 minute' FROM generate_series(1, 240) m
         WHERE date_trunc('hour', t + m * interval '1 minute', w.zone) <> date_trunc('hour', t, w.zone) ORDER BY m LIMIT 1) AS e
  FROM (VALUES ('America/New_York', timestamptz '2026-11-01 04:00Z'), ('America/New_York', '2026-03-08 05:00Z'),
               ('Australia/Lord_Howe', '2026-04-04 13:00Z'), ('Australia/Lord_Howe', '2026-10-03 14:00Z'),
               ('Antarctica/Troll', '2026-10-24 23:00Z')) w(zone, t0),
       generate_series(w.t0, w.t0 + interval '4 hours', interval '1 minute') t;
SELECT is((SELECT count(*) FROM dst_minutes d, aos_cus.limit_period_bounds('hour', d.zone, d.t) b
            WHERE (b.period_start, b.period_end) IS DISTINCT FROM (d.s, d.e) OR NOT (d.t >= b.period_start AND d.t < b.period_end)),
    0::bigint, 'limit_period_bounds(''hour''): from date_trunc(''hour'', t, zone) to its next change, at every minute of five DST changes');
SELECT is((SELECT count(*) FROM dst_minutes WHERE s <> date_trunc('hour', t AT TIME ZONE zone) AT TIME ZONE zone) > 0, true,
    'the AT TIME ZONE idiom differs there (the oracle tells them apart)');
SELECT is((SELECT (period_start, period_end)::text FROM aos_cus.limit_period_bounds('hour', 'America/New_York', '2026-11-01 06:30Z')),
    '("2026-11-01 06:00:00+00","2026-11-01 07:00:00+00")', 'New York fall-back: 01:30 EST is its own hour, 06:00Z-07:00Z');
SELECT is((SELECT (period_start, period_end)::text FROM aos_cus.limit_period_bounds('hour', 'Australia/Lord_Howe', '2026-04-04 14:45Z')),
    '("2026-04-04 14:00:00+00","2026-04-04 15:00:00+00")', 'Lord Howe fall-back: 01:45 +11 ends at the change, 15:00Z');

SELECT * FROM finish();
DELETE FROM aos_cus.cus_scope_limits WHERE tenant_id = :'t';
