// Every speed benchmark of BENCHMARKS.md, in one go on this machine, so that their ratios
// come from the same hour and the same load. Not a test: it asserts no time.
//
//   trunk build --release
//   node tests/e2e/bench/all.mjs [--quick]
//
// In turn:
// 1. loading in the app against a plain page running JSON.parse on the same lines
//    (parse-ratio.mjs: 3 rounds of the corpus × 25 and × 100; --quick: × 25 only);
// 2. `replay` against the build before the fast core and a bare serde_json parse
//    (replay.mjs: 3 runs of 10,000 trajectories);
// 3. the LLM stage against latency endpoints at concurrency 1, 4, 6 and 16 over one and three
//    endpoints (llm.mjs: 3 runs; --quick: 1 run);
// 4. what each part of the web build weighs (size.mjs; skipped without twiggy);
// 5. the page's start-up, and its first use of the example (startup.mjs: 3 rounds).
// Each script prints its own table; a failing one is reported and the others still run. The
// exit status is the number of scripts that failed.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

const steps = [
  ['loading against JSON.parse', 'parse-ratio.mjs', quick ? ['--rounds', '3', '25'] : ['--rounds', '3', '25', '100']],
  ['replay against serde_json', 'replay.mjs', ['--runs', '3']],
  ['the LLM stage past six connections', 'llm.mjs', ['--runs', quick ? '1' : '3']],
  ['the web build, part by part', 'size.mjs', []],
  ['start-up of the page', 'startup.mjs', ['--rounds', quick ? '1' : '3']],
];

const hasTwiggy = spawnSync('twiggy', ['--version']).status === 0;

let failed = 0;
const started = Date.now();
for (const [title, script, args] of steps) {
  if (script === 'size.mjs' && !hasTwiggy) {
    console.log(`\n## ${title}\n\n(skipped: twiggy is not on PATH; cargo install twiggy --locked)`);
    continue;
  }
  console.log(`\n## ${title}\n\n$ node tests/e2e/bench/${script} ${args.join(' ')}`);
  const t0 = Date.now();
  const run = spawnSync(process.execPath, [join(here, script), ...args], { stdio: 'inherit' });
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  if (run.status !== 0) {
    failed += 1;
    console.log(`(${script} failed with status ${run.status ?? run.signal} after ${seconds} s)`);
  } else {
    console.log(`(${seconds} s)`);
  }
}
console.log(`\nAll benchmarks: ${((Date.now() - started) / 60000).toFixed(1)} min, ${failed} failed.`);
process.exit(failed);
