// Tests of the scripted endpoint: node --test tests/e2e/support/endpoint.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  startEndpoint,
  marker,
  scenarioOf,
  kindOf,
  hindsightPromptFor,
  SCENARIOS,
  flaky,
} from './endpoint.mjs';

// Prompts shaped like the app's templates (src/llm/templates/*.j2), with one trajectory.
function trajectorySteps(scenario) {
  const first = scenario ? `${marker(scenario)} ` : '';
  return [
    {
      action: 'search_products',
      input: '{"query": "oat flour", "limit": 3}',
      observation: `${first}1. Bio Oat Flour 1 kg — €3.49 (in stock)\n2. Oat Flour 750 g — €1.89`,
    },
    { action: 'add_to_cart', input: '{"product_id": "bio-oat-flour-1kg", "quantity": 2}', observation: 'Cart: Bio Oat Flour 1 kg × 2 = €6.98.' },
  ];
}

function stepsText(steps, withThought) {
  return steps
    .map(
      (s, i) =>
        `<step number="${i + 1}">\n${withThought ? 'Thought: look it up\n' : ''}Action: ${s.action}(${s.input})\nResult:\n${s.observation}\n</step>`,
    )
    .join('\n');
}

const schemaText = {
  failure_analysis: '{"properties": {"is_failure": {}, "failure_type": {}}}',
  extracted_outcome: '{"properties": {"actual_achievements": {}, "key_observations": {}}}',
  relabel_reply: '{"properties": {"hindsight_prompt": {}, "is_valid_replay": {}}}',
  judge_reply: '{"properties": {"is_valid": {}, "confidence": {}, "rejection_reason": {}}}',
};

function detectMessages(scenario) {
  return [
    { role: 'system', content: `You review recorded runs.\nSchema of the answer:\n${schemaText.failure_analysis}` },
    {
      role: 'user',
      content: `The user's request:\n<request>\nOrder oat flour\n</request>\n\nThe agent's run, 2 steps:\n${stepsText(trajectorySteps(scenario), true)}\n\nGive your assessment as the JSON object described.`,
    },
  ];
}

function extractMessages(scenario) {
  return [
    { role: 'system', content: `You write down what an AI agent actually accomplished.\n${schemaText.extracted_outcome}` },
    {
      role: 'user',
      content: `The user's request:\n<request>\nOrder oat flour\n</request>\n\nThe agent's run, 2 steps:\n${stepsText(trajectorySteps(scenario), true)}\n\nList what the run actually achieved as the JSON object described.`,
    },
  ];
}

function relabelMessages(achievements) {
  return [
    { role: 'system', content: `You turn failed runs into training examples.\n${schemaText.relabel_reply}` },
    {
      role: 'user',
      content: `How this user writes:\n<style_sample>\nOrder oat flour\n</style_sample>\n\nThe run took 2 steps.\n\nWhat the run actually achieved:\n${achievements.map((a) => `- ${a}`).join('\n')}\n\nKey observations:\n- (none recorded)\n\nWrite the request this run fully satisfies, as the JSON object described.`,
    },
  ];
}

function judgeMessages(hindsight, scenario) {
  return [
    { role: 'system', content: `You check training examples.\n${schemaText.judge_reply}` },
    {
      role: 'user',
      content: `The request:\n<request>\n${hindsight}\n</request>\n\nThe recorded run, 2 steps:\n${stepsText(trajectorySteps(scenario), false)}\n\nDoes this run satisfy the request? Answer with the JSON object described.`,
    },
  ];
}

function body(kind, messages, { temperature = 0.3, structured = 'json_schema' } = {}) {
  const b = { model: 'scripted-model', messages, temperature, max_tokens: 2048 };
  if (structured === 'json_schema')
    b.response_format = { type: 'json_schema', json_schema: { name: kind, schema: {}, strict: true } };
  else if (structured === 'json_object') b.response_format = { type: 'json_object' };
  return b;
}

