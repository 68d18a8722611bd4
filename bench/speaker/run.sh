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

# One full AV pipeline run: prints "wall cpu" seconds (cpu = user + system of the whole
# process: the cost, independent of what else runs on the machine); $1 = clip, the rest =
# facecrop properties.
pipeline() {
  local clip=$1 out
  shift
  out=$( { TIMEFORMAT='%R %U %S'; time gst-launch-1.0 -q filesrc location="$clip" ! decodebin name=d \
    d. ! queue ! videoconvert ! facecrop "$@" ! queue ! featextract ! queue ! avfuse name=f ! fakesink \
    d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
    ! audiodenoise vad=silero ! featextract ! queue ! f.audio_sink >/dev/null; } 2>&1 | tail -1)
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' <<<"$out"
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
  split(a, A, " "); split(b, B, " "); split(c, C, " "); split(e, E, " "); split(f, F, " "); split(g, G, " ")
  printf "full AV pipeline, %d cores, release build, process start-up and model loading included\n", cores
  printf "(wall: real-time factor on this machine now; cpu: media seconds per CPU second, x%d for\n", cores
  printf " the %d-core bound; compare the cpu column when other work shares the machine)\n", cores
  printf "  %-32s %8s %10s %8s %12s\n", "case", "wall s", "real time", "cpu s", "per cpu-s"
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "1 face, no mesh", A[1], d1 / A[1], A[2], d1 / A[2]
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "1 face, mesh every frame", B[1], d1 / B[1], B[2], d1 / B[2]
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "1 face, mesh-interval=2", C[1], d1 / C[1], C[2], d1 / C[2]
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "5 faces, no mesh", E[1], d5 / E[1], E[2], d5 / E[2]
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "5 faces, mesh every frame", F[1], d5 / F[1], F[2], d5 / F[2]
  printf "  %-32s %8.2f %9.1fx %8.2f %11.1fx\n", "5 faces, mesh-interval=2", G[1], d5 / G[1], G[2], d5 / G[2]
  printf "mesh CPU cost per face per frame: 1 face %.2f ms, 5 faces %.2f ms\n", \
    1000 * (B[2] - A[2]) / frames1, 1000 * (F[2] - E[2]) / (frames5 * 5)
  printf "mesh every frame vs none, CPU: 1 face %.2fx, 5 faces %.2fx\n", B[2] / A[2], F[2] / E[2]
  printf "target (wall): 1 face with mesh >= 6x real time: %s; mesh-interval=2 >= 7x: %s\n", \
    (d1 / B[1] >= 6 ? "met" : "NOT met"), (d1 / C[1] >= 7 ? "met" : "NOT met")
}'
