// Test fixtures: the node test cluster (scripts/cluster.sh, AOS_CUS_INSTANCE=node), roles, tenants, integrations.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from 'pg';

export const REPO = path.resolve(__dirname, '../../../..');
export const APP_ROLE = 'aos_node_app';

/** scripts/cluster.sh for the node tests' own throwaway cluster (port AOS_CUS_PORT_BASE + 9). */
export function cluster(cmd: 'start' | 'stop' | 'env' | 'destroy'): string {
  return execFileSync('bash', [path.join(REPO, 'scripts/cluster.sh'), cmd], {
    env: { ...process.env, AOS_CUS_INSTANCE: 'node' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

let where: { host: string; port: number } | undefined;

/** Socket directory and port of the node cluster. */
export function location(): { host: string; port: number } {
  if (!where) {
    const env = cluster('env');
    where = { host: /PGHOST=(\S+)/.exec(env)![1], port: Number(/PGPORT=(\d+)/.exec(env)![1]) };
  }
  return where;
}

export function adminPool(): Pool {
  return new Pool({ ...location(), user: 'postgres', database: 'aos_cus', max: 2 });
}

/** A pool of the application's login (a member of aos_cus_app). */
export function appPool(max = 4): Pool {
  return new Pool({ ...location(), user: APP_ROLE, database: 'aos_cus', max, connectionTimeoutMillis: 2000 });
}

/** Starts the cluster if needed and installs the extension and the application login once. */
export async function setupDatabase(): Promise<void> {
  cluster('start');
  const admin = adminPool();
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS aos_cus');
    await admin.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN CREATE ROLE ${APP_ROLE} LOGIN IN ROLE aos_cus_app; END IF;
    END $$`);
  } finally {
    await admin.end();
  }
}

/** A fresh tenant with an enabled integration of the provider and the given limits. */
export async function newIntegration(provider: string, limits: object = {}): Promise<{ tenant: string; integration: string }> {
  const tenant = randomUUID();
  const integration = randomUUID();
  const admin = adminPool();
  try {
    const c = await admin.connect();
    try {
      // The operator (no tenant set) lets the tenant use the env:// source, then the tenant creates the integration.
      await c.query(`SELECT aos_cus.allow_credential_source($1, 'env://AOS_CUS_NODE_TEST_KEY')`, [tenant]);
      await c.query(`SELECT set_config('aos_cus.tenant_id', $1, false)`, [tenant]);
      await c.query(`SELECT aos_cus.create_integration($1, $2, $3, 'env://AOS_CUS_NODE_TEST_KEY', $4)`,
        [tenant, `node-${integration.slice(0, 8)}`, provider, JSON.stringify({ id: integration, limits })]);
      await c.query('SELECT aos_cus.enable_integration($1, $2)', [tenant, integration]);
      // The mock provider's model names (gpt-4o-429, claude-sonnet-4-500, ...) have no price: check() blocks them
      // by default (unpriced_model), so this integration's policy admits them.
      await c.query(`SELECT aos_cus.set_policy($1, $2, '{"unpriced": "allow"}')`, [tenant, integration]);
    } finally {
      c.release();
    }
  } finally {
    await admin.end();
  }
  return { tenant, integration };
}

/** The usage rows of an integration, oldest first. */
export async function usageRows(integration: string): Promise<any[]> {
  const admin = adminPool();
  try {
    const r = await admin.query(`SELECT call_id, model, status, error_code, latency_ms, metadata, subject, tags, input_tokens, cache_read_tokens,
        cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_microcents::text AS cost
      FROM aos_cus.cus_llm_usage WHERE integration_id = $1 ORDER BY id`, [integration]);
    return r.rows;
  } finally {
    await admin.end();
  }
}

export async function adminQuery(sql: string, params: unknown[] = []): Promise<any[]> {
  const admin = adminPool();
  try {
    return (await admin.query(sql, params)).rows;
  } finally {
    await admin.end();
  }
}

const dirs: string[] = [];
process.on('exit', () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A fresh directory for spill files, removed when the process exits. */
export function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-cus-node-'));
  dirs.push(d);
  return d;
}

/** Waits until cond() holds (polling), or fails after ms. */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every item of an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Rows of a query run as the superuser acting for the tenant. */
export async function asTenant(tenant: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const admin = adminPool();
  const c = await admin.connect();
  try {
    await c.query(`SELECT set_config('aos_cus.tenant_id', $1, false)`, [tenant]);
    return (await c.query(sql, params)).rows;
  } finally {
    c.release();
    await admin.end();
  }
}
