// Importing: files in other formats detected and shown with their format, successes kept apart
// (listed with their own status, never run), and a format chosen with "Read as".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, choose, openApp, pickFiles, tableRows } from './support/browser.mjs';

const IMPORT = join(REPO, 'tests', 'fixtures', 'import');

test('files in import formats are detected, successes kept apart, the format can be chosen', async () => {
  const app = await openApp();
  try {
    const { page } = app;
    const fileRows = page.getByTestId('file-row');

    await pickFiles(page, [
      join(IMPORT, 'openai_messages.jsonl'),
      join(IMPORT, 'react.txt'),
      join(IMPORT, 'tau_bench.json'),
    ]);
    await fileRows.nth(2).waitFor();
    const texts = await fileRows.allTextContents();
    assert.match(texts[0], /openai_messages\.jsonl/);
    assert.match(texts[0], /(?<!\d)4 trajectories/);
    assert.match(texts[0], /(?<!\d)1 success kept apart/);
    assert.match(texts[0], /OpenAI chat messages \(detected\), JSONL/);
    assert.match(texts[1], /ReAct text log \(detected\), text/);
    assert.match(texts[1], /(?<!\d)4 trajectories/);
    assert.match(texts[2], /tau-bench results \(detected\), JSON array/);
    assert.match(texts[2], /(?<!\d)3 trajectories/);

    const rows = await tableRows(page);
    assert.equal(rows.length, 11);
    const successes = rows.filter((r) => r.status === 'success').map((r) => r.id);
    assert.equal(successes.length, 3);
    assert.ok(successes.includes('run-booking-002'), successes.join(', '));
    assert.ok(successes.includes('task-4-trial-0'), successes.join(', '));
    // The ReAct log's success has a generated id.
    assert.equal(successes.filter((id) => /^traj-[0-9a-f]{12}$/.test(id)).length, 1);
    assert.ok(rows.filter((r) => r.status !== 'success').every((r) => ['pending', 'will-skip'].includes(r.status)));
    // Failures whose source gives no verdict carry a badge: two OpenAI runs and two ReAct runs.
    const unknown = page.getByTestId('result-row').filter({ has: page.getByTestId('verdict-unknown') });
    assert.equal(await unknown.count(), 4);
    assert.ok((await unknown.evaluateAll((rs) => rs.map((r) => r.dataset.status))).every((s) => s !== 'success'));
    // The summary counts the successes apart; the failure-type chips count only failures.
    assert.match(await page.locator('.summary').textContent(), /11 trajectories \(3 successes kept apart\)/);
    const chips = await page.getByTestId('type-count').allTextContents();
    const counted = chips.map((c) => Number(c.match(/(\d+)\s*$/)[1])).reduce((a, b) => a + b, 0);
    assert.equal(counted, 8);

    // Filtering by status shows the successes only.
    await choose(page, 'filter-status', 'success');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length === 3);

    // Reading a file as a format it is not in rejects every record, naming the format.
    await page.getByTestId('clear-session').click();
    await fileRows.first().waitFor({ state: 'detached' });
    await choose(page, 'read-as', 'sharegpt');
    await pickFiles(page, [join(IMPORT, 'openai_messages.jsonl')]);
    await fileRows.first().waitFor();
    const text = await fileRows.first().textContent();
    assert.match(text, /LLaMA-Factory ShareGPT \(chosen\)/);
    assert.match(text, /(?<!\d)0 trajectories/);
    assert.match(text, /(?<!\d)4 rejected/);
    const items = await page.getByTestId('rejected-item').allTextContents();
    assert.equal(items.length, 4);
    assert.match(items[0], /openai_messages\.jsonl:1: conversations: not in the LLaMA-Factory ShareGPT format \(it looks like OpenAI chat messages\)/);
    await app.checkConsole();
  } finally {
    await app.close();
  }
});
