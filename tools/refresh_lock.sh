#!/usr/bin/env bash
# Regenerate constraints.txt deliberately: resolve pyproject.toml's ranges (torch and torchaudio
# are exact pins) in a throw-away venv on Python 3.11 / Linux x86_64, then freeze every package.
# Run the tests against the new lock before committing it:
#   bash tools/refresh_lock.sh && bash .ci/run
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
"$tmp/venv/bin/python" -m pip install --quiet "$here[dev,cluster]"
{
  echo "# The lock: exact versions of every direct and transitive dependency of automl-asd[dev,cluster],"
  echo "# plus pip and the build back-end. Resolved on $(date -u +%Y-%m-%d) with"
  echo "# $("$tmp/venv/bin/python" --version) on $(uname -s) $(uname -m) by: bash tools/refresh_lock.sh"
  echo "# Installed with: bash tools/install.sh VENV [dev]   (pip -c constraints.txt)"
  echo "# Linux-only wheels (nvidia-*, triton) are ignored where they do not apply."
  "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable | grep -viE '^automl-asd( |=|@)'
} > "$here/constraints.txt"
echo "wrote $here/constraints.txt ($(grep -vc '^#' "$here/constraints.txt") packages)"
