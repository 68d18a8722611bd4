# Sourced by the tests/python/*-venv.sh scripts: one pinned venv under the cache folder.
#
#   pinned_venv NAME PINS [PIP_ARGS] [NODEPS]
#
# NAME: the venv's folder under $CACHE; PINS, PIP_ARGS, NODEPS: names of bash arrays
# (exact `name==version` pins; extra `pip install` arguments; pins installed afterwards
# with --no-deps). Creates the venv on Debian's python3 once, installs when any pin's
# installed version differs (a local build tag `+…` is ignored), and prints the venv's
# python on stdout; pip's output goes to stderr. Idempotent. Needs CACHE set.
pinned_venv() {
  local venv=$CACHE/$1
  local -n _pins=$2
  local -a _args=() _nodeps=()
  if [ -n "${3:-}" ]; then local -n _a=$3; _args=("${_a[@]}"); fi
  if [ -n "${4:-}" ]; then local -n _n=$4; _nodeps=("${_n[@]}"); fi
  if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv" >&2
  fi
  if ! "$venv/bin/python" - "${_pins[@]}" "${_nodeps[@]}" <<'PYCHECK' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name).split("+")[0] != want:
        sys.exit(1)
PYCHECK
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${_args[@]}" "${_pins[@]}" >&2
    if [ "${#_nodeps[@]}" -gt 0 ]; then
      "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${_nodeps[@]}" >&2
    fi
  fi
  echo "$venv/bin/python"
}
