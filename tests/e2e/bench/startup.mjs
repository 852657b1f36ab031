// Start-up of the built app, for BENCHMARKS.md. Not a test: it measures and prints.
//
//   node tests/e2e/bench/startup.mjs [--rounds N] [DIST_A DIST_B]
//
// Opens the page in headless Chromium, in a fresh profile each time, and times from the
// navigation to the app replacing the placeholder (public/boot.js removes #boot once the app
// has mounted), then the first "Try the example" until its rows show (with a split build, the
// first use of the reader's module). Each round opens every build once, alternately, on a
// plain local connection and on a slow one (Chromium's network emulation: 1.6 Mbit/s down,
// 150 ms round trip, the "Fast 3G" preset). With two dist folders it compares them (A/B in
// the same run); with none it measures dist/. The test server does not compress, so the
// bytes on the wire are the files' own.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../server.mjs';
import { CHROMIUM_FLAGS, executablePath } from '../support/browser.mjs';
import { REPO } from './corpus.mjs';

const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 5;
const dists = args.filter((a, i) => !a.startsWith('--') && i !== roundsAt + 1);
const builds = dists.length ? dists : [join(REPO, 'dist')];

const SLOW = { offline: false, downloadThroughput: (1.6e6 / 8) * 0.9, uploadThroughput: (750e3 / 8) * 0.9, latency: 150 };

async function once(dist, slow) {
  const server = await startServer(dist);
  const profile = await mkdtemp(join(tmpdir(), 'agenther-startup-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    if (slow) await cdp.send('Network.emulateNetworkConditions', SLOW);
    // Bytes on the wire so far: the document's and every resource's transfer size.
    const transferred = () =>
      page.evaluate(() =>
        performance
          .getEntriesByType('navigation')
          .concat(performance.getEntriesByType('resource'))
          .reduce((sum, e) => sum + e.transferSize, 0),
      );
    const t0 = Date.now();
    await page.goto(server.url);
    await page.waitForSelector('#boot', { state: 'detached', timeout: 120_000 });
    const started = Date.now() - t0;
    const startBytes = await transferred();
    const t1 = Date.now();
    await page.getByTestId('load-example').click();
    await page.getByTestId('file-row').first().waitFor({ timeout: 120_000 });
    const example = Date.now() - t1;
    // Resource timing lists a response a little after the page has used it.
    await page.waitForTimeout(1000);
    return { started, startBytes, example, exampleBytes: (await transferred()) - startBytes };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
    await server.close();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

for (const slow of [false, true]) {
  const results = builds.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let b = 0; b < builds.length; b++) results[b].push(await once(builds[b], slow));
  }
  console.log(`\n${slow ? 'slow connection (1.6 Mbit/s, 150 ms)' : 'local connection'}, ${rounds} rounds, medians:`);
  console.log('| build | bytes to start | start, ms | per round | example: bytes | example, ms |');
  console.log('|---|---:|---:|---|---:|---:|');
  builds.forEach((dist, b) => {
    const rs = results[b];
    console.log(
      `| ${dist} | ${median(rs.map((x) => x.startBytes))} | ${median(rs.map((x) => x.started))} | ${rs.map((x) => x.started).join(', ')} | ${median(rs.map((x) => x.exampleBytes))} | ${median(rs.map((x) => x.example))} |`,
    );
  });
  if (builds.length === 2) {
    const ratio = median(results[1].map((x, i) => x.started / results[0][i].started));
    console.log(`start-up, B ÷ A (median of the rounds' ratios): ${ratio.toFixed(2)}`);
  }
}
