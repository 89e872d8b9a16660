// wrapAnthropic: messages.create (streaming included) and messages.stream of `@anthropic-ai/sdk` report their
// usage; in enforce mode check() decides first.
import { CallRecorder, Tracker, WrapOptions } from './call';
import { asBlocked } from './errors';
import { chatOverhead, contentText, messagesText } from './prompt';
import { EstimateInput } from './sql';
import { StreamObserver, isStream, observeStream, replaceMethods, splitOptions, trackedPromise } from './wrap';

type Body = Record<string, any>;

/**
 * The client with the same API. messages.stream() runs through the tracked messages.create(), so both record
 * the same way; a blocked stream emits the typed error itself ('error' event, finalMessage() rejection).
 */
export function wrapAnthropic<T extends object>(client: T, options: WrapOptions): T {
  const tracker = new Tracker(options, 'anthropic');
  let messages: object;
  const wrapped = replaceMethods(client, {
    'messages.create': (original) => (body: Body, options?: unknown) => trackedCreate(tracker, client, original, body, options),
    'messages.stream': (_original, self) => (body: Body, options?: unknown) => {
      // The SDK's stream() calls this.create(): call it on the proxy so the tracked create runs.
      const runner = (self as any).stream.call(messages, body, options);
      const emit = runner._emit;
      if (typeof emit === 'function') {
        runner._emit = function (event: string, ...args: unknown[]) {
          if (event === 'error') args[0] = asBlocked(args[0]) ?? args[0];
          return emit.call(this, event, ...args);
        };
      }
      return runner;
    },
  });
  messages = (wrapped as any).messages;
  return wrapped;
}

function trackedCreate(tracker: Tracker, client: object, original: (b: Body, o?: unknown) => any, body: Body, options: unknown): Promise<unknown> {
  const { call, sdk } = splitOptions(options);
  let rec: CallRecorder;
  try {
    rec = tracker.begin(String(body?.model ?? ''), call);
  } catch (e) {
    return trackedPromise(Promise.reject(e));
  }
  const full = (async () => {
    await rec.admit(() => estimate(tracker, body));
    rec.start();
    let res: { data: any; response: unknown; request_id?: string | null };
    try {
      res = await original(body, sdk).withResponse();
    } catch (e) {
      rec.fail(e);
      throw e;
    }
    if (isStream(res.data)) return { ...res, data: observeStream(res.data, client, rec, observer()) };
    rec.success({ usage: res.data?.usage, model: res.data?.model, serviceTier: res.data?.usage?.service_tier });
    return res;
  })();
  return trackedPromise(full);
}

/** message_start has the input side of the usage; message_delta's counts are cumulative and win. */
function observer(): StreamObserver<any> {
  let usage: Record<string, unknown> | undefined;
  let model: string | undefined;
  return {
    onEvent(event) {
      if (event?.type === 'message_start' && event.message) {
        model = event.message.model ?? model;
        usage = { ...event.message.usage };
      } else if (event?.type === 'message_delta' && event.usage) {
        usage = { ...usage };
        for (const [k, v] of Object.entries(event.usage as Record<string, unknown>)) if (v !== null && v !== undefined) usage[k] = v;
      }
      return true;
    },
    outcome: () => ({ usage, model, serviceTier: usage?.service_tier as string | undefined }),
  };
}

function estimate(tracker: Tracker, body: Body): EstimateInput {
  const msgs = body?.system ? [{ role: 'system', content: body.system }, ...(body.messages ?? [])] : (body?.messages ?? []);
  const { text, count } = messagesText(msgs);
  return {
    provider: tracker.opts.provider!,
    model: String(body?.model ?? ''),
    text: text || contentText(body?.system),
    input: msgs,
    overheadTokens: chatOverhead(count),
    maxOutputTokens: typeof body?.max_tokens === 'number' ? body.max_tokens : tracker.opts.estimatedOutputTokens ?? 500,
  };
}
