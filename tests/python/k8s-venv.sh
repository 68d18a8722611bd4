#!/usr/bin/env bash
# The Python environment that validates deploy/kubernetes/ against the Kubernetes API
# schemas (kubernetes-validate bundles them; nothing is fetched when it runs): a venv
# under the cache folder on Debian's python3 with exact pins, created once and checked on
# every call (idempotent). Prints the venv's python on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
PINS=(kubernetes-validate==1.37.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1
      referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 PyYAML==6.0.4 packaging==26.4
      importlib_resources==7.1.0 typing_extensions==4.16.0)
. "$ROOT/tests/python/pinned-venv.sh"
pinned_venv k8s-venv PINS
