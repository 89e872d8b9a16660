// Typed errors of the client: blocked calls (one class per kind) and an unreachable enforcement service.

/** What check() answered when it blocked a call. */
export interface BlockDetails {
  reason: string;
  /** The scope that blocked: integration:<id>, tenant, subject:<value> or tag:<key>=<value>. */
  scope: string;
  /** What blocked on it: status, rpm, tpm, budget or tokens (null from servers before 0.2.0). */
  dimension: string | null;
  retryAfterMs: number | null;
  callId: string;
  periodResetsAt: Date | null;
  budgetUsedMicrocents: bigint | null;
  budgetLimitMicrocents: bigint | null;
  tokensUsed: bigint | null;
  tokenLimit: bigint | null;
}

/** Base class of every error this package throws. */
export class AosCusError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A call that check() blocked; no provider call was made. */
export class CallBlockedError extends AosCusError {
  readonly reason: string;
  readonly scope: string;
  readonly retryAfterMs: number | null;
  readonly callId: string;
  readonly details: BlockDetails;

  constructor(details: BlockDetails) {
    const retry = details.retryAfterMs === null ? '' : `, retry after ${details.retryAfterMs} ms`;
    super(`aos_cus blocked the call: ${details.reason} (scope ${details.scope}${retry})`);
    this.reason = details.reason;
    this.scope = details.scope;
    this.retryAfterMs = details.retryAfterMs;
    this.callId = details.callId;
    this.details = details;
  }
}

/** budget_exceeded or token_limit_exceeded. */
export class BudgetExceededError extends CallBlockedError {}

/** rate_limited (rpm or tpm); retryAfterMs says when a slot frees. */
export class RateLimitedError extends CallBlockedError {}

/** Any other refusal: integration_not_found, integration_disabled, or a reason this version does not know. */
export class PolicyError extends CallBlockedError {}

/** enforce mode with failOpen: false, and check() could not be asked (database down, timeout, SQL error). */
export class EnforcementUnavailableError extends AosCusError {}

/** The error class for a blocked decision's reason. */
export function blockedError(details: BlockDetails): CallBlockedError {
  switch (details.reason) {
    case 'budget_exceeded':
    case 'token_limit_exceeded':
      return new BudgetExceededError(details);
    case 'rate_limited':
      return new RateLimitedError(details);
    default:
      return new PolicyError(details);
  }
}

/** The CallBlockedError in err or its cause chain (SDK stream helpers wrap errors), else undefined. */
export function asBlocked(err: unknown): CallBlockedError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof CallBlockedError) return e;
  }
  return undefined;
}
