-- A demo tenant with three integrations (one per provider), created through the API with plaintext keys
\pset footer off
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
SELECT aos_cus.create_integration(aos_cus.current_tenant(), 'openai-prod', 'openai', 'sk-proj-demo0000demo0000demo0000demo0000demo00a1',
           '{"id": "d0d0d0d0-0000-4000-8000-0000000000a1", "limits": {"budget_microcents": 5000000000, "budget_period": "month", "rpm": 600}}') AS id
UNION ALL
SELECT aos_cus.create_integration(aos_cus.current_tenant(), 'anthropic-prod', 'anthropic', 'sk-ant-api03-demo0000demo0000demo0000demo0000a2',
           '{"id": "d0d0d0d0-0000-4000-8000-0000000000a2", "limits": {"budget_microcents": 2000000000, "budget_period": "month", "rpm": 300}}')
UNION ALL
SELECT aos_cus.create_integration(aos_cus.current_tenant(), 'gemini-lab', 'google', 'AIzaSyDemo0000demo0000demo0000demo00a3',
           '{"id": "d0d0d0d0-0000-4000-8000-0000000000a3"}');
SELECT name, status FROM aos_cus.enable_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1')
UNION ALL
SELECT name, status FROM aos_cus.enable_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a2');
SELECT name, provider, status, budget_microcents / 100000000.0 AS budget_usd, budget_period, rpm
  FROM aos_cus.cus_integrations ORDER BY name;
