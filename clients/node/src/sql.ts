// The SQL this package runs: aos_cus's documented functions only, schema-qualified, one round trip each.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';

/** A pg Pool or Client. */
export type Queryable = Pick<Pool, 'query'> | Pick<PoolClient, 'query'>;

/**
 * How a statement acts for its tenant. `setting` (default): set aos_cus.tenant_id for the statement's own
 * transaction only (set_config(..., true), so nothing leaks into a pooled session). `session`: the session
 * already acts for the tenant (a tenant-bound login, or a pool whose connect hook sets it).
 */
export type TenantBinding = 'setting' | 'session';

/** One row of ingest_usage_batch. */
export interface IngestRow {
  ord: number;
  call_id: string | null;
  status: 'inserted' | 'duplicate' | 'rejected';
  error: string | null;
}

/** The row check() returns, with bigints as strings (node-postgres' int8 default). */
export interface DecisionRow {
  decision: 'allowed' | 'warned' | 'blocked';
  reason: string;
  retry_after_ms: string | number | null;
  budget_used_microcents: string | null;
  budget_limit_microcents: string | null;
  tokens_used: string | null;
  token_limit: string | null;
  period_resets_at: Date | null;
  /** The scope and dimension that decided (aos_cus 0.2.0; absent from older servers). */
  scope?: string | null;
  dimension?: string | null;
}

// FROM set_config(...) AS s, LATERAL fn(s.tenant, ...): the function's tenant argument is set_config's result,
// so the setting is in place before the function runs, and it ends with the statement's transaction.
function tenantFrom(binding: TenantBinding, call: string): string {
  return binding === 'setting'
    ? `FROM pg_catalog.set_config('aos_cus.tenant_id', $1::pg_catalog.text, true) AS s (tenant), LATERAL ${call.replace('$TENANT', 's.tenant::pg_catalog.uuid')}`
    : `FROM ${call.replace('$TENANT', '$1::pg_catalog.uuid')}`;
}

async function run<R extends QueryResultRow>(db: Queryable, name: string, text: string, values: unknown[]): Promise<QueryResult<R>> {
  return (db as Pool).query<R>({ name, text, values });
}

/** ingest_usage_batch(tenant, records): one row per record, in input order. */
export async function ingestBatch(db: Queryable, binding: TenantBinding, tenant: string, records: object[]): Promise<IngestRow[]> {
  const { scopes } = await detectServer(db);
  const text = `SELECT r.ord, r.call_id, r.status, r.error ${tenantFrom(binding, 'aos_cus.ingest_usage_batch($TENANT, $2::pg_catalog.jsonb) AS r')}`;
  const res = await run<IngestRow>(db, `aos_cus_node_ingest_batch_${binding}`, text,
    [tenant, JSON.stringify(scopes ? records : records.map(withoutScopeKeys))]);
  return res.rows;
}

/** A record for a server without scopes (before 0.2.0): subject and tags go into its metadata. */
function withoutScopeKeys(r: object): object {
  const { subject, tags, ...rest } = r as { subject?: string; tags?: object; metadata?: object };
  if (subject === undefined && tags === undefined) return r;
  return { ...rest, metadata: { ...rest.metadata, ...(subject !== undefined && { subject }), ...(tags !== undefined && { tags }) } };
}

/** ingest_usage(tenant, record): status inserted or duplicate (the per-call path the benchmark compares with). */
export async function ingestOne(db: Queryable, binding: TenantBinding, tenant: string, record: object): Promise<string> {
  const text = `SELECT r.status ${tenantFrom(binding, 'aos_cus.ingest_usage($TENANT, $2::pg_catalog.jsonb) AS r')}`;
  const res = await run<{ status: string }>(db, `aos_cus_node_ingest_one_${binding}`, text, [tenant, JSON.stringify(record)]);
  return res.rows[0].status;
}

/** What the server has: estimate_call, count_tokens and scopes (check() with subject, tags and model) come with aos_cus 0.2.0. */
export interface ServerFeatures {
  estimateCall: boolean;
  countTokens: boolean;
  scopes: boolean;
}

const features = new WeakMap<object, Promise<ServerFeatures>>();

/** Detects the server's features once per pool (to_regprocedure); a failed detection is retried on the next call. */
export function detectServer(db: Queryable): Promise<ServerFeatures> {
  let p = features.get(db);
  if (!p) {
    p = run<{ estimate_call: boolean; count_tokens: boolean; scopes: boolean }>(db, 'aos_cus_node_features',
      `SELECT pg_catalog.to_regprocedure('aos_cus.estimate_call(pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.int4, pg_catalog.text, pg_catalog.timestamptz)') IS NOT NULL AS estimate_call,
              pg_catalog.to_regprocedure('aos_cus.count_tokens(pg_catalog.text, pg_catalog.text)') IS NOT NULL AS count_tokens,
              pg_catalog.to_regprocedure('aos_cus."check"(pg_catalog.uuid, pg_catalog.uuid, pg_catalog.int8, pg_catalog.int8, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text)') IS NOT NULL AS scopes`, [])
      .then((r) => ({ estimateCall: r.rows[0].estimate_call, countTokens: r.rows[0].count_tokens, scopes: r.rows[0].scopes }));
    features.set(db, p);
    p.catch(() => features.delete(db));
  }
  return p;
}

