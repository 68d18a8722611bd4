#!/usr/bin/env bash
# Audio branch benchmark: real-time factor of audiodenoise -> featextract with the default
# audio model (voice-prosody, computed natively; also its graph with native=false) and with
# the openWakeWord embedding, of each element alone, and of the same prosody features
# computed per window by a Python librosa loop, side by side in one run on one CPU core, on
# 60 s of espeak-ng speech and on the same clip five times (steady state: model loading
# excluded). Times are CPU seconds of each process, so other work on the machine does not
# count against it.
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
# AFFECT_BENCH_PLUGIN_DIR: measure another build of the plugin (e.g. a copy of an older
# libgstaffect.so, for a before/after table on the same machine).
export GST_PLUGIN_PATH=${AFFECT_BENCH_PLUGIN_DIR:-$TARGET/release}
export GST_REGISTRY=$TARGET/gst-registry-bench-$(echo "$GST_PLUGIN_PATH" | cksum | cut -d' ' -f1).bin
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

# 300 s: the same clip five times, for the steady-state rate (model loading excluded).
LONG=$WORK/speech300.wav
[ -f "$LONG" ] || sox -D "$CLIP" "$CLIP" "$CLIP" "$CLIP" "$CLIP" "$LONG"

# CPU seconds (user + system) of one gst-launch-1.0 run on core 0, process start and model
# load included: CPU time, not wall time, so that other work on the machine does not count.
element() {
  local clip=$1 r
  shift
  # a pipeline this build cannot run (e.g. a property it lacks) gives "nan"
  r=$( { TIMEFORMAT='%U %S'; time taskset -c 0 gst-launch-1.0 -q filesrc location="$clip" ! \
    wavparse ! audioconvert ! audio/x-raw,format=F32LE,rate=48000,channels=1 ! "$@" ! \
    fakesink >/dev/null 2>&1 || echo failed; } 2>&1 )
  case $r in
    *failed*) echo nan ;;
    *) awk '{ printf "%.3f\n", $1 + $2 }' <<<"${r##*$'\n'}" ;;
  esac
}
# Both clips: "cpu60 cpu300".
both() { echo "$(element "$CLIP" "$@") $(element "$LONG" "$@")"; }
# Warm the page cache and the registry.
element "$CLIP" identity >/dev/null
element "$LONG" identity >/dev/null
rows=(
  "identity|identity"
  "audiodenoise vad=silero -> featextract voice-prosody|audiodenoise vad=silero ! featextract model=voice-prosody"
  "audiodenoise vad=rnnoise -> featextract voice-prosody|audiodenoise vad=rnnoise ! featextract model=voice-prosody"
  "audiodenoise vad=silero enabled=false -> featextract (VAD only)|audiodenoise vad=silero enabled=false ! featextract model=voice-prosody"
  "audiodenoise vad=silero -> featextract oww-speech-embedding|audiodenoise vad=silero ! featextract model=oww-speech-embedding"
  "featextract voice-prosody alone|audioresample ! featextract model=voice-prosody"
  "featextract voice-prosody alone, graph (native=false)|audioresample ! featextract model=voice-prosody native=false"
  "audiodenoise vad=silero alone|audiodenoise vad=silero"
  "audiodenoise vad=silero native=false alone (ONNX Runtime)|audiodenoise vad=silero native=false"
  "audiodenoise vad=rnnoise alone|audiodenoise vad=rnnoise"
)
RESULTS=$WORK/results.txt
: >"$RESULTS"
for row in "${rows[@]}"; do
  name=${row%%|*}
  # shellcheck disable=SC2086  # the element description is split into gst-launch arguments
  echo "$name|$(both ${row#*|})" >>"$RESULTS"
done

taskset -c 0 "$PY" bench/voice/bench.py "$CLIP" "$ROOT/weights" "$RESULTS"
