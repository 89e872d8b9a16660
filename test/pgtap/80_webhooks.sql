-- Webhooks (issue 15): endpoints and their bad input, the outbox written in the transaction of its cause (check(),
-- record_health(), the projection), once per period and limit, rolled back with it, per-tenant row-level security.
BEGIN;
SELECT plan(59);

CREATE ROLE tap_hook_admin IN ROLE aos_cus_admin;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, warn_at_pct)
VALUES ('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 'hook-a', 'openai', 'enabled', 1000, 80),
       ('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a2', 'hook-proj', 'openai', 'enabled', 1000000000, 80),
       ('f1500000-0000-4000-8000-000000000002', 'f1500000-0000-4000-8000-0000000000b1', 'hook-b', 'openai', 'enabled', NULL, 80);

-- This test's events and deliveries (other files of the suite commit events of their own tenants).
CREATE TEMP VIEW ev AS SELECT * FROM aos_cus.cus_webhook_events WHERE tenant_id::text LIKE 'f1500000-%';
CREATE TEMP VIEW dl AS SELECT * FROM aos_cus.cus_webhook_deliveries WHERE tenant_id::text LIKE 'f1500000-%';

-- Endpoints: the secret is generated, returned once, stored only encrypted.
CREATE TEMP TABLE hooks AS
SELECT 'all'::text AS name, * FROM aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/all');
INSERT INTO hooks SELECT 'health', * FROM aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001',
    'https://hooks.example.com/health', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ARRAY['integration.health_changed'], 'slack');
INSERT INTO hooks SELECT 'b', * FROM aos_cus.create_webhook('f1500000-0000-4000-8000-000000000002', 'https://hooks.example.com/b');
SELECT matches((SELECT secret FROM hooks WHERE name = 'all'), '^whsec_[A-Za-z0-9+/]{43}=$', 'a generated secret is whsec_ + base64 of 32 bytes');
SELECT isnt((SELECT secret FROM hooks WHERE name = 'all'), (SELECT secret FROM hooks WHERE name = 'b'), 'each generated secret differs');
SELECT is((SELECT secret FROM hooks WHERE name = 'health'), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a given secret is returned as given');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_webhooks w JOIN hooks h ON h.webhook_id = w.id
            WHERE w.secret_ref LIKE 'encrypted://v1/%' AND strpos(w.secret_ref, substr(h.secret, 7)) = 0), 3,
          'every secret is stored as an encrypted:// reference that does not contain it');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_webhooks w
            WHERE w.tenant_id = 'f1500000-0000-4000-8000-000000000001' AND row_to_json(w)::text LIKE '%whsec_%'), 0,
          'no column of the table holds a plaintext secret');
SELECT is(aos_cus.decrypt_credential('f1500000-0000-4000-8000-000000000001', (SELECT webhook_id FROM hooks WHERE name = 'health'),
                                     (SELECT secret_ref FROM aos_cus.cus_webhooks WHERE id = (SELECT webhook_id FROM hooks WHERE name = 'health'))),
          'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'the vault opens it for its tenant and endpoint');
SELECT is((SELECT array_agg(column_name::text ORDER BY column_name::text) FROM information_schema.columns
            WHERE table_schema = 'aos_cus' AND table_name = 'list_webhooks' ) IS NULL, true, 'list_webhooks is a function');
SELECT is((SELECT count(*)::int FROM aos_cus.list_webhooks('f1500000-0000-4000-8000-000000000001')), 2, 'list_webhooks lists the tenant''s endpoints');
SELECT hasnt_column('aos_cus', 'stat_webhooks', 'secret_ref', 'stat_webhooks has no secret column');

-- Bad input: precise SQLSTATEs naming the argument.
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'ftp://hooks.example.com/x')$$,
    '22023', 'url is not a webhook URL: it is not an http:// or https:// URL', 'a non-http(s) URL is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'javascript:alert(1)')$$,
    '22023', 'url is not a webhook URL: it is not an http:// or https:// URL', 'a javascript: URL is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://user:pw@hooks.example.com/')$$,
    '22023', 'url is not a webhook URL: it carries user information (user:password@)', 'a URL with credentials is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'http://hooks.example.com/x')$$,
    '42501', 'url is refused by the egress policy: the URL must use https: plain http is not allowed by the egress policy (aos_cus.egress_allow_http)',
    'plain http is refused by the egress policy');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://127.0.0.1:8080/x')$$,
    '42501', 'url is refused by the egress policy: egress refused: the target address is not allowed by the egress policy',
    'a loopback address is refused by the egress policy');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://[::ffff:10.0.0.1]/x')$$,
    '42501', 'url is refused by the egress policy: egress refused: the target address is not allowed by the egress policy',
    'a private address mapped into IPv6 is refused by the egress policy');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/e', NULL, ARRAY['budget.threshold', 'budget.spent'])$$,
    '22023', 'events: unknown event "budget.spent"', 'an unknown event name is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/e', NULL, ARRAY[]::text[])$$,
    '22023', 'events must not be empty', 'an empty events array is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/e', NULL, ARRAY[NULL]::text[])$$,
    '22004', 'events must not contain NULL', 'a NULL event name is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/all')$$,
    '23505', 'url already has a webhook of this tenant', 'a duplicate endpoint is refused');
