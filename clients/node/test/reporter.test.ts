// The buffered reporter: batching, rejects, the database stopped mid-run, kill -9, SIGTERM, exit, spill limits.
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Pool } from 'pg';
import { Reporter } from '../src';
import { SpillFile } from '../src/spill';
import { APP_ROLE, REPO, adminQuery, appPool, location, newIntegration, setupDatabase, tmpDir, waitFor } from './helpers';

let pool: Pool;
const run = promisify(execFile);

before(async () => {
  await setupDatabase();
  pool = appPool();
});

after(async () => {
  await pool.end();
});

const record = (integration: string, callId: string, i = 0) => ({
  integration_id: integration, call_id: callId, model: 'gpt-4o', started_at: new Date().toISOString(),
  usage: { prompt_tokens: 100 + i, completion_tokens: 20 }, latency_ms: 5,
});

async function counts(integration: string): Promise<{ rows: number; distinct: number }> {
  const [r] = await adminQuery('SELECT count(*)::int AS rows, count(DISTINCT call_id)::int AS distinct FROM aos_cus.cus_llm_usage WHERE integration_id = $1', [integration]);
  return r;
}

/** Starts test/child.js with a job; resolves once it printed "ready". */
function child(job: object): Promise<{ proc: ChildProcess; ready: string }> {
  const proc = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ proc, ready: out.trim() });
    });
    proc.on('exit', (code, sig) => reject(new Error(`child exited (${code ?? sig}) before it was ready`)));
  });
}

