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
Every command-line tool, through its known bad inputs: one line on stderr, exit code 2.

In-process (``main(argv)``) for speed, with the real console wiring checked once per tool
family in a subprocess (the script file as a user runs it: exit code, stderr, no traceback).
"""
import json
import logging
import os
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Write a tiny valid checkpoint, a corrupt one, a 64x48 image, its depth and a plain file."""
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    d = tmp_path_factory.mktemp('cli')
    torch.manual_seed(0)
    ck = save_checkpoint(str(d / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    (d / 'corrupt.pt').write_bytes(b'PK\x03\x04 truncated' + bytes(range(64)))
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3)).astype(np.uint8)
    cv2.imwrite(str(d / 'ref.png'), rgb)
    cv2.imwrite(str(d / 'depth.png'), np.full((48, 64), 500, np.uint16))
    (d / 'plain_file').write_text('not a folder')
    return {'dir': d, 'ck': ck, 'corrupt': str(d / 'corrupt.pt'), 'image': str(d / 'ref.png'),
            'depth': str(d / 'depth.png'), 'file': str(d / 'plain_file')}


def call(main, argv, capsys):
    """``main(argv)`` -> ``(exit code, stderr)``; argparse's SystemExit counts as a return."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


def assert_one_line_error(rc, err, prog, message):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f'exit code {rc}, stderr: {err}'
    assert 'Traceback' not in err
    assert lines and lines[-1].startswith(f'{prog}: error: '), err
    assert message in lines[-1], lines[-1]


# ----------------------------------------------------------------------------- make_target
def _target_args(f, **change):
    args = {'--checkpoint': f['ck'], '--image': f['image'], '--depth': f['depth'],
            '--intrinsics': '50,50,31.5,23.5', '--name': 'cup',
            '--out': str(f['dir'] / 'out' / 'cup.npz')}
    args.update(change)
    points = args.pop('--points', ['11.5,19.5', '35.5,19.5'])
    argv = [a for k, v in args.items() if v is not None for a in (k, v)]
    return argv + ['--points', *points]


@pytest.mark.parametrize('change,message', [
    ({'--checkpoint': 'missing.pt'}, 'checkpoint not found: missing.pt'),
    ({'--checkpoint': 'CORRUPT'}, 'is corrupt, truncated or not a torch file'),
    ({'--out': 'FILE/cup.npz'}, 'cannot write the target to'),
    ({'--out': 'cup.txt'}, 'must end in .npz'),
    ({'--points': ['nan,10', '40,11']}, 'point 1 (nan, 10) is not finite'),
    ({'--points': ['20,20', '20,20']},
     'points 1 and 2 (the grasp axis) are 0.00 px apart; they must be at least 4 px'),
    ({'--points': ['5000,-300', '20,20']}, 'point 1 (5000, -300) is outside the 64x48 image'),
    ({'--points': ['a,b', '20,20']}, "point (x,y) 'a,b': 'a' is not a number"),
    ({'--intrinsics': '50,50,1e9,23.5'},
     'principal point (cx, cy) = (1e+09, 23.5) is outside the 64x48 image'),
    ({'--intrinsics': 'fx,50,31.5,23.5'},
     "intrinsics (fx,fy,cx,cy) 'fx,50,31.5,23.5': 'fx' is not a number"),
    ({'--intrinsics': '0,50,31.5,23.5'}, 'positive focal lengths, got fx=0'),
    ({'--intrinsics': None}, '--depth needs --intrinsics'),
    ({'--image': 'missing.png'}, "image 'missing.png' does not exist"),
    ({'--image': 'FILE'}, 'cannot read image'),
    ({'--depth': 'missing.png'}, "depth file 'missing.png' does not exist"),
    ({'--depth-scale': '0'},
     'argument --depth-scale: 0.0 is not allowed: must be a finite number > 0'),
    ({'--device': 'tpu'}, "device = 'tpu' is not allowed"),
])
def test_make_target(files, capsys, change, message):
    from ccl_perception.targets import main
    change = {k: (files['corrupt'] if v == 'CORRUPT' else v.replace('FILE', files['file'])
                  if isinstance(v, str) else v) for k, v in change.items()}
    rc, err = call(main, _target_args(files, **change), capsys)
    assert_one_line_error(rc, err, 'make_target', message)
    assert not (files['dir'] / 'out' / 'cup.npz').exists()


def test_make_target_good_input_still_works(files, capsys):
    from ccl_perception.targets import main
    out = files['dir'] / 'good' / 'cup.npz'
    rc, err = call(main, _target_args(files, **{'--out': str(out)}), capsys)
    assert rc == 0 and out.is_file(), err


# -------------------------------------------------------------------------------- evaluate
def _pairs(folder: Path, **image_0) -> str:
    from ccl_perception.evaluation.pairs import save_pairs
    (folder / 'images').mkdir(parents=True, exist_ok=True)
    for n in 'ab':
        cv2.imwrite(str(folder / 'images' / f'{n}.png'), np.zeros((48, 64, 3), np.uint8))
    kp = {'keypoints': [[10.0, 10.0]], 'visible': [True]}
    images = [{'file': 'images/a.png', 'objects': {'o': kp}},
              {'file': 'images/b.png', 'objects': {'o': kp}}]
    images[0].update(image_0)
    path = folder / 'pairs.json'
    data = {'format': 'ccl_pairs', 'version': 1,
            'images': images, 'pairs': [{'image_1': 0, 'image_2': 1}]}
    path.write_text(json.dumps(data))
    if not image_0:
        save_pairs(str(path), images, data['pairs'])
    return str(path)


@pytest.mark.parametrize('case,message', [
    ('missing_checkpoint', 'checkpoint not found: nope.pt'),
    ('corrupt_checkpoint', 'is corrupt, truncated or not a torch file'),
    ('missing_pairs', 'pairs file not found: nowhere/pairs.json'),
    ('escape', "images[0].file '../a.png' must name a file inside the JSON file's folder"),
    ('outside', "images[0] 'images/a.png': visible keypoint 0 of 'o' at (5000, -300) "
                'is outside the 64x48 image'),
    ('declared', "images[0] 'images/a.png' is 64x48 px but the pairs file declares 640x480"),
    ('tau', 'argument --tau: 0.0 is not allowed: must be a finite number in (0, 1]'),
    ('device', "device = 'tpu' is not allowed"),
    ('json', "--json 'out.txt' must end in .json"),
])
def test_evaluate(files, tmp_path, capsys, case, message):
    from training.evaluate import main
    outside = {'o': {'keypoints': [[5000, -300]], 'visible': [True]}}
    pairs = {'escape': lambda: _pairs(tmp_path, file='../a.png'),
             'outside': lambda: _pairs(tmp_path, objects=outside),
             'declared': lambda: _pairs(tmp_path, width=640, height=480),
             }.get(case, lambda: _pairs(tmp_path))()
    checkpoint = {'missing_checkpoint': 'nope.pt',
                  'corrupt_checkpoint': files['corrupt']}.get(case, files['ck'])
    argv = ['--checkpoint', checkpoint,
            '--pairs', 'nowhere/pairs.json' if case == 'missing_pairs' else pairs,
            '--json', 'out.txt' if case == 'json' else str(tmp_path / 'res.json')]
    argv += {'tau': ['--tau', '0'], 'device': ['--device', 'tpu']}.get(case, [])
    rc, err = call(main, argv, capsys)
    assert_one_line_error(rc, err, 'evaluate', message)
    assert not (tmp_path / 'res.json').exists()


# ----------------------------------------------------------------------------- export_onnx
@pytest.mark.parametrize('argv,message', [
    (['--checkpoint', 'nope.pt', '--out', 'OUT/m.onnx'], 'checkpoint not found: nope.pt'),
    (['--checkpoint', 'CORRUPT', '--out', 'OUT/m.onnx'],
     'is corrupt, truncated or not a torch file'),
    (['--checkpoint', 'CK', '--out', 'OUT/m.txt'], 'must end in .onnx'),
    (['--checkpoint', 'CK', '--out', 'FILE/m.onnx'], 'FILE'),
    (['--checkpoint', 'CK', '--out', 'OUT/m.onnx', '--height', '0'],
     'argument --height: 0 is not allowed: must be an integer in [8, 8192]'),
    (['--checkpoint', 'CK', '--out', 'OUT/m.onnx', '--tolerance', 'x'],
     "argument --tolerance: 'x' is not a number"),
])
def test_export_onnx(files, tmp_path, capsys, argv, message):
    from training.export_onnx import main
    swap = {
        'CK': files['ck'],
        'CORRUPT': files['corrupt'],
        'OUT': str(tmp_path),
        'FILE': files['file']}
    argv = [next((a.replace(k, v) for k, v in swap.items() if k in a), a) for a in argv]
    rc, err = call(main, argv, capsys)
    assert_one_line_error(rc, err, 'export_onnx', message.replace('FILE', files['file']))
    assert not list(tmp_path.glob('*.onnx'))


# ---------------------------------------------------------------------------------- train
@pytest.mark.parametrize('overrides,message', [
    (['model.backbone=vgg'], "model.backbone = 'vgg' is not allowed"),
    (['train.device=tpu'], "train.device = 'tpu' is not allowed"),
    (['optim.lr=nan'], 'optim.lr = nan is not allowed: must be a finite number in (0, 1]'),
    (['data.root=[1,2]'], 'data.root = [1, 2] is not allowed'),
    (['optim.learning_rate=1'], 'unknown config key "optim.learning_rate"'),
    (['optim.lr'], 'override "optim.lr" must look like key.sub=value'),
])
def test_train(tmp_path, caplog, overrides, message):
    """The trainer logs (stderr via logging); its last record is the one-line error."""
    from training.train import main
    argv = ['--config', str(REPO / 'training' / 'configs' / 'tiny.yaml'),
            '--out', str(tmp_path / 'run')]
    argv += [a for o in overrides for a in ('--set', o)]
    with caplog.at_level(logging.INFO):
        rc = main(argv)
    assert rc == 2
    last = caplog.records[-1]
    assert last.levelno == logging.ERROR
    assert message in last.getMessage() and '\n' not in last.getMessage()
    assert not (tmp_path / 'run' / 'checkpoint.pt').exists()


def test_train_usage_error_is_one_line(capsys):
    from training.train import main
    rc, err = call(main, ['--resume', 'a', 'b'], capsys)
    assert_one_line_error(rc, err, 'train', 'unrecognized arguments: b (see --help)')


# -------------------------------------------------------------------------- render_dataset
@pytest.mark.parametrize('argv,message', [
    (['train', '--width', '0'],
     'argument --width: 0 is not allowed: must be an integer in [16, 4096]'),
    (['eval', '--scenes', '-2'], 'argument --scenes: -2 is not allowed: must be an integer >= 1'),
    (['train', '--config', 'missing.yaml'], "No such file or directory: 'missing.yaml'"),
    (['train', '--config', 'LIST'], '--config LIST must hold a mapping of config keys, got list'),
    (['train', '--config', 'UNKNOWN'], "unknown config key 'widht'"),
    (['train', '--config', 'NEGATIVE'], 'num_images = -5 is not allowed: must be an integer >= 1'),
    (['video'], "argument mode: invalid choice: 'video'"),
])
def test_render_dataset(tmp_path, capsys, argv, message):
    pytest.importorskip('pybullet')
    from training.render_dataset import main
    for name, text in (('LIST', '[1, 2]'), ('UNKNOWN', 'widht: 320'),
                       ('NEGATIVE', 'num_images: -5')):
        (tmp_path / f'{name}.yaml').write_text(text)
    argv = [str(tmp_path / f'{a}.yaml') if a in ('LIST',
                                                 'UNKNOWN', 'NEGATIVE') else a for a in argv]
    rc, err = call(main, argv + ['--out', str(tmp_path / 'out')], capsys)
    assert_one_line_error(
        rc, err, 'render_dataset', message.replace(
            'LIST', str(
                tmp_path / 'LIST.yaml')))
    assert not (tmp_path / 'out').exists()


# -------------------------------------------------------------------------- collect_frames
@pytest.mark.parametrize('argv,message', [
    (['missing.mp4'], 'input not found: missing.mp4'),
    (['FILE', '--step', '0'], 'argument --step: 0 is not allowed: must be an integer >= 1'),
    (['FILE', '--blur-ratio', 'nan'],
     'argument --blur-ratio: nan is not allowed: must be a finite number in [0, 1]'),
])
def test_collect_frames(files, tmp_path, capsys, argv, message):
    from training.collect_frames import main
    argv = [files['file'] if a == 'FILE' else a for a in argv]
    rc, err = call(main, argv + ['--out', str(tmp_path / 'frames')], capsys)
    assert_one_line_error(rc, err, 'collect_frames', message)


# ------------------------------------------------------------------------- grasp_benchmark
@pytest.mark.parametrize('argv,message', [
    (['--checkpoint', 'nope.pt'], 'checkpoint not found: nope.pt'),
    (['--checkpoint', 'CORRUPT'], 'is corrupt, truncated or not a torch file'),
    (['--checkpoint', 'CK', '--grasps', '0'],
     'argument --grasps: 0 is not allowed: must be an integer >= 1'),
    (['--checkpoint', 'CK', '--set', 'tauu=0.1'], "unknown grasp pipeline option 'tauu'"),
    (['--checkpoint', 'CK', '--set', 'max_width=-1'],
     'max_width = -1 is not allowed: must be a finite number in (0, 1]'),
    (['--checkpoint', 'CK', '--set', 'tau'], "--set needs KEY=VALUE, got 'tau'"),
    (['--checkpoint', 'CK', '--min-elevation', '80', '--max-elevation', '40'],
     '--min-elevation 80 is above --max-elevation 40'),
    (['--checkpoint', 'CK', '--downscale', '9'], 'argument --downscale: 9 is not allowed'),
    (['--checkpoint', 'CK', '--benchmark', 'v3'], "argument --benchmark: invalid choice: 'v3'"),
])
def test_grasp_benchmark(files, tmp_path, capsys, argv, message):
    from training.grasp_benchmark import main
    argv = [{'CK': files['ck'], 'CORRUPT': files['corrupt']}.get(a, a) for a in argv]
    rc, err = call(main, argv + ['--out', str(tmp_path / 'bench')], capsys)
    assert_one_line_error(rc, err, 'grasp_benchmark', message)
    assert not (tmp_path / 'bench').exists()


# ----------------------------------------------------------------------- foreground_report
@pytest.mark.parametrize('argv,message', [
    (['missing'], 'image folder not found: missing'),
    (['DIR'], 'frames.json not found: render with --depth'),
    (['DIR', '--threshold', '0'],
     'argument --threshold: 0.0 is not allowed: must be a finite number in (0, 255]'),
    (['DIR', '--width', '4'], 'argument --width: 4 is not allowed'),
])
def test_foreground_report(files, capsys, argv, message):
    from training.foreground_report import main
    argv = [str(files['dir']) if a == 'DIR' else a for a in argv]
    rc, err = call(main, argv, capsys)
    assert_one_line_error(rc, err, 'foreground_report', message)


# --------------------------------------------------------------- as a user runs them
@pytest.mark.parametrize('script,argv,prog,message', [
    ('training/train.py', ['--set', 'model.backbone=vgg',
     '--out', 'OUT'], None, "model.backbone = 'vgg'"),
    ('training/evaluate.py', ['--checkpoint', 'CORRUPT',
     '--pairs', 'x.json'], 'evaluate', 'corrupt'),
    ('-m ccl_perception.targets',
     ['--checkpoint', 'CORRUPT', '--image', 'x.png', '--points', '1,1', '9,9',
      '--name', 'x', '--out', 'OUT/x.npz'], 'make_target', "image 'x.png' does not exist"),
])
def test_real_process_exit_code_and_stderr(files, tmp_path, script, argv, prog, message):
    argv = [{'CORRUPT': files['corrupt'], 'OUT': str(tmp_path / 'o')}.get(
        a, a.replace('OUT', str(tmp_path))) for a in argv]
    cmd = [sys.executable,
           *script.split(' ')] if script.startswith('-m') else [sys.executable,
                                                                str(REPO / script)]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        cmd + argv,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    if prog:
        assert len(lines) == 1, proc.stderr  # nothing else on stderr (no library warnings either)
    assert 'Traceback' not in proc.stderr and message in lines[-1]
    if prog:
        assert lines[-1].startswith(f'{prog}: error: ')


# ---------------------------------------------------------------------------------- bringup
@pytest.mark.parametrize('argv,message', [
    (['foo:=1'], "unknown launch argument 'foo'"),
    (['sim:=maybe'], "sim = 'maybe' is not allowed: must be one of 'true', 'false', '1', '0'"),
    (['executor_backend:=ros1'],
     "executor_backend = 'ros1' is not allowed: must be one of 'sim', 'moveit'"),
    (['device:=tpu'], "device = 'tpu' is not allowed"),
    (['backend:=trt'], "backend = 'trt' is not allowed: must be one of 'torch', 'onnx'"),
    (['checkpoint'], "launch arguments are name:=value, got 'checkpoint'"),
    (['--config', 'missing.yaml'], "--config 'missing.yaml' does not exist"),
    (['--config', 'LIST'], 'must be a mapping with keys arguments and nodes only'),
    (['--nodes', 'teleporter'], "unknown node(s) ['teleporter']"),
    (['sim:=false', 'executor_backend:=moveit', '--nodes',
     'grasp_executor'], "cannot start node 'grasp_executor'"),
])
def test_bringup(tmp_path, capsys, argv, message):
    pytest.importorskip('rclpy')
    from ccl_perception.bringup import main
    (tmp_path / 'LIST.yaml').write_text('[1, 2]')
    argv = [str(tmp_path / 'LIST.yaml') if a == 'LIST' else a for a in argv]
    rc, err = call(main, argv, capsys)
    assert_one_line_error(rc, err, 'bringup', message)
