// The in-page model engine: llama.cpp compiled to WebAssembly (the npm packages
// @wllama/wllama and @wllama/wllama-compat, copied next to this file by Trunk), driven for the
// app's Rust code.
//
// The page imports this module only when the user chooses "In this page", so none of it is
// part of the first load. Every file comes from the app's own origin; nothing is fetched from
// a CDN.
//
// The package has two builds of llama.cpp. Its default one (wllama/wasm/) uses 64-bit
// WebAssembly memory and JS promise integration; its compatibility build (wllama/compat/) uses
// 32-bit memory and Asyncify. Both can grow to 4 GiB. The app runs the 32-bit build: it works in
// every current browser, and in Chromium it generated 1.1 to 2.7 times as many tokens per
// second as the 64-bit build (BENCHMARKS.md), as expected where 64-bit memory accesses need
// explicit bounds checks. The 64-bit build is kept for that comparison
// (`load(..., { build: 'memory64' })`).
//
// Inference does not run on the page's thread: the package starts a Web Worker (from a blob:
// URL) that instantiates llama.cpp; when the page is cross-origin isolated and more than one
// thread is asked for, that worker starts one more worker per extra thread (WebAssembly
// threads over shared memory).
//
// Errors are thrown as `{ kind, message }`; `kind` is the package's error type, or `abort`,
// `timeout`, `load_error`, `storage`, `fetch`.

import { Wllama } from '../wllama/index.min.js';

const MEMORY64_WASM = new URL('../wllama/wasm/wllama.wasm', import.meta.url).href;
const COMPACT = {
  wasm: new URL('../wllama/compat/wllama.wasm', import.meta.url).href,
  worker: new URL('../wllama/compat/wllama.js', import.meta.url).href,
};
const MODELS_FOLDER = 'agenther-models';

/** The package picks its 32-bit build only for browsers that lack 64-bit memory or promise
 * integration; this engine picks it always, unless asked for the 64-bit one. */
class Engine extends Wllama {
  constructor(build) {
    super({ default: MEMORY64_WASM }, { suppressNativeLog: true });
    this.build = build;
    this.setCompat(null);
  }

  getWorkerResources() {
    const resources = super.getWorkerResources();
    if (this.build === 'memory64') return resources;
    return { ...resources, wasmPath: COMPACT.wasm, jsPath: COMPACT.worker, compat: true };
  }
}

let engine = null;
/** `{ key, threads, multiThread, context, build }` of the loaded model. */
let loaded = null;
/** The load under way and its key, shared by everyone who waits for it. */
let loading = null;
let loadingKey = null;
/** Replies are generated one at a time, in the order asked. */
let queue = Promise.resolve();

function fail(kind, message) {
  return { kind, message: String(message) };
}

function reason(err) {
  if (err && typeof err === 'object' && 'kind' in err) return err;
  if (err?.name === 'AbortError') return fail('abort', 'aborted');
  return fail(err?.type ?? 'unknown_error', err?.message ?? err);
}

/** What the browser offers: cross-origin isolation (threads), cores, storage. */
export function environment() {
  return {
    isolated: globalThis.crossOriginIsolated === true,
    cores: navigator.hardwareConcurrency || 1,
    deviceMemoryGb: navigator.deviceMemory ?? null,
    opfs: typeof navigator.storage?.getDirectory === 'function',
  };
}

/** The first `n` bytes of a file, for its GGUF header. */
export async function head(blob, n) {
  return new Uint8Array(await blob.slice(0, n).arrayBuffer());
}

/** The key of the loaded model, or null. */
export function loadedKey() {
  return loaded?.key ?? null;
}

/** Loads `blob` as the model `key` with a context of `context` tokens, replacing any loaded
 * model. Multi-threaded (one thread per core, at least two) when the page is cross-origin
 * isolated: the package runs threads only when it can share memory and is asked for more than
 * one (by default it asks for half the cores, a single thread on a two-core machine).
 * `options.threads` and `options.build` ('compact', the default, or 'memory64') override
 * the choice, for the benchmark. */
