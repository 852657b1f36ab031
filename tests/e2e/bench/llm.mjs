// LLM-stage benchmark of the built app (dist/), for BENCHMARKS.md. Not a test: it asserts no
// time, it measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/llm.mjs [--runs 3] [--latency 400] [--timeout 1] [--json]
//
// For each concurrency c of 1, 4, 6 and 16, over one endpoint and over three (three scripted
// endpoints on three ports, the second and third given as replicas), and for each run, it opens
// the app in a fresh headless Chromium profile, loads 4·c trajectories of the `accept` scenario
// (three calls each: extraction, relabeling, second judge, so 12·c calls), and runs the LLM
// stage against endpoints that answer every call after `latency` ms, with a request timeout of
// `timeout` s (above the latency: any timeout is spurious).
//
// - actual: from the first request any endpoint received to the last reply it sent;
// - ideal: calls × latency ÷ requests in flight, with c requests in flight, and also with
//   min(c, 6 × endpoints), what the browser opens over HTTP/1.1;
// - efficiency = ideal ÷ actual (medians over the runs);
// - peak: the most requests the endpoints were handling at once;
// - retries: the retries the run panel counts (the endpoints never fail, so each is a spurious
//   timeout), and requests the endpoints saw cut before their reply.

import { startEndpoint } from '../support/endpoint.mjs';
import { configure, dropFiles, numberIn, openApp } from '../support/browser.mjs';
import { acceptFile } from '../support/trajectories.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const asJson = args.includes('--json');
const RUNS = option('--runs', 3);
const LATENCY = option('--latency', 400);
const TIMEOUT_S = option('--timeout', 1);
const CONCURRENCIES = [1, 4, 6, 16];
const ENDPOINTS = [1, 3];
const BROWSER_PER_HOST = 6;
if (![RUNS, LATENCY, TIMEOUT_S].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error('usage: node tests/e2e/bench/llm.mjs [--runs N] [--latency MS] [--timeout S] [--json]');
  process.exit(2);
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function once(concurrency, endpoints) {
  const span = { first: null, last: null, now: 0, peak: 0 };
  const delayMs = async () => {
    span.first ??= performance.now();
    span.now += 1;
    span.peak = Math.max(span.peak, span.now);
    await sleep(LATENCY);
    span.now -= 1;
    span.last = performance.now();
    return 0;
  };
  const eps = [];
  for (let i = 0; i < endpoints; i++) eps.push(await startEndpoint({ delayMs }));
  const app = await openApp();
  try {
    const { page } = app;
    const trajectories = 4 * concurrency;
    await dropFiles(page, [await acceptFile(trajectories, 'bench')]);
    await configure(page, {
      baseUrl: eps[0].url,
      model: 'scripted-model',
      fields: {
        concurrency,
        timeout: TIMEOUT_S,
        replicas: eps
          .slice(1)
          .map((ep) => ep.url)
          .join('\n'),
      },
    });
    await page.getByTestId('run').click();
    await page
      .getByTestId('run-panel')
      .and(page.locator('[data-state="done"]'))
      .waitFor({ timeout: 10 * 60_000 });
    const stat = async (id) => numberIn(await page.getByTestId(id).textContent());
    const calls = eps.reduce((n, ep) => n + ep.counts().chat, 0);
    const accepted = await stat('progress-accepted');
    if (accepted !== trajectories) throw new Error(`${accepted} of ${trajectories} accepted`);
    const actual = span.last - span.first;
    const open = Math.min(concurrency, BROWSER_PER_HOST * endpoints);
    return {
      calls,
      actual_ms: actual,
      efficiency: (calls * LATENCY) / concurrency / actual,
      efficiency_open: (calls * LATENCY) / open / actual,
      peak: span.peak,
      retries: await stat('progress-retries'),
      cut: eps.reduce((n, ep) => n + ep.requests.filter((r) => r.lost).length, 0),
    };
  } finally {
    await app.close();
    for (const ep of eps) await ep.close();
  }
}

const results = [];
for (const endpoints of ENDPOINTS) {
  for (const concurrency of CONCURRENCIES) {
    const runs = [];
    for (let r = 0; r < RUNS; r++) runs.push(await once(concurrency, endpoints));
    const row = {
      endpoints,
      concurrency,
      calls: runs[0].calls,
      actual_ms: Math.round(median(runs.map((x) => x.actual_ms))),
      efficiency: median(runs.map((x) => x.efficiency)),
      efficiency_open: median(runs.map((x) => x.efficiency_open)),
      efficiencies: runs.map((x) => Number(x.efficiency.toFixed(3))),
      peak: median(runs.map((x) => x.peak)),
      retries: runs.map((x) => x.retries),
      cut: runs.map((x) => x.cut),
    };
    results.push(row);
    console.log(
      `endpoints ${endpoints}  concurrency ${String(concurrency).padStart(2)}  calls ${row.calls}  ` +
        `actual ${row.actual_ms} ms  efficiency ${row.efficiency.toFixed(3)} ` +
        `(${row.efficiencies.join(' ')}; of what the browser opens ${row.efficiency_open.toFixed(3)})  ` +
        `peak ${row.peak}  retries ${row.retries.join('/')}  cut ${row.cut.join('/')}`,
    );
  }
}
console.log(`latency ${LATENCY} ms, timeout ${TIMEOUT_S} s, ${RUNS} runs per setting, medians`);
if (asJson) console.log(JSON.stringify({ latency_ms: LATENCY, timeout_s: TIMEOUT_S, runs: RUNS, results }, null, 2));
