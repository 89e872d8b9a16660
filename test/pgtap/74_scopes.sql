-- Layered budgets (issue 14): scope limits API and validation, check() against tenant, subject and tag scopes,
-- all or nothing, the 5-argument form. Tenants are random: reservations live in shared memory beyond ROLLBACK.
BEGIN;
SELECT plan(49);

SELECT gen_random_uuid() AS t1, gen_random_uuid() AS t2, gen_random_uuid() AS t3, gen_random_uuid() AS i1,
       gen_random_uuid() AS i2, gen_random_uuid() AS i3, gen_random_uuid() AS t4, gen_random_uuid() AS i4 \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:'t1', :'i1', 'scopes-1', 'openai', 'enabled'), (:'t2', :'i2', 'scopes-2', 'openai', 'enabled'),
       (:'t3', :'i3', 'scopes-3', 'openai', 'enabled'), (:'t4', :'i4', 'scopes-4', 'openai', 'enabled');
SELECT aos_cus.set_scope_limits(:'t4', 'subject:*', '{"budget_microcents": 10}') IS NOT NULL AS t4_limits \gset

-- Scope strings and limits are validated (22023 naming the scope or the key; 22003 for a range).
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'user:42', '{}')$$, :'t1'), '22023', NULL,
    'an unknown scope kind is refused');
SELECT throws_like(format($$SELECT aos_cus.set_scope_limits(%L, 'tag:team', '{}')$$, :'t1'),
    '%scope "tag:team" is not valid%', 'a tag scope without =value is refused, naming the scope');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'subject:%s', '{}')$$, :'t1', repeat('x', 256)),
    '22023', NULL, 'a subject over 255 bytes is refused');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tag:te am=x', '{}')$$, :'t1'), '22023', NULL,
    'a tag key with a space is refused');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'integration:123', '{}')$$, :'t1'), '22023', NULL,
    'integration:<id> needs a UUID');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tenant', '{"budget": 1}')$$, :'t1'), '22023',
    'limits has unknown key(s): budget', 'an unknown limits key is refused as set_limits refuses it');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tenant', '{"budget_microcents": -1}')$$, :'t1'),
    '22003', NULL, 'a negative budget is refused');
SELECT throws_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tenant', NULL)$$, :'t1'), '22004', NULL,
    'NULL limits are refused');
SELECT throws_ok(format($$INSERT INTO aos_cus.cus_scope_limits (tenant_id, scope) VALUES (%L, 'subject*')$$, :'t1'),
    '22023', NULL, 'the table refuses a malformed scope too');

-- Tenant 1: tenant 150, subject:* 100, subject:vip 500, tag:team=* 100, integration 10000.
SELECT is(aos_cus.set_scope_limits(:'t1', 'tenant', '{"budget_microcents": 150}') ->> 'budget_microcents', '150',
    'set_scope_limits returns the limits it set');
SELECT is(aos_cus.set_scope_limits(:'t1', 'subject:*', '{"budget_microcents": 100, "budget_period": "day"}') ->> 'budget_period',
    'day', 'subject:* takes set_limits'' keys');
SELECT lives_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'subject:vip', '{"budget_microcents": 500}')$$, :'t1'),
    'a named subject has its own limits');
SELECT lives_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tag:team=*', '{"budget_microcents": 100}')$$, :'t1'),
    'tag:team=* is a scope');
SELECT is((aos_cus.set_scope_limits(:'t1', 'integration:' || :'i1', '{"budget_microcents": 10000}')) ->> 'budget_microcents',
    '10000', 'integration:<id> sets the integration''s limits');
SELECT is((SELECT budget_microcents::bigint FROM aos_cus.cus_integrations WHERE id = :'i1'), 10000::bigint,
    'they are the integration''s columns');
SELECT is(aos_cus.set_scope_limits(:'t1', 'tenant', '{"warn_at_pct": 90}') ->> 'budget_microcents', '150',
    'a patch keeps the keys it does not name');
SELECT is((SELECT array_agg(scope ORDER BY scope) FROM aos_cus.scope_limits(:'t1')),
    ARRAY['integration:' || :'i1', 'subject:*', 'subject:vip', 'tag:team=*', 'tenant'],
    'scope_limits lists every scope of the tenant, integrations included');

