#!/usr/bin/env bash
# The Python environment of the Ray job (deploy/ray/) and its tests: Ray (core, no
# dashboard) and fsspec in a venv under the cache folder on Debian's python3, with exact
# pins, created once and checked on every call (idempotent). Prints the venv's python on
# stdout. On a real cluster the same pins go into the workers' image or runtime_env.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
PINS=(ray==2.60.0 fsspec==2026.9.0 click==8.5.1 filelock==4.3.2 msgpack==1.2.4
      protobuf==7.36.2 PyYAML==6.0.4 requests==2.34.2 jsonschema==4.26.0 packaging==26.4)
. "$ROOT/tests/python/pinned-venv.sh"
pinned_venv ray-venv PINS
