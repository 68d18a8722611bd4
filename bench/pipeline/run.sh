#!/usr/bin/env bash
# Full audio-visual pipeline benchmark (issue 7): real-time factor of the element pipeline
# (decode -> facecrop -> featextract x2 -> audiodenoise -> avfuse) on the demo clip, the
# models-only bound (the models' own ONNX Runtime times for the same frames/windows), the
# same steps as a Python onnxruntime + OpenCV loop, and the causal-mode latency, all in one
# run, printed as ratios. See bench/pipeline/bench.py for what each number is.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/sample.mp4

[ -f "$MEDIA" ] || { echo "bench/pipeline: $MEDIA missing: run 'make setup'" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench/pipeline: taskset (util-linux) is needed" >&2; exit 1; }

# Release build of the plugin (the elements are what is measured).
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

. bench/python-env.sh

export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
exec "$BENCH_PY" bench/pipeline/bench.py --work "$CACHE/bench-pipeline" \
  --media "$MEDIA" --weights "$ROOT/weights" "$@"
