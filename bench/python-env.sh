# Sourced by the bench/*/run.sh scripts: the Python side of the side-by-side benchmarks.
# One venv (on Debian's python3, which has PyGObject, with the system site packages) holding
# the pinned onnxruntime (the version the elements load), numpy and OpenCV, installed once
# and checked on every run. Sets BENCH_PY to its python.
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
BENCH_VENV=$CACHE/bench-venv-face
BENCH_PINS=("onnxruntime==$(cat "$CACHE/onnxruntime/VERSION" 2>/dev/null || echo 1.31.1)"
  numpy==2.4.6 opencv-python-headless==4.14.0.94)
if [ ! -x "$BENCH_VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$BENCH_VENV"
fi
"$BENCH_VENV/bin/python" - "${BENCH_PINS[@]}" <<'PYCHECK' 2>/dev/null \
  || "$BENCH_VENV/bin/pip" install --quiet --find-links "$CACHE/wheels" "${BENCH_PINS[@]}"
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PYCHECK
BENCH_PY=$BENCH_VENV/bin/python
