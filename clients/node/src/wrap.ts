// Shared machinery of the SDK adapters: a proxy that replaces some methods by path, the promise those methods
// return, and the wrapping of an SDK stream so its events are observed as the application reads them.
import { CallOptions, CallRecorder, Outcome } from './call';

type Fn = (...args: any[]) => any;
/** Makes the replacement of a method from the original (bound to its object). */
export type Replacer = (original: Fn, self: object) => Fn;

/**
 * A proxy of `root` in which the methods at the given dotted paths are replaced; every other property is the
 * original's (functions bound to their object, so SDK internals and private fields keep working).
 */
export function replaceMethods<T extends object>(root: T, replacers: Record<string, Replacer>): T {
  const paths = Object.keys(replacers);
  const make = (target: object, prefix: string): object => {
    const cache = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj) as unknown;
        if (typeof prop !== 'string') return typeof value === 'function' ? (value as Fn).bind(obj) : value;
        const key = prefix + prop;
        if (cache.has(prop)) return cache.get(prop);
        let out: unknown = value;
        if (typeof value === 'function' && replacers[key]) {
          out = replacers[key]((value as Fn).bind(obj), obj);
          cache.set(prop, out);
        } else if (value !== null && typeof value === 'object' && paths.some((p) => p.startsWith(key + '.'))) {
          out = make(value as object, key + '.');
          cache.set(prop, out);
        } else if (typeof value === 'function' && !/^[A-Z]/.test(prop)) {
          out = (value as Fn).bind(obj);
        }
        return out;
      },
    });
  };
  return make(root, '') as T;
}

/** Splits the SDK's request options into ours (`aosCus`) and the SDK's. */
export function splitOptions(options: unknown): { call: CallOptions | undefined; sdk: unknown } {
  if (!options || typeof options !== 'object' || !('aosCus' in options)) return { call: undefined, sdk: options };
  const { aosCus, ...sdk } = options as { aosCus?: CallOptions };
  return { call: aosCus, sdk };
}

interface WithResponse<T> {
  data: T;
  response: unknown;
  request_id?: string | null;
}

/**
 * The promise a replaced method returns: resolves to the data like the SDK's APIPromise and has its
 * withResponse(); asResponse() is not available (the body is read to get the usage).
 */
export function trackedPromise<T>(full: Promise<WithResponse<T>>): Promise<T> {
  const data = full.then((r) => r.data);
  // Handled here so an application that only awaits withResponse() gets no unhandled rejection; awaiting
  // the promise itself still rejects.
  data.catch(() => undefined);
  return Object.assign(data, {
    withResponse: () => full,
    asResponse: () => Promise.reject(new Error('aos-cus: asResponse() is not supported on wrapped methods; use withResponse()')),
  });
}

/** Observes the events of a stream: returns false for an event the application must not see. */
export interface StreamObserver<E> {
  onEvent(event: E): boolean;
  /** The usage and model seen so far. */
  outcome(): Outcome;
}

interface SdkStream<E> extends AsyncIterable<E> {
  controller: AbortController;
}

/**
 * A new stream of the SDK's own Stream class (tee, toReadableStream, controller all work) that yields the
 * original's events and records the call when it ends: success, error, or cancelled when the application
 * stops reading early or aborts.
 */
export function observeStream<E>(stream: SdkStream<E>, client: unknown, rec: CallRecorder, obs: StreamObserver<E>): SdkStream<E> {
  const Ctor = stream.constructor as new (it: () => AsyncIterator<E>, c: AbortController, client?: unknown) => SdkStream<E>;
  async function* iterate(): AsyncGenerator<E> {
    let ended = false;
    try {
      for await (const event of stream) {
        if (obs.onEvent(event)) yield event;
      }
      ended = true;
    } catch (e) {
      rec.fail(e, obs.outcome());
      throw e;
    } finally {
      if (ended && !stream.controller.signal.aborted) rec.success(obs.outcome());
      else rec.finish('cancelled', { ...obs.outcome(), errorCode: 'aborted' });
    }
  }
  return new Ctor(() => iterate(), stream.controller, client);
}

/** True for an SDK Stream (what create() returns with stream: true). */
export function isStream(value: unknown): value is SdkStream<unknown> {
  return !!value && typeof value === 'object' && Symbol.asyncIterator in value && 'controller' in value;
}
