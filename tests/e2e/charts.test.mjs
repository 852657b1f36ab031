// The charts after a run of the built-in example and the two run files against the scripted
// endpoint: the funnel's numbers against the results table and the endpoint's requests, a
// click on a bar and Enter on a focused bar filter the table to the bar's rows, the
// failure-type chips filter it too, all through the results table's own filters, a sample
// rejected in review leaves the funnel's last step, and each chart has its numbers in a table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEndpoint } from './support/endpoint.mjs';
import { DATA, REPO, checkConnection, configure, numberIn, openApp, pickFiles, runToEnd, tableRows } from './support/browser.mjs';

/** The bar `key` of the bars `testid`. */
function bar(page, testid, key) {
  return page.locator(`[data-testid="${testid}"][data-key="${key}"]`);
}

async function countOf(locator) {
  return Number(await locator.getAttribute('data-count'));
}

/** Waits until the table's page info changes from `before`, then reads every row. */
async function rowsAfter(page, before) {
  await page.waitForFunction(
    (before) => document.querySelector('[data-testid="page-info"]')?.textContent.trim() !== before,
    before,
  );
  return tableRows(page);
}

async function filterCount(page) {
  return (await page.getByTestId('filter-count').textContent()).trim();
}

async function pageInfo(page) {
  return (await page.getByTestId('page-info').textContent()).trim();
}