export function load(key, blob, context, options = {}) {
  if (loaded?.key === key) return Promise.resolve(loaded);
  if (loading && loadingKey === key) return loading;
  const run = async () => {
    await unload();
    const env = environment();
    const threads = options.threads ?? (env.isolated ? Math.max(2, env.cores) : 1);
    const build = options.build ?? 'compact';
    const next = new Engine(build);
    try {
      await next.loadModel([blob], {
        n_ctx: context,
        n_threads: threads,
        n_parallel: 1,
        n_gpu_layers: 0,
      });
    } catch (err) {
      await next.exit().catch(() => {});
      throw reason(err);
    }
    engine = next;
    loaded = {
      key,
      threads: next.getNumThreads(),
      multiThread: next.isMultithread(),
      context,
      build,
    };
    return loaded;
  };
  const previous = loading ?? Promise.resolve();
  loadingKey = key;
  loading = previous
    .catch(() => {})
    .then(run)
    .finally(() => {
      if (loadingKey === key) {
        loading = null;
        loadingKey = null;
      }
    });
  return loading;
}

/** Waits for a load under way, if any; the key then loaded (or null). */
export async function settled() {
  if (loading) await loading.catch(() => {});
  return loadedKey();
}

/** Frees the loaded model and its workers. */
export async function unload() {
  const old = engine;
  engine = null;
  loaded = null;
  if (old) await old.exit().catch(() => {});
}

/**
 * Answers one chat-completions request (the OpenAI body as JSON) with the loaded model.
 * Waits its turn; `timeoutMs` counts from the moment its generation starts. `signal` stops
 * it. Resolves with `{ body, ms, decodeMs }`: the response as JSON text, the time it took and
 * the engine's own time for the reply tokens (when reported).
 */
export function chat(requestJson, signal, timeoutMs) {
  const turn = queue.then(() => generate(requestJson, signal, timeoutMs));
  queue = turn.catch(() => {});
  return turn;
}

async function generate(requestJson, signal, timeoutMs) {
  if (signal?.aborted) throw fail('abort', 'aborted');
  if (!engine) throw fail('model_not_loaded', 'no model is loaded');
  const request = JSON.parse(requestJson);
  const stop = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, timeoutMs);
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort);
  const started = performance.now();
  try {
    // Every field of the request goes to llama.cpp's own request parser, as on its server.
    const response = await engine.createChatCompletion({
      ...request,
      stream: false,
      abortSignal: stop.signal,
    });
    const ms = performance.now() - started;
    const decodeMs = response?.timings?.predicted_ms ?? null;
    if (request.model && !response.model) response.model = request.model;
    return { body: JSON.stringify(response), ms, decodeMs };
  } catch (err) {
    if (timedOut) throw fail('timeout', `no reply within ${timeoutMs} ms`);
    if (signal?.aborted) throw fail('abort', 'aborted');
    throw reason(err);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Fetches a model from `url` (the browser's own request: the server must allow this page's
 * origin), calling `progress(received, total)` as it arrives. */
export async function download(url, progress, signal) {
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    throw fail('fetch', `${err?.message ?? err} (the server is unreachable or does not allow this page's origin)`);
  }
  if (!response.ok) throw fail('fetch', `HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get('content-length')) || 0;
  const reader = response.body.getReader();
  const parts = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    received += value.length;
    progress(received, total);
  }
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || 'model.gguf');
  return new File(parts, name);
}

async function folder() {
  if (typeof navigator.storage?.getDirectory !== 'function') {
    throw fail('storage', 'this browser offers no origin private file system');
  }
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(MODELS_FOLDER, { create: true });
}

/** Keeps `blob` in the browser's origin private file system as `name`. */
export async function keep(name, blob) {
  try {
    const dir = await folder();
    const handle = await dir.getFileHandle(name, { create: true });
    const writable = await handle.createWritable();
    await writable.write(blob);
    await writable.close();
    await navigator.storage.persist?.().catch(() => false);
  } catch (err) {
    const dir = await folder().catch(() => null);
    await dir?.removeEntry(name).catch(() => {});
    if (err?.name === 'QuotaExceededError') {
      throw fail('storage', 'the browser has no room left for this page to keep the model');
    }
    throw err?.kind ? err : fail('storage', err?.message ?? err);
  }
}

/** The kept models: `[{ name, size }]`. */
export async function kept() {
  const dir = await folder();
  const out = [];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind === 'file') out.push({ name, size: (await handle.getFile()).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The kept model `name` as a File (read from disk as the engine needs it), or null. */
export async function open(name) {
  try {
    const dir = await folder();
    return await (await dir.getFileHandle(name)).getFile();
  } catch {
    return null;
  }
}

/** Deletes the kept model `name`. */
export async function remove(name) {
  const dir = await folder();
  await dir.removeEntry(name);
}
