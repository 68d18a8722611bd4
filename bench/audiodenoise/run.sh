#!/usr/bin/env bash
# audiodenoise benchmark: real-time factor of the element (denoise alone, denoise + Silero
# VAD) and of RNNoise 0.2 driven from Python (pyrnnoise's library through ctypes), side by
# side in one run on one CPU core, with the quality (SI-SDR) of each on the same 60 s clip.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
VENV=$CACHE/bench-venv
PY=/usr/bin/python3   # Debian's python: it has PyGObject (python3-gi)

command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
  echo "bench/audiodenoise: espeak-ng and sox are needed: run 'make setup'" >&2; exit 1; }

# Release build of the plugin (the element is what is measured).
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

# pyrnnoise bundles RNNoise 0.2's librnnoise.so; only that library is used (ctypes), so
# the package is installed without its dependencies.
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('pyrnnoise') else 1)" 2>/dev/null \
  || "$VENV/bin/pip" install --quiet --no-deps "pyrnnoise==0.4.5"
LIB=$(ls "$VENV"/lib/python3*/site-packages/pyrnnoise/librnnoise.so | head -1)

export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
# One core for everything (GStreamer threads, ONNX Runtime with threads=1, Python).
exec taskset -c 0 "$VENV/bin/python" bench/audiodenoise/bench.py --rnnoise-lib "$LIB" \
  --work "$CACHE/bench-audiodenoise" "$@"
