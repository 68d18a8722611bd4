#!/usr/bin/env bash
# Long-run stability (bench/longrun/bench.py): frame rate and resident memory of
# facecrop ! featextract ! avfuse per segment over 20000 frames (override: --frames N),
# without and with the face mesh (facecrop mesh=true).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
MEDIA=$CACHE/media/single_face.mp4
BENCH=longrun
. bench/plugin-env.sh
"$BENCH_PY" bench/longrun/bench.py --work "$CACHE/bench-facecrop" --media "$MEDIA" "$@"
"$BENCH_PY" bench/longrun/bench.py --work "$CACHE/bench-facecrop" --media "$MEDIA" --mesh "$@"
