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
Grasp executor on a MoveIt 2 arm through ``moveit_py`` (``MoveItPy``).

Written against the documented moveit_py API (moveit2_tutorials,
``motion_planning_python_api_tutorial.py``)::

    robot = MoveItPy(node_name='ccl_grasp_moveit')
    arm = robot.get_planning_component('panda_arm')
    arm.set_start_state_to_current_state()
    arm.set_goal_state(pose_stamped_msg=pose, pose_link='panda_hand_tcp')
    plan = arm.plan()
    # or: arm.plan(single_plan_parameters=PlanRequestParameters(robot, 'pilz_lin'))
    if plan: robot.execute(plan.trajectory, controllers=[])

The gripper is driven either through ``control_msgs/action/GripperCommand`` (parameter
``gripper_action``, e.g. ``/panda_hand_controller/gripper_cmd``; success after lifting =
the fingers did not close completely) or, with ``gripper_action`` empty, through the hand
group's named states (``open`` / ``close``) planned and executed like the arm.

Frames: the planner publishes grasps in the camera optical frame.  If the camera pose in
``base_frame`` is registered (``set_frame``; the node does this from the ``world_from_camera``
parameter or the ``camera/pose`` topic) the grasp is converted here; otherwise the
PoseStamped is handed to MoveIt unchanged with the camera frame as ``frame_id`` and MoveIt
resolves it through TF (the camera must then be in the robot's URDF / TF tree, as a wrist
camera is).

