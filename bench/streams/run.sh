#!/usr/bin/env bash
# Many streams, one process (bench/streams/bench.py): N = 1, 4, 8 copies of the looped demo
# clip through the full audio-visual pipeline in one process (shared and unshared ONNX
# Runtime sessions) and as N separate processes, plus the adaptive one-stream pipeline:
# wall, aggregate real-time factor, peak resident memory and memory per added stream,
# side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/sample.mp4

command -v taskset >/dev/null || { echo "bench/streams: taskset (util-linux) is needed" >&2; exit 1; }
BENCH=streams
. bench/plugin-env.sh
exec "$BENCH_PY" bench/streams/bench.py --work "$CACHE/bench-streams" --media "$MEDIA" "$@"
