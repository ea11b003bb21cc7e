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
launch/grasp.launch.py and bringup describe the same nodes and parameters.

* ``test_launch_file_matches_bringup``: where ``launch``/``launch_ros`` are absent (the
  Python registry has neither), the launch file is executed against minimal recording
  stand-ins for the five launch classes it uses, and the Node actions it produces are
  compared with bringup's table; where they are installed, the real classes are used.
* ``test_bringup_nodes_get_file_parameters``: bringup instantiates the real nodes and
  their parameters equal config/*.yaml merged with the launch arguments.
* ``test_launch_service_starts_pipeline``: runs the launch file with the real
  ``launch.LaunchService`` where launch, launch_ros and launch_testing are installed
  (skipped here, with the reason).
"""
import ast
import importlib.util
import os
import sys
import types

from ccl_perception import bringup, grasp_pipeline
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_FILE = os.path.join(ROOT, 'launch', 'grasp.launch.py')


def _have(mod):
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


class _Recorder:
    """Stand-in for a launch action class: keeps its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stand_in_modules():
    """Minimal ``launch`` / ``launch_ros`` modules with the names grasp.launch.py imports."""
    mods = {n: types.ModuleType(n) for n in ('launch', 'launch.actions', 'launch.substitutions',
                                             'launch_ros', 'launch_ros.actions')}

    class LaunchDescription(_Recorder):
        pass

    class DeclareLaunchArgument(_Recorder):
        pass

    class OpaqueFunction(_Recorder):
        pass

    class Node(_Recorder):
        pass

    class LaunchConfiguration:

        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    mods['launch'].LaunchDescription = LaunchDescription
    mods['launch.actions'].DeclareLaunchArgument = DeclareLaunchArgument
    mods['launch.actions'].OpaqueFunction = OpaqueFunction
    mods['launch.substitutions'].LaunchConfiguration = LaunchConfiguration
    mods['launch_ros.actions'].Node = Node
    return mods


def _load_launch_module(monkeypatch):
    if not (_have('launch') and _have('launch_ros')):
        for name, mod in _stand_in_modules().items():
            monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location('grasp_launch_under_test', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_uses_shared_table():
    """Static check (no launch needed): the file takes its nodes from bringup.node_specs."""
    tree = ast.parse(open(LAUNCH_FILE).read())
    imported = {a.name for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.module == 'ccl_perception.bringup'
                for a in n.names}
    assert {'node_specs', 'merged_parameters', 'LAUNCH_ARGUMENTS'} <= imported
    calls = {
        n.func.id for n in ast.walk(tree) if isinstance(
            n, ast.Call) and isinstance(
            n.func, ast.Name)}
    assert {'node_specs', 'merged_parameters', 'Node', 'DeclareLaunchArgument'} <= calls


@pytest.mark.parametrize('overrides', [
    {'checkpoint': '/m.pt', 'target': 'mug', 'target_dir': '/t'},
    {'checkpoint': '/m.pt',
     'camera_ns': 'wrist_cam',
     'executor_backend': 'moveit',
     'sim': 'false',
     'rviz': 'true'},
    {'checkpoint': '/m.pt', 'config_dir': os.path.join(ROOT, 'config'), 'downscale': '2',
     'camera_ns': 'camera/camera', 'executor_backend': 'moveit'},
])
def test_launch_file_matches_bringup(monkeypatch, overrides):
    if _have('launch') and _have('launch_ros'):
        pytest.skip('real launch installed: covered by test_launch_service_starts_pipeline')
    module = _load_launch_module(monkeypatch)
    ld = module.generate_launch_description()
    entities = ld.args[0]
    declared = {e.args[0]: e.kwargs['default_value'] for e in entities
                if type(e).__name__ == 'DeclareLaunchArgument'}
    assert declared == {k: v[0] for k, v in bringup.LAUNCH_ARGUMENTS.items()}
    opaque = [e for e in entities if type(e).__name__ == 'OpaqueFunction']
    assert len(opaque) == 1
    context = {**declared, **overrides}
    nodes = opaque[0].kwargs['function'](context)
    by_exe = {n.kwargs['executable']: n.kwargs for n in nodes}

    specs = bringup.node_specs(overrides)
    hosted = [s for s in specs if s.host]
    expected_exes = {s.executable for s in specs if not s.host}
    if overrides.get('rviz') == 'true':
        expected_exes.add('rviz2')
        assert by_exe['rviz2']['arguments'][1].endswith('ccl.rviz')
    assert set(by_exe) == expected_exes
    for s in specs:
        if s.host:
            continue
        kw = by_exe[s.executable]
        assert kw['package'] == 'ccl_perception'
        guests = [g for g in hosted if g.host == s.name]
        assert kw['name'] == (None if guests else s.name)
        assert kw['parameters'] == [bringup.merged_parameters(
            s)] + [bringup.merged_parameters(g) for g in guests]
        assert kw['remappings'] == s.remappings
    planner = by_exe['grasp_planner_node']['parameters'][0]
    # launch arg + YAML value
    assert (planner['checkpoint'] == '/m.pt'
            and planner['min_confidence'] == grasp_pipeline.DEFAULTS['min_confidence'])
    if 'camera_ns' in overrides:
        assert ('camera/color/image_raw', overrides['camera_ns'] + '/color/image_raw') \
            in by_exe['descriptor_node']['remappings']
    if 'downscale' in overrides:  # a given argument, as an int parameter
        assert planner['downscale'] == int(overrides['downscale'])


def test_node_specs_validation():
    with pytest.raises(ValueError, match='unknown launch argument'):
        bringup.node_specs({'chekpoint': 'x'})
    with pytest.raises(ValueError, match='needs the simulated world'):
        bringup.node_specs({'sim': 'false', 'executor_backend': 'sim'})
    specs = bringup.node_specs({'sim': 'true', 'executor_backend': 'sim'})
    assert [s.name for s in specs] == ['descriptor_node', 'grasp_planner', 'target_maker',
                                       'sim_world', 'grasp_executor']
    assert specs[-1].host == 'sim_world' and specs[3].parameters['run_executor'] is True
    args, names = bringup.parse_argv(['checkpoint:=a.pt', '--nodes', 'grasp_planner'])
    assert args == {'checkpoint': 'a.pt'} and names == ['grasp_planner']


def test_bringup_nodes_get_file_parameters(tmp_path):
    """Real nodes from bringup.create_nodes: parameters = YAML merged with launch arguments."""
    rclpy = pytest.importorskip('rclpy')
    torch = pytest.importorskip('torch')
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    specs = [s for s in bringup.node_specs({'checkpoint': ck, 'camera_ns': 'cam2',
                                            'executor_backend': 'moveit', 'sim': 'false'})
             if s.name in ('descriptor_node', 'grasp_planner')]
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    nodes = {}
    try:
        nodes = bringup.create_nodes(specs, context=ctx)
        for s in specs:
            node = nodes[s.name]
            assert node.get_name() == s.name
            for k, v in bringup.merged_parameters(s).items():
                assert node.get_parameter(k).value == v, (s.name, k)
        planner = nodes['grasp_planner']
        assert planner.get_parameter('checkpoint').value == ck and planner.pipeline is not None
        subs = planner.get_subscriptions_info_by_topic('/cam2/color/image_raw')
        assert any(i.node_name == 'grasp_planner' for i in subs)  # remapped camera topic
    finally:
        for n in nodes.values():
            n.destroy_node()
        rclpy.shutdown(context=ctx)


def test_bringup_reports_missing_node_module():
    spec = bringup.NodeSpec(
        'ghost',
        'ghost',
        'ccl_perception.nodes.no_such_node:Ghost',
        'ghost.yaml')
    with pytest.raises(RuntimeError, match="cannot start node 'ghost'"):
        bringup.create_nodes([spec])


@pytest.mark.skipif(not (_have('launch') and _have('launch_ros') and _have('launch_testing')),
                    reason='launch, launch_ros and launch_testing are not installable here '
                           '(not on the Python package registry); this runs in a ROS 2 workspace')
def test_launch_service_starts_pipeline(tmp_path):
    """
    Run grasp.launch.py with the real LaunchService and wait for the planner's status topic.

    The LaunchService runs in its own process, on its main thread.
    """
    import signal
    import subprocess
    import time

    import rclpy
    import rclpy.executors
    import torch
    from std_msgs.msg import String

    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    script = (
        'import sys\n'
        'from launch import LaunchDescription, LaunchService\n'
        'from launch.actions import IncludeLaunchDescription\n'
        'from launch.launch_description_sources import PythonLaunchDescriptionSource\n'
        'ld = LaunchDescription([IncludeLaunchDescription('
        'PythonLaunchDescriptionSource(sys.argv[1]),\n'
        '    launch_arguments={"checkpoint": sys.argv[2], "sim": "true", '
        '"executor_backend": "sim"}.items())])\n'
        'ls = LaunchService()\n'
        'ls.include_launch_description(ld)\n'
        'sys.exit(ls.run())\n')
    proc = subprocess.Popen([sys.executable, '-c', script, LAUNCH_FILE, ck])
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node('launch_probe', context=ctx)
    got = []
    node.create_subscription(String, '/grasp_planner/status', got.append, 10)
    spinner = rclpy.executors.SingleThreadedExecutor(context=ctx)
    spinner.add_node(node)
    try:
        end = time.time() + 60
        while time.time() < end and not got and proc.poll() is None:
            spinner.spin_once(timeout_sec=0.2)
        assert got, 'grasp planner started by the launch file published no status'
        assert got[0].data.startswith(('ok', 'abstain'))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        spinner.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_bringup_main_process(tmp_path):
    """The console script end to end: starts the chosen nodes, planner publishes its status."""
    import signal
    import subprocess
    import time

    rclpy = pytest.importorskip('rclpy')
    torch = pytest.importorskip('torch')
    import rclpy.executors
    from std_msgs.msg import String

    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    proc = subprocess.Popen([sys.executable, '-m', 'ccl_perception.bringup', f'checkpoint:={ck}',
                             'sim:=false', 'executor_backend:=moveit',
                             '--nodes', 'descriptor_node', 'grasp_planner'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node(f'bringup_probe_{os.getpid()}', context=ctx)
    got = []
    node.create_subscription(String, '/grasp_planner/status', got.append, 10)
    spinner = rclpy.executors.SingleThreadedExecutor(context=ctx)
    spinner.add_node(node)
    from sensor_msgs.msg import Image
    import numpy as np
    from ccl_perception import image_conversion as ic
    # no camera here: publish synthetic frame pairs so that the planner reports its status
    pubs = [node.create_publisher(Image, t, 10) for t in
            ('camera/color/image_raw', 'camera/aligned_depth_to_color/image_raw')]
    frames = (ic.numpy_to_image(np.zeros((16, 16, 3), np.uint8), 'rgb8'),
              ic.numpy_to_image(np.zeros((16, 16), np.uint16), '16UC1'))
    try:
        end = time.time() + 45
        while time.time() < end and not got and proc.poll() is None:
            for pub, msg in zip(pubs, frames):
                pub.publish(msg)
            spinner.spin_once(timeout_sec=0.3)
        assert got, f'no status from the bringup planner; exit code {proc.poll()}'
        assert 'no target set' in got[0].data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)  # a loaded 2-core CI machine is slow to stop
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        spinner.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert 'started descriptor_node, grasp_planner' in out
    assert proc.returncode == 0, out[-2000:]


def test_rviz_config_shows_pipeline_topics():
    import yaml
    with open(os.path.join(ROOT, 'config', 'ccl.rviz')) as f:
        cfg = yaml.safe_load(f)['Visualization Manager']
    topics = {d['Topic']['Value']: d['Class'] for d in cfg['Displays'] if 'Topic' in d}
    assert topics == {
        '/camera/color/image_raw': 'rviz_default_plugins/Image',
        '/grasp_planner/heatmap': 'rviz_default_plugins/Image',
        '/descriptors/visualization': 'rviz_default_plugins/Image',
        '/grasp_planner/markers': 'rviz_default_plugins/MarkerArray',
        '/grasp_pose': 'rviz_default_plugins/Pose',
    }
    assert cfg['Global Options']['Fixed Frame'] == 'camera_color_optical_frame'
    from ccl_perception.nodes import CLICKED_POINT_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
    cloud = [d for d in cfg['Displays'] if d['Class'] == 'rviz_default_plugins/DepthCloud']
    assert len(cloud) == 1 and cloud[0]['Depth Map Topic'] == '/' + DEPTH_TOPIC
    assert cloud[0]['Color Image Topic'] == '/' + COLOR_TOPIC
    tools = {t['Class']: t for t in cfg['Tools']}
    assert tools['rviz_default_plugins/PublishPoint']['Topic']['Value'] \
        == '/' + CLICKED_POINT_TOPIC