SELECT lives_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000002', 'https://hooks.example.com/all')$$,
    'another tenant may use the same URL');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/f', NULL, NULL, 'teams')$$,
    '22023', 'format must be ''standard'' or ''slack''', 'an unknown format is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/s', 'hunter2hunter2hunter2hunter2')$$,
    '22023', 'secret is not a Standard Webhooks secret: it does not start with whsec_', 'a malformed secret is refused without quoting it');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', 'https://hooks.example.com/s', 'whsec_c2hvcnQ=')$$,
    '22023', 'secret is not a Standard Webhooks secret: its key is not the base64 of 24 to 64 bytes', 'a short secret is refused');
SELECT throws_ok($$SELECT aos_cus.create_webhook('f1500000-0000-4000-8000-000000000001', NULL)$$,
    '22004', 'url must not be null', 'a NULL url is refused');
SELECT throws_ok($$SELECT aos_cus.redeliver('f1500000-0000-4000-8000-00000000dead')$$,
    '42704', 'webhook event f1500000-0000-4000-8000-00000000dead does not exist for this tenant', 'redeliver of an unknown event');

-- check(): an event only when a threshold is crossed, once per period and limit; the first block is "exhausted".
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 850, 0)),
          'warned', 'check() at 85% of the budget warns');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.threshold' AND scope = 'integration:f1500000-0000-4000-8000-0000000000a1'
             AND payload ->> 'threshold' = '80' AND payload ->> 'limit' = '1000'), 1, 'crossing 80% wrote one budget.threshold event');
SELECT is((SELECT count(*)::int FROM dl d JOIN ev e ON e.id = d.event_seq
            WHERE e.type = 'budget.threshold' AND d.status = 'pending'), 1,
          'one delivery: to the endpoint taking every event, not to the one filtered to health changes nor to the other tenant''s');
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 850, 0)),
          'warned', 'a second check() at 85% warns again');
SELECT is((SELECT count(*)::int FROM ev WHERE tenant_id = 'f1500000-0000-4000-8000-000000000001'), 1,
          'but writes nothing: the threshold was already crossed');
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 1500, 0)),
          'blocked', 'check() over the budget blocks');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.exhausted'), 1, 'the first block wrote budget.exhausted');
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 1500, 0)),
          'blocked', 'check() blocks again');
SELECT is((SELECT count(*)::int FROM ev WHERE tenant_id = 'f1500000-0000-4000-8000-000000000001'), 2,
          'a later block writes nothing');
-- A rolled-back check() emits nothing; the crossing is announced by the next check() that commits.
SAVEPOINT s;
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 1000, 0)),
          'warned', 'check() at exactly 100% warns');
SELECT is((SELECT count(*)::int FROM ev WHERE payload ->> 'threshold' = '100'), 1, 'and writes the 100% event');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*)::int FROM ev WHERE payload ->> 'threshold' = '100'), 0,
          'rolled back: the outbox holds no 100% event');
SELECT is((SELECT decision FROM aos_cus.check('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 1000, 0)),
          'warned', 'the next check() at 100% warns');
SELECT is((SELECT count(*)::int FROM ev WHERE payload ->> 'threshold' = '100'), 1,
          'the crossing a rolled-back check() took back is written by the next check()');

-- record_health(): healthy to failing and back are events; a rolled-back one emits nothing.
SELECT aos_cus.record_health('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 'failing', 5, 'HTTP 401');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'integration.health_changed'), 0, 'unknown to failing is no event');
SELECT aos_cus.record_health('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 'healthy', 5);
SAVEPOINT h;
SELECT aos_cus.record_health('f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a1', 'failing', 5, 'HTTP 401');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'integration.health_changed'), 2,
          'failing to healthy and healthy to failing are two events');
ROLLBACK TO SAVEPOINT h;
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'integration.health_changed'), 1, 'a rolled-back record_health() emits nothing');
SELECT is((SELECT count(*)::int FROM dl d JOIN ev e ON e.id = d.event_seq
            WHERE e.type = 'integration.health_changed'), 2, 'a health change goes to both endpoints of the tenant');

