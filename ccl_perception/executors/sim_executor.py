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
Grasp executor for the simulated Panda (``ccl_perception.sim.robot``) in pybullet.

Success is measured, not assumed: after lifting, the target body must have risen by more
than ``min_lift`` and touch both fingers.  A grasp at empty space closes on air and fails
with reason ``missed``; a grasp that lifts a different object fails with ``wrong_object``.

The executor drives the SAME pybullet client as the scene and the camera.  Callers that
render from another thread must hold ``lock`` (a ``threading.RLock``) around physics and
rendering; :meth:`execute` takes it for the whole grasp.
"""
from __future__ import annotations

from dataclasses import dataclass
import threading
import time

from ccl_perception.executors.base import GraspExecutor, GraspResult, matrix_to_pose, MotionConfig
from ccl_perception.sim.robot import CAMERA_FRAME, PandaRobot, quat_angle
import numpy as np
import pybullet as p


@dataclass
class SimExecutorConfig(MotionConfig):
    """Grasp motion (:class:`MotionConfig`) and success criteria of the simulated Panda (m)."""

    min_lift: float = 0.05            # the target must rise more than this to count as lifted
    empty_width: float = 0.002        # finger width below which the gripper closed on nothing
    move_steps: int = 900             # physics steps allowed to reach the pre-grasp
    return_home: bool = True          # open and park the arm after reporting


def object_bodies(client: int, exclude=()) -> list[int]:
    """Ids of the dynamic (mass > 0) bodies of a client, except ``exclude``."""
    out = []
    for i in range(p.getNumBodies(physicsClientId=client)):
        b = p.getBodyUniqueId(i, physicsClientId=client)
        if b in exclude:
            continue
        if p.getDynamicsInfo(b, -1, physicsClientId=client)[0] > 0:
            out.append(b)
    return out


def body_z(client: int, body: int) -> float:
    return float(p.getBasePositionAndOrientation(body, physicsClientId=client)[0][2])


class SimGraspExecutor(GraspExecutor):
    """
    Executes grasps with a :class:`PandaRobot`; base frame = pybullet world.

    Args:
        robot: the arm, already loaded in the scene's client.
        config: :class:`SimExecutorConfig`.
        lock: optional shared lock for the pybullet client (a new RLock by default).
    """

    backend = 'sim'

    def __init__(self, robot: PandaRobot, config: SimExecutorConfig | None = None, lock=None,
                 target_body=None):
        super().__init__(base_frame='world')
        self.robot = robot
        self.client = robot.client
        self.cfg = config or SimExecutorConfig()
        self.lock = lock if lock is not None else threading.RLock()
        self._target_body = target_body

    def _execute_world(self, T_world_grasp: np.ndarray, target_body: int | None = None
                       ) -> GraspResult:
        """
        Grasp at (4, 4) ``T_world_grasp``.

        ``target_body`` = pybullet id of the object that should be lifted; when not given,
        the ``target_body()`` callable of the constructor says (None: any object counts,
        e.g. to measure false grasps).
        """
        if target_body is None and self._target_body is not None:
            target_body = self._target_body()
        with self.lock:
            t0 = time.monotonic()
            result = self._run(T_world_grasp, target_body)
            result.duration_s = time.monotonic() - t0
            result.backend = self.backend
            if self.cfg.return_home:
                self.robot.open_gripper(steps=30)
                self.robot.reset_home()
                self.robot.step(30)
            return result

    def _run(self, T: np.ndarray, target_body: int | None) -> GraspResult:
        robot, cfg = self.robot, self.cfg
        approach = T[:3, 2]
        bodies = object_bodies(self.client, exclude=(robot.body,))
        if target_body is not None and target_body not in bodies:
            raise ValueError(f'target body {target_body} is not a dynamic body of the scene '
                             f'(dynamic bodies: {bodies})')
        z0 = {b: body_z(self.client, b) for b in bodies}
        pos = T[:3, 3] + cfg.grasp_depth * approach
        pre = pos - cfg.pre_grasp_distance * approach
        details = {'grasp_position': pos.round(4).tolist(), 'target_body': target_body}

        robot.open_gripper(steps=20)
        # pre_grasp: via a point above the pre-grasp so the swing does not sweep the table.
        # A parallel gripper is symmetric under a half turn about the approach axis: if the
        # wrist cannot reach one orientation (joint limits), the flipped one is tried.
        above = pre.copy()
        above[2] = max(pre[2], pos[2] + cfg.pre_grasp_distance, 0.25)
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        for attempt, Tc in enumerate((T, T @ flip)):
            _, quat = matrix_to_pose(Tc)
            robot.move_joints(robot.cfg.ready_joints)
            robot.move_to(above, quat, max_steps=cfg.move_steps)
            if robot.move_to(pre, quat, max_steps=cfg.move_steps):
                break
        else:
            tcp, tq = robot.tcp_pose()
            details['tcp_error_m'] = float(np.linalg.norm(tcp - pre))
            details['orientation_error_rad'] = float(quat_angle(tq, quat))
            return GraspResult(False, 'unreachable', 'pre_grasp', details=details)
        details['grasp_quat_xyzw'] = quat.round(4).tolist()
        details['flipped'] = bool(attempt)
        # approach: straight line; contact may stop it early (recorded, not fatal).
        details['approach_reached'] = bool(robot.move_linear(pre, pos, quat))
        # close
        width = robot.close_gripper()
        # lift: straight up in the world, squeezing.
        robot.hold_fingers_closed()
        tcp, _ = robot.tcp_pose()
        robot.move_linear(tcp, tcp + np.array([0.0, 0.0, cfg.lift_height]), quat)
        robot.step(60)  # let a badly held object slip out before judging
        # report
        rises = {b: body_z(self.client, b) - z0[b] for b in bodies}
        held = [b for b in bodies if rises[b] > cfg.min_lift and all(robot.contacts_with(b))]
        details['held_bodies'] = held
        width_after = robot.finger_width()
        details['width_after_lift_m'] = width_after
        lift = rises.get(target_body, float('nan')) if target_body is not None else (
            max(rises.values()) if rises else 0.0)
        if target_body is None:
            success = len(held) > 0
            reason = 'lifted' if success else ('missed' if width < cfg.empty_width else 'dropped')
        elif target_body in held:
            success, reason = True, 'lifted'
        elif held:
            success, reason = False, 'wrong_object'
        elif width < cfg.empty_width:
            success, reason = False, 'missed'
        else:
            success, reason = False, 'dropped'
        return GraspResult(success, reason, 'report', lift_m=float(lift),
                           gripper_width_m=float(width), details=details)


def world_executor(world, config: SimExecutorConfig | None = None) -> SimGraspExecutor:
    """
    Compose a :class:`SimGraspExecutor` on the arm of a :class:`ccl_perception.sim.robot.SimWorld`.

    Composition, not inheritance: the world stays a world (scene, camera, arm) and the
    executor an executor. It shares the world's lock, judges each grasp against the
    world's current target (``world.target_body()``) and follows the world's camera, so
    grasps in the camera optical frame (:data:`CAMERA_FRAME`) land where the camera saw them.
    """
    ex = SimGraspExecutor(world.robot, config, lock=world.lock, target_body=world.target_body)
    world.add_camera_listener(lambda T_world_camera: ex.set_frame(CAMERA_FRAME, T_world_camera))
    return ex
