#!/usr/bin/env bash
# Audio branch benchmark: real-time factor of audiodenoise -> featextract with the default
# audio model (voice-prosody) and with the openWakeWord embedding, and of the same
# prosody features computed per window by a Python librosa loop, side by side in one run
# on one CPU core, on 60 s of espeak-ng speech.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
WORK=$CACHE/bench-voice
mkdir -p "$WORK"

command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
  echo "bench/voice: espeak-ng and sox are needed: run 'make setup'" >&2; exit 1; }

cargo build --release -p gst-plugin-affect
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export GST_PLUGIN_PATH=$TARGET/release
export GST_REGISTRY=$TARGET/gst-registry-bench.bin
PY=$(bash tests/python/prosody-venv.sh)   # numpy + librosa, pinned

# 60 s of speech (sentences with pauses), 48 kHz mono 16-bit, made once.
CLIP=$WORK/speech60.wav
if [ ! -f "$CLIP" ]; then
  PARTS=$WORK/parts
  mkdir -p "$PARTS"
  parts=()
  i=0
  while read -r line; do
    espeak-ng -w "$PARTS/s$i.raw.wav" "$line"
    sox -D "$PARTS/s$i.raw.wav" -r 48000 -c 1 -b 16 "$PARTS/s$i.wav" pad 0 0.4
    parts+=("$PARTS/s$i.wav"); i=$((i + 1))
  done <<'TEXT'
The weather report says it will rain again tomorrow afternoon, so bring a coat.
We finished the project on time and everyone went home early that evening.
Please call me back as soon as you get this message, it is important.
The quick brown fox jumps over the lazy dog near the river bank.
Our train leaves at seven, and the station is twenty minutes from here.
TEXT
  sox -D "${parts[@]}" "${parts[@]}" "${parts[@]}" "${parts[@]}" "${parts[@]}" "$PARTS/long.wav"
  sox -D "$PARTS/long.wav" "$CLIP.tmp.wav" trim 0 60
  mv "$CLIP.tmp.wav" "$CLIP"
  rm -rf "$PARTS"
fi

now() { date +%s.%N; }
# Wall seconds of one gst-launch-1.0 run on one core (process start and model load included).
element() {
  local t0 t1
  t0=$(now)
  taskset -c 0 gst-launch-1.0 -q filesrc location="$CLIP" ! wavparse ! audioconvert ! \
    audio/x-raw,format=F32LE,rate=48000,channels=1 ! "$@" ! fakesink >/dev/null
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
# Warm the page cache and the registry.
element identity >/dev/null
base=$(element identity)
vp=$(element audiodenoise vad=silero ! featextract model=voice-prosody)
oww=$(element audiodenoise vad=silero ! featextract model=oww-speech-embedding)
vp_only=$(element audioresample ! featextract model=voice-prosody)
den=$(element audiodenoise vad=silero)

taskset -c 0 "$PY" bench/voice/bench.py "$CLIP" "$ROOT/weights" \
  "$base" "$vp" "$oww" "$vp_only" "$den"
