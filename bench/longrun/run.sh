#!/usr/bin/env bash
# Long-run stability (bench/longrun/bench.py): frame rate and resident memory of
# facecrop ! featextract ! avfuse per segment over 20000 frames (override: --frames N).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/single_face.mp4
[ -f "$MEDIA" ] || { echo "bench/longrun: $MEDIA missing: run 'make setup'" >&2; exit 1; }

cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
. bench/python-env.sh

export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
exec "$BENCH_PY" bench/longrun/bench.py --work "$CACHE/bench-facecrop" --media "$MEDIA" "$@"
