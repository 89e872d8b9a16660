// aos-cus: Node.js client of the aos_cus PostgreSQL extension.
export { wrapOpenAI } from './openai';
export { wrapAnthropic } from './anthropic';
export { track } from './track';
export type { TrackMeta } from './track';
export { Reporter, reporterFor } from './reporter';
export type { ReporterOptions, ReporterStats } from './reporter';
export type { WrapOptions, CallOptions, Mode, Status } from './call';
export type { TenantBinding } from './sql';
export {
  AosCusError, CallBlockedError, BudgetExceededError, RateLimitedError, PolicyError, EnforcementUnavailableError, asBlocked,
} from './errors';
export type { BlockDetails } from './errors';
