// Loading benchmark of the built app (dist/), for BENCHMARKS.md. Not a test: it asserts no
// time, it measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/load.mjs [multiplier...]        (default: 10 100 250)
//
// For each multiplier N it writes the reference corpus (tests/fixtures/reference/corpus.jsonl,
// 400 trajectories, 1.8 MB) N times over with fresh trajectory ids to a temporary file, opens
// the app in a fresh headless Chromium profile, picks the file and measures:
//
// - loaded: from the file input's change event until the file's row shows its trajectory count;
// - saved: until the saved session in IndexedDB holds every trajectory (the session record of
//   database `agenther` counts them all and the file; the file itself is kept in the `sources`
//   store, which is checked to hold it);
// - the longest and the 95th-percentile gap between animation frames while loading, and the
//   longest while saving;
// - memory once saved: the wasm memory (it never shrinks, so this is its peak) and the JS heap;
//   the renderer process's resident memory when the page has started and at its peak (VmHWM),
//   and the peak of all the browser's processes together (the sum of their Pss, which counts
//   shared pages once, sampled every 0.5 s);
// - the storage the site uses once saved (navigator.storage.estimate()).
//
// A crash, a page error, or a page that stops answering for longer than FREEZE_MS ends the
// run of that file with what was seen up to then. `--json` prints the results as JSON too.

import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SCRATCH, openApp, pickFiles } from '../support/browser.mjs';
import { CORPUS_RECORDS, writeCorpus } from './corpus.mjs';

/** A page that does not answer for this long counts as frozen. */
const FREEZE_MS = 15_000;
/** How long a file may take to load, and then to be saved, before the run gives up. */
const LIMIT_MS = 20 * 60_000;

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const multipliers = args.filter((a) => a !== '--json').map(Number);
if (multipliers.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error('usage: node tests/e2e/bench/load.mjs [--json] [multiplier...]');
  process.exit(2);
}
if (multipliers.length === 0) multipliers.push(10, 100, 250);

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const mb = (bytes) => (bytes == null ? null : Math.round(bytes / 1e5) / 10);

