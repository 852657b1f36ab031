// Loading speed of the built app (dist/) against a plain page that reads the same file and
// does JSON.parse on every line, in the same browser, for BENCHMARKS.md. Not a test: it asserts
// no time, it measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/parse-ratio.mjs [--rounds R] [--workers N] [multiplier...]
//                                              (default: 3 rounds, as many workers as the app
//                                              starts, ×25 and ×100; --workers 0: the page reads)
//
// For each multiplier N the reference corpus (400 trajectories, 1.8 MB) is written N times over
// with fresh ids. Each round loads it in the app (a fresh profile, the file picker) and then in
// the plain page, one after the other (a pair), and measures:
// - the app: from the file input's change event until the file's row shows its trajectory
//   count; the longest main-thread task meanwhile (PerformanceObserver "longtask", which reports
//   tasks of 50 ms and more; "none" when there was none) and the longest gap between animation
//   frames;
// - the plain page: from the change event until every line of the file, read 1 MB at a time
//   like the app does, went through JSON.parse.
// The ratio of a pair is the app's trajectories per second over the plain page's lines per
// second; the script prints each pair and the medians.

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SCRATCH, openApp, pickFiles } from '../support/browser.mjs';
import { CORPUS_RECORDS, writeCorpus } from './corpus.mjs';

const args = process.argv.slice(2);
let rounds = 3;
let workers = null;
const multipliers = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--workers') workers = args[++i];
  else multipliers.push(Number(args[i]));
}
if (!Number.isInteger(rounds) || rounds < 1 || multipliers.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error('usage: node tests/e2e/bench/parse-ratio.mjs [--rounds R] [--workers N] [multiplier...]');
  process.exit(2);
}
if (multipliers.length === 0) multipliers.push(25, 100);

// Runs in the app's page before it starts: the change event, long tasks, frames, and when the
// file row shows `expected` trajectories.
function appProbe(expected) {
  const probe = { picked: null, loaded: null, tasks: [], frames: [] };
  window.__bench = probe;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) probe.tasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask', buffered: true });
  const frame = (t) => {
    probe.frames.push(t);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  document.addEventListener(
    'change',
    (e) => {
      if (e.target?.matches?.('[data-testid="file-input"]')) probe.picked = performance.now();
    },
    true,
  );
  const count = `${expected.toLocaleString('en-US')} trajectories`;
  const observer = new MutationObserver(() => {
    if (probe.loaded !== null) return;
    for (const row of document.querySelectorAll('[data-testid="file-row"]')) {
      if (row.textContent.includes(count)) {
        probe.loaded = performance.now();
        observer.disconnect();
      }
    }
  });
  const start = () => observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  if (document.body) start();
  else addEventListener('DOMContentLoaded', start);
}

