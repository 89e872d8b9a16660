// enforce mode: check() before the call with the server's estimate; typed errors; no provider call when blocked.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Pool } from 'pg';
import {
  BudgetExceededError, EnforcementUnavailableError, PolicyError, RateLimitedError, Reporter, asBlocked, track, wrapAnthropic, wrapOpenAI,
} from '../src';
import { MockProvider, startMockProvider } from './mock_provider';
import { adminQuery, appPool, asTenant, collect, newIntegration, setupDatabase, tmpDir, usageRows } from './helpers';

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

const openaiClient = () => new OpenAI({ apiKey: 'sk-test', baseURL: mock.url + '/v1', maxRetries: 0 });
const messages = [{ role: 'system' as const, content: 'You are terse.' }, { role: 'user' as const, content: 'Count to three, please.' }];

async function enforced(limits: object, provider = 'openai') {
  const ids = await newIntegration(provider, limits);
  return { ...ids, openai: wrapOpenAI(openaiClient(), { pool, reporter, ...ids, mode: 'enforce' }) };
}

describe('enforce mode', () => {
  test('the estimate is estimate_call: exact message tokens + max tokens; a token limit of exactly that admits, one less blocks', async () => {
    const [{ n }] = await adminQuery(`SELECT aos_cus.count_message_tokens($1::jsonb, 'gpt-4o') AS n`, [JSON.stringify(messages)]);
    const expected = Number(n) + 100;
    const ok = await enforced({ token_limit: expected, token_period: 'total' });
    await ok.openai.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 });
    const tight = await enforced({ token_limit: expected - 1, token_period: 'total' });
    const before = mock.requests.length;
    const err = await tight.openai.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 }).catch((e) => e);
    assert.ok(err instanceof BudgetExceededError, String(err));
    assert.equal(err.reason, 'token_limit_exceeded');
    assert.equal(err.scope, `integration:${tight.integration}`);
    assert.equal(err.details.dimension, 'tokens');
    assert.equal(err.details.tokenLimit, BigInt(expected - 1));
    assert.equal(mock.requests.length, before, 'no provider call');
  });

  test('a model tiktoken does not map (an Azure deployment name) is estimated with estimate_tokens, not refused', async () => {
    const model = 'acme-deployment';
    const [{ n }] = await adminQuery(`SELECT aos_cus.estimate_tokens($1, $2) AS n`, [messages.map((m) => m.content).join('\n'), model]);
    const expected = n + 3 * 2 + 3 + 100;
    const ok = await enforced({ token_limit: expected, token_period: 'total' });
    await ok.openai.chat.completions.create({ model, messages, max_tokens: 100 });
    const tight = await enforced({ token_limit: expected - 1, token_period: 'total' });
    const err = await tight.openai.chat.completions.create({ model, messages, max_tokens: 100 }).catch((e) => e);
    assert.ok(err instanceof BudgetExceededError, String(err));
    assert.equal(err.details.tokenLimit, BigInt(expected - 1));
  });

  test('subject and tags reach check(): a subject budget blocks that subject only; usage is settled to the subject', async () => {
    const { tenant, integration, openai } = await enforced({});
    await asTenant(tenant, `SELECT aos_cus.set_scope_limits($1, 'subject:heavy', '{"budget_microcents": 1, "budget_period": "month"}')`, [tenant]);
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { subject: 'heavy', tags: { team: 'a' } } } as any).catch((e) => e);
    assert.ok(err instanceof BudgetExceededError, String(err));
    assert.equal(err.scope, 'subject:heavy');
    await openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { subject: 'light', callId: 'light-1' } } as any);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.deepEqual(rows.map((r) => [r.status, r.subject, r.tags]), [['blocked', 'heavy', { team: 'a' }], ['success', 'light', null]]);
  });

  test('an exhausted budget throws BudgetExceededError before any provider call; the block is recorded', async () => {
    const { integration, openai } = await enforced({ budget_microcents: 1, budget_period: 'month' });
    const before = mock.requests.length;
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { callId: 'b-1' } } as any), (e: any) =>
      e instanceof BudgetExceededError && e.reason === 'budget_exceeded' && e.retryAfterMs! > 0 && e.callId === 'b-1' && e.details.periodResetsAt instanceof Date);
    const stream = openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    await assert.rejects(stream, BudgetExceededError);
    assert.equal(mock.requests.length, before, 'no provider call');
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.deepEqual(rows.map((r) => [r.status, r.error_code]), [['blocked', 'budget_exceeded'], ['blocked', 'budget_exceeded']]);
    assert.match(rows[0].call_id, /^b-1\/blocked@\d+$/);
  });

  test('rpm = 1: the second call in the minute throws RateLimitedError with retryAfterMs', async () => {
    const { openai } = await enforced({ rpm: 1 });
    await openai.chat.completions.create({ model: 'gpt-4o', messages });
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    assert.ok(err instanceof RateLimitedError, String(err));
    assert.ok(err.retryAfterMs !== null && err.retryAfterMs > 0 && err.retryAfterMs <= 120000, String(err.retryAfterMs));
  });

  test('a disabled integration throws PolicyError', async () => {
    const { tenant, integration, openai } = await enforced({});
    await asTenant(tenant, 'SELECT aos_cus.disable_integration($1, $2)', [tenant, integration]);
    await assert.rejects(openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), (e: any) => e instanceof PolicyError && e.reason === 'integration_disabled');
  });

  test('an admitted call reserves its estimate under its call_id; the ingest settles it to the real cost', async () => {
    const { tenant, integration, openai } = await enforced({ budget_microcents: 10_000_000_000 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true, max_tokens: 1000 }, { headers: { 'x-mock': 'drip' } });
    const during = await asTenant(tenant, 'SELECT reserved_microcents, active_reservations FROM aos_cus.current_usage($1, $2)', [tenant, integration]);
    assert.equal(Number(during[0].active_reservations), 1);
    assert.ok(Number(during[0].reserved_microcents) > 0);
    await collect(stream);
    await reporter.flush();
    const [row] = await usageRows(integration);
    const settled = await asTenant(tenant, 'SELECT reserved_microcents, active_reservations, spent_microcents FROM aos_cus.current_usage($1, $2)', [tenant, integration]);
    assert.deepEqual([Number(settled[0].active_reservations), Number(settled[0].reserved_microcents)], [0, 0]);
    assert.equal(String(settled[0].spent_microcents), row.cost);
  });

  test('messages.stream() blocked: finalMessage() rejects with BudgetExceededError and no provider call', async () => {
    const ids = await newIntegration('anthropic', { budget_microcents: 1 });
    const anthropic = wrapAnthropic(new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 }), { pool, reporter, ...ids, mode: 'enforce' });
    const before = mock.requests.length;
    const s = anthropic.messages.stream({ model: 'claude-sonnet-4-20250514', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    let seen: unknown;
    s.on('error', (e) => (seen = e));
    await assert.rejects(s.finalMessage(), BudgetExceededError);
    assert.ok(seen instanceof BudgetExceededError);
    assert.equal(mock.requests.length, before);
    await assert.rejects(anthropic.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => asBlocked(e) instanceof BudgetExceededError);
  });

  test('check() unreachable: failOpen (default) makes the call, failOpen: false throws EnforcementUnavailableError', async () => {
    const ids = await newIntegration('openai', { budget_microcents: 1 });
    const dead = new Pool({ host: '127.0.0.1', port: 1, user: 'x', database: 'x', connectionTimeoutMillis: 300 });
    const open = wrapOpenAI(openaiClient(), { pool: dead, reporter, ...ids, mode: 'enforce' });
    assert.equal((await open.chat.completions.create({ model: 'gpt-4o', messages })).object, 'chat.completion');
    const closed = wrapOpenAI(openaiClient(), { pool: dead, reporter, ...ids, mode: 'enforce', failOpen: false });
    const before = mock.requests.length;
    await assert.rejects(closed.chat.completions.create({ model: 'gpt-4o', messages }), EnforcementUnavailableError);
    assert.equal(mock.requests.length, before);
    await dead.end();
  });
});

