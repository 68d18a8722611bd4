#!/usr/bin/env bash
# Archive throughput (issue 18): affect-annotate --jobs 1 vs --jobs 2, and the Ray job on
# 2 local workers vs --jobs 2, measured side by side in one run (bench/annotate/bench.py).
# Release build; N copies of the demo clip (default 32: AFFECT_BENCH_ANNOTATE_INPUTS).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/sample.mp4
[ -f "$MEDIA" ] || { echo "bench/annotate: $MEDIA missing: run 'make setup'" >&2; exit 1; }
cargo build --release -p gst-plugin-affect --bin affect-annotate
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PY=$(bash tests/python/ray-venv.sh)
exec "$PY" bench/annotate/bench.py "$TARGET/release/affect-annotate" "$MEDIA" "${AFFECT_BENCH_ANNOTATE_INPUTS:-32}"
