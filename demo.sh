#!/usr/bin/env bash
# Fresh machine → the whole automl-asd flow on the embedded synthetic data set:
# synthetic dev machine types + separate novel types → search → recipe.json → apply on the novel
# types → official scores and plots. Usage: bash demo.sh [OUT_DIR]   (default: demo_out)
set -euo pipefail
cd "$(dirname "$0")"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}" PIP_NO_INPUT=1
if [ ! -x .venv/bin/automl-asd ]; then
  echo "== setting up .venv (first run only)"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e .
fi
exec .venv/bin/automl-asd demo --out "${1:-demo_out}"
