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
Tools that crashed or reported garbage on bad input (issue 20, "Crashes and silent garbage").

* ``evaluate --threads 100000`` segfaulted: now one line naming the bound (1 to 1024);
* ``soak_planner.py --rate=-5`` left a planner running: every argument is checked before
  anything starts, and the planner processes are stopped whatever fails after they started;
* ``demo --out <old folder> --checkpoint X`` reported the old model's grasp results under
  X's name: results are reused only for the same model identity and settings.
"""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(main, argv, capsys):
    """``main(argv)`` -> ``(exit code, stderr lines)``; argparse's SystemExit counts."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def _training_main(script: str):
    sys.path.insert(0, os.path.join(REPO, 'training'))
    try:
        return __import__(script).main
    finally:
        sys.path.pop(0)


# --------------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize('threads,ok', [('100000', False), ('1025', False), ('0', False),
                                        ('-3', False), ('1024', True)])
def test_evaluate_threads_are_bounded(threads, ok, capsys, tmp_path, monkeypatch):
    import torch
    main = _training_main('evaluate')
    asked = []  # not this test process's thread count: only what evaluate asks for
    monkeypatch.setattr(torch, 'set_num_threads', asked.append)
    rc, err = call(main, ['--threads', threads, '--pairs', str(tmp_path / 'none.json'),
                          '--json', str(tmp_path / 'r.json')], capsys)
    assert rc == 2 and len(err) == 1
    assert asked == ([int(threads)] if ok else [])
    if ok:  # the bound itself is accepted: the run gets as far as the missing pairs file
        assert 'pairs file not found' in err[0], err
    else:
        assert err[0] == (f'evaluate: error: argument --threads: {threads} is not allowed: '
                          'must be an integer in [1, 1024] (see --help)')


def test_evaluate_threads_100000_as_a_user_runs_it(tmp_path):
    """The real process: exit 2 and one line, never a segfault (exit -11)."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'training', 'evaluate.py'),
                           '--threads', '100000', '--pairs', 'x.json'], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        'evaluate: error: argument --threads: 100000 is not allowed: must be an integer in '
        '[1, 1024] (see --help)']


# ----------------------------------------------------------------------------- soak_planner
@pytest.mark.parametrize('argv,message', [
    (['--rate=-5'], 'argument --rate: -5.0 is not allowed: must be a finite number in (0, 1000]'),
    (['--rate', '0'], 'argument --rate: 0.0 is not allowed'),
    (['--rate', 'fast'], "argument --rate: 'fast' is not a number"),
    (['--duration', '0'], 'argument --duration: 0.0 is not allowed'),
    (['--every', '-1'], 'argument --every: -1.0 is not allowed'),
    (['--width', '8'], 'argument --width: 8 is not allowed: must be an integer in [32, 4096]'),
    (['--max-rate-hz', 'nan'], 'argument --max-rate-hz: nan is not allowed'),
    (['--checkpoint', 'missing.pt'], "--checkpoint 'missing.pt' does not exist"),
    (['--target', 'missing.npz'], "--target 'missing.npz' does not exist"),
])
def test_soak_planner_refuses_bad_arguments_before_starting(argv, message, capsys, monkeypatch):
    main = _training_main('soak_planner')
    import soak_planner
    started = []
    monkeypatch.setattr(soak_planner, 'start', lambda *a: started.append(a))  # must not run
    monkeypatch.setattr(soak_planner, 'make_assets', lambda *a: started.append(a))
    rc, err = call(main, argv, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith('soak_planner: error: '), err
    assert message in err[0], err
    assert started == []


def test_soak_planner_stops_its_planner_whatever_fails(monkeypatch):
    """A failure after the planner process started still stops it (no process left)."""
    pytest.importorskip('rclpy')
    _training_main('soak_planner')
    import soak_planner
    procs = []

    def start(*args):
        procs.append(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']))
        return procs[0], procs

    def measure(*args):
        raise RuntimeError('the feeder broke')

    monkeypatch.setattr(soak_planner, 'start', start)
    monkeypatch.setattr(soak_planner, '_measure', measure)
    import types

    import numpy as np
    args = types.SimpleNamespace(rate=10.0, width=64, height=48, max_rate_hz=10.0)
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    with pytest.raises(RuntimeError, match='the feeder broke'):
        soak_planner.soak('planner', args, 'ck.pt', 't.npz', np.zeros((48, 64, 3), np.uint8),
                          np.zeros((48, 64), np.uint16), K)
    assert procs and procs[0].poll() is not None  # stopped, not left running


# ------------------------------------------------------------------------------------ demo
class FakeRunner:
    """Stands in for the ROS trial runner: records the model, grasps everything."""

    made = []

    def __init__(self, checkpoint, target_dir, world_config, downscale=1, planner=None):
        self.checkpoint = checkpoint
        FakeRunner.made.append(checkpoint)

    def trial(self, name, present, timeout, seed, surface=None):
        return {'seed': seed, 'target': name, 'present': present, 'objects': [],
                'planner': 'pose', 'outcome': 'grasped', 'model': self.checkpoint}

    def close(self):
        pass


def test_demo_never_reports_an_old_models_results_under_a_new_name(tmp_path, monkeypatch):
    import json
    torch = pytest.importorskip('torch')
    from ccl_perception import demo, ros_trial_runner
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    monkeypatch.setattr(ros_trial_runner, 'RosTrialRunner', FakeRunner)
    FakeRunner.made = []
    cks = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cks.append(save_checkpoint(str(tmp_path / f'model_{seed}.pt'),
                                   DescriptorNet('resnet18', 8, pretrained=False)))
    cfg = demo.load_demo_config(['n_targets=1', 'present_per_target=1', 'absent_per_target=0'])
    cfg['out'] = str(tmp_path / 'out')
    os.makedirs(cfg['out'])
    targets = {'duck': str(tmp_path / 'out' / 'targets' / 'duck.npz')}
    schedule = [(cfg['scene_seed'], 'duck', True, '', ())]  # (seed, target, present, table, tags)
    old = demo.stage_grasp(cfg, cks[0], targets, schedule)  # an earlier run with model 0
    assert [t['model'] for t in old] == [cks[0]]
    # --out <old folder> --checkpoint model 1
    new = demo.stage_grasp(cfg, cks[1], targets, schedule)
    assert FakeRunner.made == [cks[0], cks[1]]  # the scenes ran again, with model 1
    assert [t['model'] for t in new] == [cks[1]]
    with open(os.path.join(cfg['out'], 'results.json'), encoding='utf-8') as f:
        assert json.load(f)['checkpoint'] == cks[1]
    again = demo.stage_grasp(cfg, cks[1], targets, schedule)  # same model and settings: reused
    assert FakeRunner.made == [cks[0], cks[1]] and again == new
    cfg['scene_seed'] += 1  # other scenes: run again
    demo.stage_grasp(cfg, cks[1], targets, schedule)
    assert FakeRunner.made == [cks[0], cks[1], cks[1]]
