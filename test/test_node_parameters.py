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
Every node parameter through good, boundary and bad values over real rclpy SetParameters.

The value tables are test/param_cases.py (hand-written from the documented ranges). A run-time
parameter is set through ``/<node>/set_parameters``: an allowed value is taken and reaches
the code that uses it, a bad one is refused with its name, value and range, and the old value
stays. Start-up parameters are given as ``parameter_overrides`` (as config/<node>.yaml does):
a bad one stops the node with the reason. Also here: the "no frame" diagnostic and the
shutdown of a node mid-frame (no "exception was never retrieved").
"""
import gc
import math
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')

from ccl_perception.executors.base import MotionConfig  # noqa: E402, I100
from ccl_perception.nodes import NodeRunner  # noqa: E402
from param_cases import (DESCRIPTOR_RUN_TIME, DESCRIPTOR_STARTUP,  # noqa: E402
                         TARGET_MAKER_RUN_TIME, TARGET_MAKER_STARTUP)
from param_cases import (EXECUTOR_RUN_TIME, EXECUTOR_STARTUP, PIPELINE,  # noqa: E402
                         PLANNER_STARTUP, SIM_WORLD_RUN_TIME, SIM_WORLD_STARTUP)
from polling import wait_for  # noqa: E402
from rcl_interfaces.srv import GetParameters, SetParameters  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from std_msgs.msg import String  # noqa: E402

TAG = f'{int(time.time() * 1000) % 100000}'
PLANNER, EXECUTOR, WORLD = f'planner_p{TAG}', f'executor_p{TAG}', f'world_p{TAG}'
OBJECTS = ('duck', 'box_000')


def remap_camera(prefix: str) -> list:
    """``-r`` arguments moving the three camera topics from ``camera/`` to ``<prefix>/``."""
    from ccl_perception.nodes import CAMERA_TOPICS
    return [a for t in CAMERA_TOPICS for a in (
        '-r', f'{t}:={t.replace("camera/", prefix + "/", 1)}')]


class FakeExecutor:
    """Stands in for an arm: the executor node only needs ``cfg``, ``set_frame``, ``execute``."""

    def __init__(self):
        self.cfg = MotionConfig()
        self.frames = {}

    def set_frame(self, name, T):
        self.frames[name] = T

    def execute(self, T, frame):  # pragma: no cover - no pose is sent in these tests
        raise AssertionError('not used')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return save_checkpoint(str(tmp_path_factory.mktemp('params') / 'tiny.pt'),
                           DescriptorNet('resnet18', 8, pretrained=False))


@pytest.fixture(scope='module')
def world():
    pytest.importorskip('pybullet')
    from ccl_perception.sim.robot import SimWorld, SimWorldConfig
    w = SimWorld(SimWorldConfig(width=64, height=48, objects=OBJECTS, clutter=(2, 2)))
    yield w
    w.close()


@pytest.fixture(scope='module')
def ros(checkpoint, world):
    from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from ccl_perception.nodes.sim_world_node import SimWorldNode
    made = {'status': []}

    def factory(ctx):
        made['ctx'] = ctx
        made['planner'] = GraspPlanner(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:={PLANNER}'],
            parameter_overrides=[Parameter('checkpoint', value=checkpoint),
                                 Parameter('input_timeout_s', value=0.5)])
        made['executor'] = GraspExecutorNode(executor=FakeExecutor(), context=ctx,
                                             cli_args=['--ros-args', '-r', f'__node:={EXECUTOR}'])
        # its camera must not feed the planner
        made['world'] = SimWorldNode(world=world, context=ctx,
                                     cli_args=['--ros-args', '-r', f'__node:={WORLD}',
                                               *remap_camera(f'w{TAG}')],
                                     parameter_overrides=[Parameter('publish_rate', value=0.5)])
        made['client'] = client = rclpy.create_node(f'param_client_{TAG}', context=ctx)
        client.create_subscription(String, f'/{PLANNER}/status', made['status'].append, 50)
        return [made['planner'], made['executor'], made['world'], client]

    runner = NodeRunner(factory).spin_in_background()
    yield made
    runner.close()


def _call(client, srv_type, name, request):
    cli = client.create_client(srv_type, name)
    try:
        assert cli.wait_for_service(timeout_sec=10.0), f'{name} not available'
        future = cli.call_async(request)
        assert wait_for(future.done, timeout=10.0), f'{name} timed out'
        return future.result()
    finally:
        client.destroy_client(cli)


def set_param(ros, node, name, value):
    req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return _call(ros['client'], SetParameters, f'/{node}/set_parameters', req).results[0]


def get_param(ros, node, name):
    res = _call(
        ros['client'],
        GetParameters,
        f'/{node}/get_parameters',
        GetParameters.Request(
            names=[name]))
    return parameter_value_to_python(res.values[0])


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _drive(ros, node, name, value, allowed, applied):
    """Set, check the answer and the stored value, restore; ``applied()`` = what the code uses."""
    before = get_param(ros, node, name)
    r = set_param(ros, node, name, value)
    if allowed:
        assert r.successful, f'{name}={value!r} refused: {r.reason}'
        assert _same(get_param(ros, node, name), value)
        if applied is not None:
            assert _same(applied(), value), f'{name}={value!r} accepted but not applied'
        # back to the default for the next row
        assert set_param(ros, node, name, before).successful
    else:
        assert not r.successful, f'{name}={value!r} accepted'
        assert f'{name} = ' in r.reason and '\n' not in r.reason, r.reason
        assert repr(value) in r.reason or str(value) in r.reason, r.reason
        assert _same(get_param(ros, node, name), before)  # the old value is kept
        if applied is not None:
            assert _same(applied(), before)


@pytest.mark.parametrize('name,value,allowed', PIPELINE)
def test_planner_pipeline_knobs(ros, name, value, allowed):
    planner = ros['planner']
    _drive(ros, PLANNER, name, value, allowed, lambda: planner.pipeline.config[name])


def test_planner_tau_reaches_the_matcher(ros):
    assert set_param(ros, PLANNER, 'tau', 0.2).successful
    assert ros['planner'].pipeline.matcher.tau == 0.2
    assert not set_param(ros, PLANNER, 'tau', float('nan')).successful
    assert ros['planner'].pipeline.matcher.tau == 0.2
    assert set_param(ros, PLANNER, 'tau', 0.03).successful


@pytest.mark.parametrize('name', ['max_rate_hz', 'sync_slop', 'device', 'input_timeout_s'])
def test_planner_start_up_only_parameters_are_refused_at_run_time(ros, name):
    value = {'max_rate_hz': 5.0, 'sync_slop': 0.05, 'device': 'cpu', 'input_timeout_s': 2.0}[name]
    r = set_param(ros, PLANNER, name, value)
    assert not r.successful and r.reason == f'{name} can only be set at start-up'


@pytest.mark.parametrize('name,value,allowed', PLANNER_STARTUP +
                         [row for row in PIPELINE if not row[2]])
def test_planner_start_up(ros, checkpoint, name, value, allowed):
    """As from config/grasp_planner.yaml: a bad value stops the node, naming it."""
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    kwargs = {'context': ros['ctx'],
              'cli_args': ['--ros-args', '-r', f'__node:=planner_s{TAG}'],
              'parameter_overrides': [Parameter('checkpoint', value=checkpoint),
                                      Parameter(name, value=value)]}
    if allowed:
        node = GraspPlanner(**kwargs)
        assert _same(node.get_parameter(name).value, value)
        node.destroy_node()
    else:
        with pytest.raises(ValueError, match=f'(^|below ){name} = '):
            GraspPlanner(**kwargs)


@pytest.mark.parametrize('name,value,allowed', EXECUTOR_RUN_TIME)
def test_executor_run_time(ros, name, value, allowed):
    cfg = ros['executor'].grasp_executor.cfg
    _drive(ros, EXECUTOR, name, value, allowed, None if name ==
           'auto_execute' else lambda: getattr(cfg, name))


@pytest.mark.parametrize('name,value,allowed', EXECUTOR_STARTUP)
def test_executor_start_up(ros, name, value, allowed):
    from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode
    fake = FakeExecutor()
    kwargs = {'executor': fake, 'context': ros['ctx'],
              'cli_args': ['--ros-args', '-r', f'__node:=executor_s{TAG}'],
              'parameter_overrides': [Parameter(name, value=value)]}
    if allowed:
        GraspExecutorNode(**kwargs).destroy_node()
        if name == 'world_from_camera' and len(value) == 7:
            np.testing.assert_allclose(fake.frames['camera_color_optical_frame'][:3, 3], value[:3])
    else:
        with pytest.raises(ValueError, match=f'^{name} = '):
            GraspExecutorNode(**kwargs)
    if name in ('camera_frame', 'world_from_camera', 'backend', 'gripper_open_position'):
        r = set_param(ros, EXECUTOR, name, value)
        assert not r.successful and r.reason == f'{name} can only be set at start-up'


@pytest.mark.parametrize('name,value,allowed', SIM_WORLD_RUN_TIME)
def test_sim_world_run_time(ros, name, value, allowed):
    _drive(ros, WORLD, name, value, allowed, None)


def test_sim_world_takes_the_new_target_at_reset(ros):
    from std_srvs.srv import Trigger
    import json
    assert set_param(ros, WORLD, 'target', 'box_000').successful
    res = _call(ros['client'], Trigger, f'/{WORLD}/reset', Trigger.Request())
    assert res.success and json.loads(res.message)['target'] == 'box_000'
    assert set_param(ros, WORLD, 'target', '').successful


@pytest.mark.parametrize('name,value,allowed', SIM_WORLD_STARTUP)
def test_sim_world_start_up(ros, world, name, value, allowed):
    from ccl_perception.nodes.sim_world_node import SimWorldNode
    kwargs = {'world': world, 'context': ros['ctx'],
              'cli_args': ['--ros-args', '-r', f'__node:=world_s{TAG}', *remap_camera(f'w{TAG}')],
              'parameter_overrides': [Parameter(name, value=value)]}
    if allowed:
        SimWorldNode(**kwargs).destroy_node()
    else:
        with pytest.raises(ValueError, match=f'^{name} = '):
            SimWorldNode(**kwargs)
    if name in ('publish_rate', 'width'):
        r = set_param(ros, WORLD, name, value)
        assert not r.successful and r.reason == f'{name} can only be set at start-up'


def test_no_frame_diagnostic_names_the_counts(ros):
    """Nothing publishes a camera in this module: the planner says so every 0.5 s."""
    assert wait_for(
        lambda: any(
            'no synchronised colour+depth pair' in m.data for m in ros['status']),
        10.0)
    text = next(m.data for m in ros['status'] if 'no synchronised' in m.data)
    assert text == ('abstain: no synchronised colour+depth pair in the last 0.5 s '
                    '(received so far: synchronised colour+depth pair 0, colour 0, depth 0, '
                    'camera_info 0); check the topic names / camera_ns and that the camera '
                    'publishes; frames larger than the DDS transport delivers '
                    '(e.g. 1280x720 over UDP) are dropped before any callback')
    assert ros['planner'].counts['input_timeouts'] >= 1


def test_shutdown_mid_frame_leaves_no_unretrieved_exception(checkpoint, tmp_path, capfd):
    """
    A frame still being processed when the runner closes finishes with valid publishers.

    No "cannot use Destroyable" error, no "exception was never retrieved" after collection.
    """
    from ccl_perception import targets as tg
    from ccl_perception.geometry import intrinsics_matrix
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.nodes import COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, SENSOR_QOS
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    from ccl_perception.nodes.messages import camera_info_msg, image_msg
    from sensor_msgs.msg import CameraInfo, Image

    rgb = np.kron(
        np.random.default_rng(0).integers(
            0, 255, (6, 8, 3)), np.ones(
            (8, 8, 1))).astype(
                np.uint8)
    K = intrinsics_matrix(50.0, 50.0, 31.5, 23.5)
    depth = np.full((48, 64), 500, np.uint16)
    tg.save_target(str(tmp_path / 't.npz'),
                   tg.make_target(DescriptorExtractor(checkpoint), rgb,
                                  [(19.5, 19.5), (43.5, 19.5)], 't', depth / 1000.0, K))
    started, finished, made = threading.Event(), threading.Event(), {}

    def factory(ctx):
        made['planner'] = planner = GraspPlanner(
            context=ctx, cli_args=['--ros-args', '-r',
                                   f'__node:=planner_slow{TAG}', *remap_camera(f'slow{TAG}')],
            parameter_overrides=[Parameter('checkpoint', value=checkpoint),
                                 Parameter('target', value=str(tmp_path / 't.npz')),
                                 Parameter('max_width', value=0.5)])
        real = planner.pipeline.frame_to_pose

        def slow(*args):
            started.set()
            # longer than NodeRunner's old 5 s join and rclpy's 2 s shutdown timeout
            time.sleep(6.0)
            out = real(*args)
            finished.set()
            return out
        planner.pipeline.frame_to_pose = slow
        made['feeder'] = feeder = rclpy.create_node(f'slow_feeder_{TAG}', context=ctx)
        made['pubs'] = [
            feeder.create_publisher(t, n.replace('camera/', f'slow{TAG}/', 1), SENSOR_QOS)
            for t, n in ((Image, COLOR_TOPIC), (Image, DEPTH_TOPIC), (CameraInfo, INFO_TOPIC))]
        return [planner, feeder]

    runner = NodeRunner(factory).spin_in_background()
    try:
        def publish():
            c, d = image_msg(rgb, 'rgb8'), image_msg(depth, '16UC1')
            c.header.frame_id = d.header.frame_id = 'camera_color_optical_frame'
            c.header.stamp.sec = d.header.stamp.sec = 5
            made['pubs'][2].publish(camera_info_msg(K, 64, 48, c.header))
            made['pubs'][0].publish(c)
            made['pubs'][1].publish(d)
            return started.is_set()
        assert wait_for(publish, timeout=20.0), 'the slow frame never started'
    finally:
        runner.close()  # while the frame sleeps
    assert finished.is_set()  # the frame ran to its end before the nodes went
    assert made['planner'].counts['poses'] + made['planner'].counts['abstained'] >= 1
    gc.collect()
    err = capfd.readouterr().err
    assert 'never retrieved' not in err and 'Destroyable' not in err, err
    assert 'Traceback' not in err, err


# ------------------------------------------------ descriptor node and target maker (issue 20)
@pytest.fixture(scope='module')
def camera_nodes(checkpoint):
    """Start a descriptor node and a target maker with the tiny model, and a client, over DDS."""
    from ccl_perception.nodes.descriptor_node import DescriptorNode
    from ccl_perception.nodes.target_maker_node import TargetMaker
    made = {}

    def factory(ctx):
        made['ctx'] = ctx
        cam = ['-r', f'camera/color/image_raw:=d{TAG}/color']  # no camera feeds these
        made['descriptor'] = DescriptorNode(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:=descriptor_p{TAG}', *cam],
            parameter_overrides=[Parameter('checkpoint', value=checkpoint)])
        made['maker'] = TargetMaker(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:=maker_p{TAG}',
                                   *remap_camera(f'm{TAG}')],
            parameter_overrides=[Parameter('checkpoint', value=checkpoint)])
        made['client'] = rclpy.create_node(f'camera_param_client_{TAG}', context=ctx)
        return [made['descriptor'], made['maker'], made['client']]

    runner = NodeRunner(factory).spin_in_background()
    yield made
    runner.close()


def _refused_at_run_time(ros, node, name, value):
    before = get_param(ros, node, name)
    r = set_param(ros, node, name, value)
    assert not r.successful and r.reason == f'{name} can only be set at start-up', r.reason
    assert _same(get_param(ros, node, name), before)  # ros2 param get: the value in effect


@pytest.mark.parametrize('name,value,allowed', DESCRIPTOR_RUN_TIME)
def test_descriptor_run_time(camera_nodes, name, value, allowed):
    node = camera_nodes['descriptor']
    _drive(camera_nodes, f'descriptor_p{TAG}', name, value, allowed,
           lambda: node.get_parameter(name).value)


@pytest.mark.parametrize('name,value,allowed', DESCRIPTOR_STARTUP)
def test_descriptor_start_up(camera_nodes, checkpoint, name, value, allowed):
    """A bad value stops the start, naming it; a running node refuses every change of it."""
    from ccl_perception.nodes.descriptor_node import DescriptorNode
    kwargs = {'context': camera_nodes['ctx'],
              'cli_args': ['--ros-args', '-r', f'__node:=descriptor_s{TAG}', '-r',
                           f'camera/color/image_raw:=ds{TAG}/color'],
              'parameter_overrides': [Parameter('checkpoint', value=checkpoint),
                                      Parameter(name, value=value)]}
    if allowed:
        node = DescriptorNode(**kwargs)
        assert _same(node.get_parameter(name).value, value)
        node.destroy_node()
    else:
        with pytest.raises(ValueError, match=f'^{name} = '):
            DescriptorNode(**kwargs)
    _refused_at_run_time(camera_nodes, f'descriptor_p{TAG}', name, value)


@pytest.mark.parametrize('name,value,allowed', TARGET_MAKER_RUN_TIME)
def test_target_maker_run_time(camera_nodes, name, value, allowed):
    node = camera_nodes['maker']
    _drive(camera_nodes, f'maker_p{TAG}', name, value, allowed,
           lambda: node.get_parameter(name).value)


@pytest.mark.parametrize('name,value,allowed', TARGET_MAKER_STARTUP)
def test_target_maker_start_up(camera_nodes, checkpoint, name, value, allowed):
    from ccl_perception.nodes.target_maker_node import TargetMaker
    kwargs = {'context': camera_nodes['ctx'],
              'cli_args': ['--ros-args', '-r', f'__node:=maker_s{TAG}',
                           *remap_camera(f'ms{TAG}')],
              'parameter_overrides': [Parameter('checkpoint', value=checkpoint),
                                      Parameter(name, value=value)]}
    if allowed:
        node = TargetMaker(**kwargs)
        assert _same(node.get_parameter(name).value, value)
        node.destroy_node()
    else:
        with pytest.raises(ValueError, match=f'^{name} = '):
            TargetMaker(**kwargs)
    if name not in ('name',):  # name is a run-time parameter (TARGET_MAKER_RUN_TIME)
        _refused_at_run_time(camera_nodes, f'maker_p{TAG}', name, value)


@pytest.mark.parametrize('node_module,name,value,message', [
    ('grasp_planner_node', 'max_rate_hz', 'abc',
     "max_rate_hz = 'abc' is not allowed: must be a double like its default 15.0"),
    ('grasp_planner_node', 'max_rate_hz', '5',
     'max_rate_hz = 5 is not allowed: must be a double like its default 15.0 (write 5.0)'),
    ('grasp_planner_node', 'tau', 'hot', "tau = 'hot' is not allowed: must be a double"),
    ('descriptor_node', 'downscale', '2.5',
     'downscale = 2.5 is not allowed: must be an integer like its default 1'),
    ('target_maker_node', 'name', '[1, 2]',
     "name = [1, 2] is not allowed: must be a string like its default ''"),
])
def test_a_wrongly_typed_parameter_at_start_is_one_line(checkpoint, node_module, name, value,
                                                        message):
    """As a user starts a node: ``-p name:=value`` of the wrong type, exit 2, one line."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    proc = subprocess.run(
        [sys.executable, '-m', f'ccl_perception.nodes.{node_module}', '--ros-args',
         '-r', f'__node:=typed_{TAG}', '-p', f'checkpoint:={checkpoint}',
         '-p', f'{name}:={value}'], capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f'{node_module}: error: {message}'), lines[0]
