#!/usr/bin/env bash
# Fresh machine → the whole automl-asd flow on the embedded synthetic data set:
# synthetic dev machine types + separate novel types → search → recipe.json → apply on the novel
# types → official scores and plots. Usage: bash demo.sh [OUT_DIR]   (default: demo_out)
set -euo pipefail
cd "$(dirname "$0")"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}" PIP_NO_INPUT=1
want="$(sha256sum constraints.txt pyproject.toml | awk '{print $1}' | tr '\n' ' ')"
have="$(cat .venv/.automl-asd-lock 2>/dev/null || true)"
if [ -x .venv/bin/automl-asd ] && [ "$want" = "$have" ] \
    && .venv/bin/python -c "import torchaudio.functional" >/dev/null 2>&1; then
  :  # the venv matches the lock and loads: reuse it
else
  if [ -e .venv ]; then
    echo "== .venv is stale or broken (lock changed, or torch/torchaudio do not load): rebuilding"
    rm -rf .venv
  else
    echo "== setting up .venv from constraints.txt (first run only; downloads ~4 GB of torch/CUDA wheels)"
  fi
  bash tools/install.sh .venv "" --editable
fi
exec .venv/bin/automl-asd demo --out "${1:-demo_out}"
