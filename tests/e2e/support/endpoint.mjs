// A scripted OpenAI-compatible endpoint for end-to-end tests and demos.
//
// It answers the four calls of the pipeline (failure detection, outcome extraction, relabeling,
// second judge) with replies valid for each call's schema. What a trajectory gets is chosen by
// a scenario marker the test data carries, e.g. `[[scenario:retry]]` at the start of a step's
// observation: the marker reaches the relabel prompt through the extracted achievements and the
// judge prompt through the observations. Without a marker the scenario is `accept`.
//
//   import { startEndpoint } from './endpoint.mjs';
//   const ep = await startEndpoint({ apiKey: 'sk-test' });
//   // ... point the app at ep.url ...
//   ep.counts().judge_reply; ep.requests.filter((r) => r.kind === 'relabel_reply');
//   ep.concurrency().max;   // the most requests it was handling at once
//   await ep.close();
//
// Faults, for the fault-tolerance tests: `fail` may answer an error status (with headers, e.g.
// `Retry-After`) or drop the connection in the middle of a reply; `garble` replaces a reply's
// content; `flaky({...})` builds both from a seed so that the same requests fail the same way on
// every run; `stopListening()` / `listenAgain()` make the endpoint go away and come back.
//
// Command line (runs until SIGTERM / Ctrl-C):
//   node tests/e2e/support/endpoint.mjs [--port 8787] [--host 127.0.0.1] [--no-cors]
//        [--api-key K] [--delay-ms N] [--slots N]
//
// Node >= 20, standard library only.

import http from 'node:http';
import { pathToFileURL } from 'node:url';

/** The schema names the app sends in `response_format.json_schema.name`. */
export const KINDS = ['failure_analysis', 'extracted_outcome', 'relabel_reply', 'judge_reply'];

/**
 * The scenarios and what they do (θ = 0.5, K = 3 in the comments):
 * - accept: relabel c = 0.9 valid, judge valid 0.8 → accepted by both judges.
 * - retry: the 1st, 3rd, ... relabel reply of a prompt is prose (unparseable), the 2nd, 4th, ...
 *   valid 0.9; judge valid 0.8 → accepted on attempt 2 (temperatures 0.3 then 0.7).
 * - judge-reject: relabel valid 0.9, the judge rejects every time (0.9) → rejected after K.
 * - fallback: relabel valid c = 0.45 (≥ 0.8 θ, < θ), no judge call → single-judge acceptance.
 * - low: relabel valid c = 0.2 → rejected.
 * - not-valid: relabel says is_valid_replay false → rejected.
 * - unparseable: every relabel reply is prose → rejected after K unreadable replies.
 * - low-weight: LLM detection returns weight 0.2 (below δ = 0.3); relabeling as accept.
 * - not-failure: LLM detection says is_failure false; relabeling as accept.
 */
export const SCENARIOS = [
  'accept',
  'retry',
  'judge-reject',
  'fallback',
  'low',
  'not-valid',
  'unparseable',
  'low-weight',
  'not-failure',
];

export const DEFAULT_SCENARIO = 'accept';
export const DEFAULT_MODELS = ['scripted-model', 'scripted-judge'];

const MARKER = /\[\[scenario:([a-z-]+)\]\]/;

/** The marker text that selects `name`. */
export function marker(name) {
  return `[[scenario:${name}]]`;
}

/** The scenario named by the first marker in `text`, or the default. Unknown names → default. */
export function scenarioOf(text) {
  const m = MARKER.exec(text ?? '');
  return m && SCENARIOS.includes(m[1]) ? m[1] : DEFAULT_SCENARIO;
}

/** The hindsight prompt the endpoint writes for a run whose first action is `action`. */
export function hindsightPromptFor(action, scenario) {
  return `Summarize what the ${action} step found (scenario ${scenario})`;
}

/** Which call a request body is: a schema name from KINDS, or 'unknown'. */
export function kindOf(body) {
  const name = body?.response_format?.json_schema?.name;
  if (KINDS.includes(name)) return name;
  const text = messagesText(body);
  // Field names quoted in the prompts' field lists and schemas, then sentences of the templates.
  if (text.includes('"is_valid_replay"') || text.includes('<style_sample>')) return 'relabel_reply';
  if (text.includes('"rejection_reason"') || text.includes('Does this run satisfy the request?'))
    return 'judge_reply';
  if (text.includes('"is_failure"') || text.includes('Give your assessment')) return 'failure_analysis';
  if (text.includes('"actual_achievements"') || text.includes('List what the run actually achieved'))
    return 'extracted_outcome';
  return 'unknown';
}

