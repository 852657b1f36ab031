// The in-page model engine: llama.cpp compiled to WebAssembly (the npm package
// @wllama/wllama, copied next to this file by Trunk), driven for the app's Rust code.
//
// The page imports this module only when the user chooses "In this page", so none of it is
// part of the first load. Every file comes from the app's own origin: the compatibility build
// that the package would otherwise fetch from a CDN is switched off.
//
// Inference does not run on the page's thread: the package starts a Web Worker (from a blob:
// URL) that instantiates llama.cpp; when the page is cross-origin isolated that worker starts
// one more worker per extra thread (WebAssembly threads over shared memory).
//
// Errors are thrown as `{ kind, message }`; `kind` is the package's error type, or `abort`,
// `timeout`, `load_error`, `storage`, `fetch`.

import { Wllama } from '../wllama/index.min.js';

const WASM_PATH = new URL('../wllama/wasm/wllama.wasm', import.meta.url).href;
const MODELS_FOLDER = 'agenther-models';

let engine = null;
/** `{ key, threads, multiThread, context }` of the loaded model. */
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

/** What the browser offers: cross-origin isolation (threads), cores, and the WebAssembly
 * features the engine's build needs. */
export function environment() {
  let memory64 = false;
  try {
    new WebAssembly.Memory({ address: 'i64', initial: 1n });
    memory64 = true;
  } catch {
    memory64 = false;
  }
  return {
    isolated: globalThis.crossOriginIsolated === true,
    cores: navigator.hardwareConcurrency || 1,
    memory64,
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
 * model. Multi-threaded (one thread per core) when the page is cross-origin isolated. */
export function load(key, blob, context) {
  if (loaded?.key === key) return Promise.resolve(loaded);
  if (loading && loadingKey === key) return loading;
  const run = async () => {
    await unload();
    const env = environment();
    if (!env.memory64) {
      throw fail('load_error', 'this browser lacks 64-bit WebAssembly memory, which the engine needs (Chrome or Edge 133+, Firefox 134+)');
    }
    const threads = env.isolated ? Math.max(2, env.cores) : 1;
    const next = new Wllama({ default: WASM_PATH }, { suppressNativeLog: true });
    next.setCompat(null);
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
    loaded = { key, threads: next.getNumThreads(), multiThread: next.isMultithread(), context };
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
    const response = await engine.createChatCompletion({
      messages: request.messages,
      temperature: request.temperature,
      max_tokens: request.max_tokens,
      response_format: request.response_format,
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
