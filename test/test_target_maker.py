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
Target maker node over real DDS: rviz-style clicked points -> a saved target the planner takes.

Scene (as test_ros_pipeline.py): tiny random resnet18 DescriptorNet (D=32), 128x96 image of
random 8x8 colour blocks, planar depth 0.5 m, K = [[100, 0, 63.5], [0, 100, 47.5], [0, 0, 1]].
Clicked points are the back-projections of pixels (51.5, 43.5), (75.5, 51.5), (63.5, 47.5)
at 0.5 m: X = (u - 63.5) * 0.5 / 100, so (-0.06, -0.02, 0.5), (0.06, 0.02, 0.5), (0, 0, 0.5)
in the camera frame. The saved target must hold exactly those pixels, the axis length
|p2 - p1| = sqrt(0.12^2 + 0.04^2) = 0.12649 m, and the descriptors make_target computes.
"""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')

from ccl_perception import targets as tg  # noqa: E402, I100
from ccl_perception.nodes import LATCHED_QOS, NodeRunner, SENSOR_QOS  # noqa: E402
from ccl_perception.nodes.messages import camera_info_msg, image_msg, pose_stamped  # noqa: E402
from geometry_msgs.msg import PointStamped, PoseStamped  # noqa: E402
from polling import wait_for  # noqa: E402  (test/polling.py)
from rcl_interfaces.msg import (Parameter as ParameterMsg, ParameterType,  # noqa: E402
                                ParameterValue)
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

H, W = 96, 128
FRAME = 'camera_color_optical_frame'
K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
PIXELS = np.array([[51.5, 43.5], [75.5, 51.5], [63.5, 47.5]])
CAM_POINTS = np.array([[-0.06, -0.02, 0.5], [0.06, 0.02, 0.5], [0.0, 0.0, 0.5]])


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from ccl_perception.nodes.target_maker_node import TargetMaker
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('maker')
    ck = save_checkpoint(str(d / 'tiny.pt'), DescriptorNet('resnet18', 32, pretrained=False))
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    tdir = d / 'targets'
    tdir.mkdir()
    tag = f'{os.getpid()}'
    made = {'status': []}

    def factory(ctx):
        maker = TargetMaker(context=ctx, cli_args=['--ros-args', '-r', f'__node:=maker_{tag}'],
                            parameter_overrides=[Parameter('checkpoint', value=ck),
                                                 Parameter('target_dir', value=str(tdir))])
        planner = GraspPlanner(context=ctx,
                               cli_args=['--ros-args', '-r', f'__node:=planner_{tag}'],
                               parameter_overrides=[Parameter('checkpoint', value=ck),
                                                    Parameter('target_dir', value=str(tdir))])
        client = rclpy.create_node(f'maker_client_{tag}', context=ctx)
        made['pubs'] = {
            'rgb': client.create_publisher(Image, 'camera/color/image_raw', SENSOR_QOS),
            'depth': client.create_publisher(Image, 'camera/aligned_depth_to_color/image_raw',
                                             SENSOR_QOS),
            'info': client.create_publisher(CameraInfo, 'camera/color/camera_info', SENSOR_QOS),
            'point': client.create_publisher(PointStamped, 'clicked_point', 10),
            'pose': client.create_publisher(PoseStamped, 'camera/pose', LATCHED_QOS)}
        client.create_subscription(String, f'/maker_{tag}/status',
                                   lambda m: made['status'].append(m.data), 10)
        made.update(maker=maker, planner=planner, client=client)
        return [maker, planner, client]

    runner = NodeRunner(factory).spin_in_background()
    made.update(rgb=rgb, tdir=str(tdir), tag=tag, ck=ck)
    yield made
    runner.close()


def publish_frame(r, sec=100):
    header = Header(frame_id=FRAME)
    header.stamp.sec = sec
    r['pubs']['info'].publish(camera_info_msg(K, W, H, header))
    r['pubs']['rgb'].publish(image_msg(r['rgb'], 'rgb8', header))
    r['pubs']['depth'].publish(image_msg(np.full((H, W), 500, np.uint16), '16UC1', header))


def click(r, p, frame=FRAME):
    msg = PointStamped()
    msg.header.frame_id = frame
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in p)
    n = r['maker'].counts['points'] + r['maker'].counts['rejected_points']
    r['pubs']['point'].publish(msg)
    return wait_for(lambda: r['maker'].counts['points'] +
                    r['maker'].counts['rejected_points'] > n, 10)


def call(r, service, timeout=30.0):
    cli = r['client'].create_client(Trigger, service)
    assert cli.wait_for_service(timeout_sec=10.0)
    fut = cli.call_async(Trigger.Request())
    assert wait_for(fut.done, timeout)
    return fut.result()


def set_param(r, node, name, value: str):
    cli = r['client'].create_client(SetParameters, f'/{node}/set_parameters')
    assert cli.wait_for_service(timeout_sec=10.0)
    value_msg = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    fut = cli.call_async(SetParameters.Request(parameters=[ParameterMsg(name=name,
                                                                        value=value_msg)]))
    assert wait_for(fut.done, 10.0)
    return fut.result().results[0]


def wait_for_frame(r):
    assert wait_for(lambda: (publish_frame(r) or True) and r['maker'].frame.peek() is not None
                    and r['maker'].camera_info is not None, 15), 'the maker got no camera frame'


def test_clicked_points_become_a_target_the_planner_accepts(ros):
    r = ros
    wait_for_frame(r)
    tag = r['tag']
    assert call(r, f'/maker_{tag}/clear_points').success
    # fewer than two points: refused with the reason
    assert set_param(r, f'maker_{tag}', 'name', 'blocks_clicked').successful
    assert click(r, CAM_POINTS[0])
    resp = call(r, f'/maker_{tag}/save_target')
    assert not resp.success and '1 point(s) clicked' in resp.message
    for p in CAM_POINTS[1:]:
        assert click(r, p)
    resp = call(r, f'/maker_{tag}/save_target')
    assert resp.success, resp.message
    path = os.path.join(r['tdir'], 'blocks_clicked.npz')
    assert os.path.isfile(path) and path in resp.message
    t = tg.load_target(path, str(r['maker'].extractor.identity))
    np.testing.assert_allclose(t.pixels, PIXELS, atol=1e-9)
    assert t.axis_length == pytest.approx(np.hypot(0.12, 0.04), abs=1e-6)
    ref = tg.make_target(r['maker'].extractor, r['rgb'], PIXELS, 'ref')
    np.testing.assert_allclose(t.descriptors, ref.descriptors, atol=1e-6)
    assert any('saved target' in s for s in r['status'])
    assert r['maker'].points == []  # saved: the points are used up
    # the planner takes it by name without a reload (it is looked up as <target_dir>/<name>.npz)
    res = set_param(r, f'planner_{tag}', 'target', 'blocks_clicked')
    assert res.successful, res.reason
    assert r['planner'].target.name == 'blocks_clicked'


def test_a_second_view_is_added_to_the_target(ros):
    r = ros
    wait_for_frame(r)
    tag = r['tag']
    assert call(r, f'/maker_{tag}/clear_points').success
    assert set_param(r, f'maker_{tag}', 'name', 'blocks_views').successful
    for p in CAM_POINTS:
        assert click(r, p)
    assert call(r, f'/maker_{tag}/save_target').success
    r['maker'].set_parameters([Parameter('add_view', value=True)])
    try:
        for p in CAM_POINTS[:2]:
            assert click(r, p)
        resp = call(r, f'/maker_{tag}/save_target')
        assert resp.success and 'view 2: 2 points' in resp.message, resp.message
        t = tg.load_target(os.path.join(r['tdir'], 'blocks_views.npz'))
        assert len(t.views) == 2 and len(t.views[1].pixels) == 2
        np.testing.assert_allclose(t.views[1].pixels, PIXELS[:2], atol=1e-9)
        assert t.views[1].gate is not None
        # no such target yet: refused with the reason, nothing written
        assert set_param(r, f'maker_{tag}', 'name', 'no_such_target').successful
        for p in CAM_POINTS[:2]:
            assert click(r, p)
        resp = call(r, f'/maker_{tag}/save_target')
        assert not resp.success and 'does not exist' in resp.message
        assert not os.path.exists(os.path.join(r['tdir'], 'no_such_target.npz'))
    finally:
        r['maker'].set_parameters([Parameter('add_view', value=False)])
        assert call(r, f'/maker_{tag}/clear_points').success


def test_points_in_the_camera_pose_frame_are_projected(ros):
    """A point clicked in 'world' is brought into the camera with camera/pose."""
    r = ros
    wait_for_frame(r)
    tag = r['tag']
    assert call(r, f'/maker_{tag}/clear_points').success
    # camera 0.5 m above the world origin looking down: optical x = world x, y = -world y,
    # z = -world z; a camera point (x, y, 0.5) is the world point (x, -y, 0.0)
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [0.0, 0.0, 0.5]
    r['pubs']['pose'].publish(pose_stamped(T, frame_id='world'))
    assert wait_for(lambda: r['maker'].camera_pose is not None, 10)
    for p in CAM_POINTS[:2]:
        assert click(r, [p[0], -p[1], 0.0], frame='world')
    assert set_param(r, f'maker_{tag}', 'name', 'blocks_world').successful
    resp = call(r, f'/maker_{tag}/save_target')
    assert resp.success, resp.message
    t = tg.load_target(os.path.join(r['tdir'], 'blocks_world.npz'))
    np.testing.assert_allclose(t.pixels, PIXELS[:2], atol=1e-9)


def test_bad_clicks_and_names_are_rejected_and_counted(ros):
    r = ros
    wait_for_frame(r)
    tag = r['tag']
    assert call(r, f'/maker_{tag}/clear_points').success
    rejected = r['maker'].counts['rejected_points']
    assert click(r, [0.0, 0.0, 0.5], frame='base_link')   # a frame we cannot transform
    assert click(r, [float('nan'), 0.0, 0.5])              # not finite
    assert r['maker'].counts['rejected_points'] == rejected + 2
    assert any("frame 'base_link'" in s for s in r['status'])
    assert r['maker'].points == []
    for p in ([0.0, 0.0, 0.5], [1.0, 0.0, 0.5]):           # the second one is off the image
        assert click(r, p)
    assert set_param(r, f'maker_{tag}', 'name', 'off_image').successful
    resp = call(r, f'/maker_{tag}/save_target')
    assert not resp.success and 'outside the 128x96 image' in resp.message
    # a name that is not a plain file name is refused when it is set (node_limits.TARGET_NAME)
    res = set_param(r, f'maker_{tag}', 'name', '../escape')
    assert not res.successful and 'plain file name' in res.reason
    assert r['maker'].get_parameter('name').value == 'off_image'
    assert not os.path.exists(os.path.join(r['tdir'], 'off_image.npz'))


def test_saving_over_a_target_keeps_the_old_one(ros):
    """A second ~/save_target under the same name keeps the first file as <name>.npz.bak."""
    r = ros
    wait_for_frame(r)
    tag = r['tag']
    path = os.path.join(r['tdir'], 'twice.npz')
    assert set_param(r, f'maker_{tag}', 'name', 'twice').successful
    saved = []
    for points in (CAM_POINTS[:2], CAM_POINTS[1:]):  # two different targets, one name
        assert call(r, f'/maker_{tag}/clear_points').success
        for p in points:
            assert click(r, p)
        resp = call(r, f'/maker_{tag}/save_target')
        assert resp.success, resp.message
        saved.append((resp.message, open(path, 'rb').read()))
    assert 'kept' not in saved[0][0]  # nothing to keep the first time
    assert f'(the previous one is kept as {path}.bak)' in saved[1][0], saved[1][0]
    assert open(path + '.bak', 'rb').read() == saved[0][1]  # the first target, intact
    np.testing.assert_allclose(tg.load_target(path).pixels, PIXELS[1:], atol=1e-9)
    np.testing.assert_allclose(tg.load_target(path + '.bak').pixels, PIXELS[:2], atol=1e-9)
