// Accessibility and narrow screens: axe-core finds no serious or critical violation, and the
// page never scrolls sideways at 390 px, in every state of the workspace (empty, loaded,
// running, done, a row's detail open, the review queue with its forms, the export preview), in
// the light and the dark theme, on a desktop and on a phone-sized screen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import AxeBuilder from '@axe-core/playwright';
import { startEndpoint } from './support/endpoint.mjs';
import { DATA, REPO, checkConnection, configure, openApp, openDetail, pickFiles } from './support/browser.mjs';
import { join } from 'node:path';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

/** The serious and critical violations axe-core finds on the page, one line each. */
async function violations(page) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** How wide the page is, in CSS pixels (wider than the viewport: it scrolls sideways). */
async function scrollWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

/** The elements that reach past the right edge of a `width` px screen, outermost first. */
async function overflowing(page, width) {
  return page.evaluate((width) => {
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right <= width + 0.5 || r.width === 0) continue;
      if (out.some((o) => o.el.contains(el))) continue;
      const name = el.tagName.toLowerCase() + (el.id ? `#${el.id}` : '') +
        (el.getAttribute('data-testid') ? `[data-testid=${el.getAttribute('data-testid')}]` : '') +
        (typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '');
      out.push({ el, text: `${name} (${Math.round(r.right)} px)` });
    }
    return out.slice(0, 30).map((o) => o.text);
  }, width);
}

/** Checks the page in its current state (`state` names it in the messages). */
async function check(page, viewport, state) {
  assert.deepEqual(await violations(page), [], `axe-core violations (${state})`);
  if (viewport.width === PHONE.width) {
    const width = await scrollWidth(page);
    if (width > PHONE.width) {
      const culprits = (await overflowing(page, PHONE.width)).join(', ');
      assert.fail(`${state}: the page is ${width} px wide at ${PHONE.width} px: ${culprits}`);
    }
  }
}

for (const viewport of [DESKTOP, PHONE]) {
  for (const colorScheme of ['light', 'dark']) {
    test(`every state passes axe-core and fits the screen (${viewport.width} px, ${colorScheme})`, async () => {
      const endpoint = await startEndpoint({ delayMs: 300 });
      const app = await openApp({ viewport });
      try {
        const { page } = app;
        await page.emulateMedia({ colorScheme });
        await check(page, viewport, 'empty');

        await pickFiles(page, [join(DATA, 'run-a.jsonl'), join(DATA, 'run-b.jsonl')]);
        await page.getByTestId('file-row').nth(1).waitFor();
        await check(page, viewport, 'loaded');

        await configure(page, {
          baseUrl: endpoint.url,
          model: 'scripted-model',
          selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
        });
        const connection = await checkConnection(page);
        assert.equal(connection.status, 'ok', connection.text);
        await check(page, viewport, 'configured, advanced settings open');

        const panel = page.getByTestId('run-panel');
        await page.getByTestId('run').click();
        await panel.and(page.locator('[data-state="running"]')).waitFor();
        await check(page, viewport, 'running');
        await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
        assert.match(await page.getByTestId('progress-announce').textContent(), /^Run done: /);
        await check(page, viewport, 'done');
        if (viewport === PHONE) {
          // Rows are cards there: each value says what it is.
          const label = await page
            .getByTestId('cell-original')
            .first()
            .evaluate((td) => getComputedStyle(td, '::before').content);
          assert.equal(label, '"Original goal: "');
        }
        if (colorScheme === 'light') {
          // The README's pictures of the workspace after a run: the stepper and the endpoint.
          await page.locator('#step-endpoint').evaluate((el) => el.scrollIntoView());
          const name = viewport === PHONE ? 'workspace-phone.png' : 'workspace.png';
          await page.screenshot({ path: join(REPO, 'public', 'screenshots', name) });
        }

        await openDetail(page, 'run-accept');
        await check(page, viewport, 'detail open');
        await page.keyboard.press('Escape');

        // The review queue: a card, the reject form, the goal editor, a decision made.
        const card = page.getByTestId('review-card');
        await card.focus();
        await check(page, viewport, 'review card');
        await page.keyboard.press('r');
        await page.getByTestId('review-reason').waitFor();
        await check(page, viewport, 'review, reject form open');
        await page.keyboard.press('Escape');
        await page.getByTestId('review-reason').waitFor({ state: 'detached' });
        await card.focus();
        await page.keyboard.press('e');
        await page.getByTestId('review-edit-input').waitFor();
        await check(page, viewport, 'review, goal editor open');
        await page.keyboard.press('Escape');
        await page.getByTestId('review-edit-input').waitFor({ state: 'detached' });
        await card.focus();
        await page.keyboard.press('a');
        await page.getByTestId('review-progress').filter({ hasText: /Reviewed 1 \// }).waitFor();
        await check(page, viewport, 'review, one accepted');

        // The export step with a layout's preview.
        await page.getByTestId('preview-target').selectOption('trl-sft');
        await page.getByTestId('preview-row').first().waitFor();
        await check(page, viewport, 'export preview');
        await app.checkConsole();
      } finally {
        await app.close();
        await endpoint.close();
      }
    });
  }
}