// Runs in the page before the app: animation-frame times, the file input's change event, the
// file row's count, and the wasm memory once the app has started.
function pageProbe(expected) {
  const probe = { frames: [], picked: null, loaded: null, memory: null };
  window.__bench = probe;
  const frame = (t) => {
    probe.frames.push(t);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  addEventListener('TrunkApplicationStarted', (e) => {
    probe.memory = e.detail?.wasm?.memory ?? null;
  });
  document.addEventListener(
    'change',
    (e) => {
      if (e.target?.matches?.('[data-testid="file-input"]')) probe.picked = performance.now();
    },
    true,
  );
  const count = `${expected.toLocaleString('en-US')} trajectories`;
  const check = () => {
    if (probe.loaded !== null) return;
    for (const row of document.querySelectorAll('[data-testid="file-row"]')) {
      if (row.textContent.includes(count)) {
        probe.loaded = performance.now();
        observer.disconnect();
      }
    }
  };
  const observer = new MutationObserver(check);
  const start = () => observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  if (document.body) start();
  else addEventListener('DOMContentLoaded', start);
}

// Runs in the page once loaded: polls the saved session until it holds `expected` trajectories
// and one file, then counts the `trajectories` store.
function pollSaved(expected) {
  const probe = window.__bench;
  probe.saved = null;
  probe.usage = null;
  probe.storeCount = null;
  probe.pollError = null;
  const request = (r) =>
    new Promise((ok, fail) => {
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
  const run = async () => {
    const names = (await indexedDB.databases()).map((d) => d.name);
    if (!names.includes('agenther')) throw new Error(`no database agenther (${names.join(', ')})`);
    const db = await request(indexedDB.open('agenther'));
    for (;;) {
      const records = await request(db.transaction('sessions').objectStore('sessions').getAll());
      const record = records.map((r) => JSON.parse(r)).find((r) => r.trajectories === expected && r.files === 1);
      if (record) {
        const saved = performance.now();
        probe.storeCount = await request(db.transaction('sources').objectStore('sources').count());
        probe.usage = (await navigator.storage.estimate()).usage;
        db.close();
        probe.saved = saved;
        return;
      }
      await new Promise((ok) => setTimeout(ok, 100));
    }
  };
  run().catch((e) => (probe.pollError = String(e?.message ?? e)));
}

/** The gaps between consecutive frame times in [from, to]. */
function gaps(frames, from, to) {
  const out = [];
  for (let i = 1; i < frames.length; i++) {
    if (frames[i] < from) continue;
    if (frames[i - 1] > to) break;
    out.push(frames[i] - frames[i - 1]);
  }
  return out;
}

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** `{pid, ppid, cmdline}` of every process. */
async function processes() {
  const out = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ');
      out.push({ pid: Number(name), ppid, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The browser whose profile's path starts with `profile`, and every process under it. */
async function browserProcesses(profile) {
  const all = await processes();
  const root = all.find((p) => p.cmdline.includes(`--user-data-dir=${profile}`) && !p.cmdline.includes('--type='));
  if (!root) return [];
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i].pid));
  return tree;
}

const kB = (text, name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;

/** VmRSS, VmHWM (peak RSS) and Pss (RSS with shared pages split among their users) of `pid`
 * in bytes, or null. */
async function residentMemory(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    return { rss: kB(status, 'VmRSS'), hwm: kB(status, 'VmHWM'), pss: kB(rollup, 'Pss') };
  } catch {
    return null;
  }
}

/**
 * Samples the browser's memory every `everyMs` until `stop()`: the renderers' RSS at the first
 * sample, their peak RSS, and the peak of the Pss of all the browser's processes together.
 */
function sampleMemory(profile, everyMs = 500) {
  const peak = { first: null, total: 0, renderer: 0, rendererHwm: 0, renderers: 0 };
  let running = true;
  const done = (async () => {
    while (running) {
      const tree = await browserProcesses(profile);
      let total = 0;
      const renderers = [];
      for (const p of tree) {
        const m = await residentMemory(p.pid);
        if (!m) continue;
        total += m.pss;
        if (p.cmdline.includes('--type=renderer')) renderers.push(m);
      }
      peak.total = Math.max(peak.total, total);
      peak.renderers = Math.max(peak.renderers, renderers.length);
      if (peak.first === null && renderers.length) peak.first = Math.max(...renderers.map((m) => m.rss));
      for (const m of renderers) {
        peak.renderer = Math.max(peak.renderer, m.rss);
        peak.rendererHwm = Math.max(peak.rendererHwm, m.hwm);
      }
      await sleep(everyMs);
    }
  })();
  return async () => {
    running = false;
    await done;
    return peak;
  };
}

/** `page.evaluate` that gives up after FREEZE_MS: `{value}` or `{frozen: true}`. */
async function ask(page, fn, arg) {
  let timer;
  const timeout = new Promise((ok) => (timer = setTimeout(() => ok({ frozen: true }), FREEZE_MS)));
  try {
    return await Promise.race([page.evaluate(fn, arg).then((value) => ({ value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function measure(n, dir) {
  const expected = CORPUS_RECORDS * n;
  const file = join(dir, `corpus-x${n}.jsonl`);
  const bytes = await writeCorpus(file, expected);
  const result = { multiplier: n, trajectories: expected, mb: mb(bytes), events: [] };
  const note = (what) => {
    const at = ((Date.now() - started) / 1000).toFixed(1);
    result.events.push(`${at} s: ${what}`);
    if (!asJson) console.error(`  ×${n} ${at} s: ${what}`);
  };
  let started = Date.now();
  const app = await openApp();
  const stopSampling = sampleMemory(join(SCRATCH, 'profile-'));
  const { page } = app;
  let crashed = false;
  page.on('crash', () => {
    crashed = true;
    note('the page crashed');
  });
  try {
    await page.context().addInitScript(pageProbe, expected);
    await app.reload();
    started = Date.now();
    await pickFiles(page, [file]);

    // Loading: wait for the file row, watching for a crash, page errors or a freeze.
    const phase = async (name, done) => {
      const t0 = Date.now();
      for (;;) {
        if (crashed) return false;
        if (app.seen.errors.length) {
          note(`${name}: page errors: ${app.seen.errors.join(' | ')}`);
          return false;
        }
        const answer = await ask(page, done);
        if (answer.frozen) {
          note(`${name}: the page did not answer for ${FREEZE_MS / 1000} s`);
          return false;
        }
        if (answer.value) return true;
        if (Date.now() - t0 > LIMIT_MS) {
          note(`${name}: not done after ${LIMIT_MS / 60_000} min`);
          return false;
        }
        await sleep(250);
      }
    };
    const loaded = await phase('loading', () => window.__bench.loaded !== null);
    if (loaded) {
      note('loaded');
      await page.evaluate(pollSaved, expected);
      const saved = await phase('saving', () => window.__bench.saved !== null || window.__bench.pollError !== null);
      if (saved) note('saved');
    }

    const state = await ask(page, () => {
      const b = window.__bench;
      const notice = document.querySelector('[data-testid="storage-notice"]')?.textContent ?? null;
      return {
        picked: b.picked,
        loaded: b.loaded,
        saved: b.saved ?? null,
        storeCount: b.storeCount ?? null,
        usage: b.usage ?? null,
        pollError: b.pollError ?? null,
        frames: b.frames,
        wasm: b.memory?.buffer?.byteLength ?? null,
        heap: performance.memory?.usedJSHeapSize ?? null,
        notice,
      };
    });
    if (!state.frozen) {
      const s = state.value;
      const end = s.saved ?? s.loaded ?? s.frames[s.frames.length - 1];
      const loading = gaps(s.frames, s.picked, s.loaded ?? end);
      const saving = s.loaded !== null ? gaps(s.frames, s.loaded, end) : [];
      Object.assign(result, {
        loadedS: s.loaded !== null ? (s.loaded - s.picked) / 1000 : null,
        savedS: s.saved !== null ? (s.saved - s.picked) / 1000 : null,
        storeCount: s.storeCount,
        storageMb: mb(s.usage),
        longestGapMs: loading.length ? Math.round(Math.max(...loading)) : null,
        p95GapMs: loading.length ? Math.round(percentile(loading, 95)) : null,
        longestSavingGapMs: saving.length ? Math.round(Math.max(...saving)) : null,
        wasmMb: mb(s.wasm),
        jsHeapMb: mb(s.heap),
        notice: s.notice,
      });
      if (s.pollError) note(`polling IndexedDB failed: ${s.pollError}`);
      if (s.notice) note(`storage notice: ${s.notice}`);
      if (s.saved !== null && s.storeCount !== 1) {
        note(`the sources store holds ${s.storeCount} files, not the one loaded`);
      }
    }
    if (app.seen.errors.length) result.errors = [...app.seen.errors];
  } finally {
    const peak = await stopSampling();
    Object.assign(result, {
      rendererStartMb: mb(peak.first),
      rendererPeakMb: mb(peak.rendererHwm),
      browserPeakMb: mb(peak.total),
    });
    await app.close();
    await rm(file, { force: true });
  }
  return result;
}

function row(r) {
  const s = (v, unit = '') => (v == null ? '—' : `${v.toLocaleString('en-US')}${unit}`);
  const secs = (v) => (v == null ? '—' : `${v.toFixed(1)} s`);
  return (
    `| corpus × ${r.multiplier}, ${Math.round(r.mb)} MB | ${s(r.trajectories)} | ${secs(r.loadedS)} | ` +
    `${secs(r.savedS)} | ${s(r.longestGapMs, ' ms')} | ${s(r.p95GapMs, ' ms')} | ` +
    `${s(r.longestSavingGapMs, ' ms')} | ${s(r.wasmMb, ' MB')} | ${s(r.jsHeapMb, ' MB')} | ` +
    `${s(r.rendererStartMb, ' MB')} → ${s(r.rendererPeakMb, ' MB')} | ${s(r.browserPeakMb, ' MB')} | ` +
    `${s(r.storageMb, ' MB')} |`
  );
}

const dir = join(SCRATCH, 'bench');
await mkdir(dir, { recursive: true });
const results = [];
for (const n of multipliers) {
  if (!asJson) console.error(`corpus × ${n}...`);
  results.push(await measure(n, dir));
}
console.log(
  '| file | trajectories | until loaded | until saved | longest frame gap | 95th percentile gap | ' +
    'longest gap while saving | wasm memory | JS heap | renderer RSS, start → peak | browser peak PSS | ' +
    'storage used |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) console.log(row(r));
for (const r of results) {
  if (r.events.some((e) => !/: (loaded|saved)$/.test(e)) || r.errors) {
    console.log(`\n× ${r.multiplier}:`);
    for (const e of r.events) console.log(`  ${e}`);
    for (const e of r.errors ?? []) console.log(`  page error: ${e}`);
  }
}
if (asJson) console.log(JSON.stringify(results, null, 2));
