#!/usr/bin/env bash
# `make bench`: benchmarks, each printing ratios measured side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== audiodenoise =="
bash bench/audiodenoise/run.sh
echo "== facecrop =="
bash bench/facecrop/run.sh
echo "== audio branch (voice-prosody) =="
bash bench/voice/run.sh
echo "== featextract =="
bash bench/featextract/run.sh
echo "== full AV pipeline =="
bash bench/pipeline/run.sh
echo "== who speaks (face mesh cost) =="
bash bench/speaker/run.sh
echo "== many streams =="
bash bench/streams/run.sh
echo "== long run (stability) =="
bash bench/longrun/run.sh
echo "== train (mfn, mctn) =="
bash bench/train/run.sh
echo "== archive throughput (affect-annotate --jobs, Ray) ==" && bash bench/annotate/run.sh
