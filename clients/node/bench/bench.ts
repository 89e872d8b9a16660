// Benchmark of the Node client (run by bench/80_node_client.sh on the bench cluster). Prints TSV rows
// "name, ours, peer, ratio" like bench/lib.sh (ratio > 1: ours is faster), then the overhead in ms.
//  1. a wrapped chat.completions.create in visibility mode vs the same call on the raw SDK, against the mock
//     provider in another process: p50 and p99 latency, alternating rounds (A B A B).
//  2. records per second into cus_llm_usage: the batched reporter vs one ingest_usage per call, synchronous_commit
//     off and durable, alternating rounds.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import OpenAI from 'openai';
import { Pool } from 'pg';
import { Reporter, wrapOpenAI } from '../src';
import { ingestOne } from '../src/sql';

const cfg = JSON.parse(process.argv[2]) as { host: string; port: number; user: string; database: string; tenant: string; integration: string; rounds: number };
const rounds = cfg.rounds;
const CALLS = 1000;

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const row = (name: string, ours: string, peer: string, ratio: number) => process.stdout.write(`${name}\t${ours}\t${peer}\t${ratio.toFixed(2)}\n`);

async function startMock(): Promise<{ url: string; stop: () => void }> {
  const proc = spawn(process.execPath, [path.join(__dirname, 'mock_main.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => proc.stdout!.once('data', (d) => resolve(String(d).trim())));
  return { url, stop: () => proc.kill() };
}

async function overhead(url: string, pool: Pool): Promise<void> {
  const raw = new OpenAI({ apiKey: 'sk-bench', baseURL: url + '/v1', maxRetries: 0 });
  const reporter = new Reporter({ pool, spillPath: null });
  const wrapped = wrapOpenAI(new OpenAI({ apiKey: 'sk-bench', baseURL: url + '/v1', maxRetries: 0 }), {
    reporter, tenant: cfg.tenant, integration: cfg.integration, subject: 'bench', tags: { run: 'bench' },
  });
  const body = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'How much does a wrapped call cost?' }] };
  const time = async (client: OpenAI, n: number, out: number[]) => {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await client.chat.completions.create(body);
      out.push(performance.now() - t0);
    }
  };
  await time(raw, 200, []);
  await time(wrapped, 200, []);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await time(wrapped, CALLS, a);
    await time(raw, CALLS, b);
  }
  await reporter.close();
  const [a50, b50, a99, b99] = [pct(a, 50), pct(b, 50), pct(a, 99), pct(b, 99)];
  row('wrapOpenAI visibility vs raw SDK, chat call p50 (ms)', a50.toFixed(3), b50.toFixed(3), b50 / a50);
  row('wrapOpenAI visibility vs raw SDK, chat call p99 (ms)', a99.toFixed(3), b99.toFixed(3), b99 / a99);
  process.stderr.write(`overhead per wrapped call: p50 ${(a50 - b50).toFixed(3)} ms, p99 ${(a99 - b99).toFixed(3)} ms (${a.length} calls each side, ${rounds} alternating rounds; reporter stats ${JSON.stringify(reporter.stats())})\n`);
}

const rec = (prefix: string, i: number) => ({
  integration_id: cfg.integration, call_id: `${prefix}-${i}`, model: 'gpt-4o', started_at: new Date().toISOString(),
  usage: { prompt_tokens: 1200, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 200 } }, latency_ms: 850, status: 'success',
});

async function throughput(label: string, options: string): Promise<void> {
  const pool = new Pool({ host: cfg.host, port: cfg.port, user: cfg.user, database: cfg.database, max: 1, options });
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const prefix = `bench-${label.replace(/\W/g, '')}-${process.pid}-${r}`;
    const N = 20000;
    const reporter = new Reporter({ pool, spillPath: null, batchSize: 100, maxBufferedRecords: N });
    let t0 = performance.now();
    for (let i = 0; i < N; i++) reporter.record(cfg.tenant, rec(prefix + 'b', i));
    await reporter.flush();
    a.push(N / ((performance.now() - t0) / 1000));
    if (reporter.stats().inserted !== N) throw new Error(`reporter inserted ${reporter.stats().inserted} of ${N}`);
    await reporter.close();
    const M = label === 'durable' ? 300 : 2000;
    t0 = performance.now();
    for (let i = 0; i < M; i++) await ingestOne(pool, 'setting', cfg.tenant, rec(prefix + 's', i));
    b.push(M / ((performance.now() - t0) / 1000));
  }
  await pool.end();
  const ma = median(a);
  const mb = median(b);
  row(`reporter (batches of 100) vs one ingest_usage per call, records/s, 1 connection, ${label}`, ma.toFixed(0), mb.toFixed(0), ma / mb);
}

async function main(): Promise<void> {
  const mock = await startMock();
  const pool = new Pool({ host: cfg.host, port: cfg.port, user: cfg.user, database: cfg.database, max: 2 });
  try {
    await overhead(mock.url, pool);
    await throughput('sync off', '-c synchronous_commit=off');
    await throughput('durable', '');
  } finally {
    mock.stop();
    await pool.end();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