moveit_py, control_msgs and a running MoveIt config are NOT installable here; this file
imports them lazily so the rest of the package works without them.
"""
from __future__ import annotations

from dataclasses import dataclass
import time

from ccl_perception.executors.base import GraspExecutor, GraspResult, matrix_to_pose, MotionConfig
import numpy as np


@dataclass
class MoveItExecutorConfig(MotionConfig):
    """
    Grasp motion (:class:`MotionConfig`) plus the MoveIt groups / links / pipelines.

    Every field is a ROS parameter of the executor node of the same name.
    """

    arm_group: str = 'panda_arm'
    # link whose pose is the grasp frame (z approach, y closing)
    ee_link: str = 'panda_hand_tcp'
    base_frame: str = 'panda_link0'       # planning frame grasps are converted to
    hand_group: str = 'hand'
    open_state: str = 'open'
    close_state: str = 'close'
    gripper_action: str = ''              # '' = use hand group named states
    gripper_open_position: float = 0.04   # m per finger (GripperCommand position)
    gripper_max_effort: float = 40.0      # N
    empty_width: float = 0.002            # m: fingers closed further than this -> nothing held
    # e.g. 'pilz_lin' for straight approach/lift; '' = default planner
    linear_pipeline: str = ''
    action_timeout_s: float = 10.0


def import_moveit():
    """Import ``moveit.planning`` or raise ImportError saying what is missing."""
    try:
        from moveit.planning import MoveItPy, PlanRequestParameters  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError(
            'backend "moveit" needs MoveIt 2 with moveit_py (apt: ros-<distro>-moveit-py) and a '
            f"sourced ROS 2 workspace with your robot's MoveIt config; import failed: {e}") from e
    return MoveItPy, PlanRequestParameters


def offset_along_axis(T: np.ndarray, distance: float, axis: int = 2) -> np.ndarray:
    """Copy of (4, 4) ``T`` moved by ``distance`` (m) along its own axis ``axis``."""
    out = np.array(T, dtype=float)
    out[:3, 3] = out[:3, 3] + distance * out[:3, axis]
    return out


def lifted(T: np.ndarray, height: float) -> np.ndarray:
    """Copy of (4, 4) ``T`` moved up by ``height`` (m) along the base frame z."""
    out = np.array(T, dtype=float)
    out[2, 3] += height
    return out


def grasp_waypoints(T_base_grasp: np.ndarray, pre_grasp_distance: float, lift_height: float,
                    grasp_depth: float = 0.0) -> dict:
    """
    Return the three arm targets of a grasp in the base frame (each 4x4).

    Pre-grasp (``pre_grasp_distance`` back from the pose), grasp (``grasp_depth`` past it),
    lift (``lift_height`` straight up from the grasp).
    """
    grasp = offset_along_axis(T_base_grasp, grasp_depth)
    return {'pre_grasp': offset_along_axis(T_base_grasp, -pre_grasp_distance),
            'approach': grasp,
            'lift': lifted(grasp, lift_height)}


class MoveItExecutor(GraspExecutor):
    """
    pre-grasp -> approach -> close -> lift -> report with MoveItPy.

    Args:
        node: an rclpy node (for the gripper action client and logging).
        config: :class:`MoveItExecutorConfig`.
        moveit: an existing ``MoveItPy`` instance (created with ``node_name`` otherwise).
    """

    backend = 'moveit'

    def __init__(self, node, config: MoveItExecutorConfig | None = None, moveit=None):
        self.cfg = config or MoveItExecutorConfig()
        super().__init__(base_frame=self.cfg.base_frame)
        MoveItPy, self._PlanRequestParameters = import_moveit()
        self.node = node
        self.robot = moveit if moveit is not None else MoveItPy(node_name='ccl_grasp_moveit')
        self.arm = self.robot.get_planning_component(self.cfg.arm_group)
        self.hand = None if self.cfg.gripper_action else \
            self.robot.get_planning_component(self.cfg.hand_group)
        self._gripper_client = None
        if self.cfg.gripper_action:
            from control_msgs.action import GripperCommand
            from rclpy.action import ActionClient
            self._GripperCommand = GripperCommand
            self._gripper_client = ActionClient(node, GripperCommand, self.cfg.gripper_action)
        self._pass_through_frame = None

    # ------------------------------------------------------------------ frames
    def execute(self, T_frame_grasp, frame_id: str, **kwargs) -> GraspResult:
        """Grasp given in ``frame_id``; unregistered frames are left to MoveIt's TF."""
        if self.has_frame(frame_id):
            return super().execute(T_frame_grasp, frame_id, **kwargs)
        self._pass_through_frame = frame_id
        try:
            return self._execute_world(np.asarray(T_frame_grasp, dtype=float), **kwargs)
        finally:
            self._pass_through_frame = None

    def _pose_stamped(self, T: np.ndarray):
        from geometry_msgs.msg import PoseStamped
        pos, quat = matrix_to_pose(T)
        msg = PoseStamped()
        msg.header.frame_id = self._pass_through_frame or self.cfg.base_frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        (msg.pose.orientation.x, msg.pose.orientation.y,
         msg.pose.orientation.z, msg.pose.orientation.w) = (float(v) for v in quat)
        return msg

    # ------------------------------------------------------------------ motion
    def _plan_execute(self, component, linear: bool = False, **goal) -> bool:
        component.set_start_state_to_current_state()
        component.set_goal_state(**goal)
        if linear and self.cfg.linear_pipeline:
            params = self._PlanRequestParameters(self.robot, self.cfg.linear_pipeline)
            plan = component.plan(single_plan_parameters=params)
        else:
            plan = component.plan()
        if not plan:
            return False
        status = self.robot.execute(plan.trajectory, controllers=[])
        # moveit_py returns an ExecutionStatus (truthy on success) in recent releases.
        return bool(status) if status is not None else True

    def _move_arm(self, T: np.ndarray, linear: bool = False) -> bool:
        return self._plan_execute(self.arm, linear=linear, pose_stamped_msg=self._pose_stamped(T),
                                  pose_link=self.cfg.ee_link)

    def _gripper(self, close: bool) -> float:
        """Open/close; return the finger opening reported by the controller (m, NaN if unknown)."""
        if self._gripper_client is None:
            ok = self._plan_execute(self.hand, configuration_name=(
                self.cfg.close_state if close else self.cfg.open_state))
            if not ok:
                raise RuntimeError('gripper named-state motion failed')
            return float('nan')
        goal = self._GripperCommand.Goal()
        goal.command.position = 0.0 if close else self.cfg.gripper_open_position
        goal.command.max_effort = self.cfg.gripper_max_effort
        if not self._gripper_client.wait_for_server(timeout_sec=self.cfg.action_timeout_s):
            raise RuntimeError(f'gripper action {self.cfg.gripper_action} not available')
        handle = self._wait(self._gripper_client.send_goal_async(goal))
        if handle is None or not handle.accepted:
            raise RuntimeError('gripper goal rejected')
        res = self._wait(handle.get_result_async())
        return float('nan') if res is None else float(res.result.position)

    def _wait(self, future):
        """
        Wait for an rclpy future that the node's executor completes.

        Grasps run on the executor node's worker thread (``GraspWorker``), so the node's
        (single-threaded) executor is free to complete the future meanwhile.
        """
        deadline = time.monotonic() + self.cfg.action_timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f'gripper action timed out after {self.cfg.action_timeout_s} s')
            time.sleep(0.01)
        return future.result()

    def _execute_world(self, T_base_grasp: np.ndarray, **_) -> GraspResult:
        t0 = time.monotonic()
        wp = grasp_waypoints(T_base_grasp, self.cfg.pre_grasp_distance, self.cfg.lift_height,
                             self.cfg.grasp_depth)
        details = {'frame_id': self._pass_through_frame or self.cfg.base_frame}

        def fail(reason, stage, width=float('nan')):
            return GraspResult(False, reason, stage, lift_m=float('nan'), gripper_width_m=width,
                               duration_s=time.monotonic() - t0, backend=self.backend,
                               details=details)
        try:
            self._gripper(close=False)
            if not self._move_arm(wp['pre_grasp']):
                return fail('planning_failed', 'pre_grasp')
            if not self._move_arm(wp['approach'], linear=True):
                return fail('planning_failed', 'approach')
            width = self._gripper(close=True)
            if not self._move_arm(wp['lift'], linear=True):
                return fail('planning_failed', 'lift', width)
            # report: without object tracking the only evidence is the finger opening.
            # Named hand states give no width: report 'unverified' (never a claimed success).
            held = bool(np.isfinite(width) and width > self.cfg.empty_width)
            reason = ('lifted' if held else 'missed') if np.isfinite(width) else 'unverified'
            return GraspResult(held, reason, 'report',
                               lift_m=self.cfg.lift_height if held else 0.0,
                               gripper_width_m=width, duration_s=time.monotonic() - t0,
                               backend=self.backend, details=details)
        except RuntimeError as e:
            details['error'] = str(e)
            return fail('execution_failed', 'report')
