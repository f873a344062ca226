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
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet "$(pin pip)"
"$py" -m pip install --quiet -c "$lock" setuptools wheel
target="$here"
[ -n "$extras" ] && target="$here[$extras]"
"$py" -m pip install --quiet --no-build-isolation -c "$lock" $editable "$target"
# Record what was installed from which lock, so callers can tell a stale or broken venv.
sha256sum "$lock" "$here/pyproject.toml" | awk '{print $1}' | tr '\n' ' ' > "$venv/.automl-asd-lock"
