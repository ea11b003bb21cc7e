# The two commands of the README:
#   make demo   - the main job on its embedded default: the shipped model makes targets and
#                 grasps over ROS 2 (sim camera -> planner -> simulated Panda), reports success;
#                 `make demo TRAIN=1` first trains a short model from rendered frames and uses it
#   make test   - the test suite
# Both create .venv on first use (scripts/setup_env.sh; apt packages included) and skip that
# when it is already done. The other targets are conveniences documented in the README.
PY := .venv/bin/python
# Unique DDS domain per invocation, and never leave localhost.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( ($$$$ % 200) + 1 )))

.PHONY: setup test demo model benchmark data data-v1 reproduce grasp-table

setup:
	@bash scripts/setup_env.sh

test: setup
	$(PY) -m pytest test -q -rs

demo: setup
	$(PY) -m ccl_perception.demo $(if $(filter 1 true yes,$(TRAIN)),--train)

# The shipped default model ccl_perception/models/ccl_default.pt (+ its card .json), < 90 min on the CPU.
model: setup
	bash training/make_default_model.sh

# Speed figures side by side in one run, each table headed by the hardware (CPU and its
# vector instructions, dtype, threads): loss/backbone, eager/ONNX, frame->pose at the planner's
# operating point, memory, training speed fp32 | bf16.
benchmark: setup
	$(PY) training/benchmark.py --backbones efficientnet_lite0 resnet18 --threads 2

# Benchmark v2 (docs/benchmark.md): training capture with depth (supervised baseline), the
# evaluation set, a validation set on another seed (model selection), the same-table split.
data: setup
	$(PY) training/render_dataset.py train --out data/v2/train --depth
	$(PY) training/render_dataset.py eval --out data/v2/eval
	$(PY) training/render_dataset.py eval --out data/v2/val --scenes 6 --seed 12345
	$(PY) training/render_dataset.py same_table --out data/v2/same_table

# Benchmark v1 (the earlier numbers): training set with depth, evaluation and validation pairs.
data-v1: setup
	$(PY) training/render_dataset.py train --benchmark v1 --out data/train_gt --depth
	$(PY) training/render_dataset.py eval --benchmark v1 --out data/eval
	$(PY) training/render_dataset.py eval --benchmark v1 --out data/val --scenes 6 --seed 12345

# The README's accuracy and grasp tables (about 1.5 h on a 2-core CPU).
reproduce: setup
	bash training/reproduce_table.sh

# The README's grasp table (paper Table II analogue, both protocols, oracle rows; ~40 min on a
# quiet 2-core CPU): make grasp-table CHECKPOINT=runs/x/model.pt (default: the shipped model).
grasp-table: setup
	$(PY) training/grasp_table.py $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) --out out/grasp_table
