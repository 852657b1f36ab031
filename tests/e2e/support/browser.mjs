// Shared set-up of the end-to-end tests: serves ../../dist on 127.0.0.1, drives headless
// Chromium through playwright-core with downloads accepted, records console errors, page
// errors and CSP violations, and tears everything down even when a test fails.
//
//   import { openApp } from './support/browser.mjs';
//   const app = await openApp();
//   try { await app.page.getByTestId('run').click(); ... } finally { await app.close(); }
//
// Build the app first (`trunk build --release`); `.ci/test` does.

import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = resolve(here, '..');
export const REPO = resolve(E2E_DIR, '..', '..');
export const DIST = join(REPO, 'dist');
export const DATA = join(E2E_DIR, 'data');
/** Browser profiles and Chromium's temporary files go here (git-ignored). */
export const SCRATCH = resolve(process.env.E2E_SCRATCH ?? join(REPO, 'target', 'e2e'));
export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

// Playwright adds --headless and --no-sandbox itself.
export const CHROMIUM_FLAGS = [
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

/** The file names of the downloads. */
export const DOWNLOAD_NAMES = {
  sft: /^agenther-sft-\d{8}-\d{6}\.jsonl$/,
  dpo: /^agenther-dpo-\d{8}-\d{6}\.jsonl$/,
  sharegpt: /^agenther-sharegpt-\d{8}-\d{6}\.jsonl$/,
  report: /^agenther-report-\d{8}-\d{6}\.json$/,
};

/** Fails with a clear message when dist/ has not been built. */
export async function ensureDist() {
  await access(join(DIST, 'index.html')).catch(() => {
    throw new Error(`${DIST}/index.html is missing: run \`trunk build --release\` first`);
  });
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago). */
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

/** Records console errors, page errors and CSP violations of `page`. */
async function watch(page) {
  const seen = { errors: [], warnings: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.errors.push(msg.text());
    if (msg.type() === 'warning') seen.warnings.push(msg.text());
  });
  page.on('pageerror', (err) => seen.errors.push(`page error: ${err.message}`));
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`),
    );
  });
  return seen;
}

/**
 * Serves dist/ (cross-origin isolated unless `isolated` is false) and opens it in a fresh
 * Chromium profile with downloads accepted.
 * Returns `{ page, context, url, seen, reload(), checkConsole(allowed), close() }`.
 * `close()` never throws and may be called more than once.
 */
export async function openApp({ viewport = { width: 1280, height: 900 }, isolated = true } = {}) {
  await ensureDist();
  const tmp = join(SCRATCH, 'tmp');
  await mkdir(tmp, { recursive: true });
  process.env.TMPDIR = tmp; // Playwright's own temporary files
  let server, context, profile;
  const close = async () => {
    await context?.close().catch(() => {});
    context = undefined;
    if (profile) await rm(profile, { recursive: true, force: true }).catch(() => {});
    profile = undefined;
    await server?.close().catch(() => {});
    server = undefined;
  };
  try {
    server = await startServer(DIST, { isolated });
    profile = await mkdtemp(join(SCRATCH, 'profile-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_FLAGS,
      env: { ...process.env, TMPDIR: tmp },
      viewport,
      acceptDownloads: true,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const seen = await watch(page);
    const url = server.url;
    const response = await page.goto(url);
    assert.equal(response.status(), 200);
    await appReady(page);
    return {
      page,
      context,
      url,
      seen,
      /** Reloads the page and waits until the app is up again. */
      async reload() {
        await page.reload();
        await appReady(page);
      },
      /**
       * Asserts that the page logged no console error, page error or CSP violation, except
       * console errors matching one of `allowed` (regular expressions).
       */
      async checkConsole(allowed = []) {
        const unexpected = seen.errors.filter((e) => !allowed.some((re) => re.test(e)));
        assert.deepEqual(unexpected, [], 'console errors');
        const csp = await page.evaluate(() => window.__cspViolations ?? []);
        assert.deepEqual(csp, [], 'CSP violations');
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Waits until the app has rendered its controls. */
async function appReady(page) {
  await page.getByTestId('drop-zone').waitFor({ timeout: 30_000 });
}

/** Console errors Chromium logs for requests a test makes fail on purpose. */
export const NETWORK_ERRORS = {
  /** A response without CORS headers, and the failed preflight or request it causes. */
  cors: [/blocked by CORS policy/, /Failed to load resource: net::ERR_FAILED/],
  /** Nothing listening. */
  refused: [/Failed to load resource: net::ERR_CONNECTION_REFUSED/],
  /** An HTTP error status, e.g. 401. */
  status: (code) => new RegExp(`Failed to load resource: the server responded with a status of ${code}`),
};

/**
 * Makes the element `testid` visible as a user would: opens the folded section (<details>,
 * such as the advanced settings) it sits in. Returns its locator.
 */
export async function reveal(page, testid) {
  const element = page.getByTestId(testid);
  const summary = page.locator('details:not([open])', { has: element }).locator('> summary');
  if ((await summary.count()) > 0) await summary.first().click();
  return element;
}

/** Types `value` into the field `testid` and leaves it, as a user does. */
export async function setField(page, testid, value) {
  const field = await reveal(page, testid);
  await field.fill(String(value));
  await field.blur();
}

/** Chooses `value` in the select `testid`. */
export async function choose(page, testid, value) {
  await (await reveal(page, testid)).selectOption(value);
}

/** Points the app at `baseUrl` with `model` and a few other settings (`{testid: value}`). */
export async function configure(page, { baseUrl, model, apiKey, selects = {}, fields = {} }) {
  if (baseUrl !== undefined) await setField(page, 'base-url', baseUrl);
  if (apiKey !== undefined) await setField(page, 'api-key', apiKey);
  if (model !== undefined) await setField(page, 'model', model);
  for (const [testid, value] of Object.entries(fields)) await setField(page, testid, value);
  for (const [testid, value] of Object.entries(selects)) await choose(page, testid, value);
  await assertNoSettingsError(page);
}

/** The settings form shows no validation error. */
export async function assertNoSettingsError(page) {
  const error = page.getByTestId('settings-error');
  if ((await error.count()) > 0) {
    assert.fail(`settings error: ${await error.first().textContent()}`);
  }
}

/** Loads files from disk through the file picker. */
export async function pickFiles(page, paths) {
  await page.getByTestId('file-input').setInputFiles(paths);
}

/** Drops files on the drop zone, as a drag from the desktop does: `[{name, text}]`. */
export async function dropFiles(page, files) {
  const dataTransfer = await page.evaluateHandle((files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([f.text], f.name, { type: 'application/json' }));
    return dt;
  }, files);
  const zone = page.getByTestId('drop-zone');
  await zone.dispatchEvent('dragenter', { dataTransfer });
  await zone.dispatchEvent('dragover', { dataTransfer });
  await zone.dispatchEvent('drop', { dataTransfer });
  await dataTransfer.dispose();
}

/** Reads a file of tests/e2e/data. */
export async function dataFile(name) {
  return readFile(join(DATA, name), 'utf8');
}

/** The trajectories (native records) of a JSONL file of tests/e2e/data that parse. */
export async function dataRecords(name) {
  const records = [];
  for (const line of (await dataFile(name)).split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      // a deliberately broken line
    }
  }
  return records;
}

/** Clicks Run and waits until the run panel says `done`. */
export async function runToEnd(page, { timeout = 60_000 } = {}) {
  await page.getByTestId('run').click();
  const panel = page.getByTestId('run-panel');
  await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout });
}

/**
 * Clicks the check-connection button and waits for the verdict of that click (`ok` or
 * `error`), not one shown before it: returns `{status, text}`.
 */
export async function checkConnection(page, { timeout = 30_000 } = {}) {
  // Notes any change of the status element from now on (a new element, or a new data-status).
  await page.evaluate(() => {
    window.__e2eStatusChanged = false;
    window.__e2eObserver?.disconnect();
    const touches = (node) =>
      node.nodeType === 1 &&
      (node.matches('[data-testid="connection-status"]') ||
        node.querySelector('[data-testid="connection-status"]') !== null);
    window.__e2eObserver = new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' ? touches(r.target) : [...r.addedNodes].some(touches)) {
          window.__e2eStatusChanged = true;
        }
      }
    });
    window.__e2eObserver.observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-status'],
    });
  });
  await page.getByTestId('check-connection').click();
  await page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid="connection-status"]');
      return window.__e2eStatusChanged && el && ['ok', 'error'].includes(el.dataset.status);
    },
    null,
    { timeout },
  );
  await page.evaluate(() => window.__e2eObserver?.disconnect());
  const status = page.getByTestId('connection-status');
  return {
    status: await status.getAttribute('data-status'),
    text: (await status.textContent()).replace(/\s+/g, ' ').trim(),
  };
}

const text = async (locator) => ((await locator.count()) ? (await locator.first().textContent()).trim() : null);

/**
 * Every row of the results table, across its pages (it goes back to the first page after):
 * `[{id, status, type, severity, recoverable, outcome, hindsight, confidence, judges}]`.
 */
export async function tableRows(page) {
  const rows = [];
  const table = page.getByTestId('results-table');
  await table.waitFor();
  const next = page.getByTestId('page-next');
  const prev = page.getByTestId('page-prev');
  for (let guard = 0; guard < 100; guard++) {
    const onPage = table.getByTestId('result-row');
    const n = await onPage.count();
    for (let i = 0; i < n; i++) {
      const row = onPage.nth(i);
      rows.push({
        id: await row.getAttribute('data-id'),
        status: await row.getAttribute('data-status'),
        type: await text(row.getByTestId('cell-type')),
        severity: await text(row.getByTestId('cell-severity')),
        recoverable: await text(row.getByTestId('cell-recoverable')),
        outcome: await text(row.getByTestId('cell-outcome')),
        hindsight: await text(row.getByTestId('cell-hindsight')),
        confidence: await text(row.getByTestId('cell-confidence')),
        judges: await text(row.getByTestId('cell-judges')),
      });
    }
    if ((await next.count()) === 0 || !(await next.isEnabled())) break;
    const before = await text(page.getByTestId('page-info'));
    await next.click();
    await page.waitForFunction(
      (before) => document.querySelector('[data-testid="page-info"]')?.textContent.trim() !== before,
      before,
    );
  }
  while ((await prev.count()) > 0 && (await prev.isEnabled())) {
    const before = await text(page.getByTestId('page-info'));
    await prev.click();
    await page.waitForFunction(
      (before) => document.querySelector('[data-testid="page-info"]')?.textContent.trim() !== before,
      before,
    );
  }
  return rows;
}

/** The row of trajectory `id` on the current page of the table. */
export function rowOf(page, id) {
  return page.getByTestId('results-table').locator(`[data-testid="result-row"][data-id="${id}"]`);
}

/** Opens the detail of trajectory `id` (clicking its id cell) and returns the detail panel. */
export async function openDetail(page, id) {
  const row = rowOf(page, id);
  await row.getByTestId('cell-id').click();
  const detail = page.getByTestId('trajectory-detail');
  await detail.waitFor();
  return detail;
}

// Chromium starts at most 10 downloads a second from one frame and drops the others without a
// word, so the clicks of `download` are paced: never more than 9 in any 1.2 s, per page.
const DOWNLOADS_PER_WINDOW = 9;
const DOWNLOAD_WINDOW_MS = 1200;
const downloadClicks = new WeakMap();

async function paceDownload(page) {
  const clicks = downloadClicks.get(page) ?? [];
  downloadClicks.set(page, clicks);
  if (clicks.length >= DOWNLOADS_PER_WINDOW) {
    const wait = clicks[clicks.length - DOWNLOADS_PER_WINDOW] + DOWNLOAD_WINDOW_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  clicks.push(Date.now());
  if (clicks.length > DOWNLOADS_PER_WINDOW) clicks.shift();
}

/** Clicks the download button `testid`; returns `{name, text}` of the file it saves. */
export async function download(page, testid) {
  await paceDownload(page);
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
  const failure = await file.failure();
  assert.equal(failure, null, `download ${testid} failed`);
  const path = await file.path();
  return { name: file.suggestedFilename(), text: await readFile(path, 'utf8') };
}

/** Downloads the three sample files and the report: `{sft, dpo, sharegpt, report}`. */
export async function downloadAll(page) {
  return {
    sft: await download(page, 'download-sft'),
    dpo: await download(page, 'download-dpo'),
    sharegpt: await download(page, 'download-sharegpt'),
    report: await download(page, 'download-report'),
  };
}

/** The JSON objects of a JSONL text (every non-empty line must parse). */
export function jsonLines(text) {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (err) {
        throw new Error(`line ${i + 1} is not JSON (${err.message}): ${l.slice(0, 200)}`);
      }
    });
}

/** The first number in a text ("1,234 calls" → 1234), or NaN. */
export function numberIn(s) {
  const m = /-?\d[\d,]*(\.\d+)?/.exec(s ?? '');
  return m ? Number(m[0].replace(/,/g, '')) : NaN;
}

/** Every record of the object store `store` in the page's database (none when the store is
 * not there yet). */
export async function storeRecords(page, store) {
  return page.evaluate(
    (store) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('agenther');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains(store)) {
            db.close();
            resolve([]);
            return;
          }
          const get = db.transaction(store).objectStore(store).getAll();
          get.onsuccess = () => {
            db.close();
            resolve(get.result);
          };
          get.onerror = () => reject(get.error);
        };
      }),
    store,
  );
}
