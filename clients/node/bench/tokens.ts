// Benchmark of aos_cus.count_tokens (run by bench/35_tokens.sh on the bench cluster): tokens per second of
// count_tokens over a table of strings in SQL vs npm tiktoken's encode() in this process, on the same corpus
// (clients/node/test/token_corpus.ts), alternating rounds (A B A B), per encoding. Prints TSV rows
// "name, ours, peer, ratio" like bench/lib.sh (ratio > 1: ours is faster), then the memory of each side.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { KINDS, corpus, installTiktoken } from '../test/token_corpus';

const cfg = JSON.parse(process.argv[2]) as { host: string; port: number; user: string; database: string; rounds: number };
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mb = (kb: number) => (kb / 1024).toFixed(1) + ' MB';

/** RssAnon, RssFile and Pss (kB) of a process from /proc. */
function memory(pid: number): { anon: number; file: number; pss: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)![1]);
  return { anon: kb(status, 'RssAnon'), file: kb(status, 'RssFile'), pss: kb(rollup, 'Pss') };
}

/** Error of estimate_tokens against the exact count per category of the corpus's first n strings, per OpenAI encoding. */
async function estimateError(db: Client, n: number): Promise<void> {
  for (const model of ['gpt-4o', 'gpt-4']) {
    const r = await db.query(`SELECT (i - 1) % $2 AS kind, sum(aos_cus.estimate_tokens(t, $1))::float8 AS est,
        sum(aos_cus.estimate_tokens(t))::float8 AS chars4, sum(aos_cus.count_tokens(t, $1))::float8 AS exact
      FROM bench_corpus WHERE i <= $3 GROUP BY ROLLUP (1) ORDER BY 1`, [model, KINDS.length, n]);
    const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${(100 * (a - b) / b).toFixed(1)}%`;
    process.stdout.write(`# estimate_tokens vs count_tokens, ${model} (characters / 4 in brackets): ` + r.rows.map((x) =>
      `${x.kind === null ? 'all' : KINDS[x.kind]} ${pct(x.est, x.exact)} (${pct(x.chars4, x.exact)})`).join(', ') + '\n');
  }
}

async function main(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-bench-tiktoken-'));
  try {
    const { tiktoken } = installTiktoken(scratch);
    const strings = corpus(4000, 8, 35);
    const bytes = strings.reduce((n, s) => n + Buffer.byteLength(s), 0);
    const db = new Client(cfg);
    await db.connect();
    await db.query('CREATE TEMP TABLE bench_corpus (i int8, t text)');
    await db.query('INSERT INTO bench_corpus SELECT u.i, u.t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)', [strings]);
    const pid = (await db.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    const before = memory(pid);
    process.stdout.write(`# corpus: ${strings.length} strings, ${(bytes / 1e6).toFixed(2)} MB\n`);
    for (const [encoding, model] of [['o200k_base', 'gpt-4o'], ['cl100k_base', 'gpt-4']]) {
      const enc = tiktoken.get_encoding(encoding);
      const ours: number[] = [];
      const peer: number[] = [];
      let tokens = 0;
      for (let r = 0; r < cfg.rounds; r++) {
        let t = process.hrtime.bigint();
        const res = await db.query('SELECT sum(aos_cus.count_tokens(t, $1))::int8 AS n FROM bench_corpus', [model]);
        ours.push(Number(process.hrtime.bigint() - t) / 1e9);
        t = process.hrtime.bigint();
        let n = 0;
        for (const s of strings) n += enc.encode(s, [], []).length;
        peer.push(Number(process.hrtime.bigint() - t) / 1e9);
        if (Number(res.rows[0].n) !== n) throw new Error(`${encoding}: count_tokens ${res.rows[0].n}, tiktoken ${n}`);
        tokens = n;
      }
      enc.free();
      const a = tokens / median(ours);
      const b = tokens / median(peer);
      process.stdout.write(`count_tokens ${encoding} tokens/s (${tokens} tokens)\t${a.toFixed(0)}\t${b.toFixed(0)}\t${(a / b).toFixed(2)}\n`);
    }
    const after = memory(pid);
    process.stdout.write(`# backend ${pid} after counting both encodings: private (RssAnon) +${mb(after.anon - before.anon)}, ` +
      `rank files mapped and read (RssFile) +${mb(after.file - before.file)}, shared with every backend through the page cache; ` +
      `Pss ${mb(after.pss)} (was ${mb(before.pss)})\n`);
    await estimateError(db, strings.length - 8);
    const me = memory(process.pid);
    process.stdout.write(`# node with tiktoken (both encodings loaded): RssAnon ${mb(me.anon)}, Pss ${mb(me.pss)}\n`);
    await db.end();
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
