#!/usr/bin/env bash
# examples/network.sh — the full audio-visual pipeline on a network stream.
#
#   examples/network.sh URI [OUT_DIR]          (OUT_DIR defaults to out/network)
#
# URI is a URI GStreamer's uridecodebin opens with the packages of `make setup`:
#   HLS        http://host/path/playlist.m3u8    (hlsdemux over souphttpsrc) — checked:
#              elements/tests/examples.rs serves HLS on 127.0.0.1 and runs this script;
#              A file over HTTP (http://host/clip.mp4) or file:// should work the same way.
#   RTSP       rtsp://host:port/path             (rtspsrc) — not checked here.
#   SRT        srt://host:port?mode=listener     (srtsrc listens; the stream ends when the
#              sender disconnects) — checked: elements/tests/examples.rs sends MPEG-TS
#              over SRT on 127.0.0.1 to this script. srt://host:port (srtsrc calls a
#              listening sender; only checked by hand) never ends by itself: on a
#              disconnect srtsrc reconnects, so stop it with Ctrl-C.
#              The sender must packetise for SRT's live mode, at most 1316 bytes (7 TS
#              packets) per message: `mpegtsmux alignment=7 ! srtsink uri=srt://...`.
#              Without alignment=7 libsrt refuses every larger buffer, the key frame with
#              SPS/PPS is lost first, and the decoded stream lacks timestamps here
#              (mp4mux: "Buffer has no PTS", or h264parse: "No valid frames"). A sender
#              that closes right at its end-of-stream also loses its last `latency` ms.
# `tcp://` is not a URI GStreamer knows (tcpclientsrc has no URI handler).
#
# video: decode → facecrop → featextract → avfuse → affectoverlay → H.264 → OUT_DIR/annotated.mp4
# audio: decode → audiodenoise → featextract ─┘
# avfuse writes OUT_DIR/affect.ndjson (one AffectRecord JSON line per frame per face) as
# frames arrive. A finite stream (HLS/DASH video on demand, a file over HTTP) stops by
# itself at its end; a live one (RTSP, live HLS) runs until Ctrl-C, which
# gst-launch turns into end-of-stream (-e) so the mp4 is finalised.
# For a stream without audio set NO_AUDIO=1. Otherwise a live stream's video goes on
# at avfuse's deadlines with audio mask 0; a non-live one after avfuse's audio-timeout
# (5 s), with a warning.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$root/target/debug}"

uri="${1:?usage: examples/network.sh URI [OUT_DIR]}"
out="${2:-out/network}"
mkdir -p "$out"
rm -f "$out/annotated.mp4" "$out"/affect.ndjson "$out"/affect_track*.csv

audio=(d. ! audio/x-raw ! queue ! audioconvert ! audioresample
  ! audio/x-raw,format=F32LE,rate=48000,channels=1
  ! audiodenoise ! featextract ! queue ! f.audio_sink)
[[ "${NO_AUDIO:-0}" == 1 ]] && audio=()

gst-launch-1.0 -e \
  uridecodebin uri="$uri" name=d \
  d. ! video/x-raw ! queue ! videoconvert ! facecrop ! queue ! featextract ! queue \
  ! avfuse name=f location="$out/affect.ndjson" csv-location="$out/affect" \
  ! affectoverlay ! videoconvert ! openh264enc bitrate=4000000 ! h264parse ! mp4mux \
  ! filesink location="$out/annotated.mp4" \
  "${audio[@]}"

echo "network.sh: wrote $out/annotated.mp4 and $out/affect.ndjson ($(wc -l <"$out/affect.ndjson") face records)"
