// wrapAnthropic in visibility mode against the mock provider and a real cluster.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { Pool } from 'pg';
import { Reporter, wrapAnthropic } from '../src';
import { MockProvider, startMockProvider } from './mock_provider';
import { appPool, collect, newIntegration, setupDatabase, tmpDir, usageRows } from './helpers';

let mock: MockProvider;
let pool: Pool;
let reporter: Reporter;

before(async () => {
  await setupDatabase();
  mock = await startMockProvider();
  pool = appPool();
  reporter = new Reporter({ pool, spillPath: path.join(tmpDir(), 'spill.jsonl'), flushIntervalMs: 50 });
});

after(async () => {
  await reporter.close();
  await pool.end();
  await mock.close();
});

async function wrapped(opts: Partial<ConstructorParameters<typeof Anthropic>[0]> = {}) {
  const ids = await newIntegration('anthropic');
  const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: mock.url, maxRetries: 0, ...opts });
  return { ...ids, anthropic: wrapAnthropic(client, { reporter, ...ids }) };
}

const body = {
  model: 'claude-sonnet-4-20250514-cache',
  max_tokens: 256,
  system: 'You are terse.',
  messages: [{ role: 'user' as const, content: 'Say hello to the test suite.' }],
};
const tokens = (r: any) => [r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.cache_write_1h_tokens, r.output_tokens].map(Number);

describe('wrapAnthropic, visibility mode', () => {
  test('messages.create, create with stream: true and messages.stream() report the same usage, cache buckets included', async () => {
    const { integration, anthropic } = await wrapped();
    const msg = await anthropic.messages.create(body);
    assert.equal((msg.content[0] as any).text, 'Hello from the mock provider.');
    const stream = await anthropic.messages.create({ ...body, stream: true });
    const events = await collect(stream);
    assert.equal(events[0].type, 'message_start');
    assert.equal(events.at(-1)!.type, 'message_stop');
    const helper = anthropic.messages.stream(body);
    let text = '';
    helper.on('text', (t) => (text += t));
    const final = await helper.finalMessage();
    assert.equal(text, 'Hello from the mock provider.');
    assert.equal(final.usage.output_tokens, msg.usage.output_tokens);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 3, 'messages.stream() is recorded once');
    const u = msg.usage;
    assert.deepEqual(tokens(rows[0]), [u.input_tokens, 100, 20, 10, u.output_tokens]);
    assert.deepEqual(tokens(rows[1]), tokens(rows[0]));
    assert.deepEqual(tokens(rows[2]), tokens(rows[0]));
    assert.ok(rows.every((r) => r.status === 'success' && r.model === 'claude-sonnet-4-20250514' && r.cost === rows[0].cost && Number(r.cost) > 0));
  });

  test('a 429 is the SDK\'s RateLimitError and is recorded with its error type', async () => {
    const { integration, anthropic } = await wrapped();
    await assert.rejects(anthropic.messages.create({ ...body, model: 'claude-sonnet-4-429' }), Anthropic.RateLimitError);
    const s = anthropic.messages.stream({ ...body, model: 'claude-sonnet-4-500' });
    await assert.rejects(s.finalMessage(), Anthropic.InternalServerError);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.deepEqual(rows.map((r) => [r.status, r.error_code]), [['error', 'http_429:rate_limit_error'], ['error', 'http_500:api_error']]);
  });

  test('a stream the application aborts is recorded as cancelled with the usage seen so far', async () => {
    const { integration, anthropic } = await wrapped();
    const s = anthropic.messages.stream({ ...body, model: 'claude-sonnet-4-20250514-drip' });
    s.on('text', () => s.abort());
    await assert.rejects(s.finalMessage(), Anthropic.APIUserAbortError);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'cancelled');
    assert.ok(Number(rows[0].input_tokens) > 0, 'input usage from message_start');
  });
});