-- check(): the 5-argument call keeps working, and scopes decide.
SELECT is((aos_cus.check(:'t1', :'i1', 1, 0)).decision, 'allowed', 'the 5-argument check() still works');
SELECT is((SELECT (decision, reason)::text FROM aos_cus.check(:'t1', :'i1', 60, 0, 'a1', 'alice')), '(allowed,ok)',
    'alice: 60 of her 100');
SELECT is((SELECT (decision, reason, budget_limit_microcents)::text FROM aos_cus.check(:'t1', :'i1', 60, 0, 'a2', 'alice')),
    '(blocked,budget_exceeded,100)', 'alice again: her subject budget (100) blocks');
SELECT is((SELECT (decision, budget_used_microcents)::text FROM aos_cus.check(:'t1', :'i1', 60, 0, 'b1', 'bob')),
    '(allowed,120)', 'bob has his own copy of subject:*; the result shows the integration (60 + 60)');
SELECT is((SELECT (decision, reason, budget_limit_microcents)::text FROM aos_cus.check(:'t1', :'i1', 40, 0, 'c1', 'carol')),
    '(blocked,budget_exceeded,150)', 'carol: the tenant (120 + 40 > 150) blocks');
SELECT is((SELECT (decision, budget_used_microcents)::text FROM aos_cus.check(:'t1', :'i1', 30, 0, 'c2', 'carol')),
    '(warned,150)', 'carol: 30 fits the tenant exactly (warned at its 90%)');
SELECT is((SELECT (decision, reason, budget_limit_microcents)::text FROM aos_cus.check(:'t1', :'i1', 1, 0, 'v1', 'vip')),
    '(blocked,budget_exceeded,150)', 'vip: own 500, but the tenant is full');
SELECT is((SELECT (decision, reason)::text FROM aos_cus.check(:'t1', :'i1', 0, 0, 'a1', 'alice')), '(allowed,ok)',
    'a repeated call_id replaces its own reservation');

-- Tenant 2: all or nothing. tenant 100, subject:* 80, tag:team=* 70.
SELECT lives_ok(format($$SELECT aos_cus.set_scope_limits(%L, 'tenant', '{"budget_microcents": 100}'),
                               aos_cus.set_scope_limits(%L, 'subject:*', '{"budget_microcents": 80}'),
                               aos_cus.set_scope_limits(%L, 'tag:team=*', '{"budget_microcents": 70}')$$,
                       :'t2', :'t2', :'t2'), 'tenant 2 limits');
SELECT is((SELECT (decision, budget_limit_microcents)::text FROM aos_cus.check(:'t2', :'i2', 90, 0, 'x1', 'alice', '{"team": "a"}')),
    '(blocked,80)', 'alice 90: her subject (80, the first blocking scope) blocks');
SELECT is((SELECT (decision, reason)::text FROM aos_cus.check(:'t2', :'i2', 70, 0, 'x2', 'bob', '{"team": "a"}')),
    '(warned,budget_warning)', 'bob 70 in team a admitted (team a at its limit): the blocked call reserved nothing on the tenant or team a');
SELECT is((SELECT (decision, budget_limit_microcents)::text FROM aos_cus.check(:'t2', :'i2', 1, 0, 'x3', 'carol', '{"team": "a"}')),
    '(blocked,70)', 'carol 1 in team a: the team (70) is full');
SELECT is((SELECT (decision, reason)::text FROM aos_cus.check(:'t2', :'i2', 30, 0, 'x4', 'carol', '{"team": "b", "env": "prod"}')),
    '(warned,budget_warning)', 'carol 30 in team b (and an unlimited tag): admitted, the tenant now at 100 (warned)');
SELECT is((SELECT (decision, budget_limit_microcents)::text FROM aos_cus.check(:'t2', :'i2', 1, 0, 'x5', 'dave', '{"team": "c"}')),
    '(blocked,100)', 'dave 1: the tenant (100) is full');

-- Bad input to check() (req 10): precise SQLSTATEs naming the field.
SELECT throws_like(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, %L)$$, :'t3', :'i3', repeat('s', 256)),
    'subject must be 1 to 255 bytes long', 'a subject over 255 bytes: 22023 naming subject');
