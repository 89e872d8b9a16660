// wrapOpenAI in visibility mode against the mock provider and a real cluster.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { Pool } from 'pg';
import { Reporter, wrapOpenAI } from '../src';
import { MockProvider, startMockProvider } from './mock_provider';
import { appPool, collect, newIntegration, setupDatabase, tmpDir, usageRows } from './helpers';
import * as path from 'node:path';

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

function client(opts: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) {
  return new OpenAI({ apiKey: 'sk-test', baseURL: mock.url + '/v1', maxRetries: 0, ...opts });
}

async function wrapped(opts: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) {
  const ids = await newIntegration('openai');
  return { ...ids, openai: wrapOpenAI(client(opts), { reporter, ...ids, subject: 'user-7', tags: { feature: 'chat' } }) };
}

const messages = [{ role: 'system' as const, content: 'You are terse.' }, { role: 'user' as const, content: 'Say hello to the test suite.' }];
const tokens = (r: any) => [r.input_tokens, r.cache_read_tokens, r.output_tokens, r.reasoning_tokens].map(Number);

describe('wrapOpenAI, visibility mode', () => {
  test('chat.completions.create: the result is the SDK\'s, the usage row has its tokens, subject and tags', async () => {
    const { integration, openai } = await wrapped();
    const res = await openai.chat.completions.create({ model: 'gpt-4o-cache', messages }, { aosCus: { callId: 'c-1', tags: { step: 'a' } } } as any);
    assert.equal(res.choices[0].message.content, 'Hello from the mock provider.');
    assert.equal(res.model, 'gpt-4o');
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].call_id, 'c-1');
    assert.equal(rows[0].status, 'success');
    assert.equal(rows[0].model, 'gpt-4o');
    const u = res.usage!;
    assert.deepEqual(tokens(rows[0]), [u.prompt_tokens - 4, 4, u.completion_tokens, 2]);
    assert.ok(Number(rows[0].cost) > 0, 'priced');
    assert.deepEqual([rows[0].subject, rows[0].tags, rows[0].metadata], ['user-7', { feature: 'chat', step: 'a' }, {}]);
    assert.equal(mock.requests.at(-1)!.body.aosCus, undefined, 'per-call options are not sent');
  });

  test('a streamed chat call reports the same usage as the same call not streamed; the added usage chunk is hidden', async () => {
    const { integration, openai } = await wrapped();
    await openai.chat.completions.create({ model: 'gpt-4o', messages });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.ok(chunk.choices.length > 0, 'no usage-only chunk reaches the application');
      assert.equal('usage' in chunk, false);
      text += chunk.choices[0].delta.content ?? '';
    }
    assert.equal(text, 'Hello from the mock provider.');
    assert.equal(chunks, 8);
    assert.equal(mock.requests.at(-1)!.body.stream_options.include_usage, true, 'include_usage was added');
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 2);
    assert.deepEqual(tokens(rows[1]), tokens(rows[0]));
    assert.equal(rows[1].cost, rows[0].cost);
    assert.equal(rows[1].status, 'success');
  });

  test('an application that asked for include_usage sees the usage chunk', async () => {
    const { integration, openai } = await wrapped();
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    const last = (await collect(stream)).at(-1)!;
    assert.equal(last.choices.length, 0);
    assert.ok(last.usage!.prompt_tokens > 0);
    await reporter.flush();
    assert.equal((await usageRows(integration)).length, 1);
  });

  test('tee() and toReadableStream() of a wrapped stream work and the call is recorded once', async () => {
    const { integration, openai } = await wrapped();
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const [a, b] = stream.tee();
    assert.equal((await collect(a)).length, 8);
    assert.equal((await collect(b)).length, 8);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'success');
  });

  test('responses.create, streamed and not, report the same usage; embeddings.create is recorded', async () => {
    const { integration, openai } = await wrapped();
    const plain = await openai.responses.create({ model: 'gpt-4o-cache', input: 'Write one word.', instructions: 'Be brief.' });
    assert.equal(plain.output_text, 'Hello from the mock provider.');
    const stream = await openai.responses.create({ model: 'gpt-4o-cache', input: 'Write one word.', instructions: 'Be brief.', stream: true });
    const types = (await collect(stream)).map((e) => e.type);
    assert.equal(types.at(-1), 'response.completed');
    const emb = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    assert.equal(emb.data.length, 2);
    assert.deepEqual(emb.data[0].embedding, [0.25, -0.5, 0.125]);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 3);
    assert.deepEqual(tokens(rows[1]), tokens(rows[0]));
    assert.deepEqual(tokens(rows[0]), [plain.usage!.input_tokens - 4, 4, plain.usage!.output_tokens, 2]);
    assert.equal(rows[2].model, 'text-embedding-3-small');
    assert.equal(Number(rows[2].input_tokens), emb.usage.prompt_tokens);
    assert.equal(Number(rows[2].output_tokens), 0);
  });

  test('withResponse() still gives the HTTP response', async () => {
    const { integration, openai } = await wrapped();
    const { data, response, request_id } = await openai.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    assert.equal(response.status, 200);
    assert.equal(request_id, 'req_mock');
    assert.equal(data.object, 'chat.completion');
    await reporter.flush();
    assert.equal((await usageRows(integration)).length, 1);
  });

  test('errors keep their SDK class and are recorded with status, code and latency', async () => {
    const { integration, openai } = await wrapped();
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-500', messages }), OpenAI.InternalServerError);
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-429', messages }), (e: any) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '1');
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.deepEqual(rows.map((r) => [r.status, r.error_code]), [['error', 'http_500:server_error'], ['error', 'http_429:rate_limit_exceeded']]);
    assert.ok(rows.every((r) => r.latency_ms >= 0 && Number(r.input_tokens) === 0));
  });

  test('a 429 that the SDK retries after retry-after-ms is one successful call', async () => {
    const { integration, openai } = await wrapped({ maxRetries: 2 });
    const before = mock.requests.length;
    const res = await openai.chat.completions.create({ model: 'gpt-4o-429once', messages });
    assert.equal(res.object, 'chat.completion');
    assert.equal(mock.requests.length - before, 2, 'the SDK retried once');
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'success');
  });

  test('timeouts and aborts are recorded as timeout and cancelled', async () => {
    const { integration, openai } = await wrapped({ timeout: 200 });
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-slow', messages }), OpenAI.APIConnectionTimeoutError);
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-drip', messages, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 2) break;
    const ac = new AbortController();
    const p = openai.chat.completions.create({ model: 'gpt-4o-slow', messages }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, OpenAI.APIUserAbortError);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.deepEqual(rows.map((r) => r.status), ['timeout', 'cancelled', 'cancelled']);
    assert.ok(rows[0].latency_ms >= 150, `latency ${rows[0].latency_ms}`);
  });

  test('a stream cut by the server is recorded as an error and the application gets the SDK\'s error', async () => {
    const { integration, openai } = await wrapped();
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-cut', messages, stream: true });
    await assert.rejects(collect(stream));
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'error');
  });

  test('the application\'s retry with the same callId: failures under derived ids, the success once under the callId', async () => {
    const { integration, openai } = await wrapped();
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-500', messages }, { aosCus: { callId: 'job-9' } } as any));
    await openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { callId: 'job-9' } } as any);
    await openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { callId: 'job-9' } } as any);
    await reporter.flush();
    const rows = await usageRows(integration);
    assert.equal(rows.length, 2);
    assert.match(rows[0].call_id, /^job-9\/error@\d+$/);
    assert.deepEqual([rows[1].call_id, rows[1].status], ['job-9', 'success']);
  });

  test('other methods are the client\'s own, untouched', async () => {
    const { openai } = await wrapped();
    assert.equal(typeof openai.models.list, 'function');
    assert.equal(openai.baseURL, mock.url + '/v1');
    assert.ok(openai instanceof OpenAI);
  });
});

describe('visibility mode never fails the call', () => {
  test('with the database unreachable the call succeeds and the record waits in the spill', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const { Pool } = await import('pg');
    const dead = new Pool({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'none', connectionTimeoutMillis: 500 });
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const r = new Reporter({ pool: dead, spillPath, flushIntervalMs: 20 });
    const openai = wrapOpenAI(client(), { reporter: r, tenant, integration });
    const res = await openai.chat.completions.create({ model: 'gpt-4o', messages });
    assert.equal(res.object, 'chat.completion');
    await r.flush();
    assert.equal(r.stats().spilled, 1);
    await r.close();
    await dead.end();
    // The next reporter on the same spill file and a live database ingests it.
    const again = new Reporter({ pool, spillPath, flushIntervalMs: 20 });
    await again.flush();
    await again.close();
    assert.equal((await usageRows(integration)).length, 1);
  });

  test('a bad per-call option (too long a callId) in visibility mode is refused before any provider call', async () => {
    const { openai } = await wrapped();
    const before = mock.requests.length;
    await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o', messages }, { aosCus: { callId: 'x'.repeat(201) } } as any), /callId/);
    assert.equal(mock.requests.length, before);
  });
});