-- Projected overrun: from the daily rollups, once per period and limit.
INSERT INTO aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests, cost_microcents)
SELECT 'f1500000-0000-4000-8000-000000000001', 'f1500000-0000-4000-8000-0000000000a2',
       (period_start AT TIME ZONE 'UTC')::date, 'openai', 'gpt-4o', 1, 999999999
  FROM aos_cus.limit_period_bounds('month', 'UTC');
SELECT ok(aos_cus_internal.emit_projected_overruns() >= 1, 'a budget 99.9999999% spent before the period ends is projected to overrun');
SELECT is((SELECT payload ->> 'scope' FROM ev WHERE type = 'budget.projected_overrun'),
          'integration:f1500000-0000-4000-8000-0000000000a2', 'the event names the limit''s scope');
SELECT is(aos_cus_internal.emit_projected_overruns(), 0, 'a second run in the same period emits nothing');

-- redeliver(): dead-lettered deliveries are queued again, with the same event (webhook-id).
UPDATE aos_cus.cus_webhook_deliveries SET status = 'dead', attempts = 10 WHERE tenant_id::text LIKE 'f1500000-%';
SELECT is(aos_cus.redeliver((SELECT event_id FROM ev WHERE type = 'integration.health_changed')), 2,
          'redeliver() queues the event again to both endpoints');
SELECT throws_ok($$SELECT aos_cus.redeliver(NULL::uuid, (SELECT event_id FROM ev LIMIT 1))$$, '22004',
    'tenant_id and event_id must not be null', 'redeliver(tenant_id, event_id) refuses a null tenant_id');
SELECT throws_ok($$SELECT aos_cus.redeliver('f1500000-0000-4000-8000-000000000001'::uuid, NULL::uuid)$$, '22004',
    'tenant_id and event_id must not be null', 'redeliver(tenant_id, event_id) refuses a null event_id');
SELECT is((SELECT array_agg(DISTINCT status || ':' || attempts) FROM dl d JOIN ev e ON e.id = d.event_seq
            WHERE e.type = 'integration.health_changed'), ARRAY['pending:0'], 'as pending with no attempts');

-- Row-level security: a tenant's admin sees and changes only its own endpoints, events and deliveries.
GRANT SELECT ON hooks TO tap_hook_admin;
CREATE TEMP TABLE a_event AS SELECT event_id FROM ev WHERE tenant_id = 'f1500000-0000-4000-8000-000000000001' LIMIT 1;
GRANT SELECT ON a_event TO tap_hook_admin;
UPDATE aos_cus.cus_webhook_deliveries SET status = 'dead' WHERE tenant_id = 'f1500000-0000-4000-8000-000000000001';
SET aos_cus.tenant_id = 'f1500000-0000-4000-8000-000000000002';
SET ROLE tap_hook_admin;
SELECT is((SELECT count(*)::int FROM aos_cus.cus_webhooks), 2, 'tenant B sees only its endpoints');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_webhook_events), 0, 'and none of tenant A''s events');
SELECT throws_ok($$SELECT aos_cus.redeliver((SELECT event_id FROM aos_cus.cus_webhook_events LIMIT 1))$$, '22004',
    'event_id must not be null', 'tenant B cannot even name tenant A''s events');
SELECT throws_ok($$SELECT aos_cus.redeliver('f1500000-0000-4000-8000-000000000002', (SELECT event_id FROM a_event))$$, '42704',
    NULL, 'redeliver(tenant_id, event_id): tenant A''s event does not exist for tenant B');
SELECT throws_ok($$SELECT aos_cus.redeliver('f1500000-0000-4000-8000-000000000001', (SELECT event_id FROM a_event))$$, '42501',
    'tenant_id does not match the session''s tenant', 'redeliver(tenant_id, event_id): tenant B cannot name tenant A as tenant_id');
SELECT is(aos_cus.delete_webhook('f1500000-0000-4000-8000-000000000002', (SELECT webhook_id FROM hooks WHERE name = 'all')), false,
          'tenant B cannot delete tenant A''s endpoint');
RESET ROLE;
RESET aos_cus.tenant_id;
SELECT is((SELECT array_agg(DISTINCT status) FROM dl WHERE tenant_id = 'f1500000-0000-4000-8000-000000000001'), ARRAY['dead'],
          'tenant A''s dead deliveries were not queued again by tenant B');

SELECT ok(aos_cus.disable_webhook('f1500000-0000-4000-8000-000000000001', (SELECT webhook_id FROM hooks WHERE name = 'all')), 'disable_webhook');
SELECT is(aos_cus.delete_webhook('f1500000-0000-4000-8000-000000000001', (SELECT webhook_id FROM hooks WHERE name = 'all')), true,
          'delete_webhook removes the endpoint');

SELECT * FROM finish();
ROLLBACK;
