-- Provider health: recorded probe results, the summary, stale integrations and the check queue (no network)
\pset footer off
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
-- The health worker and test_credentials() record what a probe found; here two results are recorded by hand.
SELECT aos_cus.record_health(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 'healthy', 212);
SELECT aos_cus.record_health(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a2', 'degraded', 1480, 'HTTP 429: rate limited');
SELECT name, provider, status, health_state, health_latency_ms, health_error FROM aos_cus.cus_integrations ORDER BY name;
SELECT * FROM aos_cus.health_summary(aos_cus.current_tenant());
-- Enabled integrations not probed within the last minute (none right now), and with no age limit.
SELECT name, health_state FROM aos_cus.stale_integrations('1 minute', aos_cus.current_tenant());
SELECT name, health_state FROM aos_cus.stale_integrations('0 seconds', aos_cus.current_tenant());
-- A queued check for the worker; a second request for the same integration is coalesced.
SELECT aos_cus.request_health_check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3') AS queued;
SELECT aos_cus.request_health_check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3') AS queued_again;
SELECT state, latency_ms, error FROM aos_cus.cus_health_history ORDER BY id;
