#!/usr/bin/env bash
# Talking-head clips for the active-speaker tests (scripts/talking_heads.py says how they
# are made): two real faces side by side whose mouths follow two different espeak-ng
# utterances, with one utterance (or silence) as the audio, a still "narrator" face under
# speech, one talking face alone, and a minute-long interview whose two faces take turns.
# Idempotent and cached in
# ${AFFECT_CACHE_DIR:-.cache}/media/talking/ (a VERSION file names the recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${AFFECT_CACHE_DIR:-.cache}
MEDIA=$CACHE/media
OUT=$MEDIA/talking
RECIPE="talking-heads 2"
log() { printf 'make-talking-heads: %s\n' "$*"; }
if [ -f "$OUT/VERSION" ] && [ "$(cat "$OUT/VERSION")" = "$RECIPE" ]; then
  log "$OUT present"
  exit 0
fi
[ -s "$MEDIA/single_face.jpg" ] && [ -s "$MEDIA/multi_face.jpg" ] || {
  log "run scripts/fetch-media.sh first" >&2; exit 1; }
PY=$(bash tests/python/mesh-venv.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Two utterances of ~20 s with different sentences, rates and pauses: their loudness
# envelopes do not follow each other.
utterance() {
  local out=$1 speed=$2 pause=$3; shift 3
  local parts=() i=0 line
  for line in "$@"; do
    espeak-ng -s "$speed" -w "$tmp/u$i.raw.wav" "$line"
    sox -D "$tmp/u$i.raw.wav" -r 16000 -c 1 -b 16 "$tmp/u$i.wav" pad 0 "$pause"
    parts+=("$tmp/u$i.wav"); i=$((i + 1))
  done
  sox -D "${parts[@]}" "$out"
  rm -f "$tmp"/u*.wav
}
utterance "$tmp/a.wav" 150 0.7 \
  "Good evening, and welcome to the late news." \
  "Tonight the river rose again after three days of rain." \
  "Our reporter spoke to people who had to leave their homes." \
  "The council says the bridge will stay closed until Monday." \
  "We will be back after a short break."
utterance "$tmp/b.wav" 185 0.35 \
  "Thank you, it is a pleasure to be here." \
  "I think the numbers tell a very different story." \
  "Look at the prices in the last quarter, they doubled." \
  "Nobody expected that, not even the central bank." \
  "So my answer is simple: we wait and we watch." \
  "And then we decide what to do next year."
mkdir -p "$OUT.tmp"
"$PY" scripts/talking_heads.py "$OUT.tmp" "$MEDIA/single_face.jpg" "$MEDIA/multi_face.jpg" \
  "$tmp/a.wav" "$tmp/b.wav"
cp "$tmp/a.wav" "$OUT.tmp/utterance_a.wav"
cp "$tmp/b.wav" "$OUT.tmp/utterance_b.wav"
echo "$RECIPE" > "$OUT.tmp/VERSION"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
