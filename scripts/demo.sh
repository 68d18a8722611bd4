#!/usr/bin/env bash
# `make demo`: what a newcomer sees. Grows with the elements: for now it shows the plugin
# and the metadata contract end to end (affectreplay → Python reader).
set -euo pipefail
cd "$(dirname "$0")/.."
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$PWD/target/debug}"
mkdir -p out
echo "== gst-inspect-1.0 affect"
gst-inspect-1.0 affect
echo
echo "The face, audio and fusion elements (facecrop, audiodenoise, featextract, avfuse)"
echo "are not in this build yet; see the README's status table."
