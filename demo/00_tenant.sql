-- A demo tenant with three integrations (one per provider)
\pset footer off
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period, rpm)
VALUES (aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 'openai-prod', 'openai', 'enabled', 5000000000, 'month', 600),
       (aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a2', 'anthropic-prod', 'anthropic', 'enabled', 2000000000, 'month', 300),
       (aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3', 'gemini-lab', 'google', 'created', NULL, 'month', NULL);
SELECT name, provider, status, budget_microcents / 100000000.0 AS budget_usd, budget_period, rpm
  FROM aos_cus.cus_integrations ORDER BY name;