async function chat(ep, b, headers = {}) {
  const res = await fetch(`${ep.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(b),
  });
  const json = await res.json();
  return { res, json, content: json.choices?.[0]?.message?.content };
}

// The whole chain for one trajectory, as the pipeline would call it: extract, then relabel and
// judge attempts (K = 3, θ = 0.5). Returns what each call got.
async function runChain(ep, scenario) {
  const ex = await chat(ep, body('extracted_outcome', extractMessages(scenario)));
  const outcome = JSON.parse(ex.content);
  const relabels = [];
  const judges = [];
  for (let k = 1; k <= 3; k++) {
    const r = await chat(ep, body('relabel_reply', relabelMessages(outcome.actual_achievements), { temperature: k === 1 ? 0.3 : 0.7 }));
    let parsed = null;
    try {
      parsed = JSON.parse(r.content);
    } catch {
      relabels.push({ prose: r.content });
      continue;
    }
    relabels.push(parsed);
    if (parsed.is_valid_replay && parsed.confidence >= 0.5) {
      const j = await chat(ep, body('judge_reply', judgeMessages(parsed.hindsight_prompt, scenario), { temperature: 0 }));
      const verdict = JSON.parse(j.content);
      judges.push(verdict);
      if (verdict.is_valid && verdict.confidence >= 0.5) break;
    }
  }
  return { outcome, relabels, judges };
}

describe('scripted endpoint', () => {
  let ep;
  before(async () => {
    ep = await startEndpoint();
  });
  after(async () => {
    await ep.close();
  });

  test('listens on 127.0.0.1 with a free port and serves /v1/models', async () => {
    assert.match(ep.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.ok(ep.port > 0);
    const res = await fetch(`${ep.url}/models`);
    assert.equal(res.status, 200);
    const json = await res.json();
    assert.equal(json.object, 'list');
    assert.equal(json.data[0].id, 'scripted-model');
    assert.equal(json.data[0].object, 'model');
    assert.equal(json.data[0].owned_by, 'tests');
    assert.equal(ep.counts().models, 1);
  });

  test('chat replies have content, finish_reason and usage', async () => {
    const b = body('judge_reply', judgeMessages('Summarize the search', 'accept'));
    const { res, json } = await chat(ep, b);
    assert.equal(res.status, 200);
    assert.equal(json.object, 'chat.completion');
    assert.equal(json.model, 'scripted-model');
    assert.equal(json.choices[0].finish_reason, 'stop');
    assert.equal(json.choices[0].message.role, 'assistant');
    const chars = b.messages.reduce((n, m) => n + m.content.length, 0);
    assert.ok(Math.abs(json.usage.prompt_tokens - chars / 4) <= 2, JSON.stringify(json.usage));
    assert.equal(json.usage.completion_tokens, Math.ceil(json.choices[0].message.content.length / 4));
    assert.equal(json.usage.total_tokens, json.usage.prompt_tokens + json.usage.completion_tokens);
  });

  test('recognizes the call from the schema name, else from the prompt', () => {
    for (const [kind, messages] of [
      ['failure_analysis', detectMessages()],
      ['extracted_outcome', extractMessages()],
      ['relabel_reply', relabelMessages(['Step 1 (search_products): found'])],
      ['judge_reply', judgeMessages('Do it')],
    ]) {
      assert.equal(kindOf(body(kind, messages)), kind);
      assert.equal(kindOf(body(kind, messages, { structured: 'json_object' })), kind);
      assert.equal(kindOf(body(kind, messages, { structured: 'prompt_only' })), kind);
      // Without the quoted schema fields, the template sentences still tell.
      const bare = messages.map((m) => (m.role === 'system' ? { ...m, content: 'Be helpful.' } : m));
      assert.equal(kindOf(body(kind, bare, { structured: 'prompt_only' })), kind);
    }
    assert.equal(kindOf({ messages: [{ role: 'user', content: 'hello' }] }), 'unknown');
  });

  test('markers select scenarios; none or unknown means accept', () => {
    assert.equal(scenarioOf(`x ${marker('retry')} y`), 'retry');
    assert.equal(scenarioOf('nothing here'), 'accept');
    assert.equal(scenarioOf('[[scenario:nope]]'), 'accept');
    for (const s of SCENARIOS) assert.equal(scenarioOf(marker(s)), s);
  });

  test('detection returns a valid failure analysis', async () => {
    const a = JSON.parse((await chat(ep, body('failure_analysis', detectMessages()))).content);
    assert.deepEqual(Object.keys(a), ['is_failure', 'failure_type', 'severity', 'weight', 'recoverable', 'explanation']);
    assert.equal(a.is_failure, true);
    assert.equal(a.failure_type, 'wrong_result');
    assert.ok(a.weight >= 0.3 && a.severity <= 1);
    const low = JSON.parse((await chat(ep, body('failure_analysis', detectMessages('low-weight')))).content);
    assert.ok(low.weight < 0.3);
    const nf = JSON.parse((await chat(ep, body('failure_analysis', detectMessages('not-failure')))).content);
    assert.equal(nf.is_failure, false);
    assert.equal(nf.failure_type, 'none');
  });

  test('extraction returns facts from the prompt and carries the marker', async () => {
    const o = JSON.parse((await chat(ep, body('extracted_outcome', extractMessages('fallback')))).content);
    assert.deepEqual(Object.keys(o), ['actual_achievements', 'key_observations', 'limitations']);
    assert.equal(o.actual_achievements.length, 2);
    assert.match(o.actual_achievements[0], /^Step 1 \(search_products\): \[\[scenario:fallback\]\] 1\. Bio Oat Flour/);
    assert.match(o.actual_achievements[1], /^Step 2 \(add_to_cart\): Cart:/);
    assert.ok(o.key_observations.length >= 1);
    assert.equal(typeof o.limitations, 'string');
  });

  test('accept: relabel 0.9, judge valid 0.8, deterministic prompt', async () => {
    ep.reset();
    const { relabels, judges } = await runChain(ep, 'accept');
    assert.equal(relabels.length, 1);
    assert.equal(relabels[0].hindsight_prompt, 'Summarize what the search_products step found (scenario accept)');
    assert.equal(relabels[0].hindsight_prompt, hindsightPromptFor('search_products', 'accept'));
    assert.equal(relabels[0].is_valid_replay, true);
    assert.equal(relabels[0].confidence, 0.9);
    assert.deepEqual(judges, [{ is_valid: true, confidence: 0.8, rejection_reason: '' }]);
    assert.equal(ep.counts()['relabel_reply:accept'], 1);
    assert.equal(ep.counts()['judge_reply:accept'], 1);
  });

  test('no marker: accept', async () => {
    const { relabels, judges } = await runChain(ep, null);
    assert.equal(relabels[0].hindsight_prompt, 'Summarize what the search_products step found (scenario accept)');
    assert.equal(judges[0].is_valid, true);
  });

  test('retry: prose first, then valid; temperatures 0.3 then 0.7', async () => {
    ep.reset();
    const { relabels, judges } = await runChain(ep, 'retry');
    assert.equal(relabels.length, 2);
    assert.ok(relabels[0].prose && !relabels[0].prose.includes('{'));
    assert.equal(relabels[1].confidence, 0.9);
    assert.match(relabels[1].hindsight_prompt, /\(scenario retry\)$/);
    assert.equal(judges.length, 1);
    assert.equal(judges[0].is_valid, true);
    const temps = ep.requests.filter((r) => r.kind === 'relabel_reply').map((r) => r.body.temperature);
    assert.deepEqual(temps, [0.3, 0.7]);
    // A rerun of the same trajectory behaves the same way.
    const again = await runChain(ep, 'retry');
    assert.equal(again.relabels.length, 2);
  });

  test('judge-reject: the judge rejects every candidate', async () => {
    ep.reset();
    const { relabels, judges } = await runChain(ep, 'judge-reject');
    assert.equal(relabels.length, 3);
    assert.ok(relabels.every((r) => r.is_valid_replay && r.confidence === 0.9));
    assert.equal(judges.length, 3);
    assert.ok(judges.every((j) => j.is_valid === false && j.rejection_reason !== ''));
    assert.equal(ep.counts()['judge_reply:judge-reject'], 3);
  });

  test('fallback: c = 0.45, no judge call', async () => {
    ep.reset();
    const { relabels, judges } = await runChain(ep, 'fallback');
    assert.equal(relabels.length, 3);
    assert.ok(relabels.every((r) => r.is_valid_replay && r.confidence === 0.45));
    assert.ok(0.45 >= 0.8 * 0.5 && 0.45 < 0.5);
    assert.equal(judges.length, 0);
    assert.equal(ep.counts().judge_reply, 0);
  });

  test('low: c = 0.2', async () => {
    const { relabels, judges } = await runChain(ep, 'low');
    assert.ok(relabels.every((r) => r.is_valid_replay && r.confidence === 0.2));
    assert.equal(judges.length, 0);
  });

  test('not-valid: is_valid_replay false with an empty prompt', async () => {
    const { relabels, judges } = await runChain(ep, 'not-valid');
    assert.equal(relabels.length, 3);
    assert.ok(relabels.every((r) => r.is_valid_replay === false && r.hindsight_prompt === ''));
    assert.equal(judges.length, 0);
  });

  test('unparseable: every relabel reply is prose', async () => {
    const { relabels } = await runChain(ep, 'unparseable');
    assert.equal(relabels.length, 3);
    assert.ok(relabels.every((r) => r.prose));
  });

  test('unknown paths answer 404, bad bodies 400', async () => {
    assert.equal((await fetch(`${ep.url}/completions`, { method: 'POST', body: '{}' })).status, 404);
    const res = await fetch(`${ep.url}/chat/completions`, { method: 'POST', body: 'not json' });
    assert.equal(res.status, 400);
    assert.ok((await res.json()).error.message);
  });

  test('CORS on: preflight reflects the origin, replies carry Allow-Origin', async () => {
    const origin = 'http://127.0.0.1:4173';
    const pre = await fetch(`${ep.url}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), origin);
    assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
    assert.match(pre.headers.get('access-control-allow-headers'), /content-type/);
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    const res = await fetch(`${ep.url}/models`, { headers: { origin } });
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
  });
});