SELECT throws_ok(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, NULL, '["a"]')$$, :'t3', :'i3'), '22023',
    'tags must be a JSON object of strings', 'tags that are not an object');
SELECT throws_ok(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, NULL, '{"team": {"a": 1}}')$$, :'t3', :'i3'), '22023',
    NULL, 'a nested tag value');
SELECT throws_like(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, NULL, '{"team": 5}')$$, :'t3', :'i3'),
    'tags.team must be a string%', 'a number as tag value, naming the tag');
SELECT throws_ok(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, NULL, %L)$$, :'t3', :'i3',
                        (SELECT jsonb_object_agg('k' || g, 'v') FROM generate_series(1, 17) g)), '54000',
    'tags has 17 keys, more than the limit of 16', 'more than 16 tags');
SELECT throws_ok(format($$SELECT aos_cus.check(%L, %L, 1, 0, NULL, NULL, '{"te am": "x"}')$$, :'t3', :'i3'), '22023',
    NULL, 'a tag key with a space');
SELECT is((aos_cus.check(:'t3', :'i3', 1, 0, NULL, 'someone', (SELECT jsonb_object_agg('k' || g, 'v') FROM generate_series(1, 16) g))).decision,
    'allowed', '16 tags are fine');

-- The decision names the scope and dimension that decided (requirement 4).
SELECT is((SELECT (decision, scope, dimension)::text FROM aos_cus.check(:'t4', :'i4', 11, 0, 'a3', 'alice')),
    '(blocked,subject:alice,budget)', 'alice blocked: scope subject:alice, dimension budget');
SELECT is((SELECT (decision, scope, dimension)::text FROM aos_cus.check(:'t1', :'i1', 61, 0, NULL, 'erin')),
    '(blocked,tenant,budget)', 'the tenant scope names itself');
SELECT is((SELECT (decision, scope, dimension)::text FROM aos_cus.check(:'t3', :'i3', 1, 0)),
    '(allowed,,)', 'nothing decided: scope and dimension are NULL');
SELECT is((SELECT (reason, scope, dimension)::text FROM aos_cus.check(:'t3', :'t3', 1, 0)),
    format('(integration_not_found,integration:%s,status)', :'t3'), 'an unknown integration: its scope, dimension status');

-- explain_check(): every applicable limit with used, reserved, remaining and its verdict, reserving nothing.
SELECT is((SELECT array_agg(scope || '/' || dimension ORDER BY scope) FROM aos_cus.explain_check(:'t1', :'i1', 50, 0, NULL, 'bob', '{"team": "x"}')),
    ARRAY['integration:' || :'i1' || '/budget', 'subject:bob/budget', 'tag:team=x/budget', 'tenant/budget'],
    'explain_check lists the limit of each scope the call touches');
SELECT is((SELECT (limit_value, used, reserved, remaining, estimate, verdict)::text
             FROM aos_cus.explain_check(:'t1', :'i1', 50, 0, NULL, 'bob') WHERE scope = 'subject:bob'),
    '(100,0,60,40,50,exceeded)', 'bob''s subject: 60 reserved, 40 remain, 50 more would exceed');
SELECT is((SELECT (reserved, verdict)::text FROM aos_cus.explain_check(:'t1', :'i1', 50, 0, NULL, 'bob') WHERE scope = 'subject:bob'),
    '(60,exceeded)', 'explain_check reserved nothing');
SELECT is((SELECT verdict FROM aos_cus.explain_check(:'t1', :'i1', 100, 0, 'b1', 'bob') WHERE scope = 'subject:bob'),
    'warning', 'with its call_id, the call''s own reservation is replaced, as check() would');
SELECT is((SELECT (dimension, verdict)::text FROM aos_cus.explain_check(:'t3', :'t3')),
    '(status,integration_not_found)', 'an unknown integration: one status row');

SELECT is(aos_cus.delete_scope_limits(:'t1', 'subject:vip'), true, 'delete_scope_limits removes a scope');
SELECT is(aos_cus.delete_scope_limits(:'t1', 'subject:vip'), false, 'and says so when there was none');

SELECT * FROM finish();
ROLLBACK;
