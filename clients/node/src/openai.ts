// wrapOpenAI: chat.completions.create, responses.create and embeddings.create of the `openai` SDK, streaming
// included, report their usage; in enforce mode check() decides first.
import { CallRecorder, Tracker, WrapOptions } from './call';
import { chatOverhead, contentText, messagesText } from './prompt';
import { EstimateInput } from './sql';
import { Replacer, StreamObserver, isStream, observeStream, replaceMethods, splitOptions, trackedPromise } from './wrap';

type Body = Record<string, any>;
type Kind = 'chat' | 'responses' | 'embeddings';

/** The client with the same API; the three create methods are tracked, everything else is the client's own. */
export function wrapOpenAI<T extends object>(client: T, options: WrapOptions): T {
  const tracker = new Tracker(options, 'openai');
  const replacer = (kind: Kind): Replacer => (original) => (body: Body, options?: unknown) =>
    trackedCreate(tracker, client, kind, original, body, options);
  return replaceMethods(client, {
    'chat.completions.create': replacer('chat'),
    'responses.create': replacer('responses'),
    'embeddings.create': replacer('embeddings'),
  });
}

function trackedCreate(tracker: Tracker, client: object, kind: Kind, original: (b: Body, o?: unknown) => any,
  body: Body, options: unknown): Promise<unknown> {
  const { call, sdk } = splitOptions(options);
  let rec: CallRecorder;
  try {
    rec = tracker.begin(String(body?.model ?? ''), call);
  } catch (e) {
    return trackedPromise(Promise.reject(e));
  }
  // Chat streams carry usage only when asked: ask, and hide the extra usage chunk from the application.
  const addUsage = kind === 'chat' && body?.stream === true && body.stream_options?.include_usage !== true;
  const sent = addUsage ? { ...body, stream_options: { ...body.stream_options, include_usage: true } } : body;
  const full = (async () => {
    await rec.admit(() => estimate(tracker, kind, body));
    rec.start();
    let res: { data: any; response: unknown; request_id?: string | null };
    try {
      res = await original(sent, sdk).withResponse();
    } catch (e) {
      rec.fail(e);
      throw e;
    }
    if (isStream(res.data)) return { ...res, data: observeStream(res.data, client, rec, observer(kind, addUsage)) };
    rec.success(outcomeOf(kind, res.data));
    return res;
  })();
  return trackedPromise(full);
}

/** Usage block, model and tier of a whole response. */
function outcomeOf(kind: Kind, data: any) {
  let usage = data?.usage;
  // Embeddings report prompt tokens only; extract_usage wants the chat shape, with 0 completion tokens.
  if (kind === 'embeddings' && usage && usage.completion_tokens === undefined) usage = { ...usage, completion_tokens: 0 };
  return { usage, model: data?.model, serviceTier: data?.service_tier };
}

function observer(kind: Kind, addedUsage: boolean): StreamObserver<any> {
  let usage: unknown;
  let model: string | undefined;
  let tier: string | undefined;
  return {
    onEvent(event) {
      if (kind === 'responses') {
        // response.created / .completed / .failed / .incomplete carry the response; the last one has usage.
        const r = event?.response;
        if (r) {
          model = r.model ?? model;
          tier = r.service_tier ?? tier;
          if (r.usage) usage = r.usage;
        }
        return true;
      }
      model = event?.model ?? model;
      tier = event?.service_tier ?? tier;
      if (event?.usage) usage = event.usage;
      if (addedUsage) {
        if (event?.usage && Array.isArray(event.choices) && event.choices.length === 0) return false;
        if (event && event.usage === null) delete event.usage;
      }
      return true;
    },
    outcome: () => ({ usage, model, serviceTier: tier }),
  };
}

function estimate(tracker: Tracker, kind: Kind, body: Body): EstimateInput {
  const base = { provider: tracker.opts.provider!, model: String(body?.model ?? '') };
  const maxOut = (n: unknown) => (typeof n === 'number' ? n : tracker.opts.estimatedOutputTokens ?? 500);
  if (kind === 'chat') {
    const { text, count } = messagesText(body.messages);
    return { ...base, text, input: body.messages ?? [], overheadTokens: chatOverhead(count), maxOutputTokens: maxOut(body.max_completion_tokens ?? body.max_tokens) };
  }
  if (kind === 'responses') {
    const items = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : (body.input ?? []);
    const msgs = body.instructions ? [{ role: 'system', content: body.instructions }, ...items] : items;
    const { text, count } = messagesText(msgs);
    return { ...base, text, input: msgs, overheadTokens: chatOverhead(count), maxOutputTokens: maxOut(body.max_output_tokens) };
  }
  // Embeddings: strings are counted; pre-tokenized input (arrays of numbers) counts its length.
  const inputs: unknown[] = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
  let extra = 0;
  const texts = inputs.map((i) => {
    if (Array.isArray(i)) { extra += i.length; return ''; }
    return contentText(i);
  });
  return { ...base, text: texts.join('\n'), input: texts.join('\n'), overheadTokens: extra, maxOutputTokens: 0 };
}
