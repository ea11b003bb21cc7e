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
Grasp executor node: planner grasp pose in, pre-grasp -> approach -> close -> lift -> report.

Subscribes ``grasp_pose`` (geometry_msgs/PoseStamped, normally in the camera optical
frame; gripper frame of ``ccl_perception.geometry``: z approach, y closing axis).
Publishes ``~/result`` (std_msgs/String, latched: JSON of ``executors.base.GraspResult``
plus the pose stamp). Serves ``~/execute`` (std_srvs/Trigger), action-style: it starts
the last received pose and answers at once (``accepted ...`` or why not); the outcome
follows on ``~/result``. By default (``auto_execute`` false, every backend) nothing moves
without a request: poses are only kept, and one ``~/execute`` is one grasp; with
``auto_execute`` true every new pose is started on arrival. Grasps take seconds and run on
their own thread (``GraspWorker``), one at a time, so the process's single-threaded executor
keeps serving the camera, parameters and services; a pose arriving while a grasp runs is
skipped (``busy_skipped``).

Backends (parameter ``backend``):
  ``sim``    -- the simulated Panda of the sim world: it shares that world's pybullet
              client, so it runs in the sim world's process, composed there
              (``sim_world_node`` with ``run_executor:=true``, or ``bringup``) with
              ``executors.sim_executor.world_executor(world)``.
  ``moveit`` -- ``MoveItExecutor`` (moveit_py), parameters ``arm_group``, ``ee_link``,
              ``base_frame``, ``hand_group``, ``gripper_action``, ``linear_pipeline``.