describe('track()', () => {
  test('any async call returning a usage block: recorded in visibility mode, blocked in enforce mode', async () => {
    const ids = await newIntegration('google');
    const generate = async (prompt: string) => ({
      text: prompt.toUpperCase(),
      usageMetadata: { promptTokenCount: 40, candidatesTokenCount: 12, thoughtsTokenCount: 3, totalTokenCount: 55 },
      modelVersion: 'gemini-2.0-flash-001',
    });
    const tracked = track(generate, {
      reporter, ...ids, model: 'gemini-2.0-flash',
      usage: (r) => r, responseModel: (r) => r.modelVersion, callOptions: (p) => ({ callId: `g-${p}`, subject: 'u1' }),
    });
    assert.equal((await tracked('abc')).text, 'ABC');
    await assert.rejects(track(async () => { throw new Error('boom'); }, { reporter, ...ids, model: 'gemini-2.0-flash' })(), /boom/);
    await reporter.flush();
    const rows = await usageRows(ids.integration);
    assert.deepEqual(rows.map((r) => [r.call_id.replace(/-.{36}$/, ''), r.status, r.model, Number(r.input_tokens), Number(r.output_tokens)]).slice(0, 1),
      [['g-abc', 'success', 'gemini-2.0-flash-001', 40, 15]]);
    assert.deepEqual([rows[1].status, rows[1].error_code], ['error', 'Error']);

    const limited = await newIntegration('google', { budget_microcents: 1 });
    let called = 0;
    const guarded = track(async () => { called++; return { usageMetadata: { promptTokenCount: 1 } }; },
      { pool, reporter, ...limited, mode: 'enforce', provider: 'google', model: 'gemini-2.0-flash', estimate: () => ({ text: 'hello', maxOutputTokens: 100 }) });
    await assert.rejects(guarded(), BudgetExceededError);
    assert.equal(called, 0);
  });
});
