// Where the page's main thread spends the time while a file loads, for BENCHMARKS.md: loads the
// corpus × N in the built app (dist/) under a Chromium performance trace and prints the tasks
// of 50 ms and more on the page's main thread with the functions that took most of each
// (self time from the trace's CPU samples), then the same over the whole load. Not a test.
//
//   trunk build --release
//   node tests/e2e/bench/load-profile.mjs [--top K] [--trace out.json] [--names app.wasm]
//        [--worker-names reader.wasm] [--slice bytes] [multiplier]      (default ×25)
//
// The background reader's threads are listed too (how busy, and their functions);
// `--worker-names` names its functions as `--names` does the page's, e.g. from
//   tests/e2e/node_modules/.bin/wasm-opt -O3 -g target/wasm-bindgen/release/agenther-worker_bg.wasm -o target/reader.wasm
// `--slice` sets the size of the slices the readers are handed (the page's own setting).
//
// The built app's WebAssembly has no function names (wasm-opt drops them), so functions read
// `wasm-function[n]`. `--names` takes the names from a copy optimized the same way with its
// name section kept, e.g.
//   tests/e2e/node_modules/.bin/wasm-opt -Oz -g target/wasm-bindgen/release/agenther_bg.wasm -o target/named.wasm
// (the same passes give the same function indexes).

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SCRATCH, openApp, pickFiles } from '../support/browser.mjs';
import { CORPUS_RECORDS, writeCorpus } from './corpus.mjs';

const args = process.argv.slice(2);
let top = 8;
let traceOut = null;
let n = 25;
let wasmNames = null;
let workerNames = null;
let sliceBytes = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--names') wasmNames = functionNames(await readFile(args[++i]));
  else if (args[i] === '--slice') sliceBytes = Number(args[++i]);
  else if (args[i] === '--worker-names') workerNames = functionNames(await readFile(args[++i]));
  else if (args[i] === '--trace') traceOut = args[++i];
  else n = Number(args[i]);
}

const LONG_MS = 50;

