// Quick start of the aos-cus Node client: the OpenAI SDK wrapped in enforce mode. Each call is checked against the
// integration's limits first (a blocked call throws and is never sent), and its usage reaches aos_cus through the
// buffered reporter. Connection from the PG* variables (a login in aos_cus_app); the provider from OPENAI_API_KEY
// and OPENAI_BASE_URL, as the openai SDK reads them. Tenant and integration default to the demo's (scripts/demo.sh).
const { Pool } = require('pg');
const OpenAI = require('openai');
const { Reporter, wrapOpenAI, asBlocked } = require('aos-cus');

const tenant = process.env.AOS_CUS_TENANT || 'd0d0d0d0-0000-4000-8000-000000000001';
const integration = process.env.AOS_CUS_INTEGRATION || 'd0d0d0d0-0000-4000-8000-0000000000a1';

async function main() {
  const pool = new Pool();
  const reporter = new Reporter({ pool, spillPath: process.env.AOS_CUS_SPILL_PATH || '.aos-cus-spill.jsonl' });
  const openai = wrapOpenAI(new OpenAI(), { pool, reporter, tenant, integration, mode: 'enforce', subject: 'quickstart' });
  try {
    const messages = [{ role: 'user', content: 'Say hello in five words.' }];
    const res = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 50 },
      { aosCus: { tags: { feature: 'greeting' } } });
    console.log('reply:', res.choices[0].message.content);
    // Streaming: the wrapper asks for the usage chunk and hides it from this loop.
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 50, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    console.log('streamed:', text);
  } catch (e) {
    const blocked = asBlocked(e);
    if (!blocked) throw e;
    console.log(`blocked by aos_cus: ${blocked.reason} (retry after ${blocked.retryAfterMs} ms)`);
  } finally {
    await reporter.close(); // flush what is buffered before the pool ends
  }
  const { rows } = await pool.query(
    `SELECT u.model, u.requests, u.input_tokens, u.output_tokens, u.cost_microcents
       FROM pg_catalog.set_config('aos_cus.tenant_id', $1, true) AS s (tenant),
            LATERAL aos_cus.usage_summary(s.tenant::uuid, $2::uuid, now() - interval '1 hour', now() + interval '1 minute') AS u`,
    [tenant, integration]);
  console.table(rows);
  await pool.end();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
