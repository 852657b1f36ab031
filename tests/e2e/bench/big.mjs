// A large file, loaded and run, in the built app (dist/): for BENCHMARKS.md. Not a test: it
// measures and prints.
//
//   trunk build --release
//   node tests/e2e/bench/big.mjs [multiplier]     (default 1100: 440,000 trajectories, 2.0 GB)
//
// Writes the reference corpus `multiplier` times over (bench/corpus.mjs) to a temporary file,
// opens the app in a fresh headless Chromium profile and:
// - picks the file and waits until its row counts every trajectory (time, wasm memory);
// - runs a pilot of PILOT trajectories against the scripted endpoint (rule-based detection and
//   extraction, the relabeler and judge scripted), until the run panel says done;
// - opens the first accepted row's detail (its steps come out of the packed session);
// - downloads the SFT samples and the run report, and checks their rows;
// - reports the wasm memory at each step (it never shrinks: the last figure is the peak).
//
// The file is deleted at the end. `--json` prints the figures as JSON too.

import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SCRATCH, configure, download, jsonLines, openApp, pickFiles } from '../support/browser.mjs';
import { startEndpoint } from '../support/endpoint.mjs';
import { CORPUS_RECORDS, writeCorpus } from './corpus.mjs';

const PILOT = 40;
const LIMIT_MS = 30 * 60_000;

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const numbers = args.filter((a) => a !== '--json').map(Number);
const multiplier = numbers[0] ?? 1100;
if (!Number.isInteger(multiplier) || multiplier < 1 || numbers.length > 1) {
  console.error('usage: node tests/e2e/bench/big.mjs [--json] [multiplier]');
  process.exit(2);
}
const mb = (bytes) => Math.round(bytes / 1e5) / 10;

function probe() {
  window.__big = { memory: null };
  addEventListener('TrunkApplicationStarted', (e) => {
    window.__big.memory = e.detail?.wasm?.memory ?? null;
  });
}

const wasmBytes = (page) => page.evaluate(() => window.__big.memory?.buffer?.byteLength ?? null);

const dir = join(SCRATCH, 'bench');
await mkdir(dir, { recursive: true });
const path = join(dir, `big-${multiplier}.jsonl`);
const trajectories = multiplier * CORPUS_RECORDS;
console.error(`writing corpus × ${multiplier} (${trajectories.toLocaleString('en-US')} trajectories)...`);
const size = await writeCorpus(path, trajectories);
const endpoint = await startEndpoint({});
const figures = { multiplier, trajectories, mb: mb(size) };
let app;
try {
  app = await openApp();
  const { page } = app;
  await page.addInitScript(probe);
  await page.reload();
  await page.getByTestId('file-input').waitFor({ state: 'attached' });
  figures.startMb = mb(await wasmBytes(page));

  // --- Loading.
  const count = `${trajectories.toLocaleString('en-US')} trajectories`;
  let t0 = Date.now();
  await pickFiles(page, [path]);
  await page.getByTestId('file-row').filter({ hasText: count }).waitFor({ timeout: LIMIT_MS });
  figures.loadedS = (Date.now() - t0) / 1000;
  figures.loadedMb = mb(await wasmBytes(page));
  console.error(`loaded in ${figures.loadedS} s, wasm ${figures.loadedMb} MB`);

  // --- A pilot run.
  await configure(page, {
    baseUrl: endpoint.url,
    model: 'scripted-model',
    selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
  });
  await page.getByTestId('pilot-size').fill(String(PILOT));
  await page.getByTestId('pilot-size').blur();
  t0 = Date.now();
  await page.getByTestId('run-first').click();
  const confirm = page.getByTestId('confirm-run-start');
  const panel = page.getByTestId('run-panel');
  const done = panel.and(page.locator('[data-state="done"]'));
  await Promise.race([confirm.waitFor({ timeout: LIMIT_MS }), done.waitFor({ timeout: LIMIT_MS })]);
  if (await confirm.isVisible()) await confirm.click();
  await done.waitFor({ timeout: LIMIT_MS });
  figures.pilotS = (Date.now() - t0) / 1000;
  figures.ranMb = mb(await wasmBytes(page));
  const accepted = await page.getByTestId('progress-accepted').textContent();
  figures.accepted = Number(accepted.match(/[\d,]+/)[0].replace(/,/g, ''));
  console.error(`pilot of ${PILOT} in ${figures.pilotS} s: ${figures.accepted} accepted, wasm ${figures.ranMb} MB`);

  // --- The detail of an accepted row: its steps, opened from the packed session.
  await page.getByTestId('filter-status').selectOption('accepted');
  await page.getByTestId('result-row').first().getByTestId('cell-id').click();
  const steps = page.getByTestId('trajectory-detail').getByTestId('detail-step');
  await steps.first().waitFor();
  figures.detailSteps = await steps.count();

  // --- Exports.
  t0 = Date.now();
  const sft = await download(page, 'download-sft');
  const report = await download(page, 'download-report');
  figures.exportS = (Date.now() - t0) / 1000;
  const rows = jsonLines(sft.text);
  assert.equal(rows.length, figures.accepted, 'an SFT row per accepted trajectory');
  assert.ok(rows.every((r) => r.chosen.length >= 2), 'every SFT row has its dialogue');
  const reportJson = JSON.parse(report.text);
  figures.reportTrajectories = reportJson.trajectories?.length ?? null;
  figures.peakMb = mb(await wasmBytes(page));
  figures.bytesPerByte = Math.round((figures.peakMb / figures.mb) * 1000) / 1000;
  console.error(`exports in ${figures.exportS} s: ${rows.length} SFT rows; wasm ${figures.peakMb} MB`);
} finally {
  await app?.close();
  await endpoint.close();
  await rm(path, { force: true });
}

console.log(
  '| file | trajectories | loaded | wasm at start | after loading | pilot run | after run and exports | bytes per byte |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
console.log(
  `| corpus × ${multiplier}, ${figures.mb} MB | ${trajectories.toLocaleString('en-US')} | ${figures.loadedS} s | ` +
    `${figures.startMb} MB | ${figures.loadedMb} MB | ${PILOT} in ${figures.pilotS} s, ${figures.accepted} accepted | ` +
    `${figures.peakMb} MB | ${figures.bytesPerByte} |`,
);
if (asJson) console.log(JSON.stringify(figures, null, 2));
