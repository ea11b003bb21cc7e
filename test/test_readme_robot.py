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
The README's robot section, walked as written, with the simulated world as the robot (issue 20).

What it covers: every shell line of README "Using it on a robot" whose program exists in
this venv -- ``sim_world_node`` (the robot stand-in: camera and Panda), ``ccl record``,
``python training/collect_frames.py``, ``python training/train.py``, ``ccl grab-frame``,
``ccl preview``, ``make_target``, ``bringup``, ``ccl set-target``, ``ccl status``, ``ccl
execute``, ``ccl reload`` -- in the README's order, in a fresh folder, each from the README
text itself, through ``python -m`` (the console scripts of a fresh install run the same
``main``). The test ends when ``ccl execute`` reports a grasp that lifted an object.

What it changes, and only this: ``ccl record ... --duration 300`` is stopped with Ctrl-C
(SIGINT) once the test has re-arranged the scene, :data:`SCENES` scenes in all, as a person
moving objects would (:data:`SETTLE_S` s per scene); (:func:`as_run`) the
training runs :data:`TRAIN_STEPS` steps (``--set train.steps=...``), and the example
``--points`` are replaced by points on a graspable object of the grabbed frame (found in its
depth: above the table, narrow enough for the gripper), as a user picks them.

Not run: ``ros2 ...`` lines (no ROS 2 install here), ``torchrun`` (several GPUs), and the
``ros2 launch`` / ``bringup ... executor_backend:=moveit`` MoveIt line (no MoveIt here).
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
#: README program -> how it runs here (its console script's ``main``).
PROGRAMS = {'ccl': [PY, '-m', 'ccl_perception.ccl_cli'],
            'make_target': [PY, '-m', 'ccl_perception.targets'],
            'bringup': [PY, '-m', 'ccl_perception.bringup'],
            'sim_world_node': [PY, '-m', 'ccl_perception.nodes.sim_world_node'],
            'python': [PY]}
NOT_RUN = {'ros2': 'needs a ROS 2 install', 'torchrun': 'needs several GPUs'}
#: Long-running programs: started in the background, stopped with SIGINT at the end.
SERVERS = ('sim_world_node', 'bringup')
#: Scenes recorded (each reset renders a new scene and viewpoint: 2-10 s on a loaded 2-core
#: machine); every scene gives at least one frame, so collect_frames keeps several. Scenes are
#: a function of their seed: the last one (seed 5) shows a cupcake (5.8 cm across) in the
#: middle of the image, whole, which :func:`choose_points` picks as the target.
SCENES = 6
#: Seconds recorded per scene before the next reset.
SETTLE_S = 2.0
TRAIN_STEPS = 2
#: The README's order of the runnable commands (program + first argument).
EXPECTED = ['sim_world_node', 'ccl record', 'python training/collect_frames.py',
            'python training/train.py', 'ccl grab-frame', 'ccl preview', 'make_target',
            'bringup', 'ccl set-target', 'ccl status', 'ccl execute', 'ccl reload']


def robot_section() -> str:
    text = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    start = text.index('## Using it on a robot')
    return text[start:text.index('\n## ', start + 1)]


def readme_commands(section: str) -> list:
    """Every command line of the section's ``bash`` blocks, as argument lists."""
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', section, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


def key(argv) -> str:
    return ' '.join(argv[:2]) if argv[0] in ('ccl', 'python') else argv[0]


def test_the_readme_lists_what_this_test_runs():
    """If the README's robot commands change, this test has to change with them."""
    commands = readme_commands(robot_section())
    assert {c[0] for c in commands} <= set(PROGRAMS) | set(NOT_RUN)
    assert [key(c) for c in commands if c[0] in PROGRAMS] == EXPECTED


def choose_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """
    Pick target points as a user would: on the nearest-to-centre graspable object.

    The table is the dominant plane of the depth; objects are the connected regions more
    than 1 cm above it, away from the image border; graspable = 1.5-6 cm across its short
    side and at most 20 cm along its long side (in the table plane).
    Points: ``sim.auto_targets.auto_grasp_pixels`` (across the short side + 8 more).
    """
    import cv2

    from ccl_perception.geometry import backproject
    from ccl_perception.grasp_refine import support_plane
    from ccl_perception.sim.auto_targets import auto_grasp_pixels
    H, W = depth.shape
    ys, xs = np.mgrid[:H, :W]
    pts = backproject(np.stack([xs.ravel(), ys.ravel()], 1).astype(float), depth.ravel(),
                      K).reshape(H, W, 3)
    valid = np.isfinite(depth)
    n, d = support_plane(pts[valid][::7])
    height = np.where(valid, pts @ n + d, 0.0)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (height > 0.01).astype(np.uint8))
    u = np.linalg.svd(np.eye(3) - np.outer(n, n))[0][:, :2]  # a basis of the table plane
    best = None
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < 400 or x == 0 or y == 0 or x + w == W or y + h == H:
            continue
        xy = pts[labels == i] @ u
        xy -= xy.mean(0)
        axes = np.linalg.eigh(np.cov(xy.T))[1]  # minor, major
        width, length = (float(np.ptp(xy @ axes[:, j])) for j in (0, 1))
        dist = float(np.hypot(*(centroids[i] - (W / 2, H / 2))))
        if 0.015 < width < 0.06 and length < 0.2 and (best is None or dist < best[0]):
            best = (dist, i)
    assert best is not None, 'no graspable object in the grabbed frame'
    return auto_grasp_pixels(labels == best[1], n_spread=5)


