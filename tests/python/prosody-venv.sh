#!/usr/bin/env bash
# The Python environment of the voice-prosody parity check
# (tests/python/check_voice_prosody.py, run by tests/voice_prosody.rs): a venv under the
# cache folder on Debian's python3, with exact pins, created once and checked on every
# call (idempotent). onnxruntime is the version the elements load (its wheel is in the
# cache after `make setup`). Prints the venv's python on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
PINS=(
  "onnxruntime==$(cat "$CACHE/onnxruntime/VERSION" 2>/dev/null || echo 1.31.1)"
  numpy==2.4.6 onnx==1.23.2 librosa==0.11.0
  scipy==1.17.1 numba==0.68.1 llvmlite==0.50.0 soundfile==0.14.0 soxr==1.1.0
)
. "$ROOT/tests/python/pinned-venv.sh"
ARGS=(--find-links "$CACHE/wheels")
pinned_venv prosody-venv PINS ARGS
