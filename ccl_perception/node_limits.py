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

"""
Allowed values of every node parameter, and one check per node (no ROS).

Every node has its ``PARAMS`` table of defaults (``ccl_perception/nodes/*_node.py``, checked
against config/*.yaml); the planner's and the executor's are built from the tables here
(:data:`PLANNER_PARAMS`, :data:`PIPELINE_PARAMS`, :data:`EXECUTOR_PARAMS`), beside their
ranges, so those nodes stay thin. The ranges are here, so the checks can be tested without
rclpy. Each node runs its ``check_*`` at start-up (a bad value from the YAML
or the command line stops it with the reason) and in its set-parameters callback
(:func:`refusal`: a bad value is refused and the old one kept). The pipeline knobs of the
planner are ``grasp_pipeline.LIMITS``. docs/ros_interface.md's parameter tables are checked
against these (test/test_validation.py).
"""

import dataclasses
import math
from typing import Callable, Optional

from ccl_perception import grasp_pipeline, model_settings
from ccl_perception.executors.base import MotionConfig
from ccl_perception.executors.moveit_executor import MoveItExecutorConfig
from ccl_perception.geometry import CAMERA_FRAME
from ccl_perception.validation import check, choice, flag, integer, NAME, real, text

#: Parameters of every node that runs the descriptor network.
MODEL_LIMITS = {'checkpoint': text(), **model_settings.LIMITS}
INPUT_TIMEOUT = real(0, 3600, low_open=True)
#: Colour/depth synchronisation of every node that subscribes to both (planner, target maker).
SYNC_LIMITS = {'sync_slop': real(0, 1, low_open=True), 'sync_queue_size': integer(1, 100)}

# ------------------------------------------------------------------------------ planner
#: Planner parameters besides the model's (``nodes.MODEL_PARAMS``) and the pipeline's
#: (config/grasp_planner.yaml is checked against all three).
PLANNER_PARAMS = {
    'target': '',               # target name in target_dir, or path to a .npz; '' = none
    'target_dir': '',           # directory of target .npz files (make_target output)
    'max_rate_hz': 15.0,        # upper bound of processed frames per second
    'sync_slop': 0.02,          # colour/depth stamp tolerance, seconds
    'sync_queue_size': 5,       # messages kept per stream for synchronisation
    'publish_heatmap': True,
    # warn (log + ~/status) when no colour+depth pair arrived for this long
    'input_timeout_s': 5.0,
}
#: Pipeline knobs; ``tau`` is left out of the YAML: its default is the checkpoint's.
PIPELINE_PARAMS = dict(grasp_pipeline.DEFAULTS)
PLANNER_LIMITS = {
    **MODEL_LIMITS, 'target': text(), 'target_dir': text(),
    'max_rate_hz': real(0, 1000, low_open=True),
    **SYNC_LIMITS,
    'publish_heatmap': flag(),
    'input_timeout_s': INPUT_TIMEOUT,
}
#: Planner parameters a running node refuses (its subscriptions and timers use them).
PLANNER_START_UP_ONLY = {'checkpoint', 'device', 'backend', 'downscale', 'max_rate_hz',
                         'sync_slop', 'sync_queue_size', 'input_timeout_s'}
#: Planner parameters a running node takes (pipeline knobs, target, target_dir, heatmap).
PLANNER_RUN_TIME = (set(PLANNER_LIMITS) | set(grasp_pipeline.DEFAULTS)) - PLANNER_START_UP_ONLY


def check_planner(values: dict) -> dict:
    """
    Validate the planner's parameters.

    :data:`PLANNER_LIMITS` for its own, ``grasp_pipeline.validate_config`` for the pipeline
    knobs (when all of them are given).

    Raises
    ------
    ValueError
        Naming the first bad parameter, its value and the allowed range.

    """
    knobs = {k: v for k, v in values.items() if k in grasp_pipeline.DEFAULTS}
    out = check(PLANNER_LIMITS, {k: v for k, v in values.items() if k not in knobs})
    if knobs:
        out.update(grasp_pipeline.validate_config(knobs))
    return out


