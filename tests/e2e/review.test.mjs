// Review before export, by keyboard only: a run's accepted samples are accepted, rejected with
// a reason, edited, one decision undone, the single-judge fallbacks rejected in bulk (the count
// shown first), that bulk action undone as one step and done again. After a reload the resumed
// session has every decision, and every download honours them exactly: rejected rows absent,
// the edited goal used with the model's goal and the edit in provenance, the manifest and the
// report counting what review decided (with the second judge's verdict on the edited goal, asked
// for once more), "reviewed rows only" keeping only the reviewed rows, and
// the preview showing a layout's first row as downloaded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { hindsightPromptFor, startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  SCRATCH,
  configure,
  download,
  jsonLines,
  openApp,
  pickFiles,
  runToEnd,
} from './support/browser.mjs';

// review.jsonl: what the run accepts, in load order (the review queue's order), and how.
const QUEUE = ['rv-flight', 'rv-recipe', 'rv-invoice', 'rv-hotel', 'rv-sql', 'rv-ci', 'rv-calendar'];
const FALLBACKS = ['rv-invoice', 'rv-ci'];
const ACTIONS = {
  'rv-flight': 'search_flights',
  'rv-recipe': 'search_recipes',
  'rv-invoice': 'find_invoice',
  'rv-hotel': 'search_hotels',
  'rv-sql': 'run_sql',
  'rv-ci': 'get_build_log',
  'rv-calendar': 'find_events',
};
const modelGoal = (id) => hindsightPromptFor(ACTIONS[id], FALLBACKS.includes(id) ? 'fallback' : 'accept');
const EDITED_GOAL = 'Compare the Porto hotels under EUR 90 a night and say which has a room left';
const REASON = 'too vague to teach anything';

// What review ends with.
const FINAL = {
  'rv-flight': 'accepted',
  'rv-recipe': 'rejected',
  'rv-invoice': 'rejected',
  'rv-hotel': 'edited',
  'rv-sql': 'unreviewed',
  'rv-ci': 'rejected',
  'rv-calendar': 'unreviewed',
};
const KEPT = QUEUE.filter((id) => FINAL[id] !== 'rejected');
const REVIEWED_KEPT = KEPT.filter((id) => FINAL[id] !== 'unreviewed');
const goalOf = (id) => (FINAL[id] === 'edited' ? EDITED_GOAL : modelGoal(id));

const LAYOUTS = ['sft', 'dpo', 'sharegpt', 'llamafactory', 'trl-sft', 'trl-preference', 'openai'];

/** The trajectory id and the user goal of a row of `layout`. */
function idAndGoal(layout, row) {
  switch (layout) {
    case 'sft':
    case 'dpo':
    case 'sharegpt':
      return { id: row.source_trajectory_id, goal: row.hindsight_prompt };
    case 'llamafactory':
      return { id: row.provenance?.trajectory_id, goal: row.conversations[0].value };
    case 'trl-preference':
      return { id: row.provenance?.trajectory_id, goal: row.chosen.find((m) => m.role === 'user').content };
    default:
      return { id: row.provenance?.trajectory_id, goal: row.messages.find((m) => m.role === 'user').content };
  }
}

/** The test id of the focused element, or its tag when it has none ('BODY' when focus fell). */
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el?.getAttribute('data-testid') ?? el?.tagName ?? 'none';
  });
}

/** Presses `key` until the element with test id `testid` has focus (at most `max` times). */
async function tabTo(page, testid, key = 'Tab', max = 40) {
  for (let i = 0; i < max; i++) {
    if ((await focused(page)) === testid) return;
    await page.keyboard.press(key);
  }
  assert.fail(`${key} never reached ${testid}; focus is on ${await focused(page)}`);
}

/** The review state shown for each queue item. */
async function queueStates(page) {
  const items = page.getByTestId('review-item');
  const out = {};
  for (let i = 0; i < (await items.count()); i++) {
    out[await items.nth(i).getAttribute('data-id')] = await items.nth(i).getAttribute('data-review');
  }
  return out;
}

/** Waits until the element with test id `testid` has focus (focus moves on the next frame). */
async function waitFocus(page, testid) {
  await page
    .waitForFunction((testid) => document.activeElement?.getAttribute('data-testid') === testid, testid, {
      timeout: 5_000,
    })
    .catch(async () => assert.fail(`focus is on ${await focused(page)}, not ${testid}`));
}

/** The trajectory under review, once the card shows `id`, with focus in the queue (never left
 * on the page body). */
async function expectCurrent(page, id) {
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="review-id"]')?.textContent.trim() === id,
    id,
  );
  await waitFocus(page, 'review-card');
}

test('review by keyboard, kept across a reload, honoured by every download', { timeout: 240_000 }, async () => {
  const endpoint = await startEndpoint({});
  let app;
  try {
    app = await openApp({ viewport: { width: 1280, height: 1000 } });
    const { page } = app;
    await pickFiles(page, [join(DATA, 'review.jsonl')]);
    await page.getByTestId('file-row').first().waitFor();
    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });
    await runToEnd(page, { timeout: 120_000 });

    const progress = page.getByTestId('review-progress');
    assert.match(await progress.textContent(), /Reviewed 0 \/ 7/);
    assert.deepEqual(Object.keys(await queueStates(page)), QUEUE, 'the accepted runs, in load order');

    // The first card: both goals side by side, the verdict of both judges.
    const card = page.getByTestId('review-card');
    await card.focus();
    await expectCurrent(page, 'rv-flight');
    assert.equal(
      (await card.getByTestId('goal-original').textContent()).trim(),
      'Book the cheapest direct flight from Lisbon to Oslo on 14 May.',
    );
    assert.equal((await card.getByTestId('goal-hindsight').textContent()).trim(), modelGoal('rv-flight'));
    assert.equal((await card.getByTestId('verdict-judges').textContent()).trim(), 'both judges');
    assert.equal((await card.getByTestId('verdict-c').textContent()).trim(), '0.90');
    assert.equal((await card.getByTestId('verdict-c2').textContent()).trim(), '0.80');

    // a: accept, and the next one comes up.
    await page.keyboard.press('a');
    await expectCurrent(page, 'rv-recipe');
    // r: reject with a reason typed in the form that opens, Enter confirms.
    await page.keyboard.press('r');
    await page.getByTestId('review-reason').waitFor();
    await waitFocus(page, 'review-reason');
    await page.keyboard.type(REASON);
    await page.keyboard.press('Enter');
    await expectCurrent(page, 'rv-invoice');
    // A fallback: the card says so.
    assert.equal((await card.getByTestId('verdict-judges').textContent()).trim(), 'single judge');
    assert.equal((await card.getByTestId('verdict-c2').textContent()).trim(), 'none');
    // j: skip it; e: edit the next goal (Esc first closes a form without deciding).
    await page.keyboard.press('j');
    await expectCurrent(page, 'rv-hotel');
    await page.keyboard.press('e');
    await page.getByTestId('review-edit-input').waitFor();
    await waitFocus(page, 'review-edit-input');
    await page.keyboard.press('Escape');
    await page.getByTestId('review-edit-input').waitFor({ state: 'detached' });
    await waitFocus(page, 'review-card');
    assert.equal((await queueStates(page))['rv-hotel'], 'unreviewed');
    await page.keyboard.press('e');
    await page.getByTestId('review-edit-input').waitFor();
    await waitFocus(page, 'review-edit-input');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type(EDITED_GOAL);
    await page.keyboard.press('Enter');
    await expectCurrent(page, 'rv-sql');
    // k goes back: the edit is shown beside the model's goal.
    await page.keyboard.press('k');
    await expectCurrent(page, 'rv-hotel');
    assert.equal((await card.getByTestId('goal-edited').textContent()).trim(), EDITED_GOAL);
    assert.equal((await card.getByTestId('goal-hindsight').textContent()).trim(), modelGoal('rv-hotel'));
    // The edited goal judged once more: one call, the judge prompt with the reviewer's goal.
    const judgeCalls = endpoint.counts().judge_reply;
    await tabTo(page, 'review-rejudge');
    await page.keyboard.press('Enter');
    await card.getByTestId('rejudge-verdict').waitFor();
    assert.equal(
      (await card.getByTestId('rejudge-verdict').textContent()).trim(),
      'The second judge accepts your goal (c2 0.80).',
    );
    assert.equal(endpoint.counts().judge_reply, judgeCalls + 1);
    const lastJudge = endpoint.requests.filter((r) => r.kind === 'judge_reply').at(-1);
    assert.ok(JSON.stringify(lastJudge.body.messages).includes(EDITED_GOAL), 'the judge saw the edit');
    await expectCurrent(page, 'rv-hotel');
    // Accept one more, then undo it: it is unreviewed again and shown.
    await page.keyboard.press('ArrowDown');
    await expectCurrent(page, 'rv-sql');
    await page.keyboard.press('a');
    await expectCurrent(page, 'rv-ci');
    assert.equal((await queueStates(page))['rv-sql'], 'accepted');
    await page.keyboard.press('u');
    await expectCurrent(page, 'rv-sql');
    assert.equal((await queueStates(page))['rv-sql'], 'unreviewed');
    assert.match(await progress.textContent(), /Reviewed 3 \/ 7/);

    // Bulk: reject the fallbacks of this filter, the count shown before anything happens.
    await tabTo(page, 'bulk-reject-fallbacks', 'Shift+Tab');
    await page.keyboard.press('Enter');
    const pending = page.getByTestId('bulk-pending');
    await pending.waitFor();
    assert.equal(await pending.getAttribute('data-count'), '2');
    assert.match(await pending.textContent(), /Reject 2 unreviewed single-judge fallbacks/);
    assert.equal((await queueStates(page))['rv-ci'], 'unreviewed', 'nothing decided before confirming');
    await waitFocus(page, 'bulk-confirm');
    await page.keyboard.press('Enter');
    await pending.waitFor({ state: 'detached' });
    await waitFocus(page, 'review-card');
    let states = await queueStates(page);
    assert.deepEqual([states['rv-invoice'], states['rv-ci']], ['rejected', 'rejected']);
    // One undo takes the whole bulk action back.
    await waitFocus(page, 'review-card');
    await page.keyboard.press('u');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="review-item"]')].every(
        (li) => !['rv-invoice', 'rv-ci'].includes(li.dataset.id) || li.dataset.review === 'unreviewed',
      ),
    );
    states = await queueStates(page);
    assert.equal(states['rv-recipe'], 'rejected', 'the earlier decisions stay');
    assert.equal(states['rv-hotel'], 'edited');
    // And again, for good.
    await tabTo(page, 'bulk-reject-fallbacks', 'Shift+Tab');
    await page.keyboard.press('Enter');
    await waitFocus(page, 'bulk-confirm');
    await page.keyboard.press('Enter');
    await pending.waitFor({ state: 'detached' });
    await waitFocus(page, 'review-card');
    assert.deepEqual(await queueStates(page), FINAL);
    assert.match(await progress.textContent(), /Reviewed 5 \/ 7 · 1 accepted, 1 edited, 3 rejected/);

    // The review filter: only the unreviewed ones.
    await page.getByTestId('review-filter-review').selectOption('unreviewed');
    assert.deepEqual(Object.keys(await queueStates(page)), ['rv-sql', 'rv-calendar']);
    assert.match(await page.getByTestId('review-count').textContent(), /^2 in this filter/);
    await page.getByTestId('review-filter-review').selectOption('all');
    await page.getByTestId('review-card').focus();
    await expectCurrent(page, 'rv-sql');
    await page.getByTestId('review-section').screenshot({ path: join(SCRATCH, 'review.png') });

    // --- Reload: the session comes back with every decision.
    await app.reload();
    await page.getByTestId('saved-session').waitFor();
    assert.match(await page.getByTestId('saved-summary').textContent(), /5 reviewed/);
    await page.getByTestId('resume-session').click();
    await page.getByTestId('saved-session').waitFor({ state: 'detached' });
    await page.getByTestId('review-item').first().waitFor();
    assert.deepEqual(await queueStates(page), FINAL);
    assert.match(await progress.textContent(), /Reviewed 5 \/ 7/);
    // The table shows the decisions too.
    const tableReview = await page
      .getByTestId('results-table')
      .locator('[data-testid="result-row"]')
      .evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.dataset.id, r.dataset.review])));
    for (const id of QUEUE) {
      assert.equal(tableReview[id], FINAL[id] === 'unreviewed' ? '' : FINAL[id], `table row ${id}`);
    }

    // --- Every layout: rejected rows absent, the edit used, provenance with both goals.
    for (const layout of LAYOUTS) {
      const file = await download(page, `download-${layout}`);
      const rows = jsonLines(file.text).map((row) => ({ row, ...idAndGoal(layout, row) }));
      if (layout === 'openai') {
        // No ids in OpenAI rows: the goals, in order, say which rows they are.
        assert.deepEqual(rows.map((r) => r.goal), KEPT.map(goalOf), layout);
        continue;
      }
      assert.deepEqual(rows.map((r) => r.id), KEPT, `${layout}: the rows review kept`);
      for (const { id, goal, row } of rows) {
        assert.equal(goal, goalOf(id), `${layout} ${id}: goal`);
        const decision = FINAL[id] === 'unreviewed' ? null : FINAL[id];
        if (['sft', 'dpo', 'sharegpt'].includes(layout)) {
          assert.equal(row.metadata.review, decision ?? undefined, `${layout} ${id}: metadata.review`);
          assert.equal(
            row.metadata.model_hindsight_prompt,
            decision === 'edited' ? modelGoal(id) : undefined,
            `${layout} ${id}: the model's goal`,
          );
        } else {
          assert.equal(row.provenance.review, decision, `${layout} ${id}: provenance.review`);
          assert.equal(row.provenance.model_goal, modelGoal(id), `${layout} ${id}: provenance.model_goal`);
          assert.equal(
            row.provenance.edited_goal,
            decision === 'edited' ? EDITED_GOAL : null,
            `${layout} ${id}: provenance.edited_goal`,
          );
        }
      }
    }

    // The report and the manifest count what review decided.
    const counts = { reviewable: 7, reviewed: 5, accepted: 1, edited: 1, rejected: 3, unreviewed: 2 };
    const report = JSON.parse((await download(page, 'download-report')).text);
    assert.deepEqual(report.review, counts);
    assert.equal(report.samples_per_format, KEPT.length);
    const byId = Object.fromEntries(report.trajectories.map((t) => [t.trajectory_id, t]));
    assert.deepEqual(byId['rv-recipe'].review, { decision: 'rejected', reason: REASON });
    assert.deepEqual(byId['rv-ci'].review, { decision: 'rejected', reason: 'single-judge fallback' });
    assert.deepEqual(byId['rv-hotel'].review, {
      decision: 'edited',
      goal: EDITED_GOAL,
      model_goal: modelGoal('rv-hotel'),
      judged: { verdict: 'accepted', confidence: 0.8 },
    });
    assert.deepEqual(byId['rv-sql'].review, { decision: 'unreviewed' });
    assert.equal(byId['rv-weather'].review, undefined);
    const manifest = JSON.parse((await download(page, 'download-manifest')).text);
    assert.deepEqual(manifest.review, counts);
    const trlRows = manifest.files.find((f) => f.format === 'trl-sft').rows;
    assert.equal(trlRows, KEPT.length);

    // The preview is the first row as downloaded.
    await page.getByTestId('preview-target').selectOption('trl-sft');
    const preview = page.getByTestId('preview-row');
    await preview.first().waitFor();
    assert.equal(await preview.count(), 3);
    const trl = jsonLines((await download(page, 'download-trl-sft')).text);
    assert.deepEqual(JSON.parse(await preview.first().textContent()), trl[0]);

    // Reviewed rows only: what review accepted or edited, in every layout.
    await page.getByTestId('export-reviewed-only').check();
    for (const layout of ['sft', 'trl-sft']) {
      const rows = jsonLines((await download(page, `download-${layout}`)).text);
      assert.deepEqual(rows.map((row) => idAndGoal(layout, row).id), REVIEWED_KEPT, `${layout}, reviewed only`);
    }
    await preview.first().waitFor();
    assert.equal(await preview.count(), REVIEWED_KEPT.length);

    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
