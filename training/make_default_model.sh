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
# CCL + 0.1 identical view on the rendered benchmark v2 training capture (500 frames of one
# fixed top-down camera), the package's CPU recipe (training/configs/default.yaml: frozen
# ImageNet trunk, PCA-initialised conv head, label-free foreground keypoints, random
# backgrounds pasted behind the foreground), STEPS steps; model.pt is the best model on the
# validation set (data/v2/val, its own seed), step 0 included. Exported head-only (~2.5 MB)
# to ccl_perception/models/ccl_default.pt with its card ccl_default.json. The settings are
# exactly those of `make reproduce`'s run v2_ccl_iv_s0 (one thread: the run is deterministic),
# which is the model shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-1000}
RUN=${RUN:-runs/default_model}
SEED=${SEED:-0}
[ -f data/v2/train/frames.json ] || $PY training/render_dataset.py train --out data/v2/train --depth
[ -f data/v2/val/pairs.json ] || $PY training/render_dataset.py eval --out data/v2/val --scenes 6 --seed 12345
if [ ! -f "$RUN/model.pt" ]; then
  resume=(); [ -f "$RUN/checkpoint.pt" ] && resume=(--resume)
  $PY training/train.py --config training/configs/ccl_iv.yaml --set init_from=null \
      --set data.root=data/v2/train --set val_pairs=data/v2/val/pairs.json --set seed="$SEED" \
      --set train.steps="$STEPS" --set train.amp=true --set train.threads=1 --set train.eval_every=125 \
      --set train.checkpoint_every=250 --set train.eval_max_pairs=0 --set train.progress=false \
      "${resume[@]}" --out "$RUN"
fi
$PY training/export_default_model.py --checkpoint "$RUN/model.pt"
