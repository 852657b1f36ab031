// Loading in the background readers (Web Workers). Every import sample, the real-log excerpts
// and the reference's corpus and bad-input files, loaded together, give in the background
// exactly what reading on the page gives: the same trajectories in the run report (ids, files,
// lines, import formats, verdicts, rule-based views, in order), the same saved file summaries
// and rejections at the same lines, the same file rows. (The saved session keeps the files
// themselves and reads them again when restored, as the second test shows.) Also with tiny slices on three workers, so that lines cross slices and
// results come back out of order; a reload restores what was loaded; and when the readers
// cannot start, the page says so and reads the files itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, download, openApp, pickFiles, tableRows } from './support/browser.mjs';

const FIXTURES = join(REPO, 'tests', 'fixtures');

/** Every trajectory file of tests/fixtures but the reference's expected output. */
async function inputFiles() {
  const out = [];
  const walk = async (dir) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (!/\.md$|manifest|expected\.jsonl$/.test(e.name)) out.push(path);
    }
  };
  await walk(FIXTURES);
  return out.sort();
}

/** Settings read when a file is loaded: workers (0: on the page) and slice size. */
async function useReaders(page, { workers, slice }) {
  await page.evaluate(
    ({ workers, slice }) => {
      for (const [key, value] of [
        ['agenther-workers', workers],
        ['agenther-slice-bytes', slice],
      ]) {
        if (value === undefined) localStorage.removeItem(key);
        else localStorage.setItem(key, String(value));
      }
    },
    { workers, slice },
  );
}

/** The saved session once it holds `files` files: how many trajectories it holds, and its
 * files in key order. */
async function savedSession(page, files) {
  return page.evaluate(async (files) => {
    const request = (r) =>
      new Promise((ok, fail) => {
        r.onsuccess = () => ok(r.result);
        r.onerror = () => fail(r.error);
      });
    const db = await request(indexedDB.open('agenther'));
    try {
      for (let i = 0; i < 600; i++) {
        const sessions = (await request(db.transaction('sessions').objectStore('sessions').getAll())).map((s) =>
          JSON.parse(s),
        );
        const done = sessions.find((s) => s.files === files);
        if (done) {
          const all = async (store) =>
            (await request(db.transaction(store).objectStore(store).getAll())).map((v) => JSON.parse(v));
          const stored = await all('files');
          if (stored.length === files) return { trajectories: done.trajectories, files: stored };
        }
        await new Promise((ok) => setTimeout(ok, 100));
      }
      throw new Error('the session was not saved');
    } finally {
      db.close();
    }
  }, files);
}

/** Loads `paths` with the given readers and returns what the page shows and saved. */
async function loadWith(paths, readers) {
  const app = await openApp();
  try {
    const { page } = app;
    await useReaders(page, readers);
    await pickFiles(page, paths);
    await page.getByTestId('file-row').nth(paths.length - 1).waitFor({ timeout: 120_000 });
    const saved = await savedSession(page, paths.length);
    // The report lists every trajectory the page holds, with where it came from.
    const report = JSON.parse((await download(page, 'download-report')).text);
    saved.report = { files: report.files, trajectories: report.trajectories };
    const shown = {
      rows: await page.getByTestId('file-row').allTextContents(),
      rejected: await page.getByTestId('rejected-item').allTextContents(),
      chips: await page.getByTestId('type-count').allTextContents(),
      table: (await tableRows(page)).map((r) => [r.id, r.status]),
    };
    if (readers.workers !== 0) {
      // The background readers did the reading.
      const fallback = page.locator('.notice').filter({ hasText: 'background readers could not start' });
      assert.equal(await fallback.count(), 0);
    }
    await app.checkConsole();
    return { saved, shown, app };
  } catch (err) {
    await app.close();
    throw err;
  }
}

test('the background readers give what reading on the page gives, however the files are sliced', { timeout: 900_000 }, async () => {
  const paths = await inputFiles();
  assert.ok(paths.length >= 20, 'the fixtures are there');
  const onPage = await loadWith(paths, { workers: 0 });
  await onPage.app.close();
  const { saved, shown } = onPage;
  assert.ok(saved.trajectories > 500, `${saved.trajectories} trajectories`);
  assert.equal(saved.report.trajectories.length, saved.trajectories);
  assert.ok(shown.rejected.some((r) => /bad\.jsonl:34: .*UTF-8/.test(r)), 'rejections at their lines');
  // Every import format was read.
  const formats = new Set(saved.report.trajectories.map((t) => t.import_format ?? 'native'));
  for (const f of ['native', 'openai_messages', 'tau_bench', 'sharegpt', 'react', 'toolbench', 'atif']) {
    assert.ok(formats.has(f), `no ${f} run among ${[...formats]}`);
  }

  for (const readers of [{}, { workers: 3, slice: 50_000 }]) {
    const other = await loadWith(paths, readers);
    await other.app.close();
    assert.deepEqual(other.saved, saved, `saved session with ${JSON.stringify(readers)}`);
    assert.deepEqual(other.shown, shown, `page with ${JSON.stringify(readers)}`);
  }
});

test('tiny slices on three workers keep every line, order and rejection, and a reload restores them', { timeout: 600_000 }, async () => {
  // The small files only: slices of 7 bytes make a message per few bytes.
  const paths = (await inputFiles()).filter((p) => !p.includes(`${join('fixtures', 'reference')}`));
  const onPage = await loadWith(paths, { workers: 0 });
  await onPage.app.close();
  const tiny = await loadWith(paths, { workers: 3, slice: 7 });
  try {
    assert.deepEqual(tiny.saved, onPage.saved);
    assert.deepEqual(tiny.shown, onPage.shown);
    // Lines and indexes in file order, file after file.
    const sources = tiny.saved.report.trajectories.map((t) => ({ file: t.file, line: t.line }));
    for (let i = 1; i < sources.length; i++) {
      if (sources[i].file === sources[i - 1].file) {
        assert.ok(sources[i].line >= sources[i - 1].line, JSON.stringify(sources.slice(i - 1, i + 1)));
      }
    }

    const { app } = tiny;
    await app.reload();
    await app.page.getByTestId('resume-session').click();
    // The saved files are read again, in the same tiny slices.
    await app.page.getByTestId('file-row').nth(paths.length - 1).waitFor({ timeout: 120_000 });
    assert.deepEqual(await app.page.getByTestId('file-row').allTextContents(), onPage.shown.rows);
    assert.deepEqual(await app.page.getByTestId('rejected-item').allTextContents(), onPage.shown.rejected);
    assert.deepEqual(
      (await tableRows(app.page)).map((r) => [r.id, r.status]),
      onPage.shown.table,
    );
    await app.checkConsole();
  } finally {
    await tiny.app.close();
  }
});

test('when the background readers cannot start, the page says so and reads the file itself', { timeout: 120_000 }, async () => {
  const app = await openApp();
  try {
    const { page } = app;
    await page.route('**/agenther-worker_loader.js', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await pickFiles(page, [join(FIXTURES, 'import', 'openai_messages.jsonl')]);
    await page.getByTestId('file-row').waitFor();
    assert.match(await page.getByTestId('file-row').textContent(), /openai_messages\.jsonl/);
    const notice = page.locator('.notice');
    await notice.waitFor();
    assert.match(await notice.textContent(), /background readers could not start/);
    // The 404 of the worker script is the only console error.
    await app.checkConsole([/404|Failed to load resource|agenther-worker/]);
  } finally {
    await app.close();
  }
});
