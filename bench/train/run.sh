#!/usr/bin/env bash
# Training benchmark: sequences per second of one full training step (forward, backward,
# AdamW with gradient-norm clipping 0.8) of `mfn` and `mctn` at the seed's sizes
# (hidden 256, T 64, batch 16; Dv 128, Da 96), burn (flex CPU backend, release build)
# side by side with the same architectures in PyTorch CPU (bench/train/bench.py), both
# on one core with one thread. Prints burn / PyTorch.
#
# Override: BENCH_STEPS (default 5), BENCH_WARMUP (1), BENCH_HIDDEN, BENCH_T, BENCH_BATCH,
# BENCH_DV, BENCH_DA, BENCH_CPU (core to pin, default 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
VENV=${BENCH_TRAIN_VENV:-$CACHE/bench-venv-train}
STEPS=${BENCH_STEPS:-5}
WARMUP=${BENCH_WARMUP:-1}
CPU=${BENCH_CPU:-0}
export BENCH_THREADS=1
# glibc hands large freed blocks back to the OS and page-faults them in again on the next
# allocation; both sides run with the same settings that keep them in the heap.
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456

# PyTorch from PyPI, installed once. The PyPI wheel for Linux pulls the CUDA runtime
# packages (several GB) although only the CPU is used here.
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import torch" 2>/dev/null \
  || "$VENV/bin/pip" install --quiet --find-links "$CACHE/wheels" "torch==2.15.0"

cargo build --release --features train --example train_bench
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/train_bench

for model in mfn mctn; do
  burn=$(taskset -c "$CPU" "$BIN" "$model" "$STEPS" "$WARMUP")
  torch=$(taskset -c "$CPU" "$VENV/bin/python" bench/train/bench.py "$model" "$STEPS" "$WARMUP")
  echo "$burn"
  echo "$torch"
  python3 - "$burn" "$torch" <<'PY'
import json, sys
b, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{b['model']}: burn {b['seq_per_s']:.2f} seq/s, {t['framework']} {t['seq_per_s']:.2f} seq/s"
      f" -> burn/PyTorch = {b['seq_per_s'] / t['seq_per_s']:.2f}x (target >= 1x)")
PY
done
