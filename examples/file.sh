#!/usr/bin/env bash
# examples/file.sh — the full audio-visual pipeline on a media file.
#
#   examples/file.sh INPUT [OUT_DIR]          (OUT_DIR defaults to out/file)
#
# video: decode → facecrop → featextract → avfuse → affectoverlay → H.264 → OUT_DIR/annotated.mp4
# audio: decode → audiodenoise → featextract ─┘
# and avfuse writes OUT_DIR/affect.ndjson (one AffectRecord JSON line per frame per face)
# and OUT_DIR/affect_track<N>.va.csv / .expr.csv (Aff-Wild2 layout).
#
# For a file without audio set NO_AUDIO=1 (avfuse's audio_sink is a request pad: without
# it, fusion runs on faces alone); otherwise avfuse waits its audio-timeout (5 s) for the
# audio branch that decodebin never links, warns, and goes on with audio mask 0.
# Needs `make build` (GST_PLUGIN_PATH defaults to this tree's target/debug) and the
# Debian packages of `make setup` (openh264enc from gstreamer1.0-plugins-bad).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$root/target/debug}"

input="${1:?usage: examples/file.sh INPUT [OUT_DIR]}"
out="${2:-out/file}"
[[ -f "$input" ]] || { echo "file.sh: no such file: $input" >&2; exit 2; }
mkdir -p "$out"
rm -f "$out/annotated.mp4" "$out"/affect.ndjson "$out"/affect_track*.csv

audio=(d. ! audio/x-raw ! queue ! audioconvert ! audioresample
  ! audio/x-raw,format=F32LE,rate=48000,channels=1
  ! audiodenoise ! featextract ! queue ! f.audio_sink)
[[ "${NO_AUDIO:-0}" == 1 ]] && audio=()

# -e: Ctrl-C ends the stream cleanly, so the mp4 is still finalised.
gst-launch-1.0 -e \
  filesrc location="$input" ! decodebin name=d \
  d. ! video/x-raw ! queue ! videoconvert ! facecrop ! queue ! featextract ! queue \
  ! avfuse name=f location="$out/affect.ndjson" csv-location="$out/affect" \
  ! affectoverlay ! videoconvert ! openh264enc bitrate=4000000 ! h264parse ! mp4mux \
  ! filesink location="$out/annotated.mp4" \
  "${audio[@]}"

echo "file.sh: wrote $out/annotated.mp4 and $out/affect.ndjson ($(wc -l <"$out/affect.ndjson") face records)"
