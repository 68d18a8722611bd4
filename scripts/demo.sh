#!/usr/bin/env bash
# `make demo`: runs what this build has on a bundled sample clip (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$PWD/target/debug}"
# Debian's python3 carries PyGObject; another python3 may come first on PATH.
/usr/bin/python3 scripts/demo.py "$@"
cargo run --quiet --example va_timeline -- "${2:-out}/affect.ndjson" "${2:-out}/va-timeline.png"
