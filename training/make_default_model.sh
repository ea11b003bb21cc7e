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

# `make model`: the shipped default model, reproduced on this CPU (2 cores, < 90 min).
# CCL + 0.1 identical view (training/configs/ccl_iv.yaml) on the rendered benchmark v2 training
# capture (500 frames of one fixed top-down camera), the package's recipe as written in
# training/configs/default.yaml (frozen ImageNet trunk, PCA-initialised conv head, label-free
# foreground keypoints, random backgrounds pasted behind the foreground, 1000 steps, validation
# every 125 steps on all of data/v2/val, precision `train.amp: auto`); model.pt is the best
# model on the validation set (its own seed), step 0 included. Exported head-only (~2.5 MB) to
# ccl_perception/models/ccl_default.pt with its card ccl_default.json. One thread makes the run
# deterministic: the same CPU type and the same precision give the same model (same identity).
# The shipped model was trained in bf16 on a CPU with bf16 instructions; `auto` picks fp32 on
# a CPU without them, so there the model differs (and the run is 10-40x faster than forced bf16).
# STEPS=<n> overrides train.steps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/default_model}
SEED=${SEED:-0}
[ -f data/v2/train/frames.json ] || $PY training/render_dataset.py train --out data/v2/train --depth
[ -f data/v2/val/pairs.json ] || $PY training/render_dataset.py eval --out data/v2/val --scenes 6 --seed 12345
if [ ! -f "$RUN/model.pt" ]; then
  resume=(); [ -f "$RUN/checkpoint.pt" ] && resume=(--resume)
  steps=(); [ -n "${STEPS:-}" ] && steps=(--set train.steps="$STEPS")
  $PY training/train.py --config training/configs/ccl_iv.yaml --set data.root=data/v2/train \
      --set val_pairs=data/v2/val/pairs.json --set seed="$SEED" --set train.threads=1 \
      --set train.progress=false "${steps[@]}" "${resume[@]}" --out "$RUN"
fi
$PY training/export_default_model.py --checkpoint "$RUN/model.pt"
