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
What every grasp executor shares: the result record, the stage names, frame bookkeeping.

A grasp is a 4x4 homogeneous transform ``T_frame_grasp`` (metres) of the gripper's grasp
frame in some named frame (normally the camera optical frame the planner works in).  The
grasp frame follows ``ccl_perception.geometry``: origin between the finger pads, ``z`` =
approach direction (towards the object), ``y`` = closing axis of the two fingers.

Stages run in order: ``pre_grasp`` (``pre_grasp_distance`` back along the approach axis)
-> ``approach`` (straight line to the grasp) -> ``close`` -> ``lift`` -> ``report``.

No rclpy here.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
import json
import math
import threading

from ccl_perception.geometry import quaternion_to_rotation, rotation_to_quaternion
import numpy as np

STAGES = ('pre_grasp', 'approach', 'close', 'lift', 'report')


@dataclass
class MotionConfig:
    """Grasp motion shared by every backend (metres); the executor node's parameters."""

    pre_grasp_distance: float = 0.10  # back along the approach axis before the straight approach
    grasp_depth: float = 0.02         # the pad centre goes this far past the pose (which lies on
    # the object surface between the grasp keypoints)
    lift_height: float = 0.15         # straight up (base-frame z) after closing


@dataclass
class GraspResult:
    """
    Outcome of one grasp attempt.

    ``success`` means the target object ended up lifted and held; ``reason`` says why not
    (``lifted``, ``unreachable``, ``missed``, ``dropped``, ``wrong_object``, ``planning_failed``,
    ``unverified``, ``execution_failed``, ``error``); ``stage`` is the last stage that was started.
    """

    success: bool
    reason: str
    stage: str
    lift_m: float = 0.0            # how far the target rose (m); NaN when unknown
    gripper_width_m: float = float('nan')  # finger opening after closing (m)
    duration_s: float = 0.0
    backend: str = ''
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ('lift_m', 'gripper_width_m'):
            if isinstance(d[k], float) and not math.isfinite(d[k]):
                d[k] = None  # JSON has no NaN
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def pose_to_matrix(position, quat_xyzw) -> np.ndarray:
    """(3,) position in m and (4,) quaternion (x, y, z, w) -> (4, 4) transform."""
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation(quat_xyzw)
    T[:3, 3] = np.asarray(position, dtype=float)
    if not np.all(np.isfinite(T)):
        raise ValueError(f'position {position} is not finite')
    return T


def matrix_to_pose(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) transform -> ((3,) position, (4,) quaternion xyzw with w >= 0)."""
    T = np.asarray(T, dtype=float)
    return T[:3, 3].copy(), rotation_to_quaternion(T[:3, :3])


def check_transform(T, name: str = 'pose') -> np.ndarray:
    """Validate a (4, 4) rigid transform; raises ValueError with the reason."""
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4):
        raise ValueError(f'{name} must be a 4x4 matrix, got shape {T.shape}')
    if not np.all(np.isfinite(T)):
        raise ValueError(f'{name} contains NaN or inf')
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise ValueError(f'{name} rotation is not orthonormal / right-handed')
    return T


class GraspExecutor(ABC):
    """
    Executes grasps given in any registered frame.

    Subclasses implement :meth:`_execute_world`, which receives the grasp in the
    executor's base frame (``world`` for the simulator, the arm's planning frame for MoveIt).
    ``set_frame(name, T_world_frame)`` registers where a frame (e.g. the camera optical
    frame) sits; a grasp in an unregistered frame raises ValueError.
    """

    backend = 'base'

    def __init__(self, base_frame: str = 'world'):
        self.base_frame = base_frame
        self._frames = {base_frame: np.eye(4)}

    def set_frame(self, frame_id: str, T_base_frame) -> None:
        """Register frame ``frame_id`` at (4, 4) ``T_base_frame`` in the base frame."""
        self._frames[frame_id] = check_transform(T_base_frame, f'transform of {frame_id!r}')

    def has_frame(self, frame_id: str) -> bool:
        return frame_id in self._frames

    def to_base(self, T_frame_grasp, frame_id: str) -> np.ndarray:
        """Grasp (4, 4) in ``frame_id`` -> grasp in the base frame."""
        T = check_transform(T_frame_grasp, 'grasp pose')
        if frame_id not in self._frames:
            raise ValueError(f'unknown frame {frame_id!r}: known frames are '
                             f'{sorted(self._frames)}; publish the camera pose or set the '
                             'world_from_camera parameter')
        return self._frames[frame_id] @ T

    def execute(self, T_frame_grasp, frame_id: str, **kwargs) -> GraspResult:
        """Run pre-grasp -> approach -> close -> lift -> report for one grasp."""
        return self._execute_world(self.to_base(T_frame_grasp, frame_id), **kwargs)

    @abstractmethod
    def _execute_world(self, T_base_grasp: np.ndarray, **kwargs) -> GraspResult:
        """Execute a grasp given in the base frame."""


class GraspWorker:
    """
    Runs one grasp at a time on its own thread, so the caller's executor keeps spinning.

    ``submit(job)`` starts ``job()`` (a callable returning a :class:`GraspResult`) unless
    one is running (then it returns False and counts ``busy_skipped``); ``on_done(result,
    tag)`` is called on the worker thread when it ends. A grasp takes seconds: on a
    single-threaded ROS executor it must not run inside a callback, or the camera,
    parameter and service callbacks of the whole process stop meanwhile.
    """

    def __init__(self, on_done, name: str = 'grasp_worker'):
        self._on_done = on_done
        self._name = name
        self._lock = threading.Lock()
        self._thread = None
        self.busy_skipped = 0

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def submit(self, job, tag=None) -> bool:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self.busy_skipped += 1
                return False
            self._thread = threading.Thread(target=self._run, args=(job, tag), name=self._name,
                                            daemon=True)
            self._thread.start()
            return True

    def _run(self, job, tag) -> None:
        self._on_done(job(), tag)

    def join(self, timeout: float = None) -> bool:
        """Wait for the running grasp; True when none is running any more."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy
