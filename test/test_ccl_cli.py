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
``ccl`` (ccl_perception/ccl_cli.py) against real nodes over DDS (issue 20).

A planner (tiny random model, a target library with targets made at downscale 1 and 2), an
executor with a stand-in arm and a camera stand-in publishing colour, aligned depth,
camera_info and the colour's ``/compressed`` topic, all spun by one NodeRunner; each ``ccl``
subcommand runs as its console script does (``ccl_cli.main``; one through ``python -m``),
and its output, exit code and effect on the nodes are checked. Names carry a per-run tag.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from ccl_perception import ccl_cli, targets as tg  # noqa: E402, I100
from ccl_perception.executors.base import GraspResult, MotionConfig  # noqa: E402
from ccl_perception.geometry import intrinsics_matrix  # noqa: E402
from ccl_perception.image_io import read_rgb  # noqa: E402
from ccl_perception.nodes import CAMERA_TOPICS, NodeRunner  # noqa: E402
from ccl_perception.nodes.messages import camera_info_msg, image_msg  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
import cv2  # noqa: E402, I100

TAG = f'{os.getpid() % 100000}'
CAM, PLANNER, EXECUTOR = f'cam_{TAG}', f'/planner_{TAG}', f'/executor_{TAG}'
MAKER = f'/maker_{TAG}'
H, W = 48, 64
K = intrinsics_matrix(60.0, 60.0, 31.5, 23.5)
RGB = np.kron(np.random.default_rng(0).integers(0, 255, (H // 8, W // 8, 3)),
              np.ones((8, 8, 1))).astype(np.uint8)
DEPTH_MM = (500 + np.arange(H * W).reshape(H, W) % 97).astype(np.uint16)
DEPTH_MM[:6, :6] = 0  # no depth there


class Arm:
    """Stand-in arm: every grasp succeeds with a 0.1 m lift."""

    def __init__(self):
        self.cfg = MotionConfig()
        self.executed = 0

    def set_frame(self, name, T):
        pass

    def execute(self, T, frame):
        self.executed += 1
        return GraspResult(True, 'lifted', 'report', lift_m=0.1, backend='stand-in')


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from ccl_perception.nodes.target_maker_node import TargetMaker
    from geometry_msgs.msg import PointStamped
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    tmp = tmp_path_factory.mktemp('ccl')
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    for name, scale in (('at1', 1), ('at2', 2)):
        tg.save_target(str(tmp / 'targets' / f'{name}.npz'), tg.make_target(
            DescriptorExtractor(ck, downscale=scale), RGB, [(20, 20), (40, 20)], name))
    remap = [a for t in CAMERA_TOPICS for a in ('-r', f'{t}:={t.replace("camera", CAM, 1)}')]
    arm, parts = Arm(), {}

    def factory(context):
        planner = GraspPlanner(context=context, cli_args=[
            '--ros-args', '-r', f'__node:={PLANNER[1:]}', *remap], parameter_overrides=[
            Parameter('checkpoint', value=ck), Parameter('target_dir', value=str(tmp / 'targets')),
            Parameter('input_timeout_s', value=0.5)])
        executor = GraspExecutorNode(executor=arm, context=context, cli_args=[
            '--ros-args', '-r', f'__node:={EXECUTOR[1:]}', '-r', f'grasp_pose:=pose_{TAG}'],
            parameter_overrides=[Parameter('auto_execute', value=False)])
        maker = TargetMaker(context=context, cli_args=[
            '--ros-args', '-r', f'__node:={MAKER[1:]}', '-r', f'clicked_point:=clicked_{TAG}',
            *remap], parameter_overrides=[Parameter('checkpoint', value=ck),
                                          Parameter('target_dir', value=str(tmp / 'made'))])
        camera = rclpy.create_node(f'camera_{TAG}', context=context)
        pubs = [camera.create_publisher(t, f'/{CAM}/{n}', 5) for t, n in (
            (Image, 'color/image_raw'), (Image, 'aligned_depth_to_color/image_raw'),
            (CameraInfo, 'color/camera_info'), (CompressedImage, 'color/image_raw/compressed'))]
        jpeg = cv2.imencode('.jpg', RGB[:, :, ::-1])[1].tobytes()

        def publish():
            stamp = camera.get_clock().now().to_msg()
            msgs = [image_msg(RGB, 'rgb8'), image_msg(DEPTH_MM, '16UC1'),
                    camera_info_msg(K, W, H),
                    CompressedImage(format='rgb8; jpeg compressed bgr8', data=jpeg)]
            for pub, m in zip(pubs, msgs):
                m.header.stamp, m.header.frame_id = stamp, 'cam_optical'
                pub.publish(m)
        camera.create_timer(0.1, publish)
        parts.update(planner=planner, executor=executor, maker=maker, jpeg=jpeg,
                     pose_pub=camera.create_publisher(PoseStamped, f'pose_{TAG}', 5),
                     click_pub=camera.create_publisher(PointStamped, f'clicked_{TAG}', 10))
        return [planner, executor, maker, camera]

    runner = NodeRunner(factory).spin_in_background()
    yield {**parts, 'arm': arm, 'tmp': tmp}
    runner.close()


def ccl(capsys, *argv):
    """Run ``ccl argv...`` in this process; return (exit code, stdout, stderr)."""
    rc = ccl_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_set_target_names_the_parameter_that_differs(ros, capsys):
    rc, out, err = ccl(capsys, 'set-target', 'at2', '--planner', PLANNER)
    assert rc == 2 and out == '' and err.count('\n') == 1
    assert err.startswith(f"ccl set-target: error: {PLANNER} refused target = 'at2': target "
                          "'at2'") and 'was made at downscale 2, the model runs at downscale 1: '\
        'start the planner with downscale:=2' in err
    assert ros['planner'].get_parameter('target').value == ''
    rc, out, err = ccl(capsys, 'set-target', 'at1', '--planner', PLANNER)
    assert (rc, out, err) == (0, f"{PLANNER}: target set to 'at1'\n", '')
    assert ros['planner'].target.name == 'at1'


def test_status(ros, capsys):
    rc, out, err = ccl(capsys, 'status', '--planner', PLANNER, '--executor', EXECUTOR)
    assert rc == 0 and err == ''
    lines = out.splitlines()
    assert lines[0].startswith(f"{PLANNER}: target 'at1', target_dir ")
    assert 'downscale 1' in lines[0]
    assert lines[1].startswith(f'{PLANNER} status: abstain: ')  # a random model finds nothing
    assert lines[2] == f'{EXECUTOR} last grasp: none (or the executor is not running)'


def test_reload_says_which_file_did_not_load(ros, capsys):
    """at2.npz does not load at this planner's downscale: an error line, exit code 2."""
    rc, out, err = ccl(capsys, 'reload', '--planner', PLANNER)
    assert rc == 2 and out == '' and err.count('\n') == 1
    assert err.startswith('ccl reload: error: loaded targets: at1; at2.npz: target') \
        and 'downscale 2' in err


def test_execute_runs_one_grasp_on_request_and_reports_it(ros, capsys):
    rc, out, err = ccl(capsys, 'execute', '--executor', EXECUTOR, '--planner', PLANNER)
    assert rc == 2 and err == (f'ccl execute: error: {EXECUTOR} started no grasp: '
                               'no grasp pose received yet\n')
    from ccl_perception.nodes.messages import pose_stamped
    msg = pose_stamped(np.eye(4), frame_id='cam_optical',
                       stamp=rclpy.time.Time(seconds=123, nanoseconds=456).to_msg())
    end = time.monotonic() + 20
    while time.monotonic() < end and ros['executor']._last_pose is None:
        ros['pose_pub'].publish(msg)
        time.sleep(0.2)
    assert ros['arm'].executed == 0  # execute on request only
    rc, out, err = ccl(capsys, 'execute', '--executor', EXECUTOR, '--planner', PLANNER)
    lines = out.splitlines()
    assert rc == 0 and err == '' and ros['arm'].executed == 1
    assert lines[0].startswith('accepted: executing the pose stamped 123.000000456')
    assert lines[1].startswith('grasp succeeded: lifted (lift 0.100 m); planner at the call: ')


def test_save_target_from_clicked_points(ros, capsys):
    rc, out, err = ccl(capsys, 'save-target', 'cup', '--maker', MAKER)
    assert rc == 2 and err == ('ccl save-target: error: not saved: 0 point(s) clicked; a target '
                               'needs two (the grasp axis) or more\n')
    from ccl_perception.geometry import backproject
    from ccl_perception.nodes.messages import point_msg
    from geometry_msgs.msg import PointStamped
    px = np.array([[40.0, 20.0], [56.0, 30.0]])
    z = DEPTH_MM[px[:, 1].astype(int), px[:, 0].astype(int)] * 0.001
    from polling import wait_for  # test/polling.py
    assert wait_for(lambda: ros['click_pub'].get_subscription_count() > 0, 20)
    for i, p in enumerate(backproject(px, z, K)):  # a click is one message (reliable QoS)
        msg = PointStamped(point=point_msg(p))
        msg.header.frame_id = 'cam_optical'
        ros['click_pub'].publish(msg)
        assert wait_for(lambda: ros['maker'].counts['points'] == i + 1, 20)
    rc, out, err = ccl(capsys, 'save-target', 'cup', '--maker', MAKER)
    assert rc == 0 and err == ''
    assert out.startswith("saved target 'cup' (view 1: 2 points, axis length ")
    assert out.rstrip().endswith('downscale 1) to ' + str(ros['tmp'] / 'made' / 'cup.npz')
                                 + '; set it with: ccl set-target cup')
    t = tg.load_target(str(ros['tmp'] / 'made' / 'cup.npz'))
    np.testing.assert_allclose(t.pixels, px, atol=1e-6)


def test_grab_frame_writes_what_make_target_reads(ros, capsys, tmp_path):
    out_dir = tmp_path / 'ref'
    rc, out, err = ccl(capsys, 'grab-frame', '--out', out_dir, '--camera-ns', CAM)
    assert rc == 0 and err == '' and out.startswith(f'wrote {out_dir}/color.png')
    np.testing.assert_array_equal(read_rgb(str(out_dir / 'color.png')), RGB)
    depth = tg.read_depth(str(out_dir / 'depth.png'))
    expected = DEPTH_MM.astype(np.float32) * 0.001
    expected[DEPTH_MM == 0] = np.nan
    np.testing.assert_allclose(depth, expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(tg.parse_intrinsics(str(out_dir / 'camera_info.yaml')), K)
    rc, out, err = ccl(capsys, 'grab-frame', '--out', out_dir, '--camera-ns', CAM)
    assert rc == 2 and 'exists: choose another --out' in err  # never overwritten
    rc, out, err = ccl(capsys, 'grab-frame', '--out', tmp_path / 'x', '--camera-ns', 'nobody',
                       '--timeout', '1')
    assert rc == 2 and err.startswith('ccl grab-frame: error: no colour/depth pair with '
                                      'camera_info within 1 s (received: colour 0 on '
                                      '/nobody/color/image_raw')


def test_record_writes_a_bag_collect_frames_reads(ros, capsys, tmp_path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores
    bag = tmp_path / 'bag'
    rc, out, err = ccl(capsys, 'record', bag, '--duration', 3, '--compressed',
                       '--camera-ns', CAM)
    assert rc == 0 and err == '', err
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types == {f'/{CAM}/color/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                         f'/{CAM}/aligned_depth_to_color/image_raw/compressed':
                             'sensor_msgs/msg/CompressedImage',
                         f'/{CAM}/color/camera_info': 'sensor_msgs/msg/CameraInfo'}
        got = {}
        for conn, _, raw in reader.messages():
            got.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    assert all(len(v) >= 5 for v in got.values()), {k: len(v) for k, v in got.items()}
    colour = got[f'/{CAM}/color/image_raw/compressed'][0]
    assert bytes(colour.data) == ros['jpeg']  # the camera's own compressed topic, as published
    depth = got[f'/{CAM}/aligned_depth_to_color/image_raw/compressed'][0]  # compressed here
    assert depth.format == '16UC1; png compressed'
    np.testing.assert_array_equal(
        cv2.imdecode(np.frombuffer(bytes(depth.data), np.uint8), cv2.IMREAD_UNCHANGED), DEPTH_MM)
    assert np.asarray(got[f'/{CAM}/color/camera_info'][0].k).reshape(3, 3).tolist() == K.tolist()
    from ccl_perception.frame_collector import iter_frames
    frames = list(iter_frames(str(bag), f'/{CAM}/color/image_raw/compressed'))
    assert len(frames) == len(got[f'/{CAM}/color/image_raw/compressed'])
    rc, out, err = ccl(capsys, 'record', bag, '--duration', 1, '--camera-ns', CAM)
    assert rc == 2 and 'exists: a bag is written into a new folder' in err
    rc, out, err = ccl(capsys, 'record', tmp_path / 'raw', '--duration', 2, '--camera-ns', CAM)
    assert rc == 0, err
    with AnyReader([tmp_path / 'raw'], default_typestore=get_typestore(Stores.ROS2_KILTED)) as r:
        conn = next(c for c in r.connections if c.topic == f'/{CAM}/color/image_raw')
        _, _, raw = next(iter(r.messages(connections=[conn])))
        msg = r.deserialize(raw, conn.msgtype)
    assert (msg.encoding, msg.width, msg.height) == ('rgb8', W, H)
    np.testing.assert_array_equal(np.asarray(msg.data).reshape(H, W, 3), RGB)


def test_record_without_a_camera_ends_with_one_line(ros, capsys, tmp_path):
    rc, out, err = ccl(capsys, 'record', tmp_path / 'none', '--camera-ns', 'nobody',
                       '--timeout', '1')
    assert rc == 2 and err.count('\n') == 1 and 'no message on /nobody/color/image_raw' in err
    assert not (tmp_path / 'none').exists()  # the empty bag is removed


def test_preview_draws_the_points_and_lists_missing_depth(capsys, tmp_path):
    cv2.imwrite(str(tmp_path / 'c.png'), RGB[:, :, ::-1])
    cv2.imwrite(str(tmp_path / 'd.png'), DEPTH_MM)
    rc, out, err = ccl(capsys, 'preview', '--image', tmp_path / 'c.png', '--depth',
                       tmp_path / 'd.png', '--points', '2,2', '40,20', '50,30', '--out',
                       tmp_path / 'p.png')
    assert rc == 0 and err == ''
    assert out.splitlines() == [
        'point 1 2,2: no depth in its 5x5 window (a grasp-axis point: make_target will refuse '
        'it)', f'wrote {tmp_path}/p.png (3 points)']
    img = read_rgb(str(tmp_path / 'p.png'))
    assert img.shape == RGB.shape and not np.array_equal(img, RGB)
    rc, out, err = ccl(capsys, 'preview', '--image', tmp_path / 'c.png', '--points', '1,1',
                       '99,1', '--out', tmp_path / 'p2.png')
    assert rc == 2 and 'point 2 (99, 1) is outside the 64x48 image' in err
    rc, out, err = ccl(capsys, 'preview', '--image', tmp_path / 'c.png', '--points', '1,1',
                       '9,1', '--out', tmp_path / 'c.png')
    assert rc == 2 and 'would overwrite an input image' in err


def test_python_m_entry_point_and_timeouts(ros):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, '-m', 'ccl_perception.ccl_cli', 'set-target', 'nope',
                        '--planner', PLANNER], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2 and p.stdout == '' and p.stderr.count('\n') == 1
    assert "unknown target 'nope'" in p.stderr
    p = subprocess.run([sys.executable, '-m', 'ccl_perception.ccl_cli', 'status', '--planner',
                        f'/nobody_{TAG}', '--timeout', '1'], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2 and p.stderr == (
        f'ccl status: error: service /nobody_{TAG}/get_parameters is not available after 1 s: '
        'is it running, with the same ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE?\n')
