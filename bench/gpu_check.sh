#!/usr/bin/env bash
# GPU proof for automl-asd, one prepared run (about 6.5 min on one H200 with 16 cores):
#
#   1. the CUDA tests (pytest -k cuda: they skip without CUDA, run with it);
#   1b. bench/ae_step.py: the AE's training step eager vs captured as a CUDA graph, and at
#      batch 4096 (is the AE launch-bound? by how much would a graph cut it?);
#   2. margin_knn and baseline_ae_mse trained and scored on one full-size synthetic type
#      (synth --size full --machine-types pump: 1000 train + 200 test clips of 10 s) on the GPU
#      and on the CPU with the same recipe and seed: wall time, peak GPU memory
#      (torch.cuda.max_memory_allocated, bench/gpu_fit.py), Ω of each; the AE pair runs
#      AE_EPOCHS epochs (default 5, not the shipped 100: on the H200 of 2026-12-04 one epoch
#      took 6.9 s on the GPU, so 100 epochs would take more than a lent machine's command);
#   3. a 4-trial search of the margin space on 2 small synthetic dev types with
#      --gpus-per-trial 0.25 and with --gpus-per-trial 1 (4 trials may run at once), each with
#      its own empty feature/representation cache (a shared one makes the second search
#      cheaper for a reason that is not the GPU split): trials/hour.
#
# Writes every number to $OUT (if set) or bench/gpu_results/<timestamp>/ (results.json,
# results.md) and prints the table.
#
#   bash bench/gpu_check.sh                 # on a machine with a CUDA GPU
#   PY=python3 PYTHONPATH=$PWD bash bench/gpu_check.sh   # with that machine's own torch, the
#                                           # package not installed (ray, optuna, soundfile must
#                                           # import; how they were carried: docs/benchmarks.md)
#   bash bench/gpu_check.sh --cpu-dry-run   # the same steps on CPU at tiny size (2-5 min on
#                                           # 2 cores): proves the script, measures nothing
#
# GPU_CHECK_DEADLINE_S=540 bounds the whole run (a lent machine's command limit): each step's
# timeout is cut to what is left (30 s kept for the table), a step that would start with under
# 20 s left is recorded as skipped, and the table holds whatever finished. The steps run in
# order of value, the AE pair (the slowest) last.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
[[ "${1:-}" == "--cpu-dry-run" ]] && DRY=1
PY=${PY:-.venv/bin/python}
[[ -x "$PY" ]] || PY=python3
RES=${OUT:-bench/gpu_results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RES"
RES=$(cd "$RES" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-XXXXXX")
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled AUTOML_ASD_CACHE="$WORK/cache"
NCPU=$(nproc)

if (( DRY )); then
  SIZE=tiny; SEARCH_SIZE=tiny; DEV=cpu; MARGIN_EP=2; AE_EP=${AE_EPOCHS:-3}; AE_STEPS=20
  GPU_FRACTIONS=("0.25" "1"); STEP_TIMEOUT=300
  echo "== CPU DRY RUN: tiny data, 'GPU' steps run on the CPU, --gpus-per-trial 0 with the"
  echo "   concurrency a 0.25 / 1 GPU split would give (4 / 1 trials at once); numbers are NOT"
  echo "   GPU measurements"
else
  SIZE=full; SEARCH_SIZE=small; DEV=cuda; MARGIN_EP=""; AE_STEPS=300
  AE_EP=${AE_EPOCHS:-5}; GPU_FRACTIONS=("0.25" "1"); STEP_TIMEOUT=420
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$RES/nvidia_smi.csv"
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device; use --cpu-dry-run on a CPU machine" >&2
    exit 2
  fi
fi
START=$(date +%s)
DEADLINE=${GPU_CHECK_DEADLINE_S:-0}
log() { echo "[$(( $(date +%s) - START )) s] $*"; }
# A SIGTERM/SIGINT (a lent machine's command limit, Ctrl+C) stops the running step (found
# 2026-12-07: killing the script left its step running, orphaned) and skips the rest; the
# table of what finished is still written and the work folder removed.
STEP_PID=""; STOPPED=0; KILLER=""
on_signal() {  # on_signal EXIT_STATUS: TERM the step; KILL its process group 10 s later
  STOPPED=$1
  if [[ -n "$STEP_PID" && -z "$KILLER" ]]; then
    kill -TERM "$STEP_PID" 2>/dev/null
    ( sleep 10; kill -KILL -- "-$STEP_PID" ) 2>/dev/null &
    KILLER=$!
  fi
}
trap 'on_signal 143' TERM
trap 'on_signal 130' INT
step() {  # step NAME CMD...: run with a timeout, keep going on failure, record the status
  local name=$1; shift
  local limit=$STEP_TIMEOUT
  if (( STOPPED )); then
    log "$name: skipped, the check was stopped"
    echo "$name skipped" >> "$RES/steps.txt"
    return 0
  fi
  if (( DEADLINE > 0 )); then
    local left=$(( DEADLINE - 30 - ($(date +%s) - START) ))
    if (( left < 20 )); then
      log "$name: skipped, ${left} s left before the deadline (GPU_CHECK_DEADLINE_S=$DEADLINE)"
      echo "$name skipped" >> "$RES/steps.txt"
      return 0
    fi
    (( left < limit )) && limit=$left
  fi
  log "$name (timeout ${limit} s): $*"
  local t0=$(date +%s)
  # -k: a step still running 10 s after its own time limit's TERM is killed (timeout is
  # its process group's leader: the stop's KILL above reaches the whole step)
  timeout -k 10 "$limit" "$@" > "$RES/$name.log" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID"
  local rc=$?
  while kill -0 "$STEP_PID" 2>/dev/null; do  # a signal's trap ended the wait: reap the step
    wait "$STEP_PID"; rc=$?
  done
  STEP_PID=""
  [[ -n "$KILLER" ]] && kill "$KILLER" 2>/dev/null
  if (( STOPPED )); then
    echo "$name stopped $(( $(date +%s) - t0 ))" >> "$RES/steps.txt"
    log "$name stopped (rc $rc)"
    return 0
  fi
  echo "$name $rc $(( $(date +%s) - t0 ))" >> "$RES/steps.txt"
  (( rc == 0 )) || { log "$name FAILED (rc $rc), see $RES/$name.log"; tail -5 "$RES/$name.log"; }
  return 0
}

# 1. CUDA tests
step cuda_tests "$PY" -m pytest -q -rs -p no:cacheprovider tests -k cuda
grep -E "passed|skipped|failed" "$RES/cuda_tests.log" | tail -2

# 1b. where the AE's step time goes (eager vs CUDA graph, batch 256 vs 4096): seconds
step ae_step "$PY" bench/ae_step.py --device "$DEV" --steps "$AE_STEPS" --threads "$NCPU" \
  --json "$RES/ae_step.json"
grep -E "^\||^ratios" "$RES/ae_step.log"

# 2. data
step synth_full "$PY" -m automl_asd.cli synth --out "$WORK/full" --size "$SIZE" \
  --machine-types pump --seed 0
step synth_dev "$PY" -m automl_asd.cli synth --out "$WORK/dev" --size "$SEARCH_SIZE" \
  --machine-types fan gearbox --seed 0

# 3. one full-size type: GPU vs CPU, same recipe and seed
fit() {  # fit TAG RECIPE DEVICE [EPOCHS]
  local tag=$1 recipe=$2 device=$3 ep=${4:-}
  step "fit_$tag" "$PY" bench/gpu_fit.py --recipe "$recipe" --data "$WORK/full" \
    --device "$device" --threads "$NCPU" --json "$RES/fit_$tag.json" ${ep:+--epochs "$ep"}
}
fit margin_gpu margin_knn "$DEV" "$MARGIN_EP"
fit margin_cpu margin_knn cpu "$MARGIN_EP"

# 4. search: fractional vs whole GPUs
for frac in "${GPU_FRACTIONS[@]}"; do
  tag=search_gpu_${frac/./_}
  if (( DRY )); then
    gpus=0; conc=$([[ $frac == "1" ]] && echo 1 || echo 4)
  else
    gpus=$frac; conc=4
  fi
  t0=$(date +%s.%N)
  step "$tag" "$PY" -m automl_asd.cli search --data "$WORK/dev" --space margin --trials 4 \
    --max-concurrent "$conc" --gpus-per-trial "$gpus" --cpus-per-trial 1 --seed 0 \
    --device "$DEV" --out "$WORK/$tag" --cache-dir "$WORK/cache_$tag"
  t1=$(date +%s.%N)
  grep -qE "^$tag (skipped|stopped)" "$RES/steps.txt" && continue  # no trials/hour row
  "$PY" - "$WORK/$tag/trials.parquet" "$t0" "$t1" "$frac" "$gpus" "$conc" \
      > "$RES/$tag.json" <<'EOF'
import json, sys
import pandas as pd
path, t0, t1, frac, gpus, conc = sys.argv[1:]
wall = float(t1) - float(t0)
try:
    t = pd.read_parquet(path)
    done = int(t["status"].isin(["complete", "stopped_early"]).sum())
    trial_s = float(t["wall_s"].mean())
except Exception:
    done, trial_s = 0, float("nan")
print(json.dumps({"gpus_per_trial": float(frac), "requested_gpus": float(gpus),
                  "max_concurrent": int(conc), "trials_done": done, "wall_s": round(wall, 1),
                  "mean_trial_s": round(trial_s, 1),
                  "trials_per_hour": round(done / wall * 3600, 1) if wall > 0 else None}))
EOF
done

# 5. the AE pair last: the slowest steps
fit ae_gpu baseline_ae_mse "$DEV" "$AE_EP"
fit ae_cpu baseline_ae_mse cpu "$AE_EP"

# 6. table
"$PY" - "$RES" "$DRY" "$AE_EP" <<'EOF'
import json, sys
from pathlib import Path
res, dry, ae_ep = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
def load(name):
    p = res / f"{name}.json"
    try:
        return json.loads(p.read_text())
    except Exception:
        return None
steps = (res / "steps.txt").read_text().split("\n") if (res / "steps.txt").exists() else []
rows_ = [s.split() for s in steps if s.strip()]
failed = [r[0] for r in rows_ if r[1] not in ("0", "skipped", "stopped")]
skipped = [r[0] for r in rows_ if r[1] in ("skipped", "stopped")]
def missing(step):  # why a step left no result
    return "skipped (deadline or stopped)" if step in skipped else "FAILED"
rows = ["| run | device | epochs | seconds | peak GPU MiB | Ω |", "|---|---|---|---|---|---|"]
fits = {}
for tag in ("margin_gpu", "margin_cpu", "ae_gpu", "ae_cpu"):
    r = load(f"fit_{tag}")
    fits[tag] = r
    if r is None:
        rows.append(f"| {tag} | - | - | {missing('fit_' + tag)} | - | - |")
        continue
    om = "-" if r["omega"] is None else f"{r['omega']:.4f}"
    rows.append(f"| {tag} ({r['recipe']}) | {r['device']} | {r['epochs']} | {r['seconds']:.1f} "
                f"| {r['peak_gpu_mib']:.0f} | {om} |")
def pair(a, b):
    x, y = fits.get(a), fits.get(b)
    if not x or not y or x["omega"] is None or y["omega"] is None:
        return "n/a"
    return (f"ΔΩ {x['omega'] - y['omega']:+.4f}, speed-up x{y['seconds'] / x['seconds']:.1f}")
lines = ["# bench/gpu_check.sh" + (" (CPU DRY RUN: not GPU numbers)" if dry else ""), "",
         *rows, "",
         f"- margin_knn GPU vs CPU (same recipe, seed): {pair('margin_gpu', 'margin_cpu')}",
         f"- baseline_ae_mse GPU vs CPU at {ae_ep} epochs: {pair('ae_gpu', 'ae_cpu')}",
         ""]
srch = ["| search | gpus/trial | max concurrent | trials done | wall s | mean trial s | "
        "trials/hour |", "|---|---|---|---|---|---|---|"]
tph = {}
for frac in ("0_25", "1"):
    r = load(f"search_gpu_{frac}")
    if r is None:
        srch.append(f"| search_gpu_{frac} | {missing('search_gpu_' + frac)} | | | | | |")
        continue
    tph[frac] = r["trials_per_hour"]
    srch.append(f"| 4 trials, margin space | {r['gpus_per_trial']:g} (requested "
                f"{r['requested_gpus']:g}) | {r['max_concurrent']} | {r['trials_done']} | "
                f"{r['wall_s']} | {r['mean_trial_s']} | {r['trials_per_hour']} |")
lines += srch
if tph.get("0_25") and tph.get("1"):
    lines += ["", f"- trials/hour ratio 0.25 GPU vs 1 GPU: x{tph['0_25'] / tph['1']:.2f}"]
lines += ["", "steps failed: " + (", ".join(failed) if failed else "none"),
          "steps skipped (deadline or stopped): " + (", ".join(skipped) if skipped else "none"),
          "step seconds: " + ", ".join(f"{r[0]} {r[2]}" for r in rows_ if len(r) > 2)]
ae = load("ae_step")
if ae is not None:
    lines += ["", f"AE training step on {ae['device']} (bench/ae_step.py), ms per 256 vectors: "
              + ", ".join(f"{k} {v:.3f}" for k, v in ae["ms_per_256"].items())
              + "; ratios: " + ", ".join(f"{k} x{v:.2f}" for k, v in ae["ratios"].items())
              + ("; failed: " + "; ".join(f"{k}: {v}" for k, v in ae["errors"].items())
                 if ae["errors"] else "")]
text = "\n".join(lines)
(res / "results.md").write_text(text + "\n")
(res / "results.json").write_text(json.dumps({"dry_run": dry, "fits": fits, "search": tph,
                                               "failed_steps": failed,
                                               "skipped_steps": skipped,
                                               "ae_step": ae}, indent=2) + "\n")
print(text)
EOF
rm -rf "$WORK"
if (( STOPPED )); then
  log "stopped; the results of the steps that finished are in $RES"
  exit "$STOPPED"
fi
log "done; results in $RES"
