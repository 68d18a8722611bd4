#!/usr/bin/env bash
# `make fresh-check`: the README's two commands, run as a newcomer would, on a fresh
# Debian 12 (bookworm) root. Catches what this machine has but the project's own scripts
# do not install (a package or program put here by hand). Slow (a full build): not in CI.
#
#  1. Builds a minimal bookworm root with mmdebstrap (or debootstrap), plus only
#     `make git ca-certificates`, and caches it as a tarball under .cache/fresh-check/
#     (built once; FRESH_CHECK_REBUILD=1 builds it again). The tool itself is installed
#     from Debian's packages when missing. The apt mirror is the one this host's apt
#     sources name for bookworm (read at run time), else the tool's default.
#  2. Unpacks the tarball into a fresh root, clones the committed HEAD of this repository
#     into /root/gst-affect (the work tree's uncommitted changes are not in it), and mounts
#     this host's Rust toolchain read-only (rustup home and ~/.cargo/bin); the crates.io
#     index and .crate cache are copied in (crates.io is reachable anyway).
#  3. In a chroot (in a private mount and pid namespace when `unshare` works, so nothing
#     outlives the run; mounts are also undone by a trap), as root with a clean
#     environment: `make demo`, then `make test`. Prints a summary, exits non-zero when
#     either fails. Logs: .cache/fresh-check/logs/{demo,test}.log.
#
# Environment:
#   FRESH_CHECK_DIR      where the tarball, root and logs live (default .cache/fresh-check)
#   FRESH_CHECK_VARIANT  mmdebstrap/debootstrap variant (default minbase)
#   FRESH_CHECK_REBUILD  1: build the root tarball again
#   FRESH_CHECK_REUSE    1: keep the last run's root (its target/ and .cache/), only move
#                        its clone to the new HEAD; for iterating. Default: a fresh root.
#   FRESH_CHECK_TARGETS  make targets to run, in order (default "demo test")
#   FRESH_CHECK_JOBS     CARGO_BUILD_JOBS inside the root (default: cargo's own)
#   FRESH_CHECK_UNSHARE  0: no private namespaces (plain mounts, undone by the trap)
set -euo pipefail

log() { printf 'fresh-check: %s\n' "$*"; }
die() { printf 'fresh-check: error: %s\n' "$*" >&2; exit 2; }

SUITE=bookworm
INCLUDE=make,git,ca-certificates

# --- inside the private namespace: mount, chroot, run, summarise ------------------------
inner() {
  local root=$FC_ROOT logs=$FC_LOGS
  mounted=() # global: the EXIT trap runs after inner has returned

  cleanup() {
    local rc=$? i
    # Without a pid namespace, end what is still running in the root (only processes
    # this run started can have it as their root).
    if [ "${FC_PIDNS:-0}" != 1 ]; then
      local p
      for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$FC_ROOT" ] && { kill -9 "${p#/proc/}" 2>/dev/null || true; }
      done
    fi
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
      umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null \
        || log "could not unmount ${mounted[i]}"
    done
    mounted=()
    return "$rc"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  mnt() { # mnt <target> <mount args...>
    local t=$1; shift
    mount "$@" "$t"
    mounted+=("$t")
  }
  bind_ro() { # bind_ro <source> <target>
    mnt "$2" --bind "$1"
    mount -o remount,bind,ro "$2"
  }

  mnt "$root/proc" -t proc proc
  mnt "$root/sys" -t sysfs -o ro sysfs
  # A small /dev of its own: device nodes bound from the host, private pts and shm.
  mnt "$root/dev" -t tmpfs -o mode=755,nosuid tmpfs
  local n
  for n in null zero full random urandom tty; do
    touch "$root/dev/$n"
    mnt "$root/dev/$n" --bind "/dev/$n"
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  if ! mnt "$root/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts 2>/dev/null; then
    mnt "$root/dev/pts" --bind /dev/pts
  fi
  ln -sf pts/ptmx "$root/dev/ptmx"
  ln -sf /proc/self/fd "$root/dev/fd"
  ln -sf /proc/self/fd/0 "$root/dev/stdin"
  ln -sf /proc/self/fd/1 "$root/dev/stdout"
  ln -sf /proc/self/fd/2 "$root/dev/stderr"
  mnt "$root/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs
  # Name resolution for apt, pip and cargo inside.
  if [ -e /etc/resolv.conf ]; then
    rm -f "$root/etc/resolv.conf"; touch "$root/etc/resolv.conf"
    bind_ro "$(readlink -f /etc/resolv.conf)" "$root/etc/resolv.conf"
  fi
  # The host's Rust toolchain, read-only.
  mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin"
  bind_ro "$FC_RUSTUP_HOME" "$root/root/.rustup"
  bind_ro "$FC_CARGO_HOME/bin" "$root/root/.cargo/bin"

  local envs=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 TERM=dumb
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  [ -n "${FRESH_CHECK_JOBS:-}" ] && envs+=(CARGO_BUILD_JOBS="$FRESH_CHECK_JOBS")
  in_root() { chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c "$1"; }

  in_root 'rustc --version && cargo --version' || die "the Rust toolchain does not run in the root"
  # Certificate authorities this host trusts beyond Debian's bundle (a local CA, an egress
  # proxy's CA): regular files in /etc/ssl/certs (Debian's own are symlinks) and
  # /usr/local/share/ca-certificates. Network set-up of this host, not a project package.
  local c extra=0
  mkdir -p "$root/usr/local/share/ca-certificates/host"
  for c in /etc/ssl/certs/*.pem /usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt; do
    [ -f "$c" ] && [ ! -L "$c" ] || continue
    case $(basename "$c") in ssl-cert-snakeoil.pem) continue ;; esac
    grep -q 'BEGIN CERTIFICATE' "$c" || continue
    cp "$c" "$root/usr/local/share/ca-certificates/host/$(basename "${c%.*}").crt"
  done
  extra=$(find "$root/usr/local/share/ca-certificates/host" -name '*.crt' | wc -l)
  if [ "$extra" -gt 0 ]; then
    log "trusting $extra local CA certificate(s) of this host in the root"
    in_root 'update-ca-certificates >/dev/null 2>&1' || die "update-ca-certificates failed in the root"
  fi
  local before
  before=$(in_root "dpkg-query -W -f='\${Package}\n'" | sort)

  local t0 t rc total0 results=() target
  total0=$(date +%s)
  for target in $FRESH_CHECK_TARGETS; do
    log "=== make $target (log: $logs/$target.log) ==="
    t0=$(date +%s)
    # In the background and waited for, so that INT/TERM reach the trap at once.
    (set -o pipefail; in_root "cd /root/gst-affect && make $target" 2>&1 | tee "$logs/$target.log") &
    rc=0
    wait $! || rc=$?
    t=$(($(date +%s) - t0))
    results+=("$target:$rc:$t")
    log "=== make $target: rc=$rc in $((t / 60))m$((t % 60))s ==="
  done
  local total=$(($(date +%s) - total0))

  local added
  added=$(comm -13 <(echo "$before") <(in_root "dpkg-query -W -f='\${Package}\n'" | sort) | wc -l)

  # --- summary ---
  local fail=0 r name dur
  echo
  echo "================ fresh-check summary ================"
  echo "root:     Debian $SUITE ($FC_VARIANT) + $INCLUDE; $added packages added by this run"
  echo "commit:   $FC_SHA"
  echo "toolchain: $(in_root 'rustc --version')"
  for r in "${results[@]}"; do
    IFS=: read -r name rc dur <<<"$r"
    [ "$rc" = 0 ] || fail=1
    printf 'make %-6s rc=%-3s %dm%02ds\n' "$name" "$rc" $((dur / 60)) $((dur % 60))
    local lf=$logs/$name.log
    if [ "$name" = test ] || grep -q '^test result: ' "$lf"; then
      awk '/^test result: /{
             n++; for (i = 1; i <= NF; i++) {
               if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
               if ($(i+1) ~ /^ignored/) g += $i } }
           END { printf "  test result lines: %d (passed %d, failed %d, ignored %d)\n", n, p, f, g }' "$lf"
      grep -E '^test .* \.\.\. FAILED$' "$lf" | sed 's/^/  /' | head -40 || true
      grep -E '^error: (test failed|[0-9]+ targets? failed)' "$lf" | sed 's/^/  /' | head -10 || true
    fi
    if [ "$rc" != 0 ]; then
      echo "  last lines of $lf:"
      tail -n 15 "$lf" | sed 's/^/  | /'
      grep -E 'command not found|: not found$|No such file or directory' "$lf" | sort -u | head -10 \
        | sed 's/^/  hint: /' || true
    fi
  done
  printf 'total:    %dm%02ds\n' $((total / 60)) $((total % 60))
  echo "===================================================="
  [ "$fail" = 0 ] && echo "fresh-check: PASS" || echo "fresh-check: FAIL"
  return "$fail"
}

if [ "${1:-}" = --inner ]; then
  inner
  exit
fi

# --- outside: tool, tarball, root, clone -----------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "needs root (chroot, mount); run it as root"
  # The caller's toolchain and FRESH_CHECK_* settings, through env (sudo resets the rest).
  mapfile -t settings < <(env | grep -E '^FRESH_CHECK_[A-Z]+=' || true)
  exec sudo env FC_RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" FC_CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
    "${settings[@]}" bash "$0" "$@"
fi

cd "$(dirname "$0")/.."
REPO=$(git rev-parse --show-toplevel)
FC_SHA=$(git -C "$REPO" rev-parse HEAD)
DIR=$(realpath -m "${FRESH_CHECK_DIR:-.cache/fresh-check}")
FC_VARIANT=${FRESH_CHECK_VARIANT:-minbase}
TARBALL=$DIR/$SUITE-$FC_VARIANT.tar
ROOT=$DIR/root
LOGS=$DIR/logs
FC_RUSTUP_HOME=$(realpath "${FC_RUSTUP_HOME:-${RUSTUP_HOME:-$HOME/.rustup}}")
FC_CARGO_HOME=$(realpath "${FC_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}")
FRESH_CHECK_TARGETS=${FRESH_CHECK_TARGETS-demo test}
[ -x "$FC_CARGO_HOME/bin/cargo" ] || die "no cargo in $FC_CARGO_HOME/bin (install Rust with rustup)"
[ -d "$FC_RUSTUP_HOME/toolchains" ] || die "no rustup toolchains in $FC_RUSTUP_HOME"
mkdir -p "$DIR" "$LOGS"

# Host apt sources -> one-line "deb URI SUITE main" for bookworm, -updates, -security
# (one-line .list files and deb822 .sources files). Empty when the host has none.
host_mirrors() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '
      $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        uri = $i; suite = $(i+1); main = 0
        for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
        if (main && suite ~ ("^" s "(-updates|-security)?$")) print "deb " uri " " suite " main" }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '
      function flush(   i, j, nu, ns, u, su) {
        if (types ~ /(^| )deb( |$)/ && enabled !~ /^no$/ && comps ~ /(^| )main( |$)/) {
          nu = split(uris, u, " "); ns = split(suites, su, " ")
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
            if (su[j] ~ ("^" s "(-updates|-security)?$")) print "deb " u[i] " " su[j] " main"
        }
        types = uris = suites = comps = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0; else if (key == "uris") uris = $0
        else if (key == "suites") suites = $0; else if (key == "components") comps = $0
        else if (key == "enabled") enabled = tolower($0) }
      END { flush() }' "$f"
  done
}

ensure_tool() {
  if command -v mmdebstrap >/dev/null; then echo mmdebstrap; return; fi
  if command -v debootstrap >/dev/null; then echo debootstrap; return; fi
  command -v apt-get >/dev/null || die "neither mmdebstrap nor debootstrap, and no apt-get to install one"
  log "installing mmdebstrap from Debian's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 \
    || die "could not install mmdebstrap or debootstrap"
  command -v mmdebstrap >/dev/null && echo mmdebstrap || echo debootstrap
}

build_tarball() {
  local tool mirrors=() tmp
  tool=$(ensure_tool)
  mapfile -t mirrors < <(host_mirrors | awk '!seen[$0]++')
  if [ ${#mirrors[@]} -gt 0 ]; then
    log "apt sources from this host: ${mirrors[*]}"
  else
    log "no $SUITE entries in this host's apt sources: the tool's default mirror"
  fi
  tmp=$TARBALL.part
  rm -f "$tmp"
  log "building a $SUITE ($FC_VARIANT) root with $tool (a few minutes)"
  if [ "$tool" = mmdebstrap ]; then
    mmdebstrap --mode=root --variant="$FC_VARIANT" --include="$INCLUDE" --format=tar \
      "$SUITE" "$tmp" "${mirrors[@]}"
  else
    local d=$DIR/debootstrap.tmp uri=""
    umount_under "$d"; rm -rf --one-file-system "$d"
    [ ${#mirrors[@]} -gt 0 ] && uri=$(printf '%s\n' "${mirrors[@]}" | awk -v s="$SUITE" '$3 == s {print $2; exit}')
    debootstrap --variant="$FC_VARIANT" --include="$INCLUDE" "$SUITE" "$d" ${uri:+"$uri"}
    if [ ${#mirrors[@]} -gt 0 ]; then printf '%s\n' "${mirrors[@]}" > "$d/etc/apt/sources.list"; fi
    rm -rf "$d"/var/lib/apt/lists/* "$d"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$d" -cf "$tmp" .
    rm -rf --one-file-system "$d"
  fi
  mv "$tmp" "$TARBALL"
  log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

# Unmounts whatever a killed earlier run left mounted under $1 (deepest first).
umount_under() {
  local d=$1 m
  [ -e "$d" ] || return 0
  d=$(realpath "$d")
  awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  if awk -v d="$d" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    die "mounts remain under $d; not touching it"
  fi
}

if [ ! -s "$TARBALL" ] || [ "${FRESH_CHECK_REBUILD:-0}" = 1 ]; then
  build_tarball
else
  log "cached root: $TARBALL (FRESH_CHECK_REBUILD=1 to build it again)"
fi

CLONE=$ROOT/root/gst-affect
umount_under "$ROOT"
if [ "${FRESH_CHECK_REUSE:-0}" = 1 ] && [ -d "$CLONE/.git" ]; then
  log "reusing $ROOT (FRESH_CHECK_REUSE=1): moving its clone to $FC_SHA"
  git -C "$CLONE" fetch --quiet "$REPO" HEAD
  git -C "$CLONE" checkout --quiet --force --detach FETCH_HEAD
  git -C "$CLONE" clean -fdq
else
  log "unpacking a fresh root into $ROOT"
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$ROOT"
  tar --numeric-owner -xpf "$TARBALL" -C "$ROOT"
  log "cloning $FC_SHA (committed HEAD) into /root/gst-affect"
  git clone --quiet --no-hardlinks "$REPO" "$CLONE"
  if [ "$(git -C "$CLONE" rev-parse HEAD)" != "$FC_SHA" ]; then
    git -C "$CLONE" checkout --quiet --detach "$FC_SHA" || die "HEAD $FC_SHA is not in the clone"
  fi
  # Seed cargo's crates.io index and .crate cache (not the unpacked sources).
  mkdir -p "$ROOT/root/.cargo/registry"
  for sub in index cache; do
    [ -d "$FC_CARGO_HOME/registry/$sub" ] && cp -a "$FC_CARGO_HOME/registry/$sub" "$ROOT/root/.cargo/registry/"
  done
fi
chmod 1777 "$ROOT/tmp"
rm -f "$LOGS"/*.log

export FC_ROOT=$ROOT FC_LOGS=$LOGS FC_SHA FC_VARIANT FC_RUSTUP_HOME FC_CARGO_HOME FRESH_CHECK_TARGETS
if [ "${FRESH_CHECK_UNSHARE:-1}" = 1 ] && unshare --mount --pid --fork --propagation private true 2>/dev/null; then
  # unshare ignores INT/TERM while it waits: pass them on to the run inside (its child, the
  # namespace's pid 1, whose trap unmounts; its end ends every process in the namespace).
  FC_PIDNS=1 unshare --mount --pid --fork --kill-child --propagation private bash "$0" --inner &
  upid=$!
  forward() {
    local kids=()
    read -ra kids <"/proc/$upid/task/$upid/children" 2>/dev/null || true
    [ ${#kids[@]} -eq 0 ] || kill -TERM "${kids[@]}" 2>/dev/null || true
  }
  trap forward INT TERM HUP
  rc=0
  while :; do
    wait "$upid" && rc=0 || rc=$?
    kill -0 "$upid" 2>/dev/null || break # wait returned for a trapped signal: wait again
  done
  exit "$rc"
else
  log "no private namespaces: plain mounts in this namespace (undone on exit)"
  exec env FC_PIDNS=0 bash "$0" --inner
fi
