// What each part of the web build weighs, for BENCHMARKS.md. Not a test: it measures and
// prints.
//
//   node tests/e2e/bench/size.mjs [--json]
//
// Needs `twiggy` on PATH (`cargo install twiggy --locked`) and a web build of this tree
// (`trunk build --release`: .ci/page.sh leaves the split main module, with its function
// names, in target/page/split/ and the shipped files in dist/). It measures the first load
// (index.html, boot.js, the CSS, the page's JavaScript glue and main wasm, each gzipped), the
// modules loaded when first used and the background reader. Then it reads the function names
// of the main module (before wasm-bindgen and wasm-opt, which drop them), sums the code per
// part (this crate's modules, the UI's components, each dependency) and scales each part's
// share of the code to the gzipped size of the shipped main wasm. The shares are of code
// before wasm-opt, so each part's gzipped figure is an estimate; the totals are measured.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { REPO } from './corpus.mjs';

const asJson = process.argv.includes('--json');
const DIST = join(REPO, 'dist');
const linked = join(REPO, 'target', 'page', 'split', 'agenther.wasm');
const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const fromDist = (path) => readFileSync(join(DIST, path.replace(/^\//, '')));

let html;
try {
  html = readFileSync(join(DIST, 'index.html'), 'utf8');
} catch {
  console.error('no dist/index.html: run `trunk build --release` first');
  process.exit(2);
}
const tag = html.match(/data-agenther-js="([^"]+)" data-agenther-wasm="([^"]+)"/);
const css = html.match(/href="([^"]+\.css)"/);
if (!tag || !css) {
  console.error("dist/index.html names no page loader or stylesheet: is it this tree's build?");
  process.exit(2);
}
const [, jsPath, wasmPath] = tag;
const wasm = fromDist(wasmPath);
const gzipped = gz(wasm);
const first = [
  ['index.html', gz(Buffer.from(html))],
  ['boot.js', gz(fromDist('boot.js'))],
  [css[1].replace(/^\//, ''), gz(fromDist(css[1]))],
  [jsPath.replace(/^\//, ''), gz(fromDist(jsPath))],
  [wasmPath.replace(/^\//, ''), gzipped],
];
const firstLoad = first.reduce((sum, [, bytes]) => sum + bytes, 0);
const folder = wasmPath.replace(/^\//, '').split('/')[0];
let linkedFolder = null;
try {
  linkedFolder = readFileSync(join(REPO, 'target', 'page', 'folder'), 'utf8').trim();
} catch {}
if (linkedFolder !== folder) {
  console.error(
    `target/page/ holds build ${linkedFolder ?? '(none)'}, dist/ holds ${folder}: run \`trunk build --release\` again`,
  );
  process.exit(2);
}
const later = readdirSync(join(DIST, folder))
  .filter((f) => f.endsWith('.wasm') && f !== 'agenther_bg.wasm')
  .map((f) => [f, gz(readFileSync(join(DIST, folder, f)))])
  .sort((a, b) => b[1] - a[1]);
const laterTotal = later.reduce((sum, [, bytes]) => sum + bytes, 0);
const reader = readdirSync(DIST).find((f) => /^agenther-worker-.*_bg\.wasm$/.test(f));
const readerGz = reader ? gz(readFileSync(join(DIST, reader))) : null;

let csv;
try {
  csv = execFileSync('twiggy', ['top', '-n', '100000000', '--format', 'csv', linked], {
    maxBuffer: 1 << 30,
  }).toString();
} catch (e) {
  console.error(`twiggy failed (is it installed? cargo install twiggy --locked): ${e.message}`);
  process.exit(2);
}

/** Splits one CSV line (twiggy quotes names that hold commas or quotes). */
function fields(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** The part an item belongs to, or null for what the shipped wasm does not carry. */
function part(name) {
  if (/^"?(function names|custom section|export ")/.test(name) || name.includes('__wbindgen_describe')) return null;
  if (name.startsWith('data segment')) return 'data (strings, tables)';
  const ours = name.match(/agenther::(ui::)?([a-z_0-9]+)/);
  if (ours) {
    if (ours[1]) return `ui::${ours[2].replace(/^__component_/, '')}`;
    return ours[2];
  }
  const crate = name.replace(/^[<&*( ]+|^(impl|dyn) /g, '').match(/^([A-Za-z_][A-Za-z_0-9]*)/);
  if (!crate) return 'other';
  const c = crate[1];
  if (['tachys', 'reactive_graph', 'leptos', 'leptos_dom', 'either_of', 'any_spawner', 'throw_error', 'oco_ref', 'slotmap', 'guardian', 'send_wrapper'].includes(c)) return 'leptos (views, signals)';
  if (['core', 'alloc', 'std', 'dlmalloc', 'compiler_builtins', 'hashbrown'].includes(c)) return 'standard library';
  if (['serde', 'serde_core', 'serde_json', 'serde_wasm_bindgen', 'indexmap', 'itoa', 'ryu', 'zmij', 'memchr'].includes(c)) return 'serde, serde_json';
  if (['wasm_bindgen', 'js_sys', 'web_sys', 'wasm_bindgen_futures', 'gloo_net', 'gloo_utils', 'console_error_panic_hook'].includes(c)) return 'wasm-bindgen, web-sys, js-sys';
  if (c === 'minijinja') return 'minijinja';
  if (['futures_util', 'futures_core', 'futures_channel', 'futures_task'].includes(c)) return 'futures';
  if (['sha2', 'digest', 'block_buffer', 'crypto_common', 'generic_array'].includes(c)) return 'sha2';
  return 'closures and other generic code';
}

const lines = csv.split('\n').slice(1).filter(Boolean);
const sizes = new Map();
let code = 0;
for (const line of lines) {
  const [name, shallow] = fields(line);
  const p = part(name);
  if (p === null) continue;
  const bytes = Number(shallow);
  sizes.set(p, (sizes.get(p) ?? 0) + bytes);
  code += bytes;
}
const parts = [...sizes.entries()]
  .map(([name, bytes]) => ({ name, share: bytes / code, gzipped: Math.round((bytes / code) * gzipped) }))
  .sort((a, b) => b.share - a.share);

if (asJson) {
  console.log(JSON.stringify({ wasm: wasm.length, gzipped, firstLoad, first, later, laterTotal, reader: readerGz, parts }));
} else {
  console.log(`first load ${firstLoad} B gzipped (gzip -9): ${first.map(([f, b]) => `${f} ${b}`).join(', ')}`);
  console.log(`loaded when first used: ${laterTotal} B in ${later.length} modules (${later.map(([f, b]) => `${f} ${b}`).join(', ')})`);
  if (readerGz !== null) console.log(`background reader (with the first file): ${reader} ${readerGz} B`);
  console.log(`main wasm ${wasm.length} B, ${gzipped} B gzipped`);
  console.log('| part | share of the code | gzipped (est.) |');
  console.log('|---|---:|---:|');
  for (const p of parts) {
    if (p.share < 0.004) continue;
    console.log(`| ${p.name} | ${(p.share * 100).toFixed(1)} % | ${(p.gzipped / 1000).toFixed(1)} KB |`);
  }
  const small = parts.filter((p) => p.share < 0.004);
  const rest = small.reduce((s, p) => s + p.share, 0);
  console.log(`| ${small.length} smaller parts | ${(rest * 100).toFixed(1)} % | ${((rest * gzipped) / 1000).toFixed(1)} KB |`);
}