// The plain page's script: reads the picked file 1 MB at a time and JSON.parses every line.
function plainPage() {
  const probe = { picked: null, done: null, lines: 0 };
  window.__bench = probe;
  document.getElementById('file').addEventListener('change', async (e) => {
    probe.picked = performance.now();
    const file = e.target.files[0];
    const decoder = new TextDecoder();
    let rest = '';
    const CHUNK = 1024 * 1024;
    for (let offset = 0; offset < file.size; offset += CHUNK) {
      const buffer = await file.slice(offset, offset + CHUNK).arrayBuffer();
      const text = rest + decoder.decode(buffer, { stream: true });
      const lines = text.split('\n');
      rest = lines.pop();
      for (const line of lines) {
        if (line.trim()) {
          JSON.parse(line);
          probe.lines++;
        }
      }
    }
    rest += decoder.decode();
    if (rest.trim()) {
      JSON.parse(rest);
      probe.lines++;
    }
    probe.done = performance.now();
  });
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function waitFor(page, fn, limitMs) {
  const t0 = Date.now();
  while (!(await page.evaluate(fn))) {
    if (Date.now() - t0 > limitMs) throw new Error('gave up waiting');
    await sleep(100);
  }
}

async function runApp(file, expected) {
  const app = await openApp();
  try {
    await app.page.context().addInitScript(appProbe, expected);
    if (workers !== null) {
      await app.page.context().addInitScript((n) => localStorage.setItem('agenther-workers', n), workers);
    }
    await app.reload();
    await pickFiles(app.page, [file]);
    await waitFor(app.page, () => window.__bench.loaded !== null, 20 * 60_000);
    const b = await app.page.evaluate(() => window.__bench);
    const during = (t) => t >= b.picked && t <= b.loaded;
    const tasks = b.tasks.filter(([start, d]) => during(start) || during(start + d)).map(([, d]) => d);
    let gap = 0;
    for (let i = 1; i < b.frames.length; i++) {
      if (b.frames[i] >= b.picked && b.frames[i - 1] <= b.loaded) gap = Math.max(gap, b.frames[i] - b.frames[i - 1]);
    }
    await app.checkConsole();
    return {
      seconds: (b.loaded - b.picked) / 1000,
      longestTaskMs: tasks.length ? Math.round(Math.max(...tasks)) : null,
      longTasks: tasks.length,
      longestGapMs: Math.round(gap),
    };
  } finally {
    await app.close();
  }
}

async function runPlain(file, expected) {
  const app = await openApp();
  try {
    const page = await app.context.newPage();
    await page.setContent('<!doctype html><input type="file" id="file">');
    await page.evaluate(plainPage);
    await page.locator('#file').setInputFiles(file);
    await waitFor(page, () => window.__bench.done !== null, 10 * 60_000);
    const b = await page.evaluate(() => window.__bench);
    if (b.lines !== expected) throw new Error(`the plain page parsed ${b.lines} lines, not ${expected}`);
    return { seconds: (b.done - b.picked) / 1000 };
  } finally {
    await app.close();
  }
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const dir = join(SCRATCH, 'bench');
await mkdir(dir, { recursive: true });
const summary = [];
for (const n of multipliers) {
  const expected = CORPUS_RECORDS * n;
  const file = join(dir, `ratio-x${n}.jsonl`);
  const bytes = await writeCorpus(file, expected);
  const pairs = [];
  try {
    for (let r = 1; r <= rounds; r++) {
      const app = await runApp(file, expected);
      const plain = await runPlain(file, expected);
      const pair = {
        appPerS: expected / app.seconds,
        plainPerS: expected / plain.seconds,
        ...app,
      };
      pair.ratio = pair.appPerS / pair.plainPerS;
      pairs.push(pair);
      console.error(
        `  ×${n} round ${r}: app ${app.seconds.toFixed(2)} s (${Math.round(pair.appPerS)}/s), plain ` +
          `${plain.seconds.toFixed(2)} s (${Math.round(pair.plainPerS)}/s), ratio ${pair.ratio.toFixed(3)}, ` +
          `longest task ${app.longestTaskMs ?? 'none ≥ 50'} ms (${app.longTasks} long tasks), ` +
          `longest frame gap ${app.longestGapMs} ms`,
      );
    }
  } finally {
    await rm(file, { force: true });
  }
  summary.push({
    n,
    expected,
    mb: Math.round(bytes / 1e5) / 10,
    app: median(pairs.map((p) => p.appPerS)),
    plain: median(pairs.map((p) => p.plainPerS)),
    ratio: median(pairs.map((p) => p.ratio)),
    longestTask: pairs.some((p) => p.longestTaskMs !== null)
      ? Math.max(...pairs.map((p) => p.longestTaskMs ?? 0))
      : null,
    longTasks: median(pairs.map((p) => p.longTasks)),
    gap: median(pairs.map((p) => p.longestGapMs)),
  });
}
console.log(
  '| file | trajectories | app, trajectories/s | plain JSON.parse, lines/s | ratio (median of pairs) | ' +
    'longest main-thread task (worst round) | long tasks (median) | longest frame gap (median) |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const s of summary) {
  console.log(
    `| corpus × ${s.n}, ${s.mb} MB | ${s.expected.toLocaleString('en-US')} | ${Math.round(s.app).toLocaleString('en-US')} | ` +
      `${Math.round(s.plain).toLocaleString('en-US')} | ${s.ratio.toFixed(2)}× | ` +
      `${s.longestTask === null ? 'none ≥ 50 ms' : `${s.longestTask} ms`} | ${s.longTasks} | ${s.gap} ms |`,
  );
}
console.log(`\n${rounds} paired rounds per file, workers: ${workers ?? 'default'}, ${new Date().toISOString()}`);