function messagesText(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  return messages
    .map((m) => {
      if (typeof m?.content === 'string') return m.content;
      if (Array.isArray(m?.content)) return m.content.map((p) => p?.text ?? '').join('\n');
      return '';
    })
    .join('\n');
}

function userText(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  return messages
    .filter((m) => m?.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : ''))
    .join('\n');
}

/** The steps of a detection, extraction or judge prompt: [{number, action, observation}]. */
export function stepsOf(text) {
  const steps = [];
  const re = /<step number="(\d+)">([\s\S]*?)<\/step>/g;
  for (const m of text.matchAll(re)) {
    const inner = m[2];
    const action = /Action: ([^(\n]+)\(/.exec(inner)?.[1]?.trim() ?? 'unknown';
    const result = /Result:\n([\s\S]*)$/.exec(inner)?.[1]?.trim() ?? '';
    steps.push({ number: Number(m[1]), action, observation: result });
  }
  return steps;
}

/** The first action a prompt shows: a judge/detect/extract step, or a relabel achievement. */
export function firstActionOf(text) {
  const step = /Action: ([^(\n]+)\(/.exec(text);
  if (step) return step[1].trim();
  const achievement = /Step \d+ \(([^)\n]+)\)/.exec(text);
  if (achievement) return achievement[1].trim();
  return 'first';
}

function summary(text, max) {
  const flat = text.replace(/\s+/g, ' ').trim();
  if ([...flat].length <= max) return flat;
  return [...flat].slice(0, max).join('') + '...';
}

/** The reply content (a string) for one call. `attempt` is 0-based per relabel prompt. */
export function replyFor(kind, body, attempt = 0) {
  const text = messagesText(body);
  const scenario = scenarioOf(text);
  const action = firstActionOf(userText(body) || text);
  switch (kind) {
    case 'failure_analysis':
      return JSON.stringify({
        is_failure: scenario !== 'not-failure',
        failure_type: scenario === 'not-failure' ? 'none' : 'wrong_result',
        severity: 0.6,
        weight: scenario === 'low-weight' ? 0.2 : 0.7,
        recoverable: true,
        explanation: `Scripted analysis (scenario ${scenario}): the final result does not match the request.`,
      });
    case 'extracted_outcome': {
      const steps = stepsOf(userText(body) || text).filter((s) => s.observation !== '');
      const achievements = steps.map(
        (s) => `Step ${s.number} (${s.action}): ${summary(s.observation, 160)}`,
      );
      const m = MARKER.exec(text);
      if (m && !achievements.some((a) => a.includes(m[0]))) achievements.push(`Carried ${m[0]}`);
      return JSON.stringify({
        actual_achievements: achievements,
        key_observations: steps.map((s) => `Step ${s.number}: ${summary(s.observation.split('\n')[0], 80)}`),
        limitations: 'The original request was not fully met.',
      });
    }
    case 'relabel_reply': {
      const prose =
        (scenario === 'retry' && attempt % 2 === 0) || scenario === 'unparseable';
      if (prose) {
        return `Sure! I think a good request for this run would be to summarize what the ${action} step found. Let me know if you want a JSON version.`;
      }
      const confidence =
        scenario === 'fallback' ? 0.45 : scenario === 'low' ? 0.2 : scenario === 'not-valid' ? 0.1 : 0.9;
      if (scenario === 'not-valid') {
        return JSON.stringify({
          hindsight_prompt: '',
          is_valid_replay: false,
          rationale: `Scripted (scenario ${scenario}): the run achieved nothing a user would ask for.`,
          confidence,
        });
      }
      return JSON.stringify({
        hindsight_prompt: hindsightPromptFor(action, scenario),
        is_valid_replay: true,
        rationale: `Scripted (scenario ${scenario}): the ${action} step's result answers this request.`,
        confidence,
      });
    }
    case 'judge_reply':
      if (scenario === 'judge-reject') {
        return JSON.stringify({
          is_valid: false,
          confidence: 0.9,
          rejection_reason: `Scripted (scenario ${scenario}): the run does not deliver what the request asks.`,
        });
      }
      return JSON.stringify({ is_valid: true, confidence: 0.8, rejection_reason: '' });
    default:
      return 'This scripted endpoint only answers the AgentHER prompts.';
  }
}

/** A number in [0, 1) from `text` (FNV-1a, 32 bits): the same text, the same number. */
export function unitHash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

/** Replies that are no use: prose, JSON cut short, JSON with the wrong fields. */
export const GARBAGE = {
  prose: () => 'Certainly! Here is what I found: the run looks useful, but I would rather not answer in JSON.',
  truncated: () => '{"hindsight_prompt": "Summarize what the step fo',
  'wrong-fields': () => JSON.stringify({ answer: 'yes', score: 7, notes: ['no schema here'] }),
};

/** The faults `flaky` injects instead of a reply. */
export const FAULTS = ['500', '429', 'drop'];

/**
 * Deterministic faults for chat calls, chosen by hashing `seed` with the request body:
 * - `failRate` of the sendings fail: HTTP 500, HTTP 429 with `Retry-After: <retryAfter>`, or a
 *   connection dropped in the middle of the reply. Whether the n-th sending of a body fails
 *   depends on n too, and no body fails more than `maxFailures` times, so a client that retries
 *   enough always gets through;
 * - `garbageRate` of the bodies get a useless reply (see GARBAGE), every time they are sent.
 * Returns `{fail, garble}` for startEndpoint's options.
 */
export function flaky({ seed = 1, failRate = 0.2, garbageRate = 0.2, retryAfter = 1, maxFailures = 2 } = {}) {
  const isChat = (req) => req.method === 'POST' && req.path === '/v1/chat/completions';
  return {
    fail(req) {
      if (!isChat(req) || req.seen >= maxFailures) return null;
      const text = JSON.stringify(req.body);
      if (unitHash(`${seed}|fail|${req.seen}|${text}`) >= failRate) return null;
      const fault = FAULTS[Math.floor(unitHash(`${seed}|fault|${req.seen}|${text}`) * FAULTS.length)];
      if (fault === 'drop') return { drop: true };
      if (fault === '429')
        return {
          status: 429,
          headers: { 'Retry-After': String(retryAfter) },
          body: errorBody('Rate limit reached for requests', 'requests', 'rate_limit_exceeded'),
        };
      return 500;
    },
    garble(req) {
      const text = JSON.stringify(req.body);
      if (unitHash(`${seed}|garbage|${text}`) >= garbageRate) return null;
      const kinds = Object.keys(GARBAGE);
      return GARBAGE[kinds[Math.floor(unitHash(`${seed}|kind|${text}`) * kinds.length)]]();
    },
  };
}

function errorBody(message, type, code = null) {
  return { error: { message, type, param: null, code } };
}

/**
 * Starts the endpoint.
 * @param {object} [options]
 * @param {number} [options.port=0] 0 picks a free port.
 * @param {string} [options.host='127.0.0.1']
 * @param {boolean} [options.cors=true] false: no CORS headers at all (preflights fail).
 * @param {string} [options.apiKey] require `Authorization: Bearer <apiKey>` (401 otherwise).
 * @param {Array<string|object>} [options.models] ids (or model objects) of GET /v1/models.
 * @param {number|function} [options.delayMs=0] delay before each reply (or `(req) => ms`, or
 *   `(req) => promise of ms`: the reply waits for the promise, then the delay).
 * @param {function} [options.fail] `(req) => status | {status, body, headers} | {drop: true} |
 *   null`, called for every non-preflight request after authorization; a status answers with an
 *   error; `drop` sends the headers and part of a reply, then cuts the connection.
 *   `req.seen` counts the earlier requests with the same method, path and body.
 * @param {function} [options.garble] `(req) => string | null` for chat calls: a string replaces
 *   the reply's content (counted as `garbled`).
 * @param {function} [options.tweak] `(req, response) => void` for chat calls: may change the
 *   response object before it is sent (e.g. `finish_reason`, `usage`).
 * @param {number} [options.slots=Infinity] chat calls answered at once; the others wait their
 *   turn in arrival order, as on a llama.cpp server with one slot or Ollama with
 *   OLLAMA_NUM_PARALLEL=1. The delay counts from a call's turn.
 * @param {boolean} [options.log=false] one line per request on stderr.
 * @param {object} [options.headers] extra headers sent with every reply.
 */
export async function startEndpoint(options = {}) {
  const {
    port = 0,
    host = '127.0.0.1',
    cors = true,
    apiKey = null,
    models = DEFAULT_MODELS,
    delayMs = 0,
    fail = null,
    garble = null,
    tweak = null,
    log = false,
    slots = Infinity,
    headers: extraHeaders = {},
  } = options;
  // Chat calls being answered, the ones waiting their turn, and the most answered at once.
  let serving = 0;
  let maxServing = 0;
  const waiting = [];
  /** Waits for a free slot; resolves to the function that frees it (once). */
  function takeSlot() {
    return new Promise((resolve) => {
      const grant = () => {
        serving += 1;
        maxServing = Math.max(maxServing, serving);
        let freed = false;
        resolve(() => {
          if (freed) return;
          freed = true;
          serving -= 1;
          waiting.shift()?.();
        });
      };
      if (serving < slots) grant();
      else waiting.push(grant);
    });
  }
  const requests = [];
  const tally = {};
  const relabelAttempts = new Map();
  const seenBodies = new Map();
  let sequence = 0;
  // While stopped, the port is closed and requests on connections still open are cut.
  let stopped = false;

  const bump = (key) => {
    tally[key] = (tally[key] ?? 0) + 1;
  };

  const modelList = models.map((m) =>
    typeof m === 'string' ? { id: m, object: 'model', created: 1700000000, owned_by: 'tests' } : m,
  );

  // Requests (preflights aside) received and not yet answered or cut, and the most at once.
  let inFlight = 0;
  let maxInFlight = 0;

  const server = http.createServer((req, res) => {
    if (stopped) {
      req.socket.destroy();
      return;
    }
    if (req.method !== 'OPTIONS') {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.once('close', () => {
        inFlight -= 1;
      });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err) => {
        if (!res.headersSent) send(req, res, 500, errorBody(String(err?.stack ?? err), 'server_error'));
      });
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function corsHeaders(req) {
    if (!cors) return { ...extraHeaders };
    return {
      ...extraHeaders,
      'Access-Control-Allow-Origin': req.headers.origin ?? '*',
      // Lets the page read the wait an error answer asks for.
      'Access-Control-Expose-Headers': 'Retry-After',
      Vary: 'Origin',
    };
  }

  function send(req, res, status, payload, extra = {}) {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      ...corsHeaders(req),
      ...extra,
    });
    res.end(text);
  }

  async function handle(req, res, raw) {
    const path = new URL(req.url, 'http://x').pathname.replace(/\/+$/, '') || '/';
    let body = raw;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const record = { path, method: req.method, headers: { ...req.headers }, body };
    const bodyKey = `${req.method} ${path} ${raw}`;
    record.seen = seenBodies.get(bodyKey) ?? 0;
    if (req.method !== 'OPTIONS') seenBodies.set(bodyKey, record.seen + 1);

    if (req.method === 'OPTIONS') {
      bump('preflight');
      record.kind = 'preflight';
      requests.push(record);
      if (!cors) {
        res.writeHead(405, { Allow: 'GET, POST' });
        res.end();
        return;
      }
      res.writeHead(204, {
        ...corsHeaders(req),
        'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
        'Access-Control-Allow-Headers': 'authorization, content-type',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }

    const isChat = req.method === 'POST' && path === '/v1/chat/completions';
    const isModels = req.method === 'GET' && path === '/v1/models';
    record.kind = isChat ? kindOf(body) : isModels ? 'models' : 'other';
    if (isChat) record.scenario = scenarioOf(messagesText(body));
    requests.push(record);
    if (log) {
      const extra = isChat ? ` ${record.kind} ${record.scenario} t=${body?.temperature}` : '';
      process.stderr.write(`${req.method} ${path}${extra}\n`);
    }

    if (apiKey !== null) {
      const auth = req.headers.authorization;
      if (auth !== `Bearer ${apiKey}`) {
        bump('unauthorized');
        const message = auth
          ? `Incorrect API key provided: ${auth.replace(/^Bearer\s+/, '').slice(0, 6)}****.`
          : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
        send(req, res, 401, errorBody(message, 'invalid_request_error', 'invalid_api_key'));
        return;
      }
    }

    if (isChat && Number.isFinite(slots)) {
      const free = await takeSlot();
      if (res.destroyed) free();
      else res.once('close', free);
    }
    const delay = typeof delayMs === 'function' ? await delayMs(record) : delayMs;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    if (stopped || res.destroyed) {
      // Gone while this request waited: no reply, and it does not count as answered.
      record.lost = true;
      req.socket.destroy();
      return;
    }

    const injected = fail ? fail(record) : null;
    if (injected !== null && injected !== undefined && injected !== false) {
      const spec = typeof injected === 'number' ? { status: injected } : injected;
      bump('failed');
      if (spec.drop) {
        bump('dropped');
        record.failed = 'drop';
        const text = JSON.stringify({ id: 'chatcmpl-dropped', object: 'chat.completion', choices: [] });
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(text) + 100,
          ...corsHeaders(req),
        });
        res.write(text.slice(0, 20));
        // Let the headers and the first bytes go out, then cut the connection.
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      record.failed = spec.status;
      send(
        req,
        res,
        spec.status,
        spec.body ?? errorBody(`Injected HTTP ${spec.status}`, spec.status >= 500 ? 'server_error' : 'invalid_request_error'),
        spec.headers ?? {},
      );
      return;
    }

    if (isModels) {
      bump('models');
      send(req, res, 200, { object: 'list', data: modelList });
      return;
    }
    if (!isChat) {
      bump('not_found');
      send(req, res, 404, errorBody(`Unknown request: ${req.method} ${path}`, 'invalid_request_error'));
      return;
    }
    if (typeof body !== 'object' || body === null || !Array.isArray(body.messages)) {
      bump('bad_request');
      send(req, res, 400, errorBody("'messages' is a required property", 'invalid_request_error'));
      return;
    }

    const kind = record.kind;
    bump(kind);
    bump(`${kind}:${record.scenario}`);
    let attempt = 0;
    if (kind === 'relabel_reply') {
      const key = userText(body);
      attempt = relabelAttempts.get(key) ?? 0;
      relabelAttempts.set(key, attempt + 1);
    }
    const garbled = garble ? garble(record) : null;
    const content = typeof garbled === 'string' ? garbled : replyFor(kind, body, attempt);
    if (typeof garbled === 'string') {
      bump('garbled');
      record.garbled = true;
    }
    record.reply = content;
    const promptChars = messagesText(body).length;
    const usage = {
      prompt_tokens: Math.ceil(promptChars / 4),
      completion_tokens: Math.ceil(content.length / 4),
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    sequence += 1;
    const response = {
      id: `chatcmpl-scripted-${sequence}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: typeof body.model === 'string' && body.model ? body.model : modelList[0]?.id ?? 'scripted-model',
      choices: [
        { index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' },
      ],
      usage,
    };
    if (tweak) tweak(record, response);
    send(req, res, 200, response);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;

  return {
    url: `http://${host}:${actualPort}/v1`,
    port: actualPort,
    requests,
    /**
     * Counts so far: per kind (failure_analysis, extracted_outcome, relabel_reply, judge_reply,
     * unknown), per kind and scenario ('judge_reply:judge-reject'), and models, preflight,
     * unauthorized, failed (injected faults, drops included), dropped, garbled, not_found,
     * bad_request. Calls answered with a reply count under their kind; requests that came while
     * the endpoint was stopped count nowhere. Missing keys read as 0.
     */
    counts() {
      const snapshot = { ...tally };
      for (const key of [...KINDS, 'unknown', 'models', 'preflight', 'unauthorized', 'failed', 'dropped', 'garbled'])
        snapshot[key] ??= 0;
      snapshot.chat = KINDS.reduce((n, k) => n + snapshot[k], 0) + snapshot.unknown;
      return snapshot;
    },
    /** Requests (preflights aside) being handled now, and the most there were at once;
     * `serving`: the most chat calls answered at once (at most `slots`). */
    concurrency() {
      return { now: inFlight, max: maxInFlight, serving: maxServing };
    },
    /** Forgets recorded requests, counts, retry state and the most requests at once. */
    reset() {
      maxInFlight = inFlight;
      maxServing = serving;
      requests.length = 0;
      for (const key of Object.keys(tally)) delete tally[key];
      relabelAttempts.clear();
      seenBodies.clear();
    },
    /**
     * The endpoint goes away: the port stops listening (new connections are refused), idle
     * connections close, and requests arriving on connections still open, or still waiting for
     * their reply (delayMs), are cut without a reply. A reply already on its way is delivered.
     */
    async stopListening() {
      stopped = true;
      server.close();
      server.closeIdleConnections();
    },
    /** The endpoint comes back on the same port. */
    async listenAgain() {
      stopped = false;
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(actualPort, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

function parseArgs(argv) {
  const options = { port: 8787, log: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--port') options.port = Number(value());
    else if (arg === '--host') options.host = value();
    else if (arg === '--no-cors') options.cors = false;
    else if (arg === '--api-key') options.apiKey = value();
    else if (arg === '--delay-ms') options.delayMs = Number(value());
    else if (arg === '--slots') options.slots = Number(value());
    else if (arg === '--quiet') options.log = false;
    else if (arg === '-h' || arg === '--help') {
      console.log(
        'Usage: node endpoint.mjs [--port 8787] [--host 127.0.0.1] [--no-cors] [--api-key K] [--delay-ms N] [--slots N] [--quiet]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(String(err.message));
    process.exit(2);
  }
  const endpoint = await startEndpoint(options);
  console.log(`scripted endpoint listening at ${endpoint.url}`);
  console.log(`scenarios (put ${marker('NAME')} at the start of an observation): ${SCENARIOS.join(', ')}`);
  const stop = async () => {
    await endpoint.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
