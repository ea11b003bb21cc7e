# The two commands of the README:
#   make demo   - the main job on its embedded default (render, train, target, ROS 2 pipeline, grasp)
#   make test   - the test suite
# Both create .venv on first use (scripts/setup_env.sh; apt packages included) and skip that when done.
PY := .venv/bin/python
# Unique DDS domain per invocation, and never leave localhost.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( ($$$$ % 200) + 1 )))

.PHONY: setup test demo benchmark

setup:
	@bash scripts/setup_env.sh

test: setup
	$(PY) -m pytest test -q -rs

demo: setup
	$(PY) -m ccl_perception.demo

benchmark: setup
	$(PY) training/benchmark.py