/** Who and what a call is for: the scopes check() reserves against and the usage row is settled to. */
export interface CallScope {
  subject?: string;
  tags?: Record<string, string>;
}

/** What a call is expected to use, for check(). */
export interface EstimateInput {
  provider: string;
  model: string;
  /** The prompt as text (estimate_tokens / count_tokens). */
  text: string;
  /** The prompt as estimate_call takes it: a chat messages array or a string. */
  input: unknown;
  /** Tokens added to the text's estimate: the chat format's per-message overhead. */
  overheadTokens: number;
  /** Output tokens to reserve: the request's max tokens, else the wrapper's estimatedOutputTokens. */
  maxOutputTokens: number;
}

/** Tokens and cost of estimate_call's row: input plus worst-case output, worst-case cost; undefined when unpriced. */
function fromEstimateCall(row: EstimateCallRow): { tokens: string; cost: string } | undefined {
  if (row.worst_case_cost_microcents === null || row.worst_case_output_tokens === null) return undefined;
  return { tokens: (BigInt(row.input_tokens) + BigInt(row.worst_case_output_tokens)).toString(), cost: row.worst_case_cost_microcents };
}

/** The estimate_call columns checkCall reads (bigints as strings). */
interface EstimateCallRow {
  input_tokens: string;
  worst_case_output_tokens: string | null;
  worst_case_cost_microcents: string | null;
}

/**
 * check() for one call, with its estimate computed by the server: estimate_call when present (two round trips),
 * else count_tokens for OpenAI-family models tiktoken maps when present, else estimate_tokens (both in the check's
 * statement). Servers with scopes also get the call's subject, tags and model.
 */
export async function checkCall(db: Queryable, binding: TenantBinding, tenant: string, integration: string,
  est: EstimateInput, callId: string, who: CallScope): Promise<DecisionRow> {
  const have = await detectServer(db);
  const tags = who.tags && Object.keys(who.tags).length > 0 ? JSON.stringify(who.tags) : null;
  // With scopes: subject and tags are parameters n + 1 and n + 2, the model parameter m.
  const check = (cost: string, tokens: string, n: number, m: number) => 'aos_cus."check"($TENANT, $2::pg_catalog.uuid, ' + cost + ', ' + tokens +
    ', $3::pg_catalog.text' + (have.scopes ? `, $${n + 1}::pg_catalog.text, $${n + 2}::pg_catalog.jsonb, $${m}::pg_catalog.text` : '') + ') AS c';
  const scopeArgs = have.scopes ? [who.subject ?? null, tags] : [];
  const suffix = `${have.scopes ? 'scoped' : 'plain'}_${binding}`;
  if (have.estimateCall) {
    const r = await run<EstimateCallRow>(db, 'aos_cus_node_estimate_call',
      'SELECT e.input_tokens, e.worst_case_output_tokens, e.worst_case_cost_microcents ' +
      'FROM aos_cus.estimate_call($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.jsonb, $4::pg_catalog.int4) AS e',
      [est.provider, est.model, JSON.stringify(est.input), est.maxOutputTokens > 0 ? est.maxOutputTokens : null]);
    const picked = r.rows[0] && fromEstimateCall(r.rows[0]);
    if (picked) {
      const text = `SELECT c.* ${tenantFrom(binding, check('$4::pg_catalog.int8', '$5::pg_catalog.int8', 6, 6))}`;
      const res = await run<DecisionRow>(db, `aos_cus_node_check_fixed_${suffix}`, text,
        [tenant, integration, callId, picked.cost, picked.tokens, ...(have.scopes ? [est.model, ...scopeArgs] : [])]);
      return res.rows[0];
    }
  }
  const openaiFamily = /^(openai|azure_openai)$/.test(est.provider);
  const counter = have.countTokens && openaiFamily ? 'aos_cus.count_tokens' : 'aos_cus.estimate_tokens';
  // count_tokens only for the models tiktoken maps (token_encoding not NULL; an Azure deployment name need not be one).
  const count = counter === 'aos_cus.count_tokens'
    ? 'CASE WHEN aos_cus.token_encoding($6::pg_catalog.text) IS NOT NULL THEN aos_cus.count_tokens($5::pg_catalog.text, $6::pg_catalog.text) ' +
      'ELSE aos_cus.estimate_tokens($5::pg_catalog.text, $6::pg_catalog.text) END'
    : 'aos_cus.estimate_tokens($5::pg_catalog.text, $6::pg_catalog.text)';
  const tokens = `(${count}::pg_catalog.int8 OPERATOR(pg_catalog.+) $7::pg_catalog.int8)`;
  const cost = `COALESCE(aos_cus.cost_microcents($4::pg_catalog.text, $6::pg_catalog.text, e.input_tokens, $8::pg_catalog.int8), 0::pg_catalog.int8)`;
  const text = `SELECT c.* ${tenantFrom(binding, `(SELECT ${tokens} AS input_tokens) AS e, LATERAL ` +
    check(cost, 'e.input_tokens OPERATOR(pg_catalog.+) $8::pg_catalog.int8', 8, 6))}`;
  const res = await run<DecisionRow>(db, `aos_cus_node_check_${counter === 'aos_cus.count_tokens' ? 'count' : 'estimate'}_${suffix}`, text,
    [tenant, integration, callId, est.provider, est.text, est.model, est.overheadTokens, est.maxOutputTokens, ...scopeArgs]);
  return res.rows[0];
}
