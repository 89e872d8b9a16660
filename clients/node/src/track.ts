// track(): the same lifecycle for any async provider call that returns a usage block (providers without an adapter).
import { CallOptions, Tracker, WrapOptions } from './call';
import { chatOverhead } from './prompt';

export interface TrackMeta<A extends unknown[], R> extends WrapOptions {
  /** The model of a call (from its arguments). */
  model: string | ((...args: A) => string);
  /** The raw usage block of a result, as extract_usage reads it for the integration's provider (default result.usage). */
  usage?: (result: R) => unknown;
  /** The model the provider says it used (default the requested one). */
  responseModel?: (result: R) => string | undefined;
  /** enforce mode: the prompt text and output tokens to reserve. */
  estimate?: (...args: A) => { text: string; messages?: number; maxOutputTokens?: number };
  /** Per-call options (call_id, subject, tags, metadata) from the arguments. */
  callOptions?: (...args: A) => CallOptions | undefined;
}

/** Wraps fn: enforce-mode check before each call, a usage record after it; the result and errors are fn's. */
export function track<A extends unknown[], R>(fn: (...args: A) => Promise<R>, meta: TrackMeta<A, R>): (...args: A) => Promise<R> {
  const tracker = new Tracker(meta, meta.provider ?? 'custom');
  return async (...args: A): Promise<R> => {
    const model = typeof meta.model === 'function' ? meta.model(...args) : meta.model;
    const rec = tracker.begin(model, meta.callOptions?.(...args));
    await rec.admit(() => {
      const e = meta.estimate?.(...args) ?? { text: '' };
      return {
        provider: tracker.opts.provider!,
        model,
        text: e.text,
        input: e.text,
        overheadTokens: chatOverhead(e.messages ?? 0),
        maxOutputTokens: e.maxOutputTokens ?? meta.estimatedOutputTokens ?? 500,
      };
    });
    rec.start();
    let result: R;
    try {
      result = await fn(...args);
    } catch (e) {
      rec.fail(e);
      throw e;
    }
    try {
      const usage = meta.usage ? meta.usage(result) : (result as { usage?: unknown })?.usage;
      rec.success({ usage, model: meta.responseModel?.(result) });
    } catch {
      rec.success({});
    }
    return result;
  };
}
