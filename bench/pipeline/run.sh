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
VENV=$CACHE/bench-venv-face   # shared with bench/facecrop (same pins)
PY=/usr/bin/python3           # Debian's python: it has PyGObject (python3-gi)
MEDIA=$CACHE/media/sample.mp4
PINS=(onnxruntime==1.31.1 numpy==2.4.6 opencv-python-headless==4.14.0.94)

[ -f "$MEDIA" ] || { echo "bench/pipeline: $MEDIA missing: run 'make setup'" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench/pipeline: taskset (util-linux) is needed" >&2; exit 1; }

# Release build of the plugin (the elements are what is measured).
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

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
exec "$VENV/bin/python" bench/pipeline/bench.py --work "$CACHE/bench-pipeline" \
  --media "$MEDIA" --weights "$ROOT/weights" "$@"
