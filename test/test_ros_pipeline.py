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
Descriptor node and grasp planner over real DDS (localhost, own domain; see conftest.py).

Scene (as in test_targets.py): tiny random resnet18 DescriptorNet (D=32) saved with
save_checkpoint; 128x96 image of random 8x8 colour blocks; planar depth 0.5 m (16UC1 mm);
K = [[100, 0, 63.5], [0, 100, 47.5], [0, 0, 1]]. Target 'blocks' = pixels (51.5, 43.5) and
(75.5, 51.5) of that same image, so by hand the grasp centre is
((63.5-63.5) * 0.005, (47.5-47.5) * 0.005, 0.5) = (0, 0, 0.5) m and the closing axis is
(0.12, 0.04, 0) / |.|. Target 'blocks_b' = (35.5, 67.5), (59.5, 67.5): centre
(-0.08, 0.10, 0.5) m.
"""
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')

from ccl_perception import image_conversion as ic  # noqa: E402, I100
from ccl_perception import targets as tg  # noqa: E402
from ccl_perception.nodes import NodeRunner, SENSOR_QOS  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rcl_interfaces.msg import (Parameter as ParameterMsg, ParameterType,  # noqa: E402
                                ParameterValue)
from rcl_interfaces.srv import GetParameters, SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Float32, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

H, W = 96, 128
FRAME = 'camera_color_optical_frame'
TAG = f'{int(time.time() * 1000) % 100000}'
PLANNER = f'planner_{TAG}'


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('ros')
    ck = save_checkpoint(str(d / 'tiny.pt'), DescriptorNet('resnet18', 32, pretrained=False))
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    depth_mm = np.full((H, W), 500, np.uint16)
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    ex = DescriptorExtractor(ck)
    tdir = d / 'targets'
    for name, pts in (('blocks', [(51.5, 43.5), (75.5, 51.5)]),
                      ('blocks_b', [(35.5, 67.5), (59.5, 67.5)])):
        t = tg.make_target(ex, rgb, pts, name, depth=depth_mm / 1000.0, K=K)
        tg.save_target(str(tdir / f'{name}.npz'), t)
    alien = tg.make_target(ex, rgb, [(51.5, 43.5), (75.5, 51.5)],
                           'alien', depth=depth_mm / 1000.0, K=K)
    alien.model_identity = 'some-other-model'
    tg.save_target(str(d / 'alien.npz'), alien)
    return {'ck': ck, 'rgb': rgb, 'depth_mm': depth_mm,
            'K': K, 'tdir': str(tdir), 'dir': d, 'extractor': ex}


class Harness(Node):
    """Test-side node: publishes RGB-D + camera info, records everything the nodes publish."""

    def __init__(self, context):
        super().__init__(f'harness_{TAG}', context=context)
        self.pub_rgb = self.create_publisher(Image, 'camera/color/image_raw', SENSOR_QOS)
        self.pub_depth = self.create_publisher(
            Image, 'camera/aligned_depth_to_color/image_raw', SENSOR_QOS)
        self.pub_info = self.create_publisher(CameraInfo, 'camera/color/camera_info', SENSOR_QOS)
        self.lock = threading.Lock()
        self.got = {k: [] for k in ('pose', 'status', 'heatmap', 'markers', 'conf', 'desc', 'vis')}
        sub = [('pose', PoseStamped, 'grasp_pose'), ('status', String, f'{PLANNER}/status'),
               ('heatmap', Image, f'{PLANNER}/heatmap'), ('markers',
                                                          MarkerArray, f'{PLANNER}/markers'),
               ('conf', Float32, f'{PLANNER}/confidence'), ('desc', Image, 'descriptors'),
               ('vis', Image, 'descriptors/visualization')]
        for key, typ, topic in sub:
            self.create_subscription(typ, topic, lambda m, k=key: self._rec(k, m), 10)
        self.set_cli = self.create_client(SetParameters, f'/{PLANNER}/set_parameters')
        self.get_cli = self.create_client(GetParameters, f'/{PLANNER}/get_parameters')
        self.reload_cli = self.create_client(Trigger, f'/{PLANNER}/reload_targets')
        self.sec = 100

    def _rec(self, key, msg):
        with self.lock:
            self.got[key].append(msg)

    def publish(self, rgb, depth, K, rgb_enc='rgb8', depth_enc='16UC1', info=True, info_size=None):
        """One frame with a fresh stamp; returns the stamp seconds."""
        self.sec += 1
        from std_msgs.msg import Header
        header = Header(frame_id=FRAME)
        header.stamp.sec = self.sec
        c = ic.numpy_to_image(
            rgb, rgb_enc, header) if rgb_enc in (
            'rgb8', 'bgr8', 'mono8') else rgb
        d = ic.numpy_to_image(depth, depth_enc, header) if not isinstance(depth, Image) else depth
        if isinstance(c, Image):
            c.header = header
        if info:
            ci = CameraInfo(
                header=header, width=(
                    info_size or (
                        W, H))[0], height=(
                    info_size or (
                        W, H))[1])
            ci.k = [float(v) for v in np.asarray(K).reshape(9)]
            self.pub_info.publish(ci)
        self.pub_rgb.publish(c)
        self.pub_depth.publish(d)
        return self.sec

    def wait_for(self, key, pred=lambda m: True, timeout=10.0, publish=None):
        """Wait for a message of ``key`` satisfying ``pred``; re-publish every 0.3 s if asked."""
        end = time.time() + timeout
        last = 0.0
        while time.time() < end:
            if publish is not None and time.time() - last > 0.3:
                publish()
                last = time.time()
            with self.lock:
                for m in self.got[key]:
                    if pred(m):
                        return m
            time.sleep(0.02)
        return None

    def clear(self):
        with self.lock:
            for v in self.got.values():
                v.clear()

    def call(self, client, request, timeout=10.0):
        assert client.wait_for_service(timeout_sec=timeout), 'service not available'
        fut = client.call_async(request)
        end = time.time() + timeout
        while not fut.done() and time.time() < end:
            time.sleep(0.01)
        assert fut.done(), 'service call timed out'
        return fut.result()

    def set_param(self, name, value: str):
        req = SetParameters.Request(parameters=[ParameterMsg(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=value))])
        return self.call(self.set_cli, req).results[0]

    def get_param(self, name):
        return self.call(self.get_cli, GetParameters.Request(names=[name])).values[0].string_value


@pytest.fixture(scope='module')
def ros(assets):
    from ccl_perception.nodes.descriptor_node import DescriptorNode
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from rclpy.parameter import Parameter
    made = {}

    def factory(ctx):
        made['planner'] = planner = GraspPlanner(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:={PLANNER}'],
            parameter_overrides=[
                Parameter('checkpoint', value=assets['ck']),
                Parameter('target_dir', value=assets['tdir']),
                Parameter('target', value='blocks'), Parameter('tau', value=0.003),
                Parameter('min_similarity', value=0.97),
                # a flat textured plane (no object to measure): the pose is the matched axis
                Parameter('grasp_refinement', value='none'),
                Parameter('max_width', value=0.2), Parameter('max_rate_hz', value=30.0)])
        made['desc'] = DescriptorNode(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:=descriptors_{TAG}'],
            parameter_overrides=[Parameter('checkpoint', value=assets['ck'])])
        made['h'] = Harness(ctx)
        return [planner, made['desc'], made['h']]

    # the nodes of one process on one single-threaded executor, as bringup runs them
    runner = NodeRunner(factory).spin_in_background()
    yield made
    runner.close()


def _good(h, a):
    return lambda: h.publish(a['rgb'], a['depth_mm'], a['K'])


def test_pose_heatmap_markers_match_geometry(ros, assets):
    h = ros['h']
    h.clear()
    pose = h.wait_for('pose', publish=_good(h, assets), timeout=20)
    assert pose is not None, f'no pose; status: {[m.data for m in h.got["status"]][-3:]}'
    assert pose.header.frame_id == FRAME and pose.header.stamp.sec > 100
    p = pose.pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], [0.0, 0.0, 0.5], atol=1e-3)
    q = pose.pose.orientation
    from ccl_perception.geometry import quaternion_to_rotation
    R = quaternion_to_rotation([q.x, q.y, q.z, q.w])
    np.testing.assert_allclose(R[:, 1], np.array([0.12, 0.04, 0]) /
                               np.hypot(0.12, 0.04), atol=1e-3)
    np.testing.assert_allclose(R[:, 2], [0, 0, 1], atol=1e-6)
    assert h.wait_for('status', lambda m: m.data.startswith('ok: blocks')) is not None
    hm = h.wait_for('heatmap')
    assert hm is not None and (hm.encoding, hm.width, hm.height) == ('rgb8', W, H)
    mk = h.wait_for('markers', lambda m: any(x.ns == 'gripper' for x in m.markers))
    kp = [x for x in mk.markers if x.ns == 'keypoints'][0]
    np.testing.assert_allclose([[pt.x, pt.y, pt.z] for pt in kp.points],
                               [[-0.06, -0.02, 0.5], [0.06, 0.02, 0.5]], atol=1e-3)
    assert h.wait_for('conf', lambda m: m.data > 0.9) is not None


def test_descriptor_node_output(ros, assets):
    h = ros['h']
    h.clear()
    d = h.wait_for('desc', publish=_good(h, assets), timeout=20)
    assert d is not None and d.encoding == '32FC32' and (d.height, d.width) == (12, 16)
    arr = ic.image_to_numpy(d)  # (12, 16, 32)
    ref = assets['extractor'](assets['rgb']).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(arr, ref, atol=1e-5)
    vis = h.wait_for('vis')
    assert vis is not None and (vis.encoding, vis.height, vis.width) == ('rgb8', H, W)


def test_descriptor_node_rejects_bad_encoding(ros, assets):
    h = ros['h']
    got = []
    sub = h.create_subscription(String, f'descriptors_{TAG}/status', got.append, 10)
    bad = ic.numpy_to_image(assets['depth_mm'], '16UC1')
    try:
        end = time.time() + 10
        while time.time() < end and not got:
            h.publish(bad, assets['depth_mm'], assets['K'], rgb_enc='16UC1')
            time.sleep(0.3)
        assert got and 'not accepted' in got[0].data
        assert ros['desc'].counts['bad_input'] >= 1
    finally:
        h.destroy_subscription(sub)
    h.clear()
    assert h.wait_for('desc', publish=_good(h, assets), timeout=15) is not None  # still running


def test_set_reject_and_switch_targets(ros, assets):
    h = ros['h']
    r = h.set_param('target', 'no_such_target')
    assert not r.successful and 'unknown target' in r.reason
    r = h.set_param('target', str(assets['dir'] / 'alien.npz'))
    assert not r.successful and 'made with model' in r.reason
    assert h.get_param('target') == 'blocks'  # the old one is kept
    r = h.set_param('target_dir', str(assets['dir'] / 'nowhere'))
    assert not r.successful and 'does not exist' in r.reason
    assert h.get_param('target_dir') == assets['tdir']
    r = h.set_param('target', 'blocks_b')
    assert r.successful, r.reason
    assert h.get_param('target') == 'blocks_b'
    h.clear()
    pose = h.wait_for(
        'pose',
        lambda m: abs(
            m.pose.position.x +
            0.08) < 1e-3,
        publish=_good(
            h,
            assets),
        timeout=20)
    assert pose is not None
    np.testing.assert_allclose([pose.pose.position.y, pose.pose.position.z], [
                               0.10, 0.5], atol=1e-3)
    # no target: abstain, publish no pose
    assert h.set_param('target', '').successful
    h.clear()
    assert h.wait_for(
        'status',
        lambda m: 'no target set' in m.data,
        publish=_good(
            h,
            assets)) is not None
    assert not h.got['pose']
    resp = h.call(h.reload_cli, Trigger.Request())
    assert resp.success and 'blocks, blocks_b' in resp.message
    assert h.set_param('target', 'blocks').successful


@pytest.mark.parametrize('case,expect', [
    ('wrong_encoding', 'not accepted'),
    ('size_mismatch', 'does not match'),
    ('nan_depth', 'no valid depth'),
    ('zero_depth', 'no valid depth'),
    ('info_size', 'camera_info is for'),
    ('absent', 'not in view'),
])
def test_bad_input_abstains_and_survives(ros, assets, case, expect):
    h, a = ros['h'], assets
    rgb, depth, K = a['rgb'], a['depth_mm'], a['K']
    stamps = []

    def pub():
        if case == 'wrong_encoding':
            bad = ic.numpy_to_image(depth, '16UC1')
            bad.encoding = 'mono16'  # colour image with a depth encoding
            stamps.append(h.publish(bad, depth, K, rgb_enc='mono16'))
        elif case == 'size_mismatch':
            stamps.append(h.publish(rgb, depth[:48, :64].copy(), K))
        elif case == 'nan_depth':
            d = (depth / 1000.0).astype(np.float32)
            d[36:52, 44:60] = np.nan
            stamps.append(h.publish(rgb, d, K, depth_enc='32FC1'))
        elif case == 'zero_depth':
            stamps.append(h.publish(rgb, np.zeros_like(depth), K))
        elif case == 'info_size':
            stamps.append(h.publish(rgb, depth, K, info_size=(640, 480)))
        elif case == 'absent':
            stamps.append(h.publish(np.full_like(rgb, 128), depth, K))

    h.clear()
    st = h.wait_for('status', lambda m: expect in m.data, publish=pub, timeout=15)
    assert st is not None, f'{case}: statuses {[m.data for m in h.got["status"]][-3:]}'
    assert st.data.startswith('abstain')
    with h.lock:
        assert not [p for p in h.got['pose']
                    if p.header.stamp.sec in stamps], 'a pose was sent for a bad frame'
    # the node is alive and still plans on good frames
    assert h.wait_for('pose', publish=_good(h, a), timeout=15) is not None
    assert ros['planner'].counts['bad_input'] + ros['planner'].counts['abstained'] > 0


def test_missing_camera_info(ros, assets):
    """A second planner on a camera_info topic nobody publishes: abstains, never crashes."""
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from rclpy.parameter import Parameter
    h = ros['h']
    name = f'planner_noinfo_{TAG}'
    node = GraspPlanner(context=h.context,
                        cli_args=['--ros-args', '-r', f'__node:={name}', '-r',
                                  'camera/color/camera_info:=nobody/camera_info'],
                        parameter_overrides=[Parameter('checkpoint', value=assets['ck']),
                                             Parameter('target_dir', value=assets['tdir']),
                                             Parameter('target', value='blocks')])
    got = []
    sub = h.create_subscription(String, f'{name}/status', got.append, 10)
    ex = SingleThreadedExecutor(context=h.context)
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    try:
        end = time.time() + 15
        while time.time() < end and not any('no camera_info' in m.data for m in got):
            h.publish(assets['rgb'], assets['depth_mm'], assets['K'])
            time.sleep(0.3)
        assert any('no camera_info' in m.data for m in got)
        assert node.counts['poses'] == 0
    finally:
        ex.shutdown(timeout_sec=5)
        h.destroy_subscription(sub)
        node.destroy_node()
        th.join(timeout=5)