test('charts: the funnel matches the results, and bars, Enter and chips filter the table', { timeout: 240_000 }, async () => {
  const endpoint = await startEndpoint({ delayMs: 40 });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await page.getByTestId('load-example').click();
    await page.getByTestId('file-row').filter({ hasText: 'agenther-example.jsonl' }).waitFor();
    await pickFiles(page, [join(DATA, 'run-a.jsonl'), join(DATA, 'run-b.jsonl')]);
    await page.getByTestId('file-row').nth(2).waitFor();
    await page.getByTestId('charts').waitFor();

    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });
    assert.equal((await checkConnection(page)).status, 'ok');
    endpoint.reset();
    await runToEnd(page, { timeout: 180_000 });

    // --- The funnel against the table and the endpoint.
    const rows = await tableRows(page);
    const funnel = {};
    for (const key of ['loaded', 'failures', 'passed-gates', 'relabeled', 'judged-valid', 'accepted', 'kept-by-review']) {
      funnel[key] = await countOf(bar(page, 'funnel-bar', key));
    }
    const by = (pred) => rows.filter(pred).length;
    assert.equal(funnel.loaded, rows.length);
    assert.equal(funnel.failures, by((r) => r.status !== 'success'));
    assert.equal(funnel['passed-gates'], by((r) => !['success', 'skipped'].includes(r.status)));
    assert.equal(funnel.accepted, by((r) => r.status === 'accepted'));
    // Nothing reviewed yet: review keeps every accepted sample.
    assert.equal(funnel['kept-by-review'], funnel.accepted);
    // Relabeled: the trajectories whose relabel reply proposed a valid replay; judged valid:
    // those a judge reply accepted, and the single-judge fallbacks.
    const relabels = endpoint.requests.filter((r) => r.kind === 'relabel_reply' && typeof r.reply === 'string');
    const valid = new Set();
    for (const r of relabels) {
      try {
        const reply = JSON.parse(r.reply);
        if (reply.is_valid_replay && reply.hindsight_prompt) valid.add(r.body.messages.map((m) => m.content).join('\n'));
      } catch {
        // Prose on purpose (the unparseable and retry scenarios).
      }
    }
    assert.ok(funnel.relabeled > funnel['judged-valid'], JSON.stringify(funnel));
    assert.ok(funnel['judged-valid'] >= funnel.accepted);
    const judgeValid = endpoint.requests.filter((r) => r.kind === 'judge_reply' && /"is_valid"\s*:\s*true/.test(r.reply ?? '')).length;
    const fallbacks = by((r) => r.judges === 'single judge');
    assert.equal(funnel['judged-valid'], judgeValid + fallbacks);
    assert.ok(valid.size >= funnel.relabeled, `${valid.size} distinct valid relabel prompts, ${funnel.relabeled} relabeled`);
    const order = Object.values(funnel);
    assert.ok(order.every((n, i) => i === 0 || n <= order[i - 1]), `the funnel narrows: ${order}`);
    // The numbers table says the same.
    const funnelTable = page.getByTestId('chart-funnel-table').locator('tbody tr');
    assert.equal(await funnelTable.count(), 7);
    assert.deepEqual(await funnelTable.nth(5).locator('td').allTextContents(), [
      'accepted',
      String(funnel.accepted),
      `${Math.round((funnel.accepted * 100) / funnel.loaded)}%`,
    ]);

    // --- A click on the funnel's "relabeled" bar: the table shows exactly those rows.
    let before = await pageInfo(page);
    await bar(page, 'funnel-bar', 'relabeled').click();
    let shown = await rowsAfter(page, before);
    assert.equal(shown.length, funnel.relabeled);
    assert.ok(shown.every((r) => ['accepted', 'rejected'].includes(r.status)), JSON.stringify(shown.map((r) => r.status)));
    assert.equal(await bar(page, 'funnel-bar', 'relabeled').getAttribute('aria-pressed'), 'true');
    assert.match(await page.getByTestId('filter-pick').textContent(), /funnel: relabeled/);
    assert.equal(await filterCount(page), `${funnel.relabeled} of ${rows.length} trajectories match`);
    // The bar set the table's own filters: a select narrows it further.
    before = await pageInfo(page);
    await page.getByTestId('filter-status').selectOption('rejected');
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, funnel.relabeled - funnel.accepted);
    assert.ok(shown.every((r) => r.status === 'rejected'));
    assert.equal(await bar(page, 'funnel-bar', 'relabeled').getAttribute('aria-pressed'), 'false');
    assert.match(await page.getByTestId('filter-pick').textContent(), /funnel: relabeled/);
    // Each choice counts the rows picking it would show, given the other filters (the bar).
    const optionText = async (testid, value) =>
      (await page.getByTestId(testid).locator(`option[value="${value}"]`).textContent()).trim();
    assert.equal(await optionText('filter-status', 'accepted'), `accepted (${funnel.accepted})`);
    assert.equal(await optionText('filter-status', 'rejected'), `rejected (${shown.length})`);
    assert.equal(await optionText('filter-status', 'pending'), 'pending (0)');
    assert.equal(await optionText('filter-status', 'all'), `all statuses (${funnel.relabeled})`);
    assert.equal(await optionText('filter-type', 'all'), `all types (${shown.length})`);
    // "Clear filters" clears every filter: the bar, the status and the goal checks.
    await page.getByTestId('filter-checks').selectOption('ungrounded');
    before = await pageInfo(page);
    await page.getByTestId('filter-clear').click();
    assert.equal((await rowsAfter(page, before)).length, rows.length);
    assert.equal(await page.getByTestId('filter-pick').count(), 0);
    assert.equal(await page.getByTestId('filter-status').inputValue(), 'all');
    assert.equal(await page.getByTestId('filter-checks').inputValue(), 'all');
    assert.equal(await filterCount(page), `${rows.length} trajectories`);
    assert.equal(await page.getByTestId('filter-clear').count(), 0, 'nothing left to clear');
    assert.equal(await optionText('filter-status', 'all'), `all statuses (${rows.length})`);

    // "accepted" is the status filter.
    before = await pageInfo(page);
    await bar(page, 'funnel-bar', 'accepted').click();
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, funnel.accepted);
    assert.ok(shown.every((r) => r.status === 'accepted'));
    assert.equal(await page.getByTestId('filter-status').inputValue(), 'accepted');
    assert.equal(await page.getByTestId('filter-pick').count(), 0);

    // "loaded" clears every filter.
    before = await pageInfo(page);
    await bar(page, 'funnel-bar', 'loaded').click();
    assert.equal((await rowsAfter(page, before)).length, rows.length);
    assert.equal(await page.getByTestId('filter-status').inputValue(), 'all');

    // --- Keyboard: focus the histogram bar of c from 0.9 to 1 and press Enter.
    const high = bar(page, 'histogram-bar', 'c-9');
    const highCount = await countOf(high);
    assert.ok(highCount > 0);
    await high.focus();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.key), 'c-9');
    before = await pageInfo(page);
    await page.keyboard.press('Enter');
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, highCount);
    assert.equal(await high.getAttribute('aria-pressed'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.key), 'c-9', 'focus stays on the bar');
    // Every shown row that was accepted has c ≥ 0.9.
    for (const r of shown.filter((r) => r.status === 'accepted')) {
      assert.ok(numberIn(r.confidence.replace(/^c\s*/, '')) >= 0.9, r.confidence);
    }
    // Shift+Tab goes to the bar before it, Space applies that one.
    await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.key), 'c-8');
    const lower = bar(page, 'histogram-bar', 'c-8');
    before = await pageInfo(page);
    await page.keyboard.press(' ');
    assert.equal((await rowsAfter(page, before)).length, await countOf(lower));
    assert.equal(await lower.getAttribute('aria-pressed'), 'true');
    assert.equal(await high.getAttribute('aria-pressed'), 'false');

    // θ is marked on both histograms.
    assert.equal(await page.getByTestId('theta-mark').count(), 2);

    // Clearing the chart filter shows everything again.
    before = await pageInfo(page);
    await page.getByTestId('filter-pick').click();
    assert.equal((await rowsAfter(page, before)).length, rows.length);

    // --- Failure types by severity, and the chips of the load summary.
    const wrong = bar(page, 'severity-bar', 'wrong_result');
    const wrongCount = await countOf(wrong);
    const chip = page.locator('[data-testid="type-count"][data-type="wrong_result"]');
    assert.equal(numberIn(await chip.textContent()), wrongCount);
    before = await pageInfo(page);
    await wrong.click();
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, wrongCount);
    assert.ok(shown.every((r) => r.type === 'wrong_result' && r.status !== 'success'));
    assert.equal(await page.getByTestId('filter-type').inputValue(), 'wrong_result');
    assert.equal(await filterCount(page), `${wrongCount} of ${rows.length} trajectories match`);
    assert.equal(await chip.getAttribute('aria-pressed'), 'true', 'the chip shows the same filter');
    const tool = page.locator('[data-testid="type-count"][data-type="tool_error"]');
    before = await pageInfo(page);
    await tool.click();
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, numberIn(await tool.textContent()));
    assert.ok(shown.every((r) => r.type === 'tool_error'));
    assert.equal(await tool.getAttribute('aria-pressed'), 'true');
    assert.equal(await chip.getAttribute('aria-pressed'), 'false');

    // --- The run's requests over time: the last point is the requests the endpoint saw.
    const calls = page.getByTestId('chart-calls');
    await calls.waitFor();
    const served = endpoint.requests.filter((r) => r.path === '/v1/chat/completions' && r.method === 'POST').length;
    assert.match(await calls.locator('figcaption').textContent(), new RegExp(`${served.toLocaleString('en-US')} so far`));

    // --- Review: a sample rejected in the queue leaves the funnel's last step, whose bar then
    // shows the accepted rows but that one.
    const kept = bar(page, 'funnel-bar', 'kept-by-review');
    const card = page.getByTestId('review-card');
    await card.waitFor();
    const rejectedId = (await card.getByTestId('review-id').textContent()).trim();
    await card.getByTestId('review-reject').click();
    await page.getByTestId('review-reason').waitFor();
    await page.getByTestId('review-reason').press('Enter');
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="funnel-bar"][data-key="kept-by-review"]')?.dataset.count === String(n),
      funnel.accepted - 1,
    );
    assert.equal(await countOf(bar(page, 'funnel-bar', 'accepted')), funnel.accepted, 'still accepted by the run');
    before = await pageInfo(page);
    await kept.click();
    shown = await rowsAfter(page, before);
    assert.equal(shown.length, funnel.accepted - 1);
    assert.ok(shown.every((r) => r.status === 'accepted'));
    assert.ok(!shown.some((r) => r.id === rejectedId), `${rejectedId} is left out`);
    assert.equal(await kept.getAttribute('aria-pressed'), 'true');
    assert.match(await page.getByTestId('filter-pick').textContent(), /funnel: kept by review/);
    assert.equal(await filterCount(page), `${funnel.accepted - 1} of ${rows.length} trajectories match`);
    const keptRow = page.getByTestId('chart-funnel-table').locator('tbody tr').nth(6);
    assert.deepEqual((await keptRow.locator('td').allTextContents()).slice(0, 2), ['kept by review', String(funnel.accepted - 1)]);

    // The screenshot of the README, with the funnel's "accepted" bar applied.
    await bar(page, 'funnel-bar', 'accepted').click();
    await page.mouse.move(0, 0);
    // The sticky stepper would cover the section's top (set through the CSSOM, which the
    // page's CSP allows).
    const stepper = (hidden) => page.evaluate((h) => { document.querySelector('.stepper').style.visibility = h ? 'hidden' : ''; }, hidden);
    await stepper(true);
    await page.getByTestId('charts').screenshot({ path: join(REPO, 'public', 'screenshots', 'charts.png') });
    await stepper(false);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
