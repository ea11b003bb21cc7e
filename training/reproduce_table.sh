#!/usr/bin/env bash
# Copyright 2026 ccl_perception maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# Reproduces the README's accuracy tables (Table-I style, benchmark v2 and v1), the q sweep
# (Fig. 4) and the instrument picture on this CPU (2 cores; ~2.5 h).
# Runs go two at a time with one thread each; every run can be resumed (kill, rerun).
#
# Protocol (the package's CPU recipe, training/configs/default.yaml): ImageNet EfficientNet-Lite0
# trunk frozen, conv head started from a label-free PCA of the trunk features (the step-0 model
# every arm shares), keypoints on the label-free foreground, precision `train.amp: auto` (bf16
# on a CPU with bf16 instructions, else fp32; the README tables were measured in bf16), lr 1e-4, batch 4,
# N = 500, tau = 0.03, q = 0.35, lambda = 0.1. Every arm trains STEPS steps from that same start
# (compute-matched): identical view, CCL, CCL + 0.1 IV (seeds SEEDS), supervised with the same
# trunk/head/schedule, and CCL with uniform keypoints (the shortcut, for the instruments).
# model.pt of each run is its best validated model on data/v2/val (step 0 included); data/v2/eval
# is evaluated once at the end. The q sweep runs QSTEPS steps per point, one seed.
#
#   bash training/reproduce_table.sh                 # everything (skips finished stages)
#   STAGE=eval EVAL_THREADS=1 bash training/reproduce_table.sh   # evaluate finished runs meanwhile
#   STEPS=20000 QSTEPS=5000 bash training/reproduce_table.sh   # paper-length, for a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-1000}
QSTEPS=${QSTEPS:-500}
V1_STEPS=${V1_STEPS:-1000}
SEEDS=${SEEDS:-"0 1"}
QS=${QS:-"0.15 0.25 0.35 0.5 0.75 1.0"}
OUT=${OUT:-out}
export OMP_NUM_THREADS=1
# The recipe (steps aside) is training/configs/default.yaml; one thread per run, two runs at once.
COMMON=(--set train.threads=1 --set train.progress=false)

# ---------------------------------------------------------------------------------- data
v2() { [ -f "data/v2/$2/$3" ] || $PY training/render_dataset.py "$1" --out "data/v2/$2" "${@:4}"; }
v2 train train frames.json --depth
v2 eval eval pairs.json
v2 eval val pairs.json --scenes 6 --seed 12345
v2 same_table same_table pairs.json
[ -f data/train_gt/frames.json ] || $PY training/render_dataset.py train --benchmark v1 --out data/train_gt --depth
[ -f data/eval/pairs.json ] || $PY training/render_dataset.py eval --benchmark v1 --out data/eval
[ -f data/val/pairs.json ] || $PY training/render_dataset.py eval --benchmark v1 --out data/val --scenes 6 --seed 12345

# ------------------------------------------------------------------------------ training
train() {  # train <run> <config> <data> <steps> [extra --set ...]
  local run=$1 config=$2 data=$3 steps=$4; shift 4
  if [ -f "runs/$run/model.pt" ]; then echo "[skip] runs/$run/model.pt"; return; fi
  local resume=(); [ -f "runs/$run/checkpoint.pt" ] && resume=(--resume)
  echo "[train] $run: $config on $data, $steps steps"
  $PY training/train.py --config "training/configs/$config.yaml" "${COMMON[@]}" \
      --set data.root="$data/train" --set val_pairs="$data/val/pairs.json" --set init_from=null \
      --set train.steps="$steps" "$@" "${resume[@]}" --out "runs/$run" > "runs/$run.log" 2>&1
}
job() {  # run in the background, at most two at a time (one thread each, 2 cores)
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done  # a failed run: see its log
  "$@" &
}

