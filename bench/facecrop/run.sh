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

command -v taskset >/dev/null || { echo "bench/facecrop: taskset (util-linux) is needed" >&2; exit 1; }
BENCH=facecrop
. bench/plugin-env.sh
# bench.py pins each measurement itself (taskset per child process).
exec "$BENCH_PY" bench/facecrop/bench.py --work "$CACHE/bench-facecrop" \
  --media "$MEDIA" --model "$ROOT/weights/blazeface-full.onnx" "$@"
