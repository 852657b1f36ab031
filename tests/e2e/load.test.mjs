// Loading: the built-in example, the reader's report on the reference's bad-input corpus
// shown on the page, and clearing the session.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, openApp, pickFiles, tableRows } from './support/browser.mjs';

const BAD = join(REPO, 'tests', 'fixtures', 'reference', 'bad.jsonl');

test('the example, the bad-input corpus and clearing', async () => {
  const app = await openApp();
  try {
    const { page } = app;

    await page.getByTestId('load-example').click();
    const fileRow = page.getByTestId('file-row');
    await assert.doesNotReject(fileRow.filter({ hasText: 'agenther-example.jsonl' }).waitFor());
    const exampleText = await fileRow.first().textContent();
    assert.match(exampleText, /18 trajectories/);
    assert.match(exampleText, /0 rejected/);
    // Every rule-based failure type of the example has a count chip.
    const chips = await page.getByTestId('type-count').allTextContents();
    for (const t of ['constraint_violation', 'wrong_result', 'incomplete', 'tool_error', 'hallucination']) {
      assert.ok(chips.some((c) => c.includes(t)), `no count for ${t} in ${chips}`);
    }
    let rows = await tableRows(page);
    assert.equal(rows.length, 18);
    assert.equal(rows.filter((r) => r.status === 'will-skip').length, 3);
    assert.ok(rows.every((r) => ['pending', 'will-skip'].includes(r.status)));

    // The reference's malformed corpus: 68 records kept, every other entry reported at its line.
    await pickFiles(page, [BAD]);
    const badRow = fileRow.filter({ hasText: 'bad.jsonl' });
    await badRow.waitFor();
    const badText = await badRow.textContent();
    assert.match(badText, /68 trajectories/);
    assert.match(badText, /31 rejected/);
    const items = await page.getByTestId('rejected-item').allTextContents();
    assert.equal(items.length, 31);
    assert.ok(items.some((i) => /bad\.jsonl:4: metadata: expected an object, found an array/.test(i)), items.join('\n'));
    assert.ok(items.some((i) => /bad\.jsonl:18: steps: expected an array/.test(i)));
    assert.ok(items.some((i) => /bad\.jsonl:34: .*UTF-8/.test(i)), 'invalid UTF-8 line');
    rows = await tableRows(page);
    assert.equal(rows.length, 18 + 68);

    await page.getByTestId('clear-session').click();
    await page.getByTestId('file-row').first().waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('rejected-item').count(), 0);
    assert.equal(await page.getByTestId('result-row').count(), 0);
    await app.checkConsole();
  } finally {
    await app.close();
  }
});
