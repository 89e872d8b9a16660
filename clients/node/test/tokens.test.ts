// count_tokens and count_message_tokens against npm tiktoken (the oracle): exact counts, 0 mismatches.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Pool } from 'pg';
import { REPO, adminPool, setupDatabase, tmpDir } from './helpers';
import { Tiktoken, corpus, installTiktoken, longRuns } from './token_corpus';

let pool: Pool;
let tiktoken: Tiktoken;
let tiktokenDir: string;

before(async () => {
  await setupDatabase();
  pool = adminPool();
  ({ tiktoken, dir: tiktokenDir } = installTiktoken(tmpDir()));
});

after(async () => {
  await pool.end();
});

/** count_tokens of each string for a model, in batches. */
async function counts(strings: string[], model: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < strings.length; i += 1000) {
    const r = await pool.query<{ n: number }>(
      'SELECT aos_cus.count_tokens(u.t, $2) AS n FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY u.i',
      [strings.slice(i, i + 1000), model]);
    out.push(...r.rows.map((row) => row.n));
  }
  return out;
}

describe('count_tokens against npm tiktoken', () => {
  const strings = [...corpus(20_000, 20), ...longRuns()];

  test('the committed rank files are scripts/tiktoken_ranks.py of the npm package', () => {
    const out = tmpDir();
    execFileSync('python3', [path.join(REPO, 'scripts/tiktoken_ranks.py'), tiktokenDir, out]);
    for (const name of ['aos_cus_cl100k_base.bpe', 'aos_cus_o200k_base.bpe'])
      assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(REPO, 'data', name))), name);
  });

  for (const [encoding, model] of [['o200k_base', 'gpt-4o-mini'], ['cl100k_base', 'gpt-4']]) {
    test(`${encoding} (model ${model}): ${strings.length} strings, 0 mismatches`, async (t) => {
      const enc = tiktoken.get_encoding(encoding);
      const ours = await counts(strings, model);
      const mismatches: string[] = [];
      let tokens = 0;
      strings.forEach((s, i) => {
        const want = enc.encode(s, [], []).length;
        tokens += want;
        if (ours[i] !== want) mismatches.push(`${JSON.stringify(s.slice(0, 120))}: ours ${ours[i]}, tiktoken ${want}`);
      });
      enc.free();
      t.diagnostic(`${encoding}: ${strings.length} strings, ${tokens} tokens, ${mismatches.length} mismatches`);
      assert.deepEqual(mismatches.slice(0, 5), []);
      assert.ok(strings.length >= 20_000);
    });
  }

  test('count_message_tokens is the cookbook count: strings + 3 per message + 1 per name + 3', async () => {
    const messages = [
      { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
      { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
      { role: 'system', name: 'example_assistant', content: "Things working well together will increase revenue." },
      { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
    ];
    for (const [encoding, model] of [['o200k_base', 'gpt-4o'], ['cl100k_base', 'gpt-4-0613']]) {
      const enc = tiktoken.get_encoding(encoding);
      let want = 3;
      for (const m of messages)
        for (const [k, v] of Object.entries(m)) want += (k === 'name' ? 1 : 0) + enc.encode(v, [], []).length;
      want += 3 * messages.length;
      enc.free();
      const r = await pool.query('SELECT aos_cus.count_message_tokens($1::jsonb, $2) AS n', [JSON.stringify(messages), model]);
      assert.equal(r.rows[0].n, want, encoding);
    }
  });
});
