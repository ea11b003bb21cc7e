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
Simulated RealSense + tabletop + Panda: publishes RGB-D like a real camera, resets scenes.

Topics (same names and encodings as ``realsense2_camera`` with ``align_depth``):
  ``camera/color/image_raw`` (rgb8), ``camera/aligned_depth_to_color/image_raw`` (16UC1, mm,
  0 = no depth), ``camera/color/camera_info`` and ``camera/aligned_depth_to_color/camera_info``
  (the same K: the depth is aligned); all share one header stamp and frame
  ``camera_color_optical_frame``.
  ``camera/pose`` (geometry_msgs/PoseStamped, frame ``world``): world_from_camera optical
  frame, latched; the grasp executor uses it to bring camera-frame grasps into the world.
  ``~/scene`` (std_msgs/String JSON, latched): seed, objects, target, target_present, surface.
Services: ``~/reset`` (std_srvs/Trigger): next seed (previous + 1, or the ``seed`` parameter
  when it was changed since the last reset), new clutter and viewpoint; the response
  message is the scene JSON (with ``camera_stamp_ns``: every frame of the new scene is
  stamped at or after it).

The node owns its :class:`SimWorld` (scene, camera, arm in one pybullet client). The
simulated grasp executor drives that client, so ``main()`` composes it in this process:
``GraspExecutorNode(executor=world_executor(world))`` (parameter ``run_executor``). While
a grasp runs (on the executor's worker thread, holding the world's lock) the camera skips
its frames (``frames_skipped_busy``) and ``~/reset`` answers ``busy``, so this process's
single-threaded executor never waits for the arm.
"""
import json

from ccl_perception.node_limits import check_sim_world, refusal, SIM_WORLD_RUN_TIME
from ccl_perception.nodes import (CAMERA_POSE_TOPIC, COLOR_TOPIC, declare_parameters,
                                  DEPTH_INFO_TOPIC, DEPTH_TOPIC, INFO_TOPIC, LATCHED_QOS,
                                  param_values, RESET_SERVICE, run_nodes, SCENE_TOPIC,
                                  shutdown_tolerant)
from ccl_perception.nodes.messages import (camera_info_msg, depth_to_16uc1, image_msg,
                                           pose_stamped, stamp_ns)
from ccl_perception.sim.grasp_scene import world_config
from ccl_perception.sim.robot import CAMERA_FRAME, SimWorld, SimWorldConfig
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

_WORLD = SimWorldConfig()
#: Every parameter with its default (config/sim_world.yaml is checked against it).
PARAMS = {
    'seed': 0,                    # first scene seed; every ~/reset uses the next one
    'target': '',                 # object the scenes are about ('' = none)
    'target_present': True,       # False: leave the target out (false-grasp test)
    'publish_rate': 2.0,          # Hz
    'benchmark': 'v2',            # v2 (D435 over real-textured objects) | v1 (the earlier world)
    'width': 0,                   # camera px; 0 = the benchmark's (v2 640x480, v1 320x240)
    'height': 0,
    'min_elevation_deg': 0.0,     # scene camera elevation range; 0, 0 = the benchmark's
    'max_elevation_deg': 0.0,
    'n_objects': _WORLD.n_objects,
    'objects': [''],              # catalogue names; [''] = the first n_objects
    'background_seed': _WORLD.background_seed,
    'world_frame': 'world',       # frame_id of camera/pose
    'run_executor': True,         # main(): also host the sim grasp executor
    'protocol': 'placed',         # v2: placed | visible (target seen, graspable; held-out tables)
    'surface': '',                # v2: table photo of the next scenes ('' = the training table)
}


class SimWorldNode(Node):
    """
    Publishes the simulated camera and serves scene resets; see the module docstring.

    Args:
        world: an existing :class:`SimWorld` (the caller closes it); by default the node
            builds one from its parameters and closes it in ``destroy_node``.
    """

    def __init__(self, world: SimWorld = None, **kwargs):
        super().__init__('sim_world', **kwargs)
        declare_parameters(self, PARAMS)
        p = check_sim_world(param_values(self, PARAMS))  # a bad value stops the start
        self.seed = self._seed_param = int(p['seed'])
        self.world_frame = str(p['world_frame'])
        self._owns_world = world is None
        if world is None:
            world = SimWorld(world_config(
                p['benchmark'], p['width'], p['height'], [o for o in p['objects'] if o],
                p['n_objects'], p['background_seed'],
                (p['min_elevation_deg'], p['max_elevation_deg']), p['protocol']))
        self.world = world
        try:
            check_sim_world(p, self.world.object_names)
        except ValueError:
            if self._owns_world:
                world.close()
            raise
        self.pub_rgb = self.create_publisher(Image, COLOR_TOPIC, 5)
        self.pub_depth = self.create_publisher(Image, DEPTH_TOPIC, 5)
        self.pub_info = self.create_publisher(CameraInfo, INFO_TOPIC, 5)
        self.pub_depth_info = self.create_publisher(CameraInfo, DEPTH_INFO_TOPIC, 5)
        self.pub_pose = self.create_publisher(PoseStamped, CAMERA_POSE_TOPIC, LATCHED_QOS)
        self.pub_scene = self.create_publisher(String, SCENE_TOPIC, LATCHED_QOS)
        self.create_service(Trigger, RESET_SERVICE, shutdown_tolerant(self, self._on_reset))
        self.timer = self.create_timer(1.0 / p['publish_rate'],
                                       shutdown_tolerant(self, self.publish_frame))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.frames_published = 0
        self.frames_skipped_busy = 0
        self.reset_scene(self.seed)

    def _on_set_parameters(self, params):
        """Validate; seed, target, target_present, surface take effect at the next ~/reset."""
        why = refusal({q.name: q.value for q in params}, param_values(self, PARAMS),
                      SIM_WORLD_RUN_TIME, lambda v: check_sim_world(v, self.world.object_names))
        return SetParametersResult(successful=why is None, reason=why or '')

    # --------------------------------------------------------------------- scene
    def reset_scene(self, seed: int) -> dict:
        target = str(self.get_parameter('target').value) or None
        present = bool(self.get_parameter('target_present').value)
        surface = str(self.get_parameter('surface').value) or None
        info = self.world.reset(seed, target=target, target_present=present, surface=surface)
        self.camera_stamp = self.get_clock().now().to_msg()
        # camera_stamp_ns: every frame of this scene is stamped at or after it
        scene = {'seed': info.seed, 'objects': info.objects, 'target': info.target,
                 'target_present': info.target_present, 'surface': info.surface,
                 'camera_stamp_ns': stamp_ns(self.camera_stamp)}
        self.pub_scene.publish(String(data=json.dumps(scene)))
        self.pub_pose.publish(pose_stamped(self.world.camera.world_from_camera,
                                           frame_id=self.world_frame, stamp=self.camera_stamp))
        self.publish_frame()
        self.get_logger().info(f'scene {scene}')
        return scene

    def _on_reset(self, request, response):
        if not self.world.lock.acquire(blocking=False):
            response.success, response.message = False, 'busy: a grasp is running; retry'
            return response
        try:
            # next seed; a changed 'seed' parameter is used as it is (reproducible schedules)
            param = int(self.get_parameter('seed').value)
            seed = param if param != self._seed_param else self.seed + 1
            scene = self.reset_scene(seed)
            self.seed, self._seed_param = seed, param
            response.success, response.message = True, json.dumps(scene)
        except ValueError as e:
            response.success, response.message = False, str(e)
        finally:
            self.world.lock.release()
        return response

    # ------------------------------------------------------------------ publish
    def publish_frame(self) -> None:
        """Render once and publish colour, aligned depth and camera info with one stamp."""
        if not self.world.lock.acquire(blocking=False):  # a grasp holds the world
            self.frames_skipped_busy += 1
            return
        try:
            out = self.world.render()
            cam = self.world.camera
        finally:
            self.world.lock.release()
        rgb = image_msg(out.rgb, 'rgb8')
        depth = image_msg(depth_to_16uc1(out.depth), '16UC1')
        stamp = self.get_clock().now().to_msg()
        for m in (rgb, depth):
            m.header.stamp, m.header.frame_id = stamp, CAMERA_FRAME
        self.pub_rgb.publish(rgb)
        self.pub_depth.publish(depth)
        info = camera_info_msg(cam.K, cam.width, cam.height, rgb.header)
        self.pub_info.publish(info)
        self.pub_depth_info.publish(info)  # aligned: the same intrinsics
        self.frames_published += 1

    def destroy_node(self):
        out = super().destroy_node()
        if getattr(self, '_owns_world', False) and hasattr(self, 'world'):
            self.world.close()
        return out


def make_nodes(context) -> list:
    """Make the sim world and, with ``run_executor``, the simulated grasp executor on it."""
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode

    world_node = SimWorldNode(context=context)
    nodes = [world_node]
    if world_node.get_parameter('run_executor').value:
        try:
            nodes.append(GraspExecutorNode(executor=world_executor(world_node.world),
                                           context=context))
        except BaseException:
            world_node.destroy_node()
            raise
    return nodes


def main(args=None):
    return run_nodes(make_nodes, args, 'sim_world_node')


if __name__ == '__main__':
    raise SystemExit(main())
