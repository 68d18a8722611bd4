# Sourced by the bench/*/run.sh scripts that run the elements from Python (facecrop,
# longrun, pipeline), with ROOT, CACHE and MEDIA set and BENCH naming the benchmark:
# checks the media, builds the plugin in release mode, sets up the Python side
# (python-env.sh: BENCH_PY) and points GStreamer at the release build with a registry of
# its own.
[ -f "$MEDIA" ] || { echo "bench/$BENCH: $MEDIA missing: run 'make setup'" >&2; exit 1; }
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
. bench/python-env.sh
export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
