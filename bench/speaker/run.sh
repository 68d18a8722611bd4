#!/usr/bin/env bash
# Who speaks: the cost of the face mesh (facecrop mesh=true) and the real-time factor of
# the full AV pipeline (decode -> facecrop -> featextract x2 -> audiodenoise -> avfuse,
# audio-attribution=speaker) with the mesh every frame, every 2nd frame and without it,
# for one face (the talking-head clip) and five faces (multi_face.jpg frozen for 20 s
# under the same speech), all in one run on the machine's cores (release build).
# Targets: one face, mesh every frame >= 6x real time; mesh-interval=2 >= 7x.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
TALK=$CACHE/media/talking
WORK=$CACHE/bench-speaker
[ -f "$TALK/one_face.mkv" ] || { echo "bench/speaker: $TALK missing: run 'make setup'" >&2; exit 1; }
mkdir -p "$WORK"
cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin

FRAMES=$(grep -o '"frames": [0-9]*' "$TALK/faces.json" | grep -o '[0-9]*$')
# Five faces: the group photo, frozen at 25 fps for as long as the utterance, with it.
FIVE=$WORK/five_faces.mkv
if [ ! -f "$FIVE" ]; then
  gst-launch-1.0 -q filesrc location="$CACHE/media/multi_face.jpg" ! jpegdec ! videoconvert \
    ! videoscale ! video/x-raw,width=960,height=640 ! imagefreeze num-buffers=$FRAMES \
    ! video/x-raw,framerate=25/1 ! videoconvert ! video/x-raw,format=I420 ! jpegenc quality=85 \
    ! queue ! matroskamux name=m ! filesink location="$FIVE.tmp" \
    filesrc location="$TALK/utterance_a.wav" ! wavparse ! audioconvert ! queue ! m.
  mv "$FIVE.tmp" "$FIVE"
fi

now() { date +%s.%N; }
# Wall seconds of one full AV pipeline run; $1 = clip, the rest = facecrop properties.
pipeline() {
  local clip=$1 t0 t1
  shift
  t0=$(now)
  gst-launch-1.0 -q filesrc location="$clip" ! decodebin name=d \
    d. ! queue ! videoconvert ! facecrop "$@" ! queue ! featextract ! queue ! avfuse name=f ! fakesink \
    d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
    ! audiodenoise vad=silero ! featextract ! queue ! f.audio_sink >/dev/null
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
pipeline "$TALK/one_face.mkv" >/dev/null  # warm-up: page cache, registry
# Both clips hold the talking-head frames at 25 fps.
d1=$(awk -v n="$FRAMES" 'BEGIN { print n / 25 }')
d5=$d1
one_off=$(pipeline "$TALK/one_face.mkv" mesh=false)
one_on=$(pipeline "$TALK/one_face.mkv" mesh=true)
one_i2=$(pipeline "$TALK/one_face.mkv" mesh=true mesh-interval=2)
five_off=$(pipeline "$FIVE" mesh=false)
five_on=$(pipeline "$FIVE" mesh=true)
five_i2=$(pipeline "$FIVE" mesh=true mesh-interval=2)

awk -v d1="$d1" -v d5="$d5" -v a="$one_off" -v b="$one_on" -v c="$one_i2" \
    -v e="$five_off" -v f="$five_on" -v g="$five_i2" -v cores="$(nproc)" 'BEGIN {
  frames1 = d1 * 25; frames5 = d5 * 25
  printf "full AV pipeline, %d cores, release build, process start-up and model loading included\n", cores
  printf "  %-40s %8s %10s\n", "case", "wall s", "real time"
  printf "  %-40s %8.2f %9.1fx\n", "1 face, no mesh", a, d1 / a
  printf "  %-40s %8.2f %9.1fx\n", "1 face, mesh every frame", b, d1 / b
  printf "  %-40s %8.2f %9.1fx\n", "1 face, mesh-interval=2", c, d1 / c
  printf "  %-40s %8.2f %9.1fx\n", "5 faces, no mesh", e, d5 / e
  printf "  %-40s %8.2f %9.1fx\n", "5 faces, mesh every frame", f, d5 / f
  printf "  %-40s %8.2f %9.1fx\n", "5 faces, mesh-interval=2", g, d5 / g
  printf "mesh cost per face per frame (wall, from the difference): 1 face %.2f ms, 5 faces %.2f ms\n", \
    1000 * (b - a) / frames1, 1000 * (f - e) / (frames5 * 5)
  printf "mesh every frame vs none: 1 face %.2fx the time, 5 faces %.2fx\n", b / a, f / e
  printf "target: 1 face with mesh >= 6x real time: %s; mesh-interval=2 >= 7x: %s\n", \
    (d1 / b >= 6 ? "met" : "NOT met"), (d1 / c >= 7 ? "met" : "NOT met")
}'