Camera -> robot transform (no tf2_ros needed): parameter ``world_from_camera`` =
[x, y, z, qx, qy, qz, qw] (camera optical frame in the executor's base frame), or topic
``camera/pose`` (as the sim world publishes), or neither with ``backend=moveit``: MoveIt
resolves the camera frame through TF. A pose stamped before the latest camera pose
belongs to an older viewpoint/scene and is skipped (``stale_poses``).
"""
import json

from ccl_perception.executors.base import GraspResult, GraspWorker, pose_to_matrix
from ccl_perception.node_limits import (check_executor, EXECUTOR_PARAMS as PARAMS,
                                        EXECUTOR_RUN_TIME, MOTION_KEYS, moveit_config, refusal)
from ccl_perception.nodes import (CAMERA_POSE_TOPIC, declare_parameters, EXECUTE_SERVICE,
                                  GRASP_POSE_TOPIC, LATCHED_QOS, node_main, param_values,
                                  RESULT_TOPIC)
from ccl_perception.nodes.messages import pose_to_T, stamp_ns
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger


class GraspExecutorNode(Node):
    """
    See the module docstring.

    Args:
        executor: a ``GraspExecutor`` (``execute(T (4, 4), frame_id) -> GraspResult``,
            ``set_frame``); required for ``backend=sim``
            (``executors.sim_executor.world_executor``), built for ``backend=moveit``.
    """

    def __init__(self, executor=None, **kwargs):
        super().__init__('grasp_executor', **kwargs)
        declare_parameters(self, PARAMS)
        p = check_executor(param_values(self, PARAMS))  # a bad value stops the start
        self.backend, self.camera_frame = str(p['backend']), str(p['camera_frame'])
        self.grasp_executor = executor if executor is not None else self._build_executor(p)
        self._apply_motion(p)
        if len(p['world_from_camera']) == 7:
            self.grasp_executor.set_frame(self.camera_frame, pose_to_matrix(
                p['world_from_camera'][:3], p['world_from_camera'][3:]))
        self._camera_stamp_ns = -1
        self._last_pose = None
        self.worker = GraspWorker(self._publish_result)
        self.counts = {'received': 0, 'executed': 0, 'succeeded': 0, 'stale_poses': 0,
                       'invalid': 0}
        self.pub_result = self.create_publisher(String, RESULT_TOPIC, LATCHED_QOS)
        self.create_subscription(PoseStamped, GRASP_POSE_TOPIC, self._on_pose, 5)
        if len(p['world_from_camera']) != 7:
            self.create_subscription(PoseStamped, CAMERA_POSE_TOPIC, self._on_camera_pose,
                                     LATCHED_QOS)
        self.create_service(Trigger, EXECUTE_SERVICE, self._on_execute)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f'grasp executor ready: backend={self.backend} '
                               f'auto_execute={p["auto_execute"]}')

    def _build_executor(self, p):
        if self.backend == 'sim':
            raise ValueError('backend "sim" drives the arm inside the sim world\'s pybullet '
                             'client: start it through sim_world_node (run_executor:=true) or '
                             'the bringup, which compose it with the world')
        from ccl_perception.executors.moveit_executor import MoveItExecutor
        return MoveItExecutor(self, moveit_config(p))

    def _on_set_parameters(self, params):
        """Validate, then apply motion parameters to the executor (the next grasp uses them)."""
        new = {q.name: q.value for q in params}
        why = refusal(new, param_values(self, PARAMS), EXECUTOR_RUN_TIME, check_executor)
        if why is None:
            self._apply_motion(new)
        return SetParametersResult(successful=why is None, reason=why or '')

    def _apply_motion(self, values: dict) -> None:
        cfg = getattr(self.grasp_executor, 'cfg', None)
        for k in set(values) & set(MOTION_KEYS) if cfg is not None else ():
            setattr(cfg, k, float(values[k]))

    @property
    def busy_skipped(self) -> int:
        return self.worker.busy_skipped

    # ---------------------------------------------------------------- callbacks
    def _on_camera_pose(self, msg: PoseStamped) -> None:
        try:
            T = pose_to_T(msg.pose)
        except ValueError as e:
            self.get_logger().warning(f'ignoring camera pose: {e}')
            return
        self.grasp_executor.set_frame(self.camera_frame, T)
        self._camera_stamp_ns = max(self._camera_stamp_ns, stamp_ns(msg.header.stamp))

    def _stale(self, msg) -> bool:
        return stamp_ns(msg.header.stamp) < self._camera_stamp_ns

    def _on_pose(self, msg: PoseStamped) -> None:
        self.counts['received'] += 1
        if self._stale(msg):
            self.counts['stale_poses'] += 1
            self.get_logger().warning('skipping a grasp pose older than the current camera pose '
                                      '(computed for a previous scene/viewpoint)')
            return
        self._last_pose = msg
        if self.get_parameter('auto_execute').value:
            self.start(msg)

    def _on_execute(self, request, response):
        msg = self._last_pose
        if msg is None:
            response.success, response.message = False, 'no grasp pose received yet'
        elif self._stale(msg):
            response.success = False
            response.message = 'stale: the last grasp pose is older than the current camera pose'
        elif not self.start(msg):
            response.success, response.message = False, 'busy: a grasp is running'
        else:
            s = msg.header.stamp
            response.success = True
            response.message = (f'accepted: executing the pose stamped {s.sec}.{s.nanosec:09d}; '
                                f'the outcome is published on {RESULT_TOPIC}')
        return response

    # ---------------------------------------------------------------- execution
    def start(self, msg: PoseStamped) -> bool:
        """Start one grasp on the worker thread; False when another one is running."""
        return self.worker.submit(lambda: self._execute(msg), msg)

    def _execute(self, msg: PoseStamped) -> GraspResult:
        frame = msg.header.frame_id or self.camera_frame
        try:
            return self.grasp_executor.execute(pose_to_T(msg.pose), frame)
        except ValueError as e:
            self.counts['invalid'] += 1
            return GraspResult(False, 'error', 'pre_grasp', backend=self.backend,
                               details={'error': str(e)})

    def _publish_result(self, result: GraspResult, msg: PoseStamped) -> None:
        """Worker thread: count, log and publish one outcome."""
        self.counts['executed'] += 1
        self.counts['succeeded'] += int(result.success)
        out = result.to_dict()
        out['pose_stamp'] = {'sec': msg.header.stamp.sec, 'nanosec': msg.header.stamp.nanosec}
        out['frame_id'] = msg.header.frame_id or self.camera_frame
        if not self.context.ok():
            return
        self.pub_result.publish(String(data=json.dumps(out, sort_keys=True)))
        self.get_logger().info(f'grasp {"succeeded" if result.success else "failed"}: '
                               f'{result.reason} (lift {out["lift_m"]})')

    def destroy_node(self):
        """Wait for a running grasp (it drives an arm / a shared simulator) before going."""
        worker = getattr(self, 'worker', None)  # None: __init__ failed before it
        if worker is not None and not worker.join(timeout=60.0):
            self.get_logger().error('a grasp was still running at shutdown')
        return super().destroy_node()


def main(args=None):
    return node_main(GraspExecutorNode, args, 'grasp_executor_node')


if __name__ == '__main__':
    raise SystemExit(main())
