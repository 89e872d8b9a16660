// examples/node/quickstart.js runs as the README says: admitted calls are recorded, a blocked one is reported.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { MockProvider, startMockProvider } from './mock_provider';
import { APP_ROLE, REPO, location, newIntegration, setupDatabase, tmpDir, usageRows } from './helpers';

let mock: MockProvider;
let nodePath: string;

before(async () => {
  await setupDatabase();
  mock = await startMockProvider();
  // What `npm install` in examples/node provides: aos-cus (this package), openai and pg.
  const dir = tmpDir();
  fs.symlinkSync(path.resolve(__dirname, '../..'), path.join(dir, 'aos-cus'));
  nodePath = [dir, path.resolve(__dirname, '../../node_modules')].join(path.delimiter);
});

after(() => mock.close());

async function quickstart(ids: { tenant: string; integration: string }) {
  const { host, port } = location();
  return promisify(execFile)(process.execPath, [path.join(REPO, 'examples/node/quickstart.js')], {
    cwd: tmpDir(),
    env: {
      ...process.env, NODE_PATH: nodePath, PGHOST: host, PGPORT: String(port), PGUSER: APP_ROLE, PGDATABASE: 'aos_cus',
      AOS_CUS_TENANT: ids.tenant, AOS_CUS_INTEGRATION: ids.integration, OPENAI_BASE_URL: mock.url + '/v1', OPENAI_API_KEY: 'sk-mock',
    },
  });
}

test('the quick start makes two calls, both recorded, and prints the usage summary', async () => {
  const ids = await newIntegration('openai', { budget_microcents: 100_000_000 });
  const { stdout } = await quickstart(ids);
  assert.match(stdout, /reply: Hello from the mock provider\./);
  assert.match(stdout, /streamed: Hello from the mock provider\./);
  assert.match(stdout, /gpt-4o-mini/);
  const rows = await usageRows(ids.integration);
  assert.deepEqual(rows.map((r) => [r.status, r.model]), [['success', 'gpt-4o-mini'], ['success', 'gpt-4o-mini']]);
  assert.deepEqual([rows[0].subject, rows[0].tags], ['quickstart', { feature: 'greeting' }]);
});

test('the quick start on an exhausted budget reports the block and exits 0', async () => {
  const ids = await newIntegration('openai', { budget_microcents: 1 });
  const { stdout } = await quickstart(ids);
  assert.match(stdout, /blocked by aos_cus: budget_exceeded \(retry after \d+ ms\)/);
  assert.deepEqual((await usageRows(ids.integration)).map((r) => r.status), ['blocked']);
});
