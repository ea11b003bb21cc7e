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
The grasp planner with broken targets and broken depth (issue 20), over real DDS.

* A targets folder holding one good target next to random bytes, truncated copies and valid
  zips with fields of the wrong form: the planner starts (the bad files skipped, each logged
  with its reason), and survives ``~/reload_targets``, setting ``target`` (to the good one:
  taken; to a bad one: refused with the reason) and setting ``target_dir``.
* Depth that is all NaN, zero, inf or negative: the abstention names the missing depth, not
  "3D keypoints contradict the target".

Scene (as test_targets.py): a tiny random resnet18 DescriptorNet (D=32), a 128x96 image of
random 8x8 colour blocks, planar depth 0.5 m, K = [[100, 0, 63.5], [0, 100, 47.5], [0, 0, 1]],
a three-point target on grid-cell centres (an identical view matches them exactly).
"""
import os
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')

from ccl_perception import geometry as g  # noqa: E402, I100
from ccl_perception import targets as tg  # noqa: E402
from ccl_perception.grasp_pipeline import GraspPipeline  # noqa: E402
from ccl_perception.nodes import NodeRunner, SENSOR_QOS  # noqa: E402
from ccl_perception.nodes.messages import camera_info_msg, image_msg  # noqa: E402
from polling import wait_for  # noqa: E402  (test/polling.py)
from rcl_interfaces.msg import Log  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from test_target_files import _valid_fields, broken_copies, MALFORMED_FIELDS  # noqa: E402

H, W = 96, 128
K = g.intrinsics_matrix(100.0, 100.0, 63.5, 47.5)
PTS = [(51.5, 43.5), (75.5, 51.5), (35.5, 67.5)]
CFG = {'tau': 0.003, 'min_similarity': 0.97, 'max_width': 0.2, 'grasp_refinement': 'none'}
TAG = f'{os.getpid()}'


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('bad_targets')
    ck = save_checkpoint(str(d / 'tiny.pt'), DescriptorNet('resnet18', 32, pretrained=False))
    extractor = DescriptorExtractor(ck)
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    depth = np.full((H, W), 0.5, np.float32)
    target = tg.make_target(extractor, rgb, PTS, 'mug', depth=depth, K=K)
    return {'dir': d, 'ck': ck, 'extractor': extractor, 'rgb': rgb, 'depth': depth,
            'target': target}


# --------------------------------------------------------------------- depth (no ROS)
@pytest.mark.parametrize('fill', [np.nan, 0.0, np.inf, -0.5])
def test_a_frame_without_depth_names_the_missing_depth(scene, fill):
    result = GraspPipeline(scene['extractor'], CFG).frame_to_pose(
        scene['rgb'], np.full((H, W), fill, np.float32), K, scene['target'])
    assert not result.ok
    assert result.reason == (
        'no valid depth in the frame: all 128x96 pixels are missing, zero, negative, NaN or inf '
        '(is the aligned depth stream running?); the 3D check needs 3 keypoints with depth')


def test_a_good_frame_still_gives_a_pose(scene):
    result = GraspPipeline(scene['extractor'], CFG).frame_to_pose(
        scene['rgb'], scene['depth'], K, scene['target'])
    assert result.ok, result.reason


# --------------------------------------------------------------------------- over ROS
def fill_folder(folder, scene) -> list:
    """Write the good target 'mug' and every kind of broken file; return the broken names."""
    folder.mkdir(exist_ok=True)
    good = str(folder / 'mug.npz')
    tg.save_target(good, scene['target'])
    bad = broken_copies(good, folder)
    for i, (field, value, _) in enumerate(MALFORMED_FIELDS):
        np.savez(folder / f'field_{i}.npz', **{**_valid_fields(scene['target']), field: value})
        bad.append(f'field_{i}.npz')
    return sorted(bad)


@pytest.fixture(scope='module')
def ros(scene):
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    bad = fill_folder(scene['dir'] / 'targets', scene)
    made = {'status': [], 'log': [], 'bad': bad}

    def factory(ctx):
        cam = [a for t, n in (('camera/color/image_raw', 'color'),
                              ('camera/aligned_depth_to_color/image_raw', 'depth'),
                              ('camera/color/camera_info', 'info'))
               for a in ('-r', f'{t}:=bt{TAG}/{n}')]
        made['planner'] = GraspPlanner(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:=planner_bt{TAG}', *cam],
            parameter_overrides=[Parameter('checkpoint', value=scene['ck']),
                                 Parameter('target_dir', value=str(scene['dir'] / 'targets')),
                                 Parameter('target', value='mug'),
                                 *[Parameter(k, value=v) for k, v in CFG.items()]])
        made['client'] = client = rclpy.create_node(f'bt_client_{TAG}', context=ctx)
        client.create_subscription(String, f'/planner_bt{TAG}/status',
                                   lambda m: made['status'].append(m.data), 50)
        # /rosout keeps the last 1000 log lines for late subscribers (transient local)
        client.create_subscription(
            Log, '/rosout', lambda m: made['log'].append(m) if m.name.endswith(
                f'planner_bt{TAG}') else None,
            QoSProfile(depth=1000, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        made['pubs'] = [client.create_publisher(t, f'bt{TAG}/{n}', SENSOR_QOS)
                        for t, n in ((Image, 'color'), (Image, 'depth'), (CameraInfo, 'info'))]
        return [made['planner'], client]

    runner = NodeRunner(factory).spin_in_background()
    made['runner'] = runner
    yield made
    runner.close()


def _call(client, srv_type, name, request):
    cli = client.create_client(srv_type, name)
    try:
        assert cli.wait_for_service(timeout_sec=10.0), f'{name} not available'
        future = cli.call_async(request)
        assert wait_for(future.done, timeout=20.0), f'{name} timed out'
        return future.result()
    finally:
        client.destroy_client(cli)


def set_param(r, name, value):
    req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return _call(r['client'], SetParameters, f'/planner_bt{TAG}/set_parameters', req).results[0]


def alive(r) -> bool:
    """Tell whether the planner still answers over DDS and its spinning thread still runs."""
    spinning = r['runner']._thread.is_alive()
    reply = set_param(r, 'min_confidence', 0.0)
    return spinning and reply.successful


def test_start_up_skips_the_broken_files_with_their_reasons(ros):
    planner = ros['planner']
    assert planner.state.library.names == ['mug'] and planner.target.name == 'mug'
    errors = planner.state.library.errors
    assert sorted(errors) == ros['bad']
    assert all(name in why for name, why in errors.items())
    # each one logged (warning) with its reason
    assert wait_for(lambda: len([m for m in ros['log'] if 'not loaded' in m.msg])
                    >= len(ros['bad']), 20.0)
    logged = {m.msg for m in ros['log'] if m.level == Log.WARN}
    for name, why in errors.items():
        assert f'target {name} not loaded: {why}' in logged
    assert alive(ros)


def test_reload_targets_survives_and_names_each_broken_file(ros):
    resp = _call(ros['client'], Trigger, f'/planner_bt{TAG}/reload_targets', Trigger.Request())
    assert not resp.success  # some files failed: said, not hidden
    assert resp.message.startswith('loaded targets: mug; ')
    for name in ros['bad']:
        assert f'; {name}: ' in resp.message
    assert ros['planner'].target.name == 'mug' and alive(ros)


@pytest.mark.parametrize('name', ['random', 'half', 'field_0', 'field_5'])
def test_setting_a_broken_target_is_refused_and_the_good_one_stays(ros, name):
    res = set_param(ros, 'target', name)
    assert not res.successful
    assert f'{name}.npz' in res.reason and '\n' not in res.reason, res.reason
    assert ros['planner'].target.name == 'mug' and alive(ros)
    assert set_param(ros, 'target', 'mug').successful


def test_setting_target_dir_to_a_folder_with_broken_files(ros, scene):
    other = scene['dir'] / 'other'
    bad = fill_folder(other, scene)
    res = set_param(ros, 'target_dir', str(other))
    assert res.successful, res.reason
    lib = ros['planner'].state.library
    assert lib.directory == str(other) and lib.names == ['mug'] and sorted(lib.errors) == bad
    assert alive(ros)


def test_all_zero_depth_over_ros_names_the_missing_depth(ros, scene):
    """A RealSense with its depth stream off sends zeros: the status says so."""
    lock, statuses = threading.Lock(), ros['status']
    header = Header(frame_id='camera_color_optical_frame')

    def publish():
        header.stamp.sec += 1
        ros['pubs'][2].publish(camera_info_msg(K, W, H, header))
        ros['pubs'][0].publish(image_msg(scene['rgb'], 'rgb8', header))
        ros['pubs'][1].publish(image_msg(np.zeros((H, W), np.uint16), '16UC1', header))
        with lock:
            return any('no valid depth in the frame' in s for s in statuses)
    assert wait_for(publish, timeout=30.0), statuses[-3:]
    text = next(s for s in statuses if 'no valid depth in the frame' in s)
    assert text.startswith('abstain: mug: no valid depth in the frame: all 128x96 pixels')
    assert not any('contradict' in s for s in statuses)