# ---------------------------------------------------------------------- descriptor node
DESCRIPTOR_LIMITS = {**MODEL_LIMITS, 'max_rate_hz': real(0, 1000, low_open=True),
                     'publish_visualization': flag(), 'input_timeout_s': INPUT_TIMEOUT}
#: Descriptor node parameters a running node takes (read for every frame).
DESCRIPTOR_RUN_TIME = {'publish_visualization'}


def check_descriptor(values: dict) -> dict:
    """Validate the descriptor node's parameters; ``ValueError`` names the first bad one."""
    return check(DESCRIPTOR_LIMITS, values)


# ------------------------------------------------------------------------- target maker
#: A target name: a plain file name (no folder, not hidden); '' = not set yet.
TARGET_NAME = text(r'|[^/\\.][^/\\]*', "'' or a plain file name (no /, not starting with .)")
TARGET_MAKER_LIMITS = {**MODEL_LIMITS, 'target_dir': text(), 'name': TARGET_NAME,
                       'add_view': flag(), **SYNC_LIMITS}
#: Target maker parameters a running node takes (read at each ~/save_target).
TARGET_MAKER_RUN_TIME = {'target_dir', 'name', 'add_view'}


def check_target_maker(values: dict) -> dict:
    """Validate the target maker's parameters; ``ValueError`` names the first bad one."""
    return check(TARGET_MAKER_LIMITS, values)


# ----------------------------------------------------------------------------- executor
MOTION_KEYS = tuple(f.name for f in dataclasses.fields(MotionConfig))
MOVEIT_KEYS = tuple(f.name for f in dataclasses.fields(MoveItExecutorConfig)
                    if f.name not in MOTION_KEYS)
#: Every executor parameter with its default (config/grasp_executor.yaml is checked against it).
EXECUTOR_PARAMS = {
    'backend': 'sim',             # sim | moveit
    # False: plan and publish, move only on ~/execute (safe on a real arm); True: every new
    # grasp_pose is executed on arrival. Read on every pose: can be switched at run time.
    'auto_execute': False,
    'camera_frame': CAMERA_FRAME,  # frame of the planner's grasp poses
    'world_from_camera': [0.0],   # [x, y, z, qx, qy, qz, qw]; [0.0] = unset
    **dataclasses.asdict(MotionConfig()),
    **{k: getattr(MoveItExecutorConfig(), k) for k in MOVEIT_KEYS},
}
EXECUTOR_LIMITS = {
    'backend': choice('sim', 'moveit'), 'auto_execute': flag(), 'camera_frame': NAME,
    'pre_grasp_distance': real(0, 0.5, low_open=True),
    'grasp_depth': real(0, 0.1),
    'lift_height': real(0, 0.5, low_open=True),
    'arm_group': NAME, 'ee_link': NAME, 'base_frame': NAME, 'hand_group': NAME,
    'open_state': NAME, 'close_state': NAME, 'gripper_action': text(), 'linear_pipeline': text(),
    'gripper_open_position': real(0, 0.1, low_open=True),
    'gripper_max_effort': real(0, 1000, low_open=True),
    'empty_width': real(0, 0.05),
    'action_timeout_s': real(0, 600, low_open=True),
}
#: Executor parameters a running node takes (the next grasp uses them).
EXECUTOR_RUN_TIME = {'auto_execute', *MOTION_KEYS}


def check_world_from_camera(value) -> list:
    """``[0.0]`` (unset) or ``[x, y, z, qx, qy, qz, qw]``: finite, quaternion of non-zero norm."""
    values = [float(v) for v in value]
    if values == [0.0]:
        return values
    if len(values) != 7 or not all(math.isfinite(v) for v in values) \
            or math.hypot(*values[3:]) < 1e-9:
        raise ValueError(f'world_from_camera = {list(value)!r} is not allowed: must be [0.0] '
                         '(unset) or [x, y, z, qx, qy, qz, qw] with finite values and a non-zero '
                         'quaternion')
    return values


