#!/usr/bin/env bash
# Install automl-asd into a virtual environment with every version taken from constraints.txt.
#
#   bash tools/install.sh VENV [EXTRAS] [--editable]
#     VENV       the virtual environment to create or complete (e.g. .venv)
#     EXTRAS     optional extras, e.g. "dev" (default: none)
#     --editable install the checkout in development mode (pip install -e)
#
# The lock (constraints.txt) decides every version: pip itself, the build back-end (setuptools,
# wheel; installed into the venv and used without build isolation, so the build does not fetch
# the index's latest setuptools) and every direct and transitive dependency. Refresh it on
# purpose with `bash tools/refresh_lock.sh`, never implicitly.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:?usage: bash tools/install.sh VENV [EXTRAS] [--editable]}"
extras="${2:-}"
editable=""
[ "${3:-}" = "--editable" ] && editable="-e"
lock="$here/constraints.txt"
pin() {  # the locked version of one package, or fail
  local v
  v="$(grep -iE "^$1==" "$lock" | head -1 | cut -d= -f3)"
  [ -n "$v" ] || { echo "tools/install.sh: $1 is not in constraints.txt" >&2; exit 1; }
  echo "$1==$v"
}
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The interpreter: $PYTHON if set, else the first of python3.11 / python3 that is Python 3.11
# (the lock is made for it; Ubuntu 22.04's python3, for one, is 3.10).
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 \
        && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      python="$cand"; break
    fi
  done
fi
[ -n "$python" ] || { echo "tools/install.sh: needs Python 3.11 (python3.11, or a python3 that is 3.11, on PATH; or PYTHON=/path/to/python3.11)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
elif ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then  # half made: no pip in it
  echo "tools/install.sh: $venv has no pip (an interrupted venv?); recreating it" >&2
  "$python" -m venv --clear "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install --quiet "$(pin pip)"
"$py" -m pip install --quiet -c "$lock" setuptools wheel
target="$here"
[ -n "$extras" ] && target="$here[$extras]"
"$py" -m pip install --quiet --no-build-isolation -c "$lock" $editable "$target"
# Record what was installed from which lock, so callers can tell a stale or broken venv.
sha256sum "$lock" "$here/pyproject.toml" | awk '{print $1}' | tr '\n' ' ' > "$venv/.automl-asd-lock"
