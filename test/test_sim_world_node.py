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

"""Sim world node over real DDS: RealSense-like RGB-D + camera info, camera pose, resets."""
import json

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from ccl_perception.image_conversion import depth_to_metres, image_to_numpy  # noqa: E402, I100
from ccl_perception.nodes import NodeRunner  # noqa: E402
from ccl_perception.nodes.messages import depth_to_16uc1  # noqa: E402
from ccl_perception.nodes.sim_world_node import SimWorldNode  # noqa: E402
from ccl_perception.sim.robot import CAMERA_FRAME, SimWorld, SimWorldConfig  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from polling import wait_for  # noqa: E402  (test/polling.py)
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

W, H = 80, 60
OBJECTS = ('duck', 'box_000', 'cylinder_001', 'ellipsoid_002', 'box_003')


def test_depth_encoding_hand_values():
    d = np.array([[0.5, np.nan], [1.2344, 0.0]], dtype=np.float32)
    out = depth_to_16uc1(d)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[500, 0], [1234, 0]])


@pytest.fixture(scope='module')
def ros():
    world = SimWorld(SimWorldConfig(width=W, height=H, objects=OBJECTS, clutter=(3, 4)))
    got = {'rgb': [], 'depth': [], 'info': [], 'pose': [], 'scene': []}
    parts = {}

    def factory(context):
        node = SimWorldNode(world=world, context=context, parameter_overrides=[
            Parameter('publish_rate', value=5.0), Parameter('target', value='duck'),
            Parameter('seed', value=7)])
        listener = rclpy.create_node('sim_world_listener', context=context)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        listener.create_subscription(Image, 'camera/color/image_raw', got['rgb'].append, 10)
        listener.create_subscription(Image, 'camera/aligned_depth_to_color/image_raw',
                                     got['depth'].append, 10)
        listener.create_subscription(
            CameraInfo,
            'camera/color/camera_info',
            got['info'].append,
            10)
        listener.create_subscription(PoseStamped, 'camera/pose', got['pose'].append, latched)
        listener.create_subscription(String, '/sim_world/scene', got['scene'].append, latched)
        parts.update(node=node, listener=listener)
        return [node, listener]

    runner = NodeRunner(factory).spin_in_background()
    yield world, parts['node'], parts['listener'], got
    runner.close()
    world.close()


def test_publishes_consistent_rgbd_and_camera_info(ros):
    world, node, listener, got = ros
    assert wait_for(
        lambda: len(
            got['rgb']) >= 2 and len(
            got['depth']) >= 2 and len(
                got['info']) >= 2)
    rgb_msg, depth_msg, info = got['rgb'][-1], None, None
    # the three messages of one frame share the stamp
    stamp = (rgb_msg.header.stamp.sec, rgb_msg.header.stamp.nanosec)
    assert wait_for(lambda: any((m.header.stamp.sec, m.header.stamp.nanosec) == stamp
                                for m in got['depth']))
    depth_msg = next(
        m for m in got['depth'] if (
            m.header.stamp.sec,
            m.header.stamp.nanosec) == stamp)
    info = next(m for m in got['info'] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp)
    assert rgb_msg.encoding == 'rgb8' and depth_msg.encoding == '16UC1'
    assert (rgb_msg.header.frame_id == depth_msg.header.frame_id == info.header.frame_id
            == CAMERA_FRAME)
    rgb = image_to_numpy(rgb_msg, 'rgb8')
    depth = depth_to_metres(image_to_numpy(depth_msg, '16UC1'), '16UC1')
    assert rgb.shape == (H, W, 3) and depth.shape == (H, W)
    assert (info.width, info.height) == (W, H)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), world.camera.K)
    # depth equals a fresh render of the same (static) scene to the millimetre
    ref = world.render()
    valid = np.isfinite(ref.depth)
    assert valid.mean() > 0.9  # the camera sees the table everywhere
    np.testing.assert_allclose(depth[valid], ref.depth[valid], atol=0.0006)
    np.testing.assert_array_equal(rgb, ref.rgb)
    # the table at the image centre is between 0.3 and 0.7 m away (camera distance 0.40-0.60)
    assert 0.25 < np.nanmedian(depth) < 0.75


def test_camera_pose_matches_world_camera(ros):
    world, node, listener, got = ros
    assert wait_for(lambda: len(got['pose']) >= 1)
    pose = got['pose'][-1]
    assert pose.header.frame_id == 'world'
    np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z],
                               world.camera.world_from_camera[:3, 3], atol=1e-9)


def test_reset_changes_scene_and_viewpoint(ros):
    world, node, listener, got = ros
    assert wait_for(lambda: len(got['scene']) >= 1)
    before = json.loads(got['scene'][-1].data)
    assert before['seed'] == 7 and before['target'] == 'duck'
    eye_before = world.camera.world_from_camera[:3, 3].copy()
    cli = listener.create_client(Trigger, '/sim_world/reset')
    assert cli.wait_for_service(timeout_sec=10.0)
    n_pose = len(got['pose'])
    fut = cli.call_async(Trigger.Request())
    assert wait_for(fut.done)
    resp = fut.result()
    assert resp.success, resp.message
    after = json.loads(resp.message)
    assert after['seed'] == 8
    assert after['target_present'] == ('duck' in after['objects'])
    assert not np.allclose(world.camera.world_from_camera[:3, 3], eye_before)
    assert wait_for(lambda: len(got['pose']) > n_pose)
    np.testing.assert_allclose([got['pose'][-1].pose.position.x, got['pose'][-1].pose.position.y],
                               world.camera.world_from_camera[:2, 3], atol=1e-9)
    # target absent on request
    node.set_parameters([Parameter('target_present', value=False)])
    fut = cli.call_async(Trigger.Request())
    assert wait_for(fut.done)
    absent = json.loads(fut.result().message)
    assert 'duck' not in absent['objects'] and absent['target_present'] is False
