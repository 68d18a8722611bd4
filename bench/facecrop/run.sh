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
VENV=$CACHE/bench-venv-face
PY=/usr/bin/python3   # Debian's python: it has PyGObject (python3-gi)
MEDIA=$CACHE/media/single_face.mp4
PINS=(onnxruntime==1.31.1 numpy==2.4.6 opencv-python-headless==4.14.0.94)

[ -f "$MEDIA" ] || { echo "bench/facecrop: $MEDIA missing: run 'make setup'" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench/facecrop: taskset (util-linux) is needed" >&2; exit 1; }

# Release build of the plugin (the element is what is measured).
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

# The Python side: a venv with the pinned onnxruntime (the same version as the element's
# libonnxruntime), numpy and OpenCV; system site packages for PyGObject (gi).
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" - "${PINS[@]}" <<'PYCHECK' 2>/dev/null || "$VENV/bin/pip" install --quiet "${PINS[@]}"
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PYCHECK

export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
# bench.py pins each measurement itself (taskset per child process).
exec "$VENV/bin/python" bench/facecrop/bench.py --work "$CACHE/bench-facecrop" \
  --media "$MEDIA" --model "$ROOT/weights/blazeface-full.onnx" "$@"