/** The function names of a WebAssembly module's name section, by function index. */
function functionNames(wasm) {
  const names = {};
  let p = 8;
  const leb = () => {
    let value = 0;
    let shift = 0;
    let byte;
    do {
      byte = wasm[p++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  while (p < wasm.length) {
    const id = wasm[p++];
    const size = leb();
    const end = p + size;
    if (id === 0) {
      const length = leb();
      const name = wasm.subarray(p, p + length).toString();
      p += length;
      while (name === 'name' && p < end) {
        const sub = wasm[p++];
        const subEnd = leb() + p;
        if (sub === 1) {
          for (let count = leb(); count > 0; count--) {
            const index = leb();
            const l = leb();
            names[index] = wasm.subarray(p, p + l).toString();
            p += l;
          }
        }
        p = subEnd;
      }
    }
    p = end;
  }
  return names;
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

const expected = CORPUS_RECORDS * n;
const dir = join(SCRATCH, 'bench');
await mkdir(dir, { recursive: true });
const file = join(dir, `profile-x${n}.jsonl`);
await writeCorpus(file, expected);
const app = await openApp();
let events = [];
try {
  const { page } = app;
  if (sliceBytes) await page.evaluate((n) => localStorage.setItem('agenther-slice-bytes', String(n)), sliceBytes);
  await page.evaluate((count) => {
    window.__loaded = null;
    const text = `${count.toLocaleString('en-US')} trajectories`;
    const observer = new MutationObserver(() => {
      for (const row of document.querySelectorAll('[data-testid="file-row"]')) {
        if (row.textContent.includes(text) && window.__loaded === null) {
          window.__loaded = performance.now();
          observer.disconnect();
        }
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  }, expected);
  const cdp = await app.context.newCDPSession(page);
  const collected = [];
  cdp.on('Tracing.dataCollected', (e) => collected.push(...e.value));
  const finished = new Promise((ok) => cdp.once('Tracing.tracingComplete', ok));
  await cdp.send('Tracing.start', {
    traceConfig: {
      includedCategories: [
        'devtools.timeline',
        'disabled-by-default-devtools.timeline',
        'v8.execute',
        'disabled-by-default-v8.cpu_profiler',
      ],
    },
    transferMode: 'ReportEvents',
  });
  await pickFiles(page, [file]);
  while (!(await page.evaluate(() => window.__loaded !== null))) await sleep(100);
  await sleep(300);
  await cdp.send('Tracing.end');
  await finished;
  events = collected;
  if (traceOut) await writeFile(traceOut, JSON.stringify({ traceEvents: events }));
} finally {
  await app.close();
  await rm(file, { force: true });
}

// The renderer's main thread: the one whose thread_name is CrRendererMain in the process that
// ran the app's tasks (the one with the most RunTask time).
const names = new Map();
for (const e of events) {
  if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args.name);
}
const busy = new Map();
for (const e of events) {
  const key = `${e.pid}:${e.tid}`;
  if (e.name === 'RunTask' && e.ph === 'X' && names.get(key) === 'CrRendererMain') {
    busy.set(key, (busy.get(key) ?? 0) + e.dur);
  }
}
const main = [...busy.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
if (!main) throw new Error('no main thread in the trace');
const [pid, tid] = main.split(':').map(Number);
const tasks = events
  .filter((e) => e.pid === pid && e.tid === tid && e.name === 'RunTask' && e.ph === 'X')
  .sort((a, b) => a.ts - b.ts);

// A thread's CPU profile: its nodes, (time, node) samples and each node's parent.
const profileOf = (pid, tid) => {
  const nodes = new Map();
  const samples = [];
  let profileId = null;
  for (const e of events) {
    if (e.name === 'Profile' && e.pid === pid && e.tid === tid) profileId = e.id;
  }
  let clock = null;
  for (const e of events.filter((e) => e.name === 'ProfileChunk' && e.pid === pid && e.id === profileId)) {
    const data = e.args.data;
    for (const node of data.cpuProfile?.nodes ?? []) nodes.set(node.id, node);
    const ids = data.cpuProfile?.samples ?? [];
    const deltas = data.timeDeltas ?? [];
    for (let i = 0; i < ids.length; i++) {
      clock = (clock ?? (events.find((x) => x.name === 'Profile' && x.id === profileId)?.args?.data?.startTime ?? 0)) + deltas[i];
      samples.push([clock, ids[i]]);
    }
  }
  const parent = new Map();
  for (const node of nodes.values()) {
    if (node.parent !== undefined) parent.set(node.id, node.parent);
    for (const c of node.children ?? []) parent.set(c, node.id);
  }
  return { nodes, samples, parent };
};
const mainProfile = profileOf(pid, tid);
const label = (profile, id) => {
  const f = profile.nodes.get(id)?.callFrame;
  if (!f) return `node ${id}`;
  return f.functionName || `(anonymous ${f.url?.split('/').pop() ?? ''}:${f.lineNumber})`;
};
// Self time (the sampled function) and total time (every function on the sampled stack).
const times = (profile, from, to, total) => {
  const { samples, parent } = profile;
  const out = new Map();
  for (let i = 0; i + 1 < samples.length; i++) {
    const [t, id] = samples[i];
    if (t < from || t >= to) continue;
    const dt = samples[i + 1][0] - t;
    const seen = new Set();
    for (let n = id; n !== undefined; n = total ? parent.get(n) : undefined) {
      const name = label(profile, n);
      if (seen.has(name)) continue;
      seen.add(name);
      out.set(name, (out.get(name) ?? 0) + dt);
    }
  }
  return [...out.entries()].sort((a, b) => b[1] - a[1]);
};
const renamer = (table) => (table ? (s) => s.replace(/wasm-function\[(\d+)\]/, (m, i) => table[i] ?? m) : (s) => s);
const print = (title, from, to, profile = mainProfile, rename = renamer(wasmNames)) => {
  console.log(title);
  for (const total of [false, true]) {
    console.log(total ? '   total time:' : '   self time:');
    for (const [name, us] of times(profile, from, to, total).slice(0, top)) {
      console.log(`    ${(us / 1000).toFixed(1).padStart(8)} ms  ${rename(name).slice(0, 140)}`);
    }
  }
};

// The background readers' threads: how busy each was, and where their time went.
const workerBusy = new Map();
for (const e of events) {
  const key = `${e.pid}:${e.tid}`;
  if (e.name === 'RunTask' && e.ph === 'X' && /Worker/.test(names.get(key) ?? '')) {
    workerBusy.set(key, (workerBusy.get(key) ?? 0) + e.dur);
  }
}
for (const [key, us] of workerBusy) {
  const [wpid, wtid] = key.split(':').map(Number);
  print(`background reader ${key}: busy ${(us / 1000).toFixed(0)} ms`, 0, Infinity, profileOf(wpid, wtid), renamer(workerNames));
}

const long = tasks.filter((t) => t.dur >= LONG_MS * 1000);
const first = tasks[0]?.ts ?? 0;
console.log(`×${n}, ${expected} trajectories: ${tasks.length} tasks, ${long.length} of ${LONG_MS} ms or more`);
for (const t of long) print(`  task at ${((t.ts - first) / 1000).toFixed(0)} ms: ${(t.dur / 1000).toFixed(0)} ms`, t.ts, t.ts + t.dur);
const total = tasks.reduce((s, t) => s + t.dur, 0);
print(`whole load: main thread busy ${(total / 1000).toFixed(0)} ms of ${((tasks.at(-1).ts + tasks.at(-1).dur - first) / 1000).toFixed(0)} ms`, first, Infinity);
