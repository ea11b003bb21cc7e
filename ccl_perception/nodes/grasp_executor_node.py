"""Grasp executor node: planner grasp pose in, pre-grasp -> approach -> close -> lift -> report.

Subscribes ``grasp_pose`` (geometry_msgs/PoseStamped, normally in the camera optical
frame; gripper frame of ``ccl_perception.geometry``: z approach, y closing axis).
Publishes ``~/result`` (std_msgs/String, JSON of ``executors.base.GraspResult`` plus the
pose stamp). Serves ``~/execute`` (std_srvs/Trigger): execute the last received pose.
With ``auto_execute`` (default true) every new pose is executed on arrival.

Backends (parameter ``backend``):
  ``sim``    -- the simulated Panda of ``sim_world_node``. It shares that node's pybullet
              client, so this node must run in the same process: ``sim_world_node`` starts
              it (``run_executor:=true``); the bringup does the same.
  ``moveit`` -- ``MoveItExecutor`` (moveit_py), parameters ``arm_group``, ``ee_link``,
              ``base_frame``, ``hand_group``, ``gripper_action``, ``linear_pipeline``.

Camera -> robot transform (no tf2_ros needed):
  * parameter ``world_from_camera`` = [x, y, z, qx, qy, qz, qw] (camera optical frame in
    the executor's base frame, e.g. from hand-eye calibration of a fixed camera), or
  * topic ``camera/pose`` (PoseStamped of the optical frame in the base frame), as the sim
    world publishes; a real robot can publish it from its calibration, or
  * neither, with ``backend=moveit``: the PoseStamped goes to MoveIt unchanged and MoveIt
    resolves the camera frame through TF (wrist camera in the URDF).
A pose stamped before the latest camera pose belongs to an older viewpoint/scene and is
skipped (counted in ``stale_poses``).
"""
import json
import threading

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ccl_perception.executors.base import GraspResult, pose_to_matrix

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Grasp motion parameters shared by both backends (metres).
MOTION_DEFAULTS = {'pre_grasp_distance': 0.10, 'grasp_depth': 0.02, 'lift_height': 0.15}


