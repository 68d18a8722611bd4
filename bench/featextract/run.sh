#!/usr/bin/env bash
# featextract benchmark: faces per second batched vs unbatched (five-face photo, one-face
# clip) and audio windows per second, for the element and for the same models run from a
# Python onnxruntime + OpenCV loop on the same inputs, side by side in one run on one CPU
# core (ONNX Runtime with one thread on both sides).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
WORK=$CACHE/bench-featextract

# Python side: onnxruntime (the same version the element loads), numpy, OpenCV.
. bench/python-env.sh

mkdir -p "$WORK"
export FEATEXTRACT_BENCH_DIR=$WORK
# Element side (release build), then the Python loop on the inputs it wrote.
cargo test --release -p gst-plugin-affect --test featextract_bench --no-run
taskset -c 0 cargo test -q --release -p gst-plugin-affect --test featextract_bench -- --ignored --nocapture --test-threads=1
taskset -c 0 "$BENCH_PY" bench/featextract/bench.py "$WORK" "$ROOT/weights"
