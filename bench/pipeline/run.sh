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

command -v taskset >/dev/null || { echo "bench/pipeline: taskset (util-linux) is needed" >&2; exit 1; }
BENCH=pipeline
. bench/plugin-env.sh
exec "$BENCH_PY" bench/pipeline/bench.py --work "$CACHE/bench-pipeline" \
  --media "$MEDIA" --weights "$ROOT/weights" "$@"