const exited = (proc: ChildProcess) => new Promise<{ code: number | null; signal: string | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
const livePool = () => ({ ...location(), user: APP_ROLE, database: 'aos_cus' });
const deadPool = { host: '127.0.0.1', port: 1, user: APP_ROLE, database: 'aos_cus', connectionTimeoutMillis: 300 };

describe('reporter', () => {
  test('batches by size and by interval; a rejected record is reported and the others are inserted', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const r = new Reporter({ pool, spillPath: path.join(tmpDir(), 's'), batchSize: 10, flushIntervalMs: 60000 });
    const rejected: unknown[] = [];
    r.on('rejected', (entry, error) => rejected.push([entry.r.call_id, error]));
    for (let i = 0; i < 9; i++) r.record(tenant, record(integration, `b-${i}`, i));
    await new Promise((res) => setTimeout(res, 300));
    assert.equal((await counts(integration)).rows, 0, 'a partial batch waits');
    r.record(tenant, record(integration, 'b-9', 9));
    await waitFor(async () => (await counts(integration)).rows === 10, 5000, 'a full batch');
    for (let i = 10; i < 25; i++) r.record(tenant, record(integration, `b-${i}`, i));
    await waitFor(async () => (await counts(integration)).rows === 25, 5000, 'the buffer drained');
    const timed = new Reporter({ pool, spillPath: null, batchSize: 10, flushIntervalMs: 100 });
    for (let i = 25; i < 28; i++) timed.record(tenant, record(integration, `b-${i}`, i));
    await waitFor(async () => (await counts(integration)).rows === 28, 5000, 'the interval flush');
    await timed.close();
    r.record(tenant, { ...record(integration, 'bad'), colour: 'blue' });
    await r.flush();
    assert.equal((await counts(integration)).rows, 28);
    assert.deepEqual(rejected.length, 1);
    assert.match(String((rejected[0] as string[])[1]), /colour/);
    assert.deepEqual([r.stats().inserted, r.stats().rejected, r.stats().spilled], [25, 1, 0]);
    await r.close();
  });

  test('the database stopped mid-run (scripts/cluster.sh stop) and started again: 0 records lost, 0 duplicated', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const r = new Reporter({ pool, spillPath: path.join(tmpDir(), 's'), batchSize: 25, flushIntervalMs: 20, retryMinMs: 100, retryMaxMs: 400 });
    const N = 2000;
    const cluster = (cmd: string) => run('bash', [path.join(REPO, 'scripts/cluster.sh'), cmd], { env: { ...process.env, AOS_CUS_INSTANCE: 'node' } });
    const outage = (async () => {
      await new Promise((res) => setTimeout(res, 400));
      await cluster('stop');
      await new Promise((res) => setTimeout(res, 1000));
      await cluster('start');
    })();
    for (let i = 0; i < N; i++) {
      r.record(tenant, record(integration, `m-${i}`, i));
      if (i % 20 === 19) await new Promise((res) => setTimeout(res, 25));
    }
    await outage;
    await waitFor(async () => {
      await r.flush();
      const s = r.stats();
      return s.databaseUp && s.spillBytes === 0 && s.buffered === 0;
    }, 20000, 'the spill to be replayed');
    const s = r.stats();
    assert.ok(s.spilled > 0, 'records were spilled while the database was down');
    assert.equal(s.inserted + s.duplicate, N);
    assert.deepEqual([s.rejected, s.dropped], [0, 0]);
    assert.deepEqual(await counts(integration), { rows: N, distinct: N });
    await r.close();
  });

  test('kill -9 after records reached the spill file: the next process replays them, exactly once', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const { proc, ready } = await child({ mode: 'spill', pool: deadPool, spillPath, tenant, integration, n: 50, prefix: 'k' });
    assert.equal(ready, 'ready 50');
    const gone = exited(proc);
    proc.kill('SIGKILL');
    assert.equal((await gone).signal, 'SIGKILL');
    assert.equal(fs.readFileSync(spillPath + '.lock', 'utf8'), String(proc.pid), 'the dead process still holds the lock');
    const copy = fs.readFileSync(spillPath);
    const r = new Reporter({ pool, spillPath, flushIntervalMs: 20 });
    await r.flush();
    assert.deepEqual(await counts(integration), { rows: 50, distinct: 50 });
    assert.equal(r.stats().replayed, 50);
    // A crash after the ingest but before the spill was deleted replays it again: all duplicates.
    fs.writeFileSync(spillPath + '.replay', copy);
    await r.close();
    const again = new Reporter({ pool, spillPath, flushIntervalMs: 20 });
    await again.flush();
    assert.deepEqual([again.stats().replayed, again.stats().duplicate, again.stats().inserted], [50, 50, 0]);
    assert.deepEqual(await counts(integration), { rows: 50, distinct: 50 });
    assert.equal(fs.existsSync(spillPath + '.replay') || fs.existsSync(spillPath), false);
    await again.close();
  });

  test('SIGTERM flushes what is buffered, then the process ends by the signal', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const { proc } = await child({ mode: 'sigterm', pool: livePool(), spillPath: path.join(tmpDir(), 's'), tenant, integration, n: 30, prefix: 't' });
    assert.equal((await counts(integration)).rows, 0, 'nothing sent before the signal');
    const gone = exited(proc);
    proc.kill('SIGTERM');
    assert.equal((await gone).signal, 'SIGTERM');
    assert.deepEqual(await counts(integration), { rows: 30, distinct: 30 });
  });

  test('process.exit() with records in memory: they are spilled at exit and the next process sends them', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const proc = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify({ mode: 'exit', pool: livePool(), spillPath, tenant, integration, n: 40, prefix: 'x' })]);
    assert.equal((await exited(proc)).code, 0);
    assert.equal(fs.readFileSync(spillPath, 'utf8').trim().split('\n').length, 40);
    const r = new Reporter({ pool, spillPath });
    await r.flush();
    await r.close();
    assert.deepEqual(await counts(integration), { rows: 40, distinct: 40 });
  });

  test('when the event loop drains, buffered records are flushed before the process exits', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const proc = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify({ mode: 'idle', pool: livePool(), spillPath, tenant, integration, n: 15, prefix: 'i' })]);
    assert.equal((await exited(proc)).code, 0);
    assert.deepEqual(await counts(integration), { rows: 15, distinct: 15 });
    assert.equal(fs.existsSync(spillPath), false, 'nothing spilled');
  });

  test('the loop drains with the database down and no spill file: the process still exits', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const proc = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify({ mode: 'idle', pool: deadPool, spillPath: null, tenant, integration, n: 5, prefix: 'n' })]);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    const end = await exited(proc);
    clearTimeout(timer);
    assert.deepEqual(end, { code: 0, signal: null });
  });

  test('past maxSpillBytes new records are dropped and counted; past maxBufferedRecords too', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const { Pool } = await import('pg');
    const dead = new Pool(deadPool);
    const one = Buffer.byteLength(JSON.stringify({ t: tenant, r: record(integration, 'd-0') })) + 1;
    const r = new Reporter({ pool: dead, spillPath: path.join(tmpDir(), 's'), maxSpillBytes: 3 * one + 5, maxBufferedRecords: 8, flushIntervalMs: 60000 });
    const dropped: number[] = [];
    r.on('dropped', (n) => dropped.push(n));
    for (let i = 0; i < 10; i++) r.record(tenant, record(integration, `d-${i}`));
    assert.equal(r.stats().dropped, 2, 'the buffer holds 8');
    await r.flush();
    assert.deepEqual([r.stats().spilled, r.stats().dropped], [3, 7]);
    assert.deepEqual(dropped, [1, 1, 5]);
    await r.close();
    await dead.end();
  });

  test('a torn last line of the spill (a crash mid-append) is skipped; later appends start on a new line', async () => {
    const { tenant, integration } = await newIntegration('openai');
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const file = new SpillFile(spillPath, true);
    await file.append([{ t: tenant, r: record(integration, 'w-1') }, { t: tenant, r: record(integration, 'w-2') }]);
    fs.appendFileSync(spillPath, JSON.stringify({ t: tenant, r: record(integration, 'w-torn') }).slice(0, 40));
    await file.append([{ t: tenant, r: record(integration, 'w-3') }]);
    const r = new Reporter({ pool, spillPath });
    await r.flush();
    assert.deepEqual([r.stats().replayed, r.stats().tornSpillLines], [3, 1]);
    assert.deepEqual(await counts(integration), { rows: 3, distinct: 3 });
    await r.close();
  });

  test('a second reporter on a spill file a live process holds is refused', async () => {
    const spillPath = path.join(tmpDir(), 'spill.jsonl');
    const r = new Reporter({ pool, spillPath });
    assert.throws(() => new Reporter({ pool, spillPath }), /already used/);
    await r.close();
    await new Reporter({ pool, spillPath }).close();
  });
});