describe('options', () => {
  test('cors: false sends no CORS headers at all', async () => {
    const ep = await startEndpoint({ cors: false });
    try {
      const origin = 'http://localhost:8080';
      const pre = await fetch(`${ep.url}/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      assert.notEqual(pre.status, 204);
      for (const res of [pre, await fetch(`${ep.url}/models`, { headers: { origin } })]) {
        for (const name of res.headers.keys()) assert.ok(!name.startsWith('access-control-'), name);
      }
      const { res, content } = await chat(ep, body('judge_reply', judgeMessages('x')), { origin });
      assert.equal(res.status, 200);
      assert.ok(content);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    } finally {
      await ep.close();
    }
  });

  test('apiKey: 401 with an OpenAI-style error unless the bearer matches', async () => {
    const ep = await startEndpoint({ apiKey: 'sk-test-123' });
    try {
      for (const headers of [{}, { authorization: 'Bearer sk-wrong' }]) {
        const res = await fetch(`${ep.url}/models`, { headers: { origin: 'http://x.test', ...headers } });
        assert.equal(res.status, 401);
        assert.equal(res.headers.get('access-control-allow-origin'), 'http://x.test');
        const json = await res.json();
        assert.equal(json.error.type, 'invalid_request_error');
        assert.equal(json.error.code, 'invalid_api_key');
        assert.ok(json.error.message.length > 10);
      }
      const r = await chat(ep, body('judge_reply', judgeMessages('x')));
      assert.equal(r.res.status, 401);
      // Preflights never carry credentials and are answered anyway.
      const pre = await fetch(`${ep.url}/models`, { method: 'OPTIONS', headers: { origin: 'http://x.test' } });
      assert.equal(pre.status, 204);
      const ok = await fetch(`${ep.url}/models`, { headers: { authorization: 'Bearer sk-test-123' } });
      assert.equal(ok.status, 200);
      const c = await chat(ep, body('judge_reply', judgeMessages('x')), { authorization: 'Bearer sk-test-123' });
      assert.equal(c.res.status, 200);
      assert.equal(ep.counts().unauthorized, 3);
    } finally {
      await ep.close();
    }
  });

  test('models overrides the list', async () => {
    const ep = await startEndpoint({ models: ['gpt-4o-mini', { id: 'custom', object: 'model', owned_by: 'me' }] });
    try {
      const json = await (await fetch(`${ep.url}/models`)).json();
      assert.deepEqual(json.data.map((m) => m.id), ['gpt-4o-mini', 'custom']);
      assert.equal(json.data[1].owned_by, 'me');
    } finally {
      await ep.close();
    }
  });

  test('delayMs delays replies; fail injects HTTP errors; requests are recorded', async () => {
    const ep = await startEndpoint({
      delayMs: 150,
      fail: (req) => (req.kind === 'judge_reply' ? 503 : null),
    });
    try {
      const start = Date.now();
      const r = await chat(ep, body('relabel_reply', relabelMessages(['Step 1 (a): b'])), { authorization: 'Bearer anything' });
      assert.ok(Date.now() - start >= 140);
      assert.equal(r.res.status, 200);
      const j = await chat(ep, body('judge_reply', judgeMessages('x')));
      assert.equal(j.res.status, 503);
      assert.equal(j.json.error.type, 'server_error');
      assert.equal(ep.counts().failed, 1);
      assert.equal(ep.requests.length, 2);
      const rec = ep.requests[0];
      assert.equal(rec.path, '/v1/chat/completions');
      assert.equal(rec.method, 'POST');
      assert.equal(rec.headers.authorization, 'Bearer anything');
      assert.equal(rec.body.temperature, 0.3);
      assert.equal(rec.kind, 'relabel_reply');
      assert.equal(rec.scenario, 'accept');
    } finally {
      await ep.close();
    }
  });

  test('concurrency() counts the requests being handled and the most at once', async () => {
    const ep = await startEndpoint({ delayMs: 1000 });
    try {
      assert.deepEqual(ep.concurrency(), { now: 0, max: 0, serving: 0 });
      const calls = [0, 1, 2, 3, 4].map(() => chat(ep, body('relabel_reply', relabelMessages(['Step 1 (a): b']))));
      // All five arrive, then wait for their reply together.
      while (ep.requests.length < 5) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(ep.concurrency(), { now: 5, max: 5, serving: 0 });
      await Promise.all(calls);
      assert.deepEqual(ep.concurrency(), { now: 0, max: 5, serving: 0 });
      await chat(ep, body('relabel_reply', relabelMessages(['Step 1 (a): b'])));
      assert.equal(ep.concurrency().max, 5);
      ep.reset();
      assert.deepEqual(ep.concurrency(), { now: 0, max: 0, serving: 0 });
    } finally {
      await ep.close();
    }
  });

  test('slots: calls beyond them wait their turn, in arrival order', async () => {
    const ep = await startEndpoint({ delayMs: 50, slots: 1 });
    try {
      const order = [];
      const calls = [0, 1, 2, 3].map(async (i) => {
        // Arrival order: one call after the other has reached the endpoint.
        while (ep.requests.length < i) await new Promise((r) => setTimeout(r, 5));
        await chat(ep, body('judge_reply', judgeMessages(`call ${i}`)));
        order.push(i);
      });
      await Promise.all(calls);
      assert.deepEqual(order, [0, 1, 2, 3]);
      assert.equal(ep.concurrency().serving, 1, 'one answered at a time');
    } finally {
      await ep.close();
    }
    const wide = await startEndpoint({ delayMs: 50, slots: 2 });
    try {
      await Promise.all([0, 1, 2, 3].map((i) => chat(wide, body('judge_reply', judgeMessages(`call ${i}`)))));
      assert.equal(wide.concurrency().serving, 2);
    } finally {
      await wide.close();
    }
  });

  test('fail may return a full reply spec', async () => {
    const ep = await startEndpoint({ fail: () => ({ status: 400, body: { error: { message: 'response_format is not supported' } } }) });
    try {
      const r = await chat(ep, body('judge_reply', judgeMessages('x')));
      assert.equal(r.res.status, 400);
      assert.equal(r.json.error.message, 'response_format is not supported');
    } finally {
      await ep.close();
    }
  });

  test('command line: prints the URL and stops on SIGTERM', async () => {
    const script = fileURLToPath(new URL('./endpoint.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0', '--quiet', '--api-key', 'sk-cli'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /listening at (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      const res = await fetch(`${url}/models`, { headers: { authorization: 'Bearer sk-cli' } });
      assert.equal(res.status, 200);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      child.kill('SIGTERM');
      const { code } = await exited;
      assert.equal(code, 0);
    }
  });
});

describe('faults', () => {
  test('fail may drop the connection in the middle of a reply', async () => {
    const ep = await startEndpoint({ fail: (req) => (req.seen === 0 ? { drop: true } : null) });
    try {
      const b = body('judge_reply', judgeMessages('x'));
      const first = await fetch(`${ep.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      assert.equal(first.status, 200, 'the headers came');
      await assert.rejects(first.text(), 'the body breaks off');
      const second = await chat(ep, b);
      assert.equal(second.res.status, 200);
      assert.ok(JSON.parse(second.content).is_valid);
      const counts = ep.counts();
      assert.equal(counts.failed, 1);
      assert.equal(counts.dropped, 1);
      assert.equal(counts.judge_reply, 1);
      assert.deepEqual(ep.requests.map((r) => r.seen), [0, 1]);
    } finally {
      await ep.close();
    }
  });

  test('error answers expose Retry-After to pages', async () => {
    const ep = await startEndpoint({ fail: () => ({ status: 429, headers: { 'Retry-After': '1' } }) });
    try {
      const r = await chat(ep, body('judge_reply', judgeMessages('x')), { origin: 'http://page.test' });
      assert.equal(r.res.status, 429);
      assert.equal(r.res.headers.get('retry-after'), '1');
      assert.match(r.res.headers.get('access-control-expose-headers'), /Retry-After/i);
    } finally {
      await ep.close();
    }
  });

  test('garble replaces the content of chat replies', async () => {
    const ep = await startEndpoint({ garble: (req) => (req.kind === 'judge_reply' ? 'not JSON at all' : null) });
    try {
      const j = await chat(ep, body('judge_reply', judgeMessages('x')));
      assert.equal(j.content, 'not JSON at all');
      const r = await chat(ep, body('relabel_reply', relabelMessages(['Step 1 (a): b'])));
      assert.equal(JSON.parse(r.content).is_valid_replay, true);
      assert.equal(ep.counts().garbled, 1);
      assert.equal(ep.requests[0].garbled, true);
    } finally {
      await ep.close();
    }
  });

  test('tweak changes the response before it is sent', async () => {
    const ep = await startEndpoint({
      tweak: (req, response) => {
        response.choices[0].finish_reason = 'length';
        response.usage.prompt_tokens = 3;
      },
    });
    try {
      const { json } = await chat(ep, body('judge_reply', judgeMessages('x')));
      assert.equal(json.choices[0].finish_reason, 'length');
      assert.equal(json.usage.prompt_tokens, 3);
      assert.equal(JSON.parse(json.choices[0].message.content).is_valid, true);
    } finally {
      await ep.close();
    }
  });

  test('flaky: deterministic by seed and request, bounded per request, about the rates asked', async () => {
    const bodies = Array.from({ length: 400 }, (_, i) => ({
      model: 'm',
      messages: [{ role: 'user', content: `request ${i}` }],
      temperature: 0.3,
    }));
    const req = (b, seen) => ({ method: 'POST', path: '/v1/chat/completions', body: b, seen, kind: 'judge_reply' });
    const a = flaky({ seed: 7 });
    const again = flaky({ seed: 7 });
    const other = flaky({ seed: 8 });
    let failures = 0;
    let garbage = 0;
    const kinds = new Set();
    for (const b of bodies) {
      const f = a.fail(req(b, 0));
      assert.deepEqual(f, again.fail(req(b, 0)), 'same seed, same fault');
      if (f) {
        failures += 1;
        kinds.add(typeof f === 'number' ? String(f) : f.drop ? 'drop' : String(f.status));
        if (f.status === 429) assert.equal(f.headers['Retry-After'], '1');
      }
      assert.equal(a.fail(req(b, 2)), null, 'never more than two failures for one request');
      if (a.garble(req(b, 0)) !== null) {
        garbage += 1;
        assert.equal(a.garble(req(b, 0)), a.garble(req(b, 5)), 'garbage does not depend on the sending');
      }
    }
    assert.ok(failures > 40 && failures < 120, `failures ${failures} of 400`);
    assert.ok(garbage > 40 && garbage < 120, `garbage ${garbage} of 400`);
    assert.deepEqual([...kinds].sort(), ['429', '500', 'drop']);
    const differs = bodies.some((b) => JSON.stringify(a.fail(req(b, 0))) !== JSON.stringify(other.fail(req(b, 0))));
    assert.ok(differs, 'another seed, other faults');
    // Never for anything but chat calls.
    assert.equal(a.fail({ method: 'GET', path: '/v1/models', body: '', seen: 0 }), null);
  });

  test('stopListening refuses connections until listenAgain, on the same port', async () => {
    const ep = await startEndpoint();
    try {
      assert.equal((await fetch(`${ep.url}/models`)).status, 200);
      await ep.stopListening();
      await assert.rejects(fetch(`${ep.url}/models`));
      await assert.rejects(fetch(`${ep.url}/models`));
      await ep.listenAgain();
      assert.equal((await fetch(`${ep.url}/models`)).status, 200);
      assert.equal(ep.counts().models, 2, 'refused requests count nowhere');
    } finally {
      await ep.close();
    }
  });

  test('a reply still waiting when the endpoint stops is cut and not counted', async () => {
    const ep = await startEndpoint({ delayMs: 300 });
    try {
      const pending = chat(ep, body('judge_reply', judgeMessages('x')));
      await new Promise((r) => setTimeout(r, 50));
      await ep.stopListening();
      await assert.rejects(pending);
      assert.equal(ep.counts().judge_reply, 0);
      assert.equal(ep.requests[0].lost, true);
    } finally {
      await ep.close();
    }
  });
});
