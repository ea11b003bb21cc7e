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
The package as a ROS 2 user builds it: colcon build, the install space, colcon test.

One throw-away workspace per run (``<tmp>/ws/src/ccl_perception`` = the tracked and
untracked-but-not-ignored files of this checkout, as a fresh clone has them), then:

* ``colcon build --packages-select ccl_perception`` succeeds and installs the entry points
  under ``install/ccl_perception/lib/ccl_perception/``, the share files (package.xml,
  LICENSE, launch, config, training configs) and the ament index marker;
* after ``source install/setup.bash``: ``ament_index_python`` finds the share directory,
  ``ccl_perception`` is imported from the install space (not this checkout), bringup's
  ``config_dir()`` is the installed one, ``make_target --help`` and ``ccl --help`` run (and ``ccl``
  ends a bad input with one line), and the installed
  ``grasp_planner_node`` started with the venv's Python publishes its status over DDS;
* ``colcon test --packages-select ccl_perception`` runs :data:`COLCON_TEST_SUBSET` (the
  linters and the fast ROS-free checks; the whole suite already runs in ``make test``) and
  ``colcon test-result --all`` reports it with no failure.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
COLCON = os.path.join(BIN, 'colcon')
PKG = 'ccl_perception'
ENTRY_POINTS = {'descriptor_node', 'grasp_planner_node', 'grasp_executor_node', 'sim_world_node',
                'target_maker_node', 'bringup', 'make_target', 'ccl'}
#: What ``colcon test`` runs (documented in README "In a ROS 2 workspace").
COLCON_TEST_SUBSET = ['test/test_flake8.py', 'test/test_pep257.py', 'test/test_copyright.py',
                      'test/test_xmllint.py', 'test/test_structure.py',
                      'test/test_planner_state.py']

pytestmark = pytest.mark.skipif(not os.path.isfile(COLCON), reason=(
    f'colcon is not installed next to {sys.executable} (requirements.txt pins it)'))


def source_files():
    """Paths (relative) of a fresh clone: tracked + untracked files git does not ignore."""
    try:
        out = subprocess.run(
            ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
            cwd=ROOT, check=True, capture_output=True).stdout
        return [p for p in out.decode().split('\0') if p and os.path.isfile(os.path.join(ROOT, p))]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout: cannot tell which files a clone has')


def run(cmd, cwd, env=None, timeout=300, check=True):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, \
            f'{cmd} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}'
    return res


def in_install(ws, *cmd):
    """``cmd`` run by bash after ``source install/setup.bash`` (as a ROS user would)."""
    return ['bash', '-c', 'source install/setup.bash && exec "$@"', 'bash', *cmd]


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp('colcon') / 'ws'
    src = ws / 'src' / PKG
    for rel in source_files():
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), dst)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    run([COLCON, 'build', '--packages-select', PKG], cwd=ws, env=env)
    return ws, env


def test_build_installs_entry_points_share_files_and_index_marker(ws):
    ws, _ = ws
    inst = ws / 'install' / PKG
    assert ENTRY_POINTS <= set(os.listdir(inst / 'lib' / PKG))
    share = inst / 'share' / PKG
    assert (share / 'package.xml').is_file() and (share / 'LICENSE').is_file()
    assert (share / 'launch' / 'grasp.launch.py').is_file()
    assert {
        os.path.basename(p) for p in os.listdir(
            share /
            'config')} == set(
        os.listdir(
            os.path.join(
                ROOT,
                'config')))
    assert set(os.listdir(share / 'training' / 'configs')) == {
        f for f in os.listdir(os.path.join(ROOT, 'training', 'configs')) if f.endswith('.yaml')}
    assert (inst / 'share' / 'ament_index' / 'resource_index' / 'packages' / PKG).is_file()


