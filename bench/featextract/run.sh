#!/usr/bin/env bash
# featextract benchmark: faces per second batched vs unbatched (five-face photo, one-face
# clip) and audio windows per second, for the element and for the same models run from a
# Python onnxruntime loop on the same preprocessed inputs, side by side in one run on one
# CPU core (ONNX Runtime with one thread on both sides).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
VENV=$CACHE/bench-venv-feat
WORK=$CACHE/bench-featextract
ORT_VERSION=$(cat "$CACHE/onnxruntime/VERSION" 2>/dev/null || echo 1.31.1)

# Python side: onnxruntime (the same version the element loads) + numpy, installed once.
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import onnxruntime, numpy" 2>/dev/null \
  || "$VENV/bin/pip" install --quiet --find-links "$CACHE/wheels" "onnxruntime==$ORT_VERSION" "numpy==2.4.6"

mkdir -p "$WORK"
export FEATEXTRACT_BENCH_DIR=$WORK
# Element side (release build), then the Python loop on the inputs it wrote.
cargo test --release -p gst-plugin-affect --test featextract_bench --no-run
taskset -c 0 cargo test -q --release -p gst-plugin-affect --test featextract_bench -- --ignored --nocapture --test-threads=1
taskset -c 0 "$VENV/bin/python" bench/featextract/bench.py "$WORK" "$ROOT/weights"
