-- Reservation capacity (issue 14, requirement 6): the default sizes hold 1,000 reserving calls/s for the default
-- 10-minute TTL, and a reservation is keyed by a 128-bit digest of its call_id: call_ids of the full 255 bytes that
-- differ only in their last byte, or only in their tenant, are distinct reservations; a repeated one replaces its
-- own; release_reservation() frees exactly the one named. Tenants are random (shared memory outlives ROLLBACK).
BEGIN;
SELECT plan(10);

SELECT is(current_setting('aos_cus.max_reservations')::int >= 1000 * 600, true,
    'aos_cus.max_reservations by default holds 1,000 reserving calls/s for the default 600 s TTL');
SELECT is(current_setting('aos_cus.reservation_ttl'), '10min', 'the default TTL is 10 minutes');

SELECT gen_random_uuid() AS t, gen_random_uuid() AS u, gen_random_uuid() AS i, gen_random_uuid() AS j,
       repeat('c', 254) AS base \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:'t', :'i', 'keys', 'openai', 'enabled'), (:'u', :'j', 'keys', 'openai', 'enabled');

SELECT is((SELECT count(*) FROM (VALUES (aos_cus.check(:'t', :'i', 100, 1, :'base' || 'a')),
                                       (aos_cus.check(:'t', :'i', 200, 1, :'base' || 'b'))) c(d)
            WHERE (d).decision = 'allowed'), 2::bigint, 'two 255-byte call_ids differing in the last byte are both admitted');
SELECT is((SELECT (active_reservations, reserved_microcents)::text FROM aos_cus.current_usage(:'t', :'i')), '(2,300)',
    'they are two reservations');
SELECT is((aos_cus.check(:'t', :'i', 50, 1, :'base' || 'a')).decision, 'allowed', 'a repeated call_id is admitted');
SELECT is((SELECT (active_reservations, reserved_microcents)::text FROM aos_cus.current_usage(:'t', :'i')), '(2,250)',
    'a repeated call_id replaces its own reservation');
SELECT is((aos_cus.check(:'u', :'j', 70, 1, :'base' || 'a')).decision, 'allowed', 'the same call_id in another tenant is admitted');
SELECT is((SELECT (active_reservations, reserved_microcents)::text FROM aos_cus.current_usage(:'u', :'j')), '(1,70)',
    'the same call_id in another tenant is its own reservation');
SELECT is(aos_cus.release_reservation(:'t', :'base' || 'b'), true, 'release_reservation() frees the call_id named');
SELECT is((SELECT (active_reservations, reserved_microcents)::text FROM aos_cus.current_usage(:'t', :'i')), '(1,50)',
    'and only that one');

SELECT * FROM finish();
ROLLBACK;
