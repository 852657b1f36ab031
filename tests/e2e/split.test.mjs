// The page's wasm is split (.ci/page.sh): the first load is the main module, and the parts
// behind a function loaded on demand (src/ui/demand.rs) are fetched when first used. A part
// that cannot be fetched is said on the page, the page goes on working, and the next use
// fetches it again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openApp } from './support/browser.mjs';

/** The wasm files the page fetched so far (paths). */
async function wasmFetched(page) {
  return page.evaluate(() =>
    performance
      .getEntriesByType('resource')
      .map((e) => new URL(e.name).pathname)
      .filter((p) => p.endsWith('.wasm')),
  );
}

const PARTS = /\/app-[0-9a-f]+\/(?!agenther_bg\.wasm)[^/]+\.wasm$/;

test('parts of the app are fetched when first used; a failed fetch is said, and the next use fetches it', async () => {
  const app = await openApp();
  try {
    const { page } = app;
    const first = await wasmFetched(page);
    assert.equal(first.length, 1, `first load: ${first}`);
    assert.match(first[0], /^\/app-[0-9a-f]+\/agenther_bg\.wasm$/);

    // The server cannot give the parts: the example is not read, and the page says why.
    await page.route(PARTS, (route) => route.abort());
    await page.getByTestId('load-example').click();
    const notice = page.locator('.notice', { hasText: 'The example was not loaded' });
    await notice.waitFor();
    assert.match(await notice.textContent(), /could not be loaded from the server the page came from/);
    assert.equal(await page.getByTestId('file-row').count(), 0);
    await notice.getByRole('button', { name: 'Dismiss' }).click();

    // It can again: the same button reads the example.
    await page.unroute(PARTS);
    await page.getByTestId('load-example').click();
    await page.getByTestId('file-row').filter({ hasText: 'agenther-example.jsonl' }).waitFor();
    const later = await wasmFetched(page);
    assert.ok(later.some((p) => PARTS.test(p)), `parts fetched: ${later}`);
    assert.equal(await page.locator('.notice', { hasText: 'not loaded' }).count(), 0);

    // The loader logs the failed fetch; nothing else may be logged.
    await app.checkConsole([/Failed to fetch|ERR_FAILED|net::|TypeError/]);
  } finally {
    await app.close();
  }
});

test('a resume whose part cannot be fetched says so and can be tried again', async () => {
  const app = await openApp();
  try {
    const { page } = app;
    await page.getByTestId('load-example').click();
    await page.getByTestId('file-row').waitFor();
    // Saved: the session record counts the example's file.
    await page.waitForFunction(async () => {
      const open = indexedDB.open('agenther');
      const db = await new Promise((ok, fail) => {
        open.onsuccess = () => ok(open.result);
        open.onerror = () => fail(open.error);
      });
      const get = db.transaction('sessions').objectStore('sessions').getAll();
      const records = await new Promise((ok) => (get.onsuccess = () => ok(get.result)));
      db.close();
      return records.some((r) => JSON.parse(r).files === 1);
    });
    await app.reload();
    await page.route(PARTS, (route) => route.abort());
    await page.getByTestId('resume-session').click();
    const notice = page.locator('.notice', { hasText: 'The saved session was not restored' });
    await notice.waitFor();
    assert.match(await notice.textContent(), /could not be loaded from the server the page came from/);
    // The offer stays: the same button restores it once the server answers again.
    await page.unroute(PARTS);
    await page.getByTestId('resume-session').click();
    await page.getByTestId('file-row').filter({ hasText: 'agenther-example.jsonl' }).waitFor();
    await app.checkConsole([/Failed to fetch|ERR_FAILED|net::|TypeError/]);
  } finally {
    await app.close();
  }
});
