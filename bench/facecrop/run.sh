#!/usr/bin/env bash
# facecrop benchmark: frames per second of the element on a 640x360 one-face clip and of
# the same detector + alignment written as a Python loop (onnxruntime + OpenCV), side by
# side in one run: at equal work (detector on every frame, one thread, one pinned core)
# and with the element's best settings (2 cores, detect-interval=3 with tracking), plus
# the detector model alone and the IoU of tracked boxes against per-frame detection.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/single_face.mp4

[ -f "$MEDIA" ] || { echo "bench/facecrop: $MEDIA missing: run 'make setup'" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench/facecrop: taskset (util-linux) is needed" >&2; exit 1; }

# Release build of the plugin (the element is what is measured).
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

# The Python side: onnxruntime, numpy, OpenCV (and PyGObject from the system).
. bench/python-env.sh

export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
# bench.py pins each measurement itself (taskset per child process).
exec "$BENCH_PY" bench/facecrop/bench.py --work "$CACHE/bench-facecrop" \
  --media "$MEDIA" --model "$ROOT/weights/blazeface-full.onnx" "$@"
