// One wrapped provider call: the enforce-mode check before it, timing, and the usage record after it.
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { AosCusError, EnforcementUnavailableError, blockedError } from './errors';
import { Reporter, reporterFor } from './reporter';
import { CallScope, DecisionRow, EstimateInput, Queryable, TenantBinding, checkCall } from './sql';

export type Mode = 'visibility' | 'enforce';
export type Status = 'success' | 'error' | 'timeout' | 'cancelled' | 'blocked';

/** Options of wrapOpenAI, wrapAnthropic and track. */
export interface WrapOptions {
  /** The pg Pool for check() and, unless `reporter` is given, for the pool's default reporter. */
  pool?: Queryable & Partial<Pick<Pool, 'on'>>;
  /** Where usage records go (default: the pool's shared reporter with default options). */
  reporter?: Reporter;
  tenant: string;
  /** The integration's id (uuid). */
  integration: string;
  /** visibility (default): report only, never block. enforce: check() first; a blocked call throws. */
  mode?: Mode;
  /** The provider name used for estimates (default 'openai' / 'anthropic'; e.g. 'azure_openai'). */
  provider?: string;
  /** Default subject (an end user, a job...) and tags of every call; per-call options add to them. */
  subject?: string;
  tags?: Record<string, string>;
  /** Output tokens to reserve when the request sets no maximum (default 500). */
  estimatedOutputTokens?: number;
  /** enforce: when check() cannot be asked, make the call anyway (true, default) or throw EnforcementUnavailableError. */
  failOpen?: boolean;
  /** enforce: longest wait for check() (default 2000 ms), then failOpen decides. */
  checkTimeoutMs?: number;
  tenantBinding?: TenantBinding;
}

/** Per-call options: pass them as `aosCus` in the SDK method's request options (they are not sent). */
export interface CallOptions {
  /**
   * The idempotency key (1..200 characters; default a random UUID). Pass the same one when your application
   * retries the same logical call: a success is recorded once under it; failed attempts are recorded under
   * `<callId>/<status>@<epoch ms>` so the retry that succeeds still counts.
   */
  callId?: string;
  subject?: string;
  tags?: Record<string, string>;
  /** More metadata for the record (a JSON object; with subject and tags at most 16 kB). */
  metadata?: Record<string, unknown>;
}

/** What a call's outcome adds to its record. */
export interface Outcome {
  usage?: unknown;
  model?: string;
  serviceTier?: string;
  errorCode?: string;
}

const TIERS = new Set(['standard', 'priority', 'flex', 'batch']);

/** The per-wrapper state: resolved options and the reporter. */
export class Tracker {
  readonly opts: WrapOptions;
  readonly reporter: Reporter;
  readonly mode: Mode;

  constructor(opts: WrapOptions, defaultProvider: string) {
    if (!opts || !opts.tenant || !opts.integration) throw new AosCusError('tenant and integration are required');
    const mode = opts.mode ?? 'visibility';
    if (mode !== 'visibility' && mode !== 'enforce') throw new AosCusError(`mode must be 'visibility' or 'enforce', not '${String(mode)}'`);
    if (!opts.reporter && !opts.pool) throw new AosCusError('a pool or a reporter is required');
    if (mode === 'enforce' && !opts.pool) throw new AosCusError("mode 'enforce' needs a pool for check()");
    this.opts = { provider: defaultProvider, ...opts };
    this.mode = mode;
    this.reporter = opts.reporter ?? reporterFor(opts.pool!, opts.tenantBinding);
  }

  /** Starts a call: validates the per-call options and fixes its call_id. */
  begin(model: string, call: CallOptions | undefined): CallRecorder {
    const callId = call?.callId;
    if (callId !== undefined && (typeof callId !== 'string' || callId.length < 1 || callId.length > 200)) {
      throw new AosCusError('callId must be a string of 1 to 200 characters');
    }
    return new CallRecorder(this, model, callId ?? randomUUID(), callId !== undefined, call);
  }
}

/** Records one call exactly once: success under its call_id, any other outcome as described in CallOptions. */
export class CallRecorder {
  readonly callId: string;
  private readonly tracker: Tracker;
  private readonly model: string;
  private readonly callerKey: boolean;
  private readonly call: CallOptions | undefined;
  private startedAt = new Date();
  private t0 = performance.now();
  private done = false;

  constructor(tracker: Tracker, model: string, callId: string, callerKey: boolean, call: CallOptions | undefined) {
    this.tracker = tracker;
    this.model = model;
    this.callId = callId;
    this.callerKey = callerKey;
    this.call = call;
  }