def test_install_space_is_what_python_and_ament_index_see(ws):
    ws, env = ws
    probe = ('import os, ccl_perception, ccl_perception.bringup as b\n'
             'from ament_index_python.packages import get_package_share_directory as g\n'
             'print(g("ccl_perception")); print(os.path.dirname(ccl_perception.__file__)); '
             'print(b.config_dir())')
    out = run(in_install(ws, sys.executable, '-c', probe), cwd=ws, env=env).stdout.split('\n')
    share, module_dir, config = out[0], out[1], out[2]
    assert share == str(ws / 'install' / PKG / 'share' / PKG)
    assert module_dir.startswith(str(ws / 'install' / PKG / 'lib')), module_dir
    assert config == os.path.join(share, 'config')
    for f in ('grasp_planner.yaml', 'ccl.rviz'):
        assert os.path.isfile(os.path.join(config, f))
    assert os.path.isfile(os.path.join(share, 'launch', 'grasp.launch.py'))
    assert os.path.isfile(os.path.join(share, 'training', 'configs', 'default.yaml'))


def test_installed_entry_point_runs(ws):
    ws, env = ws
    exe = str(ws / 'install' / PKG / 'lib' / PKG / 'make_target')
    res = run(in_install(ws, exe, '--help'), cwd=ws, env=env)
    assert res.stdout.startswith('usage: make_target') and '--checkpoint' in res.stdout
    ccl = str(ws / 'install' / PKG / 'lib' / PKG / 'ccl')
    res = run(in_install(ws, ccl, '--help'), cwd=ws, env=env)
    assert res.stdout.startswith('usage: ccl') and 'grab-frame' in res.stdout
    res = run(in_install(ws, ccl, 'preview', '--image', 'missing.png', '--points', '1,1', '9,1',
                         '--out', 'p.png'), cwd=ws, env=env, check=False)
    assert res.returncode == 2 and res.stderr == (
        "ccl preview: error: image 'missing.png' does not exist\n")


def test_installed_node_publishes_status_over_dds(ws):
    rclpy = pytest.importorskip('rclpy')
    import numpy as np
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ccl_perception.nodes.messages import image_msg
    ws, env = ws
    name = f'installed_planner_{os.getpid()}'
    exe = str(ws / 'install' / PKG / 'lib' / PKG / 'grasp_planner_node')
    proc = subprocess.Popen(in_install(ws, exe, '--ros-args', '-r', f'__node:={name}'), cwd=ws,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node(f'install_probe_{os.getpid()}', context=ctx)
    got = []
    node.create_subscription(String, f'/{name}/status', got.append, 10)
    pubs = [node.create_publisher(Image, t, 10) for t in
            ('camera/color/image_raw', 'camera/aligned_depth_to_color/image_raw')]
    frames = (image_msg(np.zeros((16, 16, 3), np.uint8), 'rgb8'),
              image_msg(np.zeros((16, 16), np.uint16), '16UC1'))
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        end = time.time() + 60
        while time.time() < end and not got and proc.poll() is None:
            for pub, msg in zip(pubs, frames):
                pub.publish(msg)
            ex.spin_once(timeout_sec=0.3)
        assert got, f'no status from the installed planner; exit code {proc.poll()}'
        # no checkpoint given: the installed node loads the shipped default model from the
        # install space (package_data) and then waits for a target
        assert got[0].data.startswith('abstain: no target set'), got[0].data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert proc.returncode == 0, out[-2000:]


def test_colcon_test_runs_the_subset_and_test_result_reports_it(ws):
    ws, env = ws
    env = dict(env, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    res = run([COLCON, 'test', '--packages-select', PKG, '--event-handlers', 'console_direct+',
               '--pytest-args', *COLCON_TEST_SUBSET], cwd=ws, env=env, timeout=900, check=False)
    report = run([COLCON, 'test-result', '--all', '--verbose'], cwd=ws, env=env, check=False)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert report.returncode == 0, report.stdout[-4000:]
    # "Summary: N tests, 0 errors, 0 failures, M skipped"
    summary = report.stdout.strip().splitlines()[-1]
    n = int(summary.split()[1])
    assert summary.startswith('Summary:') and ' 0 errors, 0 failures' in summary, summary
    assert n >= len(COLCON_TEST_SUBSET), summary
