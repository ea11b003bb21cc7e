"""Simulated RealSense + tabletop + Panda: publishes RGB-D like a real camera, resets scenes.

Topics (same names and encodings as ``realsense2_camera`` with ``align_depth``):
  ``camera/color/image_raw`` (rgb8), ``camera/aligned_depth_to_color/image_raw`` (16UC1, mm,
  0 = no depth), ``camera/color/camera_info``; all three share one header stamp and
  frame ``camera_color_optical_frame``.
  ``camera/pose`` (geometry_msgs/PoseStamped, frame ``world``): world_from_camera optical
  frame, latched; the grasp executor uses it to bring camera-frame grasps into the world.
  ``~/scene`` (std_msgs/String JSON, latched): seed, objects, target, target_present.
Services: ``~/reset`` (std_srvs/Trigger): next seed (previous + 1, or the ``seed`` parameter
  when it was changed since the last reset), new clutter and viewpoint; the response
  message is the scene JSON (with ``camera_stamp_ns``: every frame of the new scene is
  stamped at or after it).

Design (one pybullet client): the arm lives in the same client as the camera and objects,
so the grasp executor must run in THIS process. ``main()`` therefore also starts the
grasp executor node with ``backend=sim`` on the same :class:`SimWorld` (parameter
``run_executor``, default true) and spins both in one MultiThreadedExecutor; the world's
lock serialises rendering and physics.
"""
import json

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ccl_perception.executors.base import matrix_to_pose
from ccl_perception.image_conversion import numpy_to_image
from ccl_perception.sim.robot import CAMERA_FRAME, SimWorld, SimWorldConfig

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def depth_to_16uc1(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) float metres (NaN = none) -> uint16 millimetres with 0 = none (RealSense)."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0) * 1000.0
    return np.clip(np.round(d), 0, 65535).astype(np.uint16)


def camera_info_msg(K: np.ndarray, width: int, height: int, header) -> CameraInfo:
    """Pinhole, no distortion (``plumb_bob`` with zeros), P = [K | 0]."""
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in np.asarray(K).reshape(9)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = [float(v) for v in P.reshape(12)]
    return msg


class SimWorldNode(Node):
    """Publishes the simulated camera and serves scene resets; see the module docstring."""

    def __init__(self, world: SimWorld | None = None, **kwargs):
        super().__init__('sim_world', **kwargs)
        p = self.declare_parameter
        self.seed = int(p('seed', 0).value)
        self._seed_param = self.seed
        p('target', '')                       # object the scenes are about ('' = none)
        p('target_present', True)             # False: leave the target out (false-grasp test)
        rate = float(p('publish_rate', 2.0).value)  # Hz
        self.world_frame = str(p('world_frame', 'world').value)
        width = int(p('width', 320).value)
        height = int(p('height', 240).value)
        n_objects = int(p('n_objects', 8).value)
        objects = list(p('objects', ['']).value)
        background_seed = int(p('background_seed', 1).value)
        p('run_executor', True)               # main(): also host the sim grasp executor
        if rate <= 0:
            raise ValueError(f'publish_rate must be > 0 Hz, got {rate}')
        if world is None:
            world = SimWorld(SimWorldConfig(width=width, height=height, n_objects=n_objects,
                                            objects=tuple(o for o in objects if o),
                                            background_seed=background_seed))
        self.world = world
        self.pub_rgb = self.create_publisher(Image, 'camera/color/image_raw', 5)
        self.pub_depth = self.create_publisher(Image, 'camera/aligned_depth_to_color/image_raw', 5)
        self.pub_info = self.create_publisher(CameraInfo, 'camera/color/camera_info', 5)
        self.pub_pose = self.create_publisher(PoseStamped, 'camera/pose', LATCHED)
        self.pub_scene = self.create_publisher(String, '~/scene', LATCHED)
        group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, '~/reset', self._on_reset, callback_group=group)
        self.timer = self.create_timer(1.0 / rate, self.publish_frame, callback_group=group)
        self.frames_published = 0
        self.reset_scene(self.seed)

    # --------------------------------------------------------------------- scene
    def reset_scene(self, seed: int) -> dict:
        target = str(self.get_parameter('target').value) or None
        present = bool(self.get_parameter('target_present').value)
        info = self.world.reset(seed, target=target, target_present=present)
        self.camera_stamp = self.get_clock().now().to_msg()
        # camera_stamp_ns: every frame of this scene is stamped at or after it
        scene = {'seed': info.seed, 'objects': info.objects, 'target': info.target,
                 'target_present': info.target_present,
                 'camera_stamp_ns': self.camera_stamp.sec * 1_000_000_000 + self.camera_stamp.nanosec}
        self.pub_scene.publish(String(data=json.dumps(scene)))
        self.publish_camera_pose()
        self.publish_frame()
        self.get_logger().info(f'scene {scene}')
        return scene

    def _on_reset(self, request, response):
        # next seed; a changed 'seed' parameter is used as it is (reproducible schedules)
        param = int(self.get_parameter('seed').value)
        self.seed = param if param != self._seed_param else self.seed + 1
        self._seed_param = param
        try:
            scene = self.reset_scene(self.seed)
        except ValueError as e:
            response.success, response.message = False, str(e)
            return response
        response.success, response.message = True, json.dumps(scene)
        return response

    # ------------------------------------------------------------------ publish
    def publish_camera_pose(self) -> None:
        pos, quat = matrix_to_pose(self.world.camera.world_from_camera)
        msg = PoseStamped()
        msg.header.stamp = self.camera_stamp
        msg.header.frame_id = self.world_frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = (float(v) for v in quat)
        self.pub_pose.publish(msg)

    def publish_frame(self) -> None:
        """Render once and publish colour, aligned depth and camera info with one stamp."""
        out = self.world.render()
        cam = self.world.camera
        rgb = numpy_to_image(out.rgb, 'rgb8')
        depth = numpy_to_image(depth_to_16uc1(out.depth), '16UC1')
        stamp = self.get_clock().now().to_msg()
        for m in (rgb, depth):
            m.header.stamp, m.header.frame_id = stamp, CAMERA_FRAME
        info = camera_info_msg(cam.K, cam.width, cam.height, rgb.header)
        self.pub_rgb.publish(rgb)
        self.pub_depth.publish(depth)
        self.pub_info.publish(info)
        self.frames_published += 1


def main(args=None):
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode

    rclpy.init(args=args)
    world_node = SimWorldNode()
    nodes = [world_node]
    if world_node.get_parameter('run_executor').value:
        nodes.append(GraspExecutorNode(executor=world_node.world))
    ex = MultiThreadedExecutor(num_threads=4)
    for n in nodes:
        ex.add_node(n)
    try:
        ex.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for n in nodes:
            n.destroy_node()
        world_node.world.close()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