def pose_msg_to_matrix(pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4); ValueError on NaN or a zero quaternion."""
    q = pose.orientation
    return pose_to_matrix([pose.position.x, pose.position.y, pose.position.z],
                          [q.x, q.y, q.z, q.w])


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class GraspExecutorNode(Node):
    """See the module docstring.

    Args:
        executor: an object with ``execute(T (4, 4), frame_id) -> GraspResult`` and
            ``set_frame(frame_id, T)``; required for ``backend=sim`` (the SimWorld of
            the sim world node), built from parameters for ``backend=moveit``.
    """

    def __init__(self, executor=None, **kwargs):
        super().__init__('grasp_executor', **kwargs)
        p = self.declare_parameter
        self.backend = str(p('backend', 'sim').value)
        p('auto_execute', True)  # read on every pose: can be switched at run time
        self.camera_frame = str(p('camera_frame', 'camera_color_optical_frame').value)
        world_from_camera = [float(v) for v in p('world_from_camera', [0.0]).value]
        if self.backend not in ('sim', 'moveit'):
            raise ValueError(f"backend must be 'sim' or 'moveit', got {self.backend!r}")
        motion = {k: float(p(k, v).value) for k, v in MOTION_DEFAULTS.items()}
        if executor is None:
            executor = self._build_executor()
        self.grasp_executor = executor
        # sim: SimWorld.executor.cfg; moveit: MoveItExecutor.cfg
        cfg = getattr(getattr(executor, 'executor', executor), 'cfg', None)
        for k, v in motion.items():
            if cfg is not None and hasattr(cfg, k):
                setattr(cfg, k, v)
        if len(world_from_camera) == 7:
            self.grasp_executor.set_frame(self.camera_frame, pose_to_matrix(world_from_camera[:3],
                                                                      world_from_camera[3:]))
        elif len(world_from_camera) != 1:
            raise ValueError('world_from_camera must be [x, y, z, qx, qy, qz, qw] (or unset), '
                             f'got {len(world_from_camera)} values')
        self._camera_stamp_ns = -1
        self._lock = threading.Lock()
        self._busy = False
        self._last_pose = None
        self.counts = {'received': 0, 'executed': 0, 'succeeded': 0, 'busy_skipped': 0,
                       'stale_poses': 0, 'invalid': 0}
        self.pub_result = self.create_publisher(String, '~/result', LATCHED)
        work = MutuallyExclusiveCallbackGroup()
        fast = ReentrantCallbackGroup()
        self.create_subscription(PoseStamped, 'grasp_pose', self._on_pose, 5, callback_group=fast)
        if len(world_from_camera) != 7:
            self.create_subscription(PoseStamped, 'camera/pose', self._on_camera_pose, LATCHED,
                                     callback_group=fast)
        self.create_service(Trigger, '~/execute', self._on_execute, callback_group=work)
        self.get_logger().info(f'grasp executor ready: backend={self.backend} '
                               f'auto_execute={self.get_parameter("auto_execute").value}')

    def _build_executor(self):
        if self.backend == 'sim':
            raise ValueError('backend "sim" drives the arm inside the sim world\'s pybullet '
                             'client: start it through sim_world_node (run_executor:=true) or '
                             'the bringup, which pass the world to this node')
        from ccl_perception.executors.moveit_executor import MoveItExecutor, MoveItExecutorConfig
        cfg = MoveItExecutorConfig()
        for name in cfg.__dataclass_fields__:
            if name in MOTION_DEFAULTS:
                continue
            default = getattr(cfg, name)
            setattr(cfg, name, type(default)(self.declare_parameter(name, default).value))
        return MoveItExecutor(self, cfg)

    # ---------------------------------------------------------------- callbacks
    def _on_camera_pose(self, msg: PoseStamped) -> None:
        try:
            T = pose_msg_to_matrix(msg.pose)
        except ValueError as e:
            self.get_logger().warning(f'ignoring camera pose: {e}')
            return
        self.grasp_executor.set_frame(self.camera_frame, T)
        self._camera_stamp_ns = max(self._camera_stamp_ns, stamp_ns(msg.header.stamp))

    def _on_pose(self, msg: PoseStamped) -> None:
        self.counts['received'] += 1
        if stamp_ns(msg.header.stamp) < self._camera_stamp_ns:
            self.counts['stale_poses'] += 1
            self.get_logger().warning('skipping a grasp pose older than the current camera pose '
                                   '(computed for a previous scene/viewpoint)')
            return
        self._last_pose = msg
        if self.get_parameter('auto_execute').value:
            self.execute_pose(msg)

    def _on_execute(self, request, response):
        if self._last_pose is None:
            response.success, response.message = False, 'no grasp pose received yet'
            return response
        if stamp_ns(self._last_pose.header.stamp) < self._camera_stamp_ns:
            response.success = False
            response.message = 'stale: the last grasp pose is older than the current camera pose'
            return response
        result = self.execute_pose(self._last_pose)
        response.success = bool(result is not None and result.success)
        response.message = 'busy' if result is None else result.to_json()
        return response

    # ---------------------------------------------------------------- execution
    def execute_pose(self, msg: PoseStamped):
        """Run one grasp; returns the GraspResult (None when another grasp is running)."""
        with self._lock:
            if self._busy:
                self.counts['busy_skipped'] += 1
                return None
            self._busy = True
        try:
            frame = msg.header.frame_id or self.camera_frame
            try:
                result = self.grasp_executor.execute(pose_msg_to_matrix(msg.pose), frame)
            except ValueError as e:
                self.counts['invalid'] += 1
                result = GraspResult(False, 'error', 'pre_grasp', backend=self.backend,
                                     details={'error': str(e)})
            self.counts['executed'] += 1
            self.counts['succeeded'] += int(result.success)
            out = result.to_dict()
            out['pose_stamp'] = {'sec': msg.header.stamp.sec, 'nanosec': msg.header.stamp.nanosec}
            out['frame_id'] = frame
            self.pub_result.publish(String(data=json.dumps(out, sort_keys=True)))
            self.get_logger().info(f'grasp {"succeeded" if result.success else "failed"}: '
                                   f'{result.reason} (lift {out["lift_m"]})')
            return result
        finally:
            self._busy = False


def main(args=None):
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    rclpy.init(args=args)
    try:
        node = GraspExecutorNode()
    except (ValueError, ImportError) as e:
        print(f'grasp_executor_node: {e}')
        rclpy.shutdown()
        return 1
    ex = MultiThreadedExecutor(num_threads=3)
    ex.add_node(node)
    try:
        ex.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