  /** The call's subject and tags: the wrapper's defaults with the call's own options over them. */
  private scope(): CallScope {
    const t = this.tracker;
    const subject = this.call?.subject ?? t.opts.subject;
    const tags = { ...t.opts.tags, ...this.call?.tags };
    return { subject, tags: Object.keys(tags).length > 0 ? tags : undefined };
  }

  /** enforce mode: check() with the estimate; throws the typed error (after recording the block) when blocked. */
  async admit(estimate: () => EstimateInput): Promise<void> {
    const t = this.tracker;
    if (t.mode !== 'enforce') return;
    let row: DecisionRow;
    try {
      row = await withTimeout(checkCall(t.opts.pool!, t.opts.tenantBinding ?? 'setting', t.opts.tenant, t.opts.integration,
        estimate(), this.callId, this.scope()), t.opts.checkTimeoutMs ?? 2000);
    } catch (e) {
      if (t.opts.failOpen ?? true) return;
      throw new EnforcementUnavailableError(`aos_cus check() failed: ${(e as Error).message}`, { cause: e });
    }
    if (row.decision !== 'blocked') return;
    const big = (v: string | null) => (v === null ? null : BigInt(v));
    const err = blockedError({
      reason: row.reason,
      scope: row.scope ?? 'integration',
      dimension: row.dimension ?? null,
      retryAfterMs: row.retry_after_ms === null ? null : Number(row.retry_after_ms),
      callId: this.callId,
      periodResetsAt: row.period_resets_at,
      budgetUsedMicrocents: big(row.budget_used_microcents),
      budgetLimitMicrocents: big(row.budget_limit_microcents),
      tokensUsed: big(row.tokens_used),
      tokenLimit: big(row.token_limit),
    });
    this.finish('blocked', { errorCode: row.reason });
    throw err;
  }

  /** Marks the moment the provider call starts (latency is measured from here). */
  start(): void {
    this.startedAt = new Date();
    this.t0 = performance.now();
  }

  success(outcome: Outcome): void {
    this.finish('success', outcome);
  }

  /** Records a failed call with the status and error code its error implies. */
  fail(err: unknown, partial: Outcome = {}): void {
    const { status, code } = classify(err);
    this.finish(status, { ...partial, errorCode: partial.errorCode ?? code });
  }

  /** Builds the ingest record and hands it to the reporter; later calls do nothing. Never throws. */
  finish(status: Status, outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    try {
      const t = this.tracker;
      const callId = status === 'success' || !this.callerKey ? this.callId : `${this.callId}/${status}@${this.startedAt.getTime()}`;
      const record: Record<string, unknown> = {
        integration_id: t.opts.integration,
        call_id: callId,
        model: outcome.model || this.model,
        started_at: this.startedAt.toISOString(),
        latency_ms: status === 'blocked' ? 0 : Math.max(0, Math.round(performance.now() - this.t0)),
        status,
      };
      if (outcome.usage !== undefined && outcome.usage !== null) record.usage = outcome.usage;
      if (outcome.serviceTier && TIERS.has(outcome.serviceTier)) record.service_tier = outcome.serviceTier;
      if (outcome.errorCode) record.error_code = outcome.errorCode.slice(0, 200);
      const { subject, tags } = this.scope();
      if (subject !== undefined) record.subject = subject;
      if (tags !== undefined) record.tags = tags;
      if (this.call?.metadata && Object.keys(this.call.metadata).length > 0) record.metadata = { ...this.call.metadata };
      t.reporter.record(t.opts.tenant, record);
    } catch {
      // Reporting never fails the application's call.
    }
  }
}

/** The status and error code of a provider SDK error (names shared by the OpenAI and Anthropic SDKs). */
export function classify(err: unknown): { status: Status; code: string } {
  const e = (err ?? {}) as { name?: string; status?: number; code?: unknown; type?: unknown; error?: any };
  // The OpenAI SDK leaves name 'Error' on its classes: the constructor's name tells them apart.
  const ctor = (e as object).constructor?.name;
  const name = e.name && e.name !== 'Error' ? e.name : ctor && ctor !== 'Object' ? ctor : 'Error';
  if (name === 'APIUserAbortError' || name === 'AbortError') return { status: 'cancelled', code: 'aborted' };
  if (name === 'APIConnectionTimeoutError' || name === 'TimeoutError') return { status: 'timeout', code: 'timeout' };
  if (typeof e.status === 'number') {
    const kind = e.code ?? e.type ?? e.error?.error?.type ?? e.error?.type;
    return { status: 'error', code: `http_${e.status}${typeof kind === 'string' && kind ? ':' + kind : ''}` };
  }
  if (name === 'APIConnectionError') return { status: 'error', code: 'connection_error' };
  return { status: 'error', code: name };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}
