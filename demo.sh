#!/usr/bin/env bash
# Fresh machine → the whole automl-asd flow on the embedded synthetic data set:
# synthetic dev machine types + separate novel types → search → recipe.json → apply on the novel
# types → official scores and plots. Usage: bash demo.sh [OUT_DIR]   (default: demo_out)
set -euo pipefail
cd "$(dirname "$0")"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}" PIP_NO_INPUT=1
want="$(sha256sum constraints.txt pyproject.toml | awk '{print $1}' | tr '\n' ' ')"
have="$(cat .venv/.automl-asd-lock 2>/dev/null || true)"
log="$(mktemp)"
# The demo keeps its feature cache under OUT/cache: doctor's check of the default cache folder
# does not concern it.
only_cache_fails() { grep -q '^FAIL' "$1" && ! grep '^FAIL' "$1" | grep -qv '^FAIL  cache'; }
# Reuse .venv when it was built from this lock and `automl-asd doctor` passes (Python, the torch/
# torchaudio pair and its compiled ops, Ray, Optuna, devices, the feature cache).
if [ -x .venv/bin/automl-asd ] && [ "$want" = "$have" ] \
    && { .venv/bin/automl-asd doctor >"$log" 2>&1 || only_cache_fails "$log"; }; then
  echo "== .venv matches constraints.txt and passes automl-asd doctor: reusing it"
  if only_cache_fails "$log"; then
    echo "   (the default feature cache is not writable; the demo keeps its own under its output folder)"
  fi
else
  if [ -e .venv ]; then
    echo "== .venv is stale or broken (lock changed, or automl-asd doctor failed): rebuilding"
    grep '^FAIL' "$log" | sed 's/^/   /' || true
    rm -rf .venv
  else
    echo "== setting up .venv from constraints.txt (first run only; downloads ~4 GB of torch/CUDA wheels)"
  fi
  bash tools/install.sh .venv "" --editable
  if ! .venv/bin/automl-asd doctor >"$log" 2>&1 && ! only_cache_fails "$log"; then
    cat "$log"; rm -f "$log"
    echo "== the freshly built .venv fails the checks above: fix what the FAIL lines say, then run bash demo.sh again" >&2
    exit 1
  fi
  cat "$log"
fi
rm -f "$log"
exec .venv/bin/automl-asd demo --out "${1:-demo_out}"