def as_run(argv, points=None) -> list:
    """Return the README command as this test runs it (the module docstring lists changes)."""
    argv = list(argv)
    if key(argv) == 'python training/train.py':
        argv += ['--set', f'train.steps={TRAIN_STEPS}', '--set', 'train.progress=false']
    if '--points' in argv:
        i = argv.index('--points') + 1
        j = i
        while j < len(argv) and not argv[j].startswith('--'):
            j += 1
        argv[i:j] = [f'{x:.1f},{y:.1f}' for x, y in points]
    return PROGRAMS[argv[0]] + argv[1:]


@pytest.mark.timeout(1500)  # ~4 min on a quiet 2-core machine, 11 min at load average 12
def test_readme_robot_section_runs_as_written(tmp_path):
    pytest.importorskip('rclpy')
    pytest.importorskip('torch')
    from ccl_perception import targets as tg
    from ccl_perception.node_limits import EXECUTOR_PARAMS
    from ccl_perception.nodes import private, RESET_SERVICE
    from ccl_perception.ros_client import RosClient
    os.symlink(os.path.join(ROOT, 'training'), tmp_path / 'training')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')])}
    servers, log, outputs = [], [], {}

    def run(argv, timeout=600):
        log.append(' '.join(argv))
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=timeout)
        log.append(p.stdout + p.stderr)
        shown = argv[2:] if argv[1] == '-m' else argv[1:]
        print(f'{time.monotonic() - t0:6.1f} s  {" ".join(shown)}')  # pytest -s shows them
        return p

    def start(argv, extra=()):
        out = open(tmp_path / f'{len(servers)}_{os.path.basename(argv[2])}.log', 'w')
        servers.append(subprocess.Popen(list(argv) + list(extra), cwd=tmp_path, env=env,
                                        stdout=out, stderr=subprocess.STDOUT))

    commands = [c for c in readme_commands(robot_section()) if c[0] in PROGRAMS]
    points = None
    try:
        with RosClient('readme_walk', timeout=120) as robot:
            for argv in commands:
                k = key(argv)
                if argv[0] in SERVERS:
                    extra = []
                    if argv[0] == 'sim_world_node' and EXECUTOR_PARAMS['auto_execute']:
                        # until the executor's default is execute-on-request (issue 20)
                        (tmp_path / 'on_request.yaml').write_text(
                            'grasp_executor:\n  ros__parameters:\n    auto_execute: false\n')
                        extra = ['--ros-args', '--params-file', str(tmp_path / 'on_request.yaml')]
                    start(as_run(argv), extra)
                    # ready when its service answers (the world renders its first scene)
                    name = '/sim_world/get_parameters' if argv[0] == 'sim_world_node' \
                        else '/grasp_planner/get_parameters'
                    from rcl_interfaces.srv import GetParameters
                    robot.call(GetParameters, name, GetParameters.Request(names=['target']))
                    continue
                if k == 'ccl record':  # a person re-arranges the objects while it records
                    log.append(' '.join(as_run(argv)))
                    rec = subprocess.Popen(as_run(argv), cwd=tmp_path, env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                    robot.wait_for(lambda: (tmp_path / 'my_bag').exists(), 'bag', 60)
                    for i in range(SCENES):
                        time.sleep(SETTLE_S)
                        if i < SCENES - 1:
                            assert robot.trigger(private('sim_world', RESET_SERVICE))[0]
                    rec.send_signal(signal.SIGINT)  # Ctrl-C: the bag is closed, complete
                    out, _ = rec.communicate(timeout=120)
                    log.append(out)
                    assert rec.returncode == 0, '\n'.join(log)
                    continue
                if k in ('ccl preview', 'make_target') and points is None:
                    ref = tmp_path / 'ref' / 'mug'
                    points = choose_points(tg.read_depth(str(ref / 'depth.png')),
                                           tg.parse_intrinsics(str(ref / 'camera_info.yaml')))
                if k == 'ccl execute':  # a pose first: the user watches `ccl status` for ok
                    end = time.monotonic() + 180
                    while 'status: ok: mug' not in outputs['ccl status'] \
                            and time.monotonic() < end:
                        outputs['ccl status'] = run(as_run(['ccl', 'status'])).stdout
                    assert 'status: ok: mug' in outputs['ccl status'], '\n'.join(log[-6:])
                p = run(as_run(argv, points))
                assert p.returncode == 0, '\n'.join(log[-4:])
                outputs[k] = p.stdout
            assert 'grasp succeeded: lifted' in outputs['ccl execute'], '\n'.join(log[-8:])
    finally:
        for s in reversed(servers):
            s.send_signal(signal.SIGINT)
            try:
                s.wait(timeout=60)
            except subprocess.TimeoutExpired:
                s.kill()
                s.wait()
    assert [s.returncode for s in servers] == [0, 0]
    assert (tmp_path / 'targets' / 'mug.npz').is_file()
    assert tg.load_target(str(tmp_path / 'targets' / 'mug.npz')).downscale == 2
