#!/usr/bin/env bash
# examples/webcam.sh — live affect from a webcam (V4L2) and a microphone, shown on screen.
#
#   examples/webcam.sh [DEVICE] [OUT_DIR]        (defaults: /dev/video0, out/webcam)
#
# video: v4l2src → facecrop (short-range detector: faces within ~2 m) → featextract
#        → avfuse → affectoverlay → autovideosink (a window)
# audio: autoaudiosrc (the default microphone) → audiodenoise → featextract ─┘
# avfuse writes OUT_DIR/affect.ndjson while it runs, in causal mode (no lookahead
# latency: each frame uses the latest finished audio window; audiodenoise without its
# VAD look-ahead, 50 ms). Stop with Ctrl-C.
# NO_AUDIO=1 runs on the camera alone.
#
# Not run by the tests: it needs a camera, a microphone and a display, which the build
# and CI machines do not have. examples/file.sh is the same pipeline on a file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$root/target/debug}"

device="${1:-/dev/video0}"
out="${2:-out/webcam}"
[[ -e "$device" ]] || { echo "webcam.sh: no camera at $device" >&2; exit 2; }
mkdir -p "$out"

audio=(autoaudiosrc ! queue ! audioconvert ! audioresample
  ! audio/x-raw,format=F32LE,rate=48000,channels=1
  ! audiodenoise vad-lookahead-ms=0 ! featextract ! queue ! f.audio_sink)
[[ "${NO_AUDIO:-0}" == 1 ]] && audio=()

gst-launch-1.0 -e \
  v4l2src device="$device" ! videoconvert ! videoscale ! video/x-raw,width=640,height=480 \
  ! queue ! facecrop model=blazeface-short ! queue ! featextract ! queue \
  ! avfuse name=f mode=causal location="$out/affect.ndjson" \
  ! affectoverlay ! videoconvert ! autovideosink sync=false \
  "${audio[@]}"
