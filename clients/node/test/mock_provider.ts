// A loopback mock of the OpenAI and Anthropic HTTP APIs with their real JSON and SSE shapes: usage blocks,
// error bodies, 429 with retry-after. The model name picks a behavior:
//   ...-429        always 429 (retry-after-ms: 10)      ...-429once   429 on the first attempt, then success
//   ...-500        500 with an error body                ...-slow      answers after 3 s
//   ...-cut        a stream that fails after two events  ...-drip      a stream with 40 ms between events
//   ...-cache      usage with cache reads and writes
// (or the same suffix in an x-mock header). Usage is a function of the request's text only, so a streamed and a non-streamed call report the same usage.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  path: string;
  body: any;
  headers: http.IncomingHttpHeaders;
}

export interface MockProvider {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** Tokens of a request: deterministic from its text. */
export function mockUsage(text: string): { prompt: number; completion: number; cached: number; reasoning: number } {
  const prompt = 11 + Math.ceil(text.length / 4);
  return { prompt, completion: 5 + (text.length % 17), cached: Math.min(prompt, 4), reasoning: 2 };
}

function requestText(body: any): string {
  const parts: string[] = [];
  const add = (c: unknown) => {
    if (typeof c === 'string') parts.push(c);
    else if (Array.isArray(c)) c.forEach((p: any) => add(typeof p === 'string' ? p : p?.text ?? p?.content));
  };
  if (body.system) add(body.system);
  if (body.instructions) add(body.instructions);
  for (const m of body.messages ?? []) add(m.content);
  if (body.input !== undefined) add(body.input);
  return parts.join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startMockProvider(): Promise<MockProvider> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : {};
      requests.push({ path: req.url ?? '', body, headers: req.headers });
      handle(req, res, body).catch((e) => {
        res.destroy(e);
      });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: any): Promise<void> {
  // The behavior suffix comes from the model name or, to keep a priced model name, an x-mock header.
  const model: string = (body.model ?? '') + (req.headers['x-mock'] ? `-${req.headers['x-mock']}` : '');
  const anthropic = req.url!.startsWith('/v1/messages');
  const attempt = Number(req.headers['x-stainless-retry-count'] ?? 0);
  if (model.endsWith('-429') || (model.endsWith('-429once') && attempt === 0)) {
    return json(res, 429, anthropic
      ? { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' } }
      : { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
      { 'retry-after-ms': '10', 'retry-after': '1' });
  }
  if (model.endsWith('-500')) {
    return json(res, 500, anthropic
      ? { type: 'error', error: { type: 'api_error', message: 'Internal server error' } }
      : { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } });
  }
  if (model.endsWith('-slow')) await sleep(3000);
  const u = mockUsage(requestText(body));
  const cache = model.endsWith('-cache');
  const served = model.replace(/-(429once|slow|cut|drip|cache)$/, '');
  if (req.url === '/v1/chat/completions') return chat(res, body, served, u, cache, model);
  if (req.url === '/v1/responses') return responses(res, body, served, u, cache, model);
  if (req.url === '/v1/embeddings') return embeddings(res, body, served, u);
  if (anthropic) return messages(res, body, served, u, cache, model);
  return json(res, 404, { error: { message: `Unknown path ${req.url}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } });
}

function json(res: http.ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_mock', 'request-id': 'req_mock', ...headers });
  res.end(JSON.stringify(payload));
}

/** Writes SSE events (name or null, data) with an optional delay; "cut" destroys the socket after two events. */
async function sse(res: http.ServerResponse, events: Array<[string | null, unknown]>, mode: string): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'req_mock', 'request-id': 'req_mock' });
  res.flushHeaders();
  let n = 0;
  for (const [name, data] of events) {
    if (mode.endsWith('-cut') && n === 2) {
      await sleep(20);
      res.destroy();
      return;
    }
    if (mode.endsWith('-drip')) await sleep(40);
    if (res.destroyed) return;
    res.write((name ? `event: ${name}\n` : '') + `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    n++;
  }
  res.end();
}

const WORDS = ['Hello', ' from', ' the', ' mock', ' provider', '.'];

function chat(res: http.ServerResponse, body: any, model: string, u: ReturnType<typeof mockUsage>, cache: boolean, mode: string) {
  const usage = {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
    prompt_tokens_details: { cached_tokens: cache ? u.cached : 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: u.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const base = { id: 'chatcmpl-mock', created: 1767225600, model, service_tier: 'default', system_fingerprint: 'fp_mock' };
  if (!body.stream) {
    return json(res, 200, {
      ...base, object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: WORDS.join(''), refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  }
  const withUsage = body.stream_options?.include_usage === true;
  const chunk = (delta: object, finish: string | null) => ({
    ...base, object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  });
  const events: Array<[string | null, unknown]> = [[null, chunk({ role: 'assistant', content: '', refusal: null }, null)]];
  for (const w of WORDS) events.push([null, chunk({ content: w }, null)]);
  events.push([null, chunk({}, 'stop')]);
  if (withUsage) events.push([null, { ...base, object: 'chat.completion.chunk', choices: [], usage }]);
  events.push([null, '[DONE]']);
  return sse(res, events, mode);
}

function responses(res: http.ServerResponse, body: any, model: string, u: ReturnType<typeof mockUsage>, cache: boolean, mode: string) {
  const usage = {
    input_tokens: u.prompt,
    input_tokens_details: { cached_tokens: cache ? u.cached : 0 },
    output_tokens: u.completion,
    output_tokens_details: { reasoning_tokens: u.reasoning },
    total_tokens: u.prompt + u.completion,
  };
  const text = WORDS.join('');
  const message = { id: 'msg_mock', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
  const response = (status: string, output: unknown[], usage: unknown) => ({
    id: 'resp_mock', object: 'response', created_at: 1767225600, status, error: null, incomplete_details: null,
    instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null, model, output,
    parallel_tool_calls: true, previous_response_id: null, reasoning: { effort: null, summary: null }, service_tier: 'default',
    store: true, temperature: 1, text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: 1, truncation: 'disabled',
    usage, user: null, metadata: {},
  });
  if (!body.stream) return json(res, 200, response('completed', [message], usage));
  let seq = 0;
  const ev = (type: string, rest: object): [string, unknown] => [type, { type, sequence_number: seq++, ...rest }];
  const events: Array<[string | null, unknown]> = [
    ev('response.created', { response: response('in_progress', [], null) }),
    ev('response.in_progress', { response: response('in_progress', [], null) }),
    ev('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
  ];
  for (const w of WORDS) events.push(ev('response.output_text.delta', { item_id: 'msg_mock', output_index: 0, content_index: 0, delta: w, logprobs: [] }));
  events.push(ev('response.output_text.done', { item_id: 'msg_mock', output_index: 0, content_index: 0, text, logprobs: [] }));
  events.push(ev('response.output_item.done', { output_index: 0, item: message }));
  events.push(ev('response.completed', { response: response('completed', [message], usage) }));
  return sse(res, events, mode);
}

function embeddings(res: http.ServerResponse, body: any, model: string, u: ReturnType<typeof mockUsage>) {
  const inputs = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
  const vector = [0.25, -0.5, 0.125];
  const encode = (v: number[]) => Buffer.from(new Float32Array(v).buffer).toString('base64');
  return json(res, 200, {
    object: 'list',
    data: inputs.map((_: unknown, index: number) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? encode(vector) : vector })),
    model,
    usage: { prompt_tokens: u.prompt, total_tokens: u.prompt },
  });
}

function messages(res: http.ServerResponse, body: any, model: string, u: ReturnType<typeof mockUsage>, cache: boolean, mode: string) {
  const usage = {
    input_tokens: u.prompt,
    cache_creation_input_tokens: cache ? 30 : 0,
    cache_read_input_tokens: cache ? 100 : 0,
    cache_creation: { ephemeral_5m_input_tokens: cache ? 20 : 0, ephemeral_1h_input_tokens: cache ? 10 : 0 },
    output_tokens: u.completion,
    service_tier: 'standard',
  };
  const text = WORDS.join('');
  const message = (content: unknown[], usage: object, stop: string | null) => ({
    id: 'msg_mock', type: 'message', role: 'assistant', model, content, stop_reason: stop, stop_sequence: null, usage,
  });
  if (!body.stream) return json(res, 200, message([{ type: 'text', text }], usage, 'end_turn'));
  const events: Array<[string | null, unknown]> = [
    ['message_start', { type: 'message_start', message: message([], { ...usage, output_tokens: 1 }, null) }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['ping', { type: 'ping' }],
  ];
  for (const w of WORDS) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } }]);
  events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: u.completion } }]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return sse(res, events, mode);
}
