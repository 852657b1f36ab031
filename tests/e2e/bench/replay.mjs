// Benchmark of the native `replay` command, for BENCHMARKS.md. Not a test: it asserts no
// time, it measures and prints (it does fail when an output differs).
//
//   node tests/e2e/bench/replay.mjs [--trajectories N] [--runs R] [--base REF] [--json]
//
// In one go on this machine it:
// - builds `replay` and the `serde_parse` example of this tree (release profile), and
//   `replay` of the git commit REF (default: the last commit before the fast core) from a
//   `git archive` of it, kept under target/bench/ for later runs;
// - writes N trajectories (default 10,000): the reference corpus over and over with fresh ids;
// - checks that this build's output is byte-identical to the reference's expected output on
//   the corpus, and to REF's output on the generated file;
// - then R times (default 3), in turn: REF's `replay`, this `replay` on one thread
//   (`--jobs 1`), this `replay` on every core, and `serde_parse` (each line parsed into a
//   `serde_json::Value`, nothing else), each on the generated file with its lines written to
//   /dev/null. Wall-clock time and CPU time (user + system, from the kernel's count of this
//   process's finished children) of each run, the medians, and the ratios of the medians.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, writeCorpus } from './corpus.mjs';

/** The last commit before the fast core (issue 11): `replay` as it was. */
const BEFORE = '6ee3c91253027fba2dc9029043f030f4b0ec8926';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
};
const count = Number(option('--trajectories', 10_000));
const runs = Number(option('--runs', 3));
const baseRef = option('--base', BEFORE);
const asJson = args.includes('--json');
if (![count, runs].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error('usage: node tests/e2e/bench/replay.mjs [--trajectories N] [--runs R] [--base REF] [--json]');
  process.exit(2);
}

const BENCH = join(REPO, 'target', 'bench');
await mkdir(BENCH, { recursive: true });

function run(command, argv, options = {}) {
  const result = spawnSync(command, argv, { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} failed (${result.status ?? result.signal})`);
  return result;
}

// This tree's programs.
run('cargo', ['build', '--release', '--bin', 'replay', '--example', 'serde_parse']);
const replay = join(REPO, 'target', 'release', 'replay');
const serdeParse = join(REPO, 'target', 'release', 'examples', 'serde_parse');

// REF's replay, built once from its own sources.
const baseSha = execFileSync('git', ['rev-parse', `${baseRef}^{commit}`], { cwd: REPO, encoding: 'utf8' }).trim();
const baseReplay = join(BENCH, `replay-${baseSha.slice(0, 12)}`);
if (!existsSync(baseReplay)) {
  const src = join(BENCH, `src-${baseSha.slice(0, 12)}`);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  run('sh', ['-c', `git archive ${baseSha} | tar -x -C "${src}"`]);
  run('cargo', ['build', '--release', '--bin', 'replay'], {
    cwd: src,
    env: { ...process.env, CARGO_TARGET_DIR: join(BENCH, 'base-target') },
  });
  await copyFile(join(BENCH, 'base-target', 'release', 'replay'), baseReplay);
  await rm(src, { recursive: true, force: true });
}

const input = join(BENCH, `replay-${count}.jsonl`);
const bytes = await writeCorpus(input, count);

// Same output, or no figures.
const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const corpusOut = join(BENCH, 'replay-corpus.out.jsonl');
run(replay, [join(REPO, 'tests', 'fixtures', 'reference', 'corpus.jsonl'), '--out', corpusOut], { stdio: 'ignore' });
if (sha256(corpusOut) !== sha256(join(REPO, 'tests', 'fixtures', 'reference', 'expected.jsonl'))) {
  throw new Error('replay output on the corpus differs from the reference expected.jsonl');
}
const outputs = [];
for (const [program, extra] of [[baseReplay, []], [replay, ['--jobs', '1']], [replay, []]]) {
  const out = join(BENCH, `replay-check-${outputs.length}.jsonl`);
  run(program, [input, '--out', out, ...extra], { stdio: 'ignore' });
  outputs.push(sha256(out));
  await rm(out);
}
if (new Set(outputs).size !== 1) throw new Error(`outputs differ on ${input}: ${outputs.join(' ')}`);

/** This process's finished children's CPU time so far, in seconds (Linux /proc). */
function childrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of the file (1-based), in clock ticks.
  const ticks = Number(fields[13]) + Number(fields[14]);
  return ticks / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
}

const contenders = [
  { name: `replay ${baseSha.slice(0, 7)} (before)`, argv: [baseReplay, input, '--out', '/dev/null'] },
  { name: 'replay, 1 thread', argv: [replay, input, '--out', '/dev/null', '--jobs', '1'] },
  { name: 'replay, every core', argv: [replay, input, '--out', '/dev/null'] },
  { name: 'serde_json parse', argv: [serdeParse, input] },
];
for (const c of contenders) c.runs = [];
for (let r = 0; r < runs; r++) {
  for (const c of contenders) {
    const cpu = childrenCpu();
    const started = performance.now();
    run(c.argv[0], c.argv.slice(1), { stdio: 'ignore' });
    c.runs.push({ wall: (performance.now() - started) / 1000, cpu: childrenCpu() - cpu });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
for (const c of contenders) {
  c.wall = median(c.runs.map((x) => x.wall));
  c.cpu = median(c.runs.map((x) => x.cpu));
}
const fmt = (x) => x.toFixed(2);
console.log(
  `${count} trajectories, ${(bytes / 1e6).toFixed(1)} MB; ${runs} runs each, in turn; ` +
    `${(await import('node:os')).availableParallelism()} cores`,
);
for (const c of contenders) {
  const each = c.runs.map((x) => `${fmt(x.wall)}/${fmt(x.cpu)}`).join(', ');
  console.log(`${c.name.padEnd(28)} median ${fmt(c.wall)} s wall, ${fmt(c.cpu)} s CPU   (wall/CPU: ${each})`);
}
const [before, one, all, serde] = contenders;
const ratio = (a, b, key) => fmt(a[key] / b[key]);
console.log(`speed-up over before: 1 thread ${ratio(before, one, 'wall')}x wall (${ratio(before, one, 'cpu')}x CPU), every core ${ratio(before, all, 'wall')}x wall`);
console.log(`replay / serde_json parse: 1 thread ${ratio(one, serde, 'wall')}x wall (${ratio(one, serde, 'cpu')}x CPU), every core ${ratio(all, serde, 'wall')}x wall`);
if (asJson) console.log(JSON.stringify({ count, bytes, runs, contenders }, null, 2));
await rm(input);