mkdir -p runs "$OUT"
if [ "${STAGE:-all}" != eval ]; then  # STAGE=eval: only the evaluations of finished runs
for seed in $SEEDS; do
  job train "v2_iv_s$seed" identical_view data/v2 "$STEPS" --set seed="$seed"
  job train "v2_ccl_s$seed" ccl data/v2 "$STEPS" --set seed="$seed"
  job train "v2_ccl_iv_s$seed" ccl_iv data/v2 "$STEPS" --set seed="$seed"
done
job train v2_supervised supervised data/v2 "$STEPS" --set data.root=data/v2/train
job train v2_ccl_uniform ccl data/v2 "$STEPS" --set data.keypoints=uniform --set data.foreground.paste_background=0
job train v2_ccl_nopaste ccl data/v2 "$STEPS" --set data.foreground.paste_background=0
job train v2_ccl_sanity ccl data/v2 "$QSTEPS" --set loss.sanity_b_from_a=true
job train v2_iv_short identical_view data/v2 "$QSTEPS"
for config in identical_view ccl ccl_iv; do
  job train "v1_${config/identical_view/iv}" "$config" data "$V1_STEPS" --set data.root=data/train_gt
done
for q in $QS; do  # paper Fig. 4: with and without variance scaling
  job train "v2_q${q}_vs" ccl data/v2 "$QSTEPS" --set loss.quantile="$q" --set train.keep_best=false
  job train "v2_q${q}_novs" ccl data/v2 "$QSTEPS" --set loss.quantile="$q" \
      --set loss.use_variance_scaling=false --set train.keep_best=false
done
wait || true
for run in $(ls -d runs/v2_* runs/v1_* 2>/dev/null | grep -v '\.log$'); do
  [ -f "$run/model.pt" ] || echo "[warning] $run has no model.pt: see $run.log"
done
fi

# ---------------------------------------------------------------------------- evaluation
evaluate() {  # evaluate <name> <pairs> <args...>
  local name=$1 pairs=$2; shift 2
  [ -f "$OUT/eval_$name.json" ] && { echo "[skip] $OUT/eval_$name.json"; return; }
  echo "[eval] $name"
  $PY training/evaluate.py "$@" --threads "${EVAL_THREADS:-2}" --pairs "$pairs" \
      --json "$OUT/eval_$name.json" > "$OUT/eval_$name.log" 2>&1 || echo "[warning] eval $name failed: $OUT/eval_$name.log"
}
evaluate v2_pretrained_features data/v2/eval/pairs.json --baseline pretrained
evaluate v2_step0 data/v2/eval/pairs.json --checkpoint runs/v2_ccl_s0/step0.pt
evaluate v2_same_table_pretrained_features data/v2/same_table/pairs.json --baseline pretrained
evaluate v2_same_table_step0 data/v2/same_table/pairs.json --checkpoint runs/v2_ccl_s0/step0.pt
for run in $(ls -d runs/v2_* | xargs -n1 basename); do
  [ -f "runs/$run/model.pt" ] || continue
  evaluate "$run" data/v2/eval/pairs.json --checkpoint "runs/$run/model.pt"
  case $run in v2_q*|v2_*short|v2_ccl_sanity) ;; *)
    evaluate "${run/v2_/v2_same_table_}" data/v2/same_table/pairs.json --checkpoint "runs/$run/model.pt" ;;
  esac
done
evaluate v1_pretrained_features data/eval/pairs.json --baseline pretrained
evaluate v1_step0 data/eval/pairs.json --checkpoint runs/v1_ccl/step0.pt
for run in v1_iv v1_ccl v1_ccl_iv; do
  evaluate "$run" data/eval/pairs.json --checkpoint "runs/$run/model.pt"
done

$PY training/plot_results.py qsweep --evals "$OUT/eval_v2_q*.json" --out "$OUT/qsweep.png"
$PY training/plot_results.py instruments --runs runs/v2_ccl_s0 runs/v2_ccl_uniform runs/v2_ccl_sanity \
    --out "$OUT/instruments.png"
$PY training/summarize_results.py "$OUT"/eval_*.json runs/*/metrics.json > "$OUT/results.md"
cat "$OUT/results.md"