def moveit_config(values: dict) -> MoveItExecutorConfig:
    """Return the :class:`MoveItExecutorConfig` of the executor's parameter ``values``."""
    defaults = MoveItExecutorConfig()
    return MoveItExecutorConfig(**{k: type(getattr(defaults, k))(values[k]) for k in MOVEIT_KEYS})


def check_executor(values: dict) -> dict:
    """Validate the executor's parameters; ``ValueError`` names the first bad one."""
    out = check(EXECUTOR_LIMITS, values)
    if 'world_from_camera' in out:
        out['world_from_camera'] = check_world_from_camera(out['world_from_camera'])
    return out


# ---------------------------------------------------------------------------- sim world
SIM_WORLD_LIMITS = {
    'seed': integer(0, 2**31 - 1), 'target': text(), 'target_present': flag(),
    'publish_rate': real(0, 60, low_open=True), 'benchmark': choice('v1', 'v2'),
    'width': integer(0, 4096), 'height': integer(0, 4096),
    'min_elevation_deg': real(0, 90), 'max_elevation_deg': real(0, 90),
    'n_objects': integer(2, 64), 'background_seed': integer(0, 2**31 - 1),
    'world_frame': NAME, 'run_executor': flag(), 'surface': text(),
    'protocol': choice('placed', 'visible'),
}
#: Sim world parameters the next ``~/reset`` uses.
SIM_WORLD_RUN_TIME = {'seed', 'target', 'target_present', 'surface'}


def check_sim_world(values: dict, object_names=None) -> dict:
    """
    Validate the sim world's parameters.

    Parameters
    ----------
    values
        ``{name: value}``.
    object_names
        The loaded objects; when given, ``target`` must be one of them or ''.

    Raises
    ------
    ValueError
        Naming the first bad parameter, its value and the allowed range.

    """
    out = check(SIM_WORLD_LIMITS, values)
    for key in ('width', 'height'):
        if 0 < out.get(key, 0) < 32:
            raise ValueError(f"{key} = {out[key]!r} is not allowed: must be 0 (the benchmark's "
                             'camera) or an integer in [32, 4096]')
    low, high = out.get('min_elevation_deg', 0.0), out.get('max_elevation_deg', 0.0)
    if (low or high) and not 0 < low <= high:
        raise ValueError(f'min_elevation_deg = {low!r}, max_elevation_deg = {high!r} are not '
                         "allowed: need 0 < min <= max <= 90 (or both 0: the benchmark's range)")
    objects = out.get('objects', [''])
    if not all(isinstance(o, str) for o in objects):
        raise ValueError(f'objects = {objects!r} is not allowed: must be a list of catalogue '
                         'names ([""] = unset)')
    target = out.get('target', '')
    if object_names is not None and target and target not in object_names:
        raise ValueError(f"target = {target!r} is not allowed: must be '' or one of "
                         f'{", ".join(object_names)}')
    return out


# ------------------------------------------------------------------------------ helpers
def check_change(new: dict, current: dict, run_time: set,
                 check_fn: Callable[[dict], dict]) -> None:
    """
    Raise ``ValueError`` with the reason when a set-parameters call must be refused.

    Parameters
    ----------
    new
        The parameters being set.
    current
        Every current value of the node.
    run_time
        The names a running node takes (others: "can only be set at start-up").
    check_fn
        The node's ``check_*``.

    """
    fixed = set(new) - set(run_time)
    if fixed:
        raise ValueError(f'{", ".join(sorted(fixed))} can only be set at start-up')
    check_fn({**current, **new})


def refusal(new: dict, current: dict, run_time: set, check_fn: Callable[[dict], dict]
            ) -> Optional[str]:
    """Why a set-parameters call must be refused (:func:`check_change`), or None."""
    try:
        check_change(new, current, run_time, check_fn)
    except ValueError as e:
        return str(e)
    return None
