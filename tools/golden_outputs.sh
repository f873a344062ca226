#!/usr/bin/env bash
# Score CSVs of a few recipes on a tiny synthetic set, for byte-for-byte comparison across refactors.
#   bash tools/golden_outputs.sh OUT            (writes OUT/<recipe>/... and OUT/scores.sha256)
#   diff BEFORE/scores.sha256 AFTER/scores.sha256   (empty = identical score and decision CSVs)
# Runs serially on the CPU (no Ray), with its own feature cache, so it is deterministic.
set -euo pipefail
out="$(realpath -m "${1:?usage: golden_outputs.sh OUT}")"
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
export AUTOML_ASD_CACHE="$out/cache" CUDA_VISIBLE_DEVICES=""
"$py" -m automl_asd.cli synth --out "$out/data" --machine-types fan valve --size tiny --seed 7 >/dev/null
# A tiny margin recipe: the shipped margin_default with 2 epochs on short crops.
"$py" - "$out/margin_tiny.json" <<'PY'
import json, sys
from importlib import resources
rec = json.loads(resources.files("automl_asd.recipes").joinpath("margin_default.json").read_text())
rec["name"] = "margin_tiny"
rec["detector"]["params"].update(epochs=2, crop_frames=32, batch_size=32, device="cpu", amp=False)
open(sys.argv[1], "w").write(json.dumps(rec, indent=2))
PY
for recipe in fast_default searched_pooled_logz hedge_pooled hedge_logz_frame "$out/margin_tiny.json"; do
  name="$(basename "$recipe" .json)"
  "$py" -m automl_asd.cli apply --frozen "$recipe" --data "$out/data" --out "$out/$name" \
    --serial --no-plots --device cpu >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
done
cd "$out" && find . -path ./cache -prune -o \( -name 'anomaly_score_*.csv' -o -name 'decision_result_*.csv' \) -print \
  | sort | xargs sha256sum > scores.sha256
wc -l < scores.sha256 | xargs echo "score/decision CSVs hashed:"; echo "$out/scores.sha256"
