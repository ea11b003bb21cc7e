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
Training loop: every method learns, resume is exact, bad input gives clear errors.

A run killed with ``kill -9`` resumes.
"""
import json
import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from ccl_perception.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ccl_perception.learning.config import ConfigError, load_config
from ccl_perception.learning.dataset import DatasetError
from ccl_perception.learning.logbook import peak_memory_mib
from ccl_perception.learning.methods import method_names
from ccl_perception.learning.synthetic import write_plane_scene, write_shape_images
from ccl_perception.learning.trainer import Trainer, TrainingError, TrainingInterrupted
from ccl_perception.model import build_model
import pytest
import torch
from training.train import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / 'training' / 'configs' / 'tiny.yaml'
TRAIN = REPO / 'training' / 'train.py'


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'images'
    write_shape_images(folder, 8, height=64, width=96, seed=0)
    return folder


@pytest.fixture(scope='module')
def render(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'render'
    write_plane_scene(folder, 4, height=64, width=96, seed=0)
    return folder


def tiny(root, *overrides):
    return load_config(TINY, [f'data.root={root}', *overrides])


def state_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            if not isinstance(y, dict) or not state_equal(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y) or not all(state_equal({0: u}, {0: v}) for u, v in zip(x, y)):
                return False
        elif x != y:
            return False
    return True


# --------------------------------------------------------------------------- learning
@pytest.mark.parametrize('method', method_names())
def test_each_method_overfits_one_batch(method, images, render, tmp_path):
    """
    Repeated steps on one fixed batch must lower that batch's loss clearly.

    The augmentation is drawn anew every step, so it is kept mild here: with the default
    any-angle rotation and strong perspective the tiny random network sees a different
    problem every step, and the loss of 14 steps is mostly the draw.
    """
    root = render if method == 'supervised' else images
    cfg = tiny(
        root,
        f'method={method}',
        'loss.quantile=1.0' if method != 'identical_view' else 'seed=0',
        'augment.degrees=15', 'augment.scale=[0.9,1.1]', 'augment.perspective=0.1')
    trainer = Trainer(cfg, tmp_path / method)
    batch = trainer.dataset[0]
    if method == 'supervised':
        assert int(batch['valid'].sum()) >= 20  # the plane scene gives real correspondences
    losses = [trainer.train_step(batch)['loss'] for _ in range(14)]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert all(torch.isfinite(torch.tensor(losses)))
    assert last < 0.8 * first, f'{method}: loss {first:.3f} -> {last:.3f} ({losses})'


def test_full_run_writes_checkpoint_model_metrics_and_tensorboard(images, tmp_path):
    out = tmp_path / 'run'
    assert main(['--config', str(TINY), '--set', f'data.root={images}', '--out', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['start_step'] == 0 and metrics['final_step'] == 6 and metrics['world_size'] == 1
    assert metrics['images_per_s'] > 0 and metrics['peak_memory_mib'] > 100
    assert metrics['skipped_images'] == 0
    ckpt = load_checkpoint(out / 'checkpoint.pt')
    assert ckpt['step'] == 6 and ckpt['optimizer_state'] is not None
    assert ckpt['extra']['config']['method'] == 'ccl'
    final = load_checkpoint(out / 'model.pt')
    assert final['optimizer_state'] is None
    from ccl_perception.checkpoint import training_tau  # the planner's default tau for this model
    assert training_tau(final) == ckpt['extra']['config']['loss']['tau']
    assert (final['model_config']['backbone'] == 'resnet18'
            and final['model_config']['descriptor_dim'] == 16)
    # loads with weights_only=True (what load_checkpoint uses) and rebuilds the net
    torch.load(out / 'model.pt', weights_only=True)
    events = list((out / 'tb').glob('events.out.tfevents.*'))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(out / 'tb'), size_guidance={'images': 0, 'scalars': 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ('train/loss', 'train/kept_fraction', 'train/mean_uncertainty', 'train/lr'):
        assert tag in tags['scalars'], tags
        assert len(acc.Scalars(tag)) == 6
    assert 'heatmap' in tags['images'] and len(acc.Images('heatmap')) == 2  # steps 3 and 6
    # the loss curve: every logged step in metrics.json, drawn to loss.png
    assert [h['step'] for h in metrics['loss_history']] == [1, 2, 3, 4, 5, 6]
    assert [h['loss'] for h in metrics['loss_history']] == \
        pytest.approx([e.value for e in acc.Scalars('train/loss')], rel=1e-6)  # TB: float32
    assert (out / 'loss.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    from training.plot_results import main as plot
    assert plot(['loss', '--runs', str(out), '--out', str(tmp_path / 'curves.png')]) == 0
    assert (tmp_path / 'curves.png').stat().st_size > 1000


def test_bf16_autocast_step_on_cpu(images, tmp_path):
    trainer = Trainer(tiny(images, 'train.amp=true'), tmp_path / 'amp')
    assert trainer.precision.name == 'bf16' and trainer.precision.dtype == torch.bfloat16
    assert not trainer.scaler.is_enabled()
    stats = trainer.train_step(trainer.dataset[0])
    assert torch.isfinite(torch.tensor(stats['loss'])) and stats['loss'] > 0


def test_valid_keypoints_follow_the_homography(images, tmp_path):
    """k_Â is warp(k_A) on the 1/8 grid: check one point by hand with the returned homography."""
    from ccl_perception.augment import warp_points
    trainer = Trainer(tiny(images), tmp_path / 'kp')
    batch = trainer.dataset[0]
    views = trainer.views(batch)
    kp_a, kp_a_hat, valid = views.kp_a, views.kp_a_hat, views.valid
    assert len(views.images) == 3
    _, hom = trainer.augment(batch['image_a'].float() / 255.0, seed=int(batch['aug_seed']))
    x, y = kp_a[0, 0].tolist()
    full = torch.tensor([[[8 * x + 3.5, 8 * y + 3.5]]])
    warped, ok = warp_points(full, hom[:1], (64, 96))
    if bool(ok):
        expected = (warped[0, 0] - 3.5) / 8
        assert torch.allclose(kp_a_hat[0, 0], expected, atol=1e-4)
    assert bool(valid[0, 0]) == bool(ok)
    assert torch.all(kp_a_hat[~valid] == 0)


# ----------------------------------------------------------------------------- resume
def test_resume_continues_with_identical_state(images, tmp_path):
    """6 steps in one go == 3 steps, stop, resume to 6: same weights, optimiser, RNG, next loss."""
    full = tmp_path / 'full'
    Trainer(tiny(images, 'train.steps=6'), full).run()
    part = tmp_path / 'part'
    Trainer(tiny(images, 'train.steps=3'), part).run()
    assert load_checkpoint(part / 'checkpoint.pt')['step'] == 3
    resumed = Trainer(tiny(images, 'train.steps=6'), part, resume='auto')
    assert resumed.step == 3
    resumed.run()
    a, b = load_checkpoint(full / 'checkpoint.pt'), load_checkpoint(part / 'checkpoint.pt')
    assert a['step'] == b['step'] == 6
    assert state_equal(a['model_state'], b['model_state'])
    assert state_equal(a['optimizer_state'], b['optimizer_state'])
    assert state_equal(a['extra']['rng'][0], b['extra']['rng'][0])
    # the next batch's loss agrees too
    t1 = Trainer(tiny(images, 'train.steps=7'), full, resume='auto')
    t2 = Trainer(tiny(images, 'train.steps=7'), part, resume='auto')
    l1 = t1.train_step(t1.dataset[6])['loss']
    l2 = t2.train_step(t2.dataset[6])['loss']
    assert l1 == l2
    metrics = json.loads((part / 'metrics.json').read_text())
    assert metrics['start_step'] == 3 and metrics['final_step'] == 6


def test_resume_restores_rng_state(images, tmp_path):
    out = tmp_path / 'rng'
    Trainer(tiny(images, 'train.steps=3'), out).run()
    saved = load_checkpoint(out / 'checkpoint.pt')['extra']['rng'][0]
    torch.manual_seed(12345)
    Trainer(tiny(images, 'train.steps=6'), out, resume='auto')
    assert torch.equal(torch.get_rng_state(), saved['torch'])


def test_fresh_run_refuses_a_used_output_folder(images, tmp_path):
    out = tmp_path / 'used'
    Trainer(tiny(images, 'train.steps=3'), out).run()
    with pytest.raises(TrainingError, match='--resume'):
        Trainer(tiny(images), out)


def test_resume_with_another_method_or_model_is_refused(images, tmp_path):
    out = tmp_path / 'mismatch'
    Trainer(tiny(images, 'train.steps=3'), out).run()
    with pytest.raises(TrainingError, match='method'):
        Trainer(tiny(images, 'method=identical_view'), out, resume='auto')
    with pytest.raises(TrainingError, match='descriptor_dim'):
        Trainer(tiny(images, 'model.descriptor_dim=8'), out, resume='auto')
    with pytest.raises(TrainingError, match='optimiser'):
        Trainer(tiny(images), out, resume=out / 'model.pt')


def test_resume_without_checkpoint_is_a_clear_error(images, tmp_path):
    with pytest.raises(TrainingError, match='no checkpoint'):
        Trainer(tiny(images), tmp_path / 'none', resume='auto')


def test_corrupt_checkpoint_on_resume_is_a_clear_error(images, tmp_path, caplog):
    out = tmp_path / 'corrupt'
    out.mkdir()
    (out / 'checkpoint.pt').write_bytes(b'PK\x03\x04 truncated zip' + os.urandom(64))
    with caplog.at_level(logging.ERROR):
        rc = main(['--config',
                   str(TINY),
                   '--set',
                   f'data.root={images}',
                   '--out',
                   str(out),
                   '--resume'])
    assert rc == 2
    assert 'corrupt' in caplog.text and 'checkpoint.pt' in caplog.text
    with pytest.raises(CheckpointError):
        Trainer(tiny(images), out, resume='auto')


def test_corrupt_or_mismatched_init_from_is_a_clear_error(images, tmp_path, caplog):
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'not a checkpoint')
    with caplog.at_level(logging.ERROR):
        rc = main(['--config', str(TINY), '--set', f'data.root={images}',
                   '--set', f'init_from={bad}', '--out', str(tmp_path / 'o')])
    assert rc == 2 and 'bad.pt' in caplog.text
    other = build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False})
    save_checkpoint(tmp_path / 'd8.pt', other)
    with pytest.raises(TrainingError, match='descriptor_dim'):
        Trainer(tiny(images, f'init_from={tmp_path / "d8.pt"}'), tmp_path / 'o2')


def test_init_from_copies_the_weights(images, tmp_path):
    source = build_model({'backbone': 'resnet18', 'descriptor_dim': 16, 'pretrained': False,
                          'head_hidden': 16})
    torch.nn.init.constant_(source.head.proj.bias, 0.25)
    save_checkpoint(tmp_path / 'iv.pt', source, step=40)
    trainer = Trainer(tiny(images, f'init_from={tmp_path / "iv.pt"}'), tmp_path / 'init')
    assert trainer.step == 0
    assert state_equal(trainer.model.state_dict(), source.state_dict())


# ------------------------------------------------------------------------- bad input
def test_empty_folder_is_a_clear_error(tmp_path, caplog):
    (tmp_path / 'empty').mkdir()
    with caplog.at_level(logging.ERROR):
        rc = main(['--config', str(TINY), '--set', f'data.root={tmp_path / "empty"}',
                   '--out', str(tmp_path / 'o')])
    assert rc == 2 and 'no image files' in caplog.text
    with pytest.raises(DatasetError):
        Trainer(tiny(tmp_path / 'empty'), tmp_path / 'o')


def test_corrupt_image_is_skipped_and_counted_in_metrics(images, tmp_path):
    folder = tmp_path / 'mixed'
    write_shape_images(folder, 4, seed=3)
    (folder / 'zz_broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 broken jpeg')
    out = tmp_path / 'mixed_run'
    assert main(['--config', str(TINY), '--set', f'data.root={folder}', '--set', 'train.steps=2',
                 '--out', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['skipped_images'] == 1 and metrics['final_step'] == 2


@pytest.mark.parametrize('override,message', [
    ('model.backbone=vgg', "model.backbone = 'vgg' is not allowed: must be one of "
                           "'efficientnet_lite0', 'resnet18', 'resnet34', 'resnet50'"),
    ('train.device=tpu', "train.device = 'tpu' is not allowed: must be a string "
                         '(auto | cpu | cuda | cuda:<index>)'),
    ('optim.lr=nan', 'optim.lr = nan is not allowed: must be a finite number in (0, 1]'),
    ('optim.lr=.inf', 'optim.lr = inf is not allowed: must be a finite number in (0, 1]'),
    ('data.root=[1,2]', 'data.root = [1, 2] is not allowed: must be a string '
                        '(a non-empty path or null)'),
    ('loss.quantile=abc', "loss.quantile = 'abc' is not allowed: must be a finite number in "
                          '(0, 1]'),
    ('model.trunk=wide', "model.trunk = 'wide' is not allowed: must be one of 'dilated', 'fpn', "
                         "'fpn32'"),
    ('train.threads=-1', 'train.threads = -1 is not allowed: must be an integer in [0, 1024]'),
    # booleans are not integers; sizes are multiples of 8 within bounds that are named
    ('train.steps=true', 'train.steps = True is not allowed: must be an integer in '
                         '[1, 1000000000]'),
    ('data.height=1', 'data.height = 1 is not allowed: must be an integer in [16, 4096]'),
    ('data.height=1000000', 'data.height = 1000000 is not allowed: must be an integer in '
                            '[16, 4096]'),
    ('data.width=100', 'data.width = 100 is not allowed: must be a multiple of 8 in [16, 4096]'),
    ('train.batch_size=false', 'train.batch_size = False is not allowed: must be an integer in '
                               '[1, 4096]'),
    ('train.amp=fast', "train.amp = 'fast' is not allowed: must be auto, true or false"),
])
def test_bad_config_values_are_named(images, override, message):
    with pytest.raises(ConfigError) as e:
        tiny(images, override)
    assert str(e.value) == message


def test_resume_of_a_finished_run_is_a_no_op(images, tmp_path, caplog):
    """--resume on a complete run keeps metrics.json, model.pt and checkpoint.pt byte for byte."""
    out = tmp_path / 'done'
    args = [
        '--config',
        str(TINY),
        '--set',
        f'data.root={images}',
        '--set',
        'train.steps=2',
        '--out',
        str(out)]
    assert main(args) == 0
    before = {name: (out / name).read_bytes()
              for name in ('metrics.json', 'model.pt', 'checkpoint.pt')}
    json.loads(before['metrics.json'])  # valid JSON
    with caplog.at_level(logging.INFO):
        assert main(args + ['--resume']) == 0
    assert 'already complete (step 2 of 2): nothing to do' in caplog.text
    assert {name: (out / name).read_bytes() for name in before} == before
    trainer = Trainer(tiny(images, 'train.steps=2'), out, resume='auto')
    assert trainer.run() == json.loads(before['metrics.json'])  # programmatic run(): same no-op
    assert (out / 'metrics.json').read_bytes() == before['metrics.json']


def test_metrics_json_has_no_nan():
    from ccl_perception.learning.logbook import json_safe
    assert json.dumps(json_safe({'a': float('nan'), 'b': [1.0, float('inf')], 'c': {'d': 2}})) \
        == '{"a": null, "b": [1.0, null], "c": {"d": 2}}'


def test_peak_memory_reads_vmhwm():
    value = peak_memory_mib()
    with open('/proc/self/status') as f:
        line = next(ln for ln in f if ln.startswith('VmHWM:'))
    assert value == pytest.approx(int(line.split()[1]) / 1024.0, rel=0.05)


# ----------------------------------------------------------------------------- kill -9
def test_kill_9_then_resume(images, tmp_path):
    out = tmp_path / 'killed'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, str(TRAIN), '--config', str(TINY), '--set', f'data.root={images}',
           '--set', 'train.steps=100000', '--set', 'train.checkpoint_every=2', '--out', str(out)]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    ckpt = out / 'checkpoint.pt'
    try:
        saved_one = wait_for(ckpt, proc)
        time.sleep(0.3)  # let it get into the next interval
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert saved_one, f'no checkpoint before the kill: {proc.stderr.read().decode()[-2000:]}'
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(ckpt)['step']
    assert saved >= 2 and saved % 2 == 0
    rc = subprocess.run([sys.executable, str(TRAIN), '--resume',
                         '--set', f'train.steps={saved + 2}', '--out', str(out)],
                        cwd=REPO, env=env, capture_output=True, timeout=300)
    assert rc.returncode == 0, rc.stderr.decode()[-2000:]
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['start_step'] == saved and metrics['final_step'] == saved + 2
    assert load_checkpoint(out / 'checkpoint.pt')['step'] == saved + 2


# ------------------------------------------------------------------- Ctrl-C, disk full
def test_ctrl_c_finishes_the_step_saves_it_and_loses_nothing(images, tmp_path):
    """SIGINT during step 4: the step completes, is saved, and resuming equals a straight run."""
    trainer = Trainer(tiny(images, 'train.steps=100', 'train.checkpoint_every=3'),
                      tmp_path / 'stopped')
    step = trainer.train_step

    def interrupted_step(batch, **kwargs):  # Ctrl-C arrives in the middle of step 4
        if trainer.step == 3:
            signal.raise_signal(signal.SIGINT)
        return step(batch, **kwargs)

    trainer.train_step = interrupted_step
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.run()
    assert (stop.value.step, stop.value.total) == (4, 100)
    assert stop.value.checkpoint == tmp_path / 'stopped' / 'checkpoint.pt'
    assert load_checkpoint(stop.value.checkpoint)['step'] == 4  # not a multiple of 3: _stop saved
    assert signal.getsignal(signal.SIGINT) is handler  # Python's own handler is back
    Trainer(tiny(images, 'train.steps=6'), tmp_path / 'stopped', resume='auto').run()
    Trainer(tiny(images, 'train.steps=6'), tmp_path / 'straight').run()
    assert state_equal(load_checkpoint(tmp_path / 'stopped' / 'checkpoint.pt')['model_state'],
                       load_checkpoint(tmp_path / 'straight' / 'checkpoint.pt')['model_state'])


def wait_for(path: Path, proc, seconds: float = 300) -> bool:
    """Wait until ``path`` exists while ``proc`` runs (generous: the CI machine is shared)."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return path.exists()


def test_ctrl_c_in_the_cli_prints_the_resume_command(images, tmp_path):
    """SIGINT to train.py: exit 130, no traceback, the printed command continues the run."""
    out = tmp_path / 'interrupted'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, str(TRAIN), '--config', str(TINY), '--set', f'data.root={images}',
           '--set', 'train.steps=100000', '--set', 'train.checkpoint_every=2',
           '--set', 'train.image_every=0', '--out', str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        in_loop = wait_for(out / 'checkpoint.pt', proc)  # step 2 is done: inside the loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert in_loop, err[-2000:]
    assert proc.returncode == 130, err[-2000:]
    assert 'Traceback' not in err
    step = load_checkpoint(out / 'checkpoint.pt')['step']
    assert 2 <= step < 100000
    assert f'interrupted at step {step} of 100000: saved {out / "checkpoint.pt"}' in err
    command = err.strip().splitlines()[-1].split()
    assert command[:4] == ['python', 'training/train.py', '--resume', '--out']
    assert Path(command[4]) == out
    rc = subprocess.run([sys.executable, str(TRAIN), *command[2:], '--set',
                         f'train.steps={step + 1}'], cwd=REPO, env=env, capture_output=True,
                        timeout=300)
    assert rc.returncode == 0, rc.stderr.decode()[-2000:]
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['start_step'] == step and metrics['final_step'] == step + 1


#: What torch 2.14's zip writer raised when a 3 MB tmpfs filled up during ``save_checkpoint``.
TORCH_SHORT_WRITE = '[enforce fail at inline_container.cc:672] . unexpected pos 2764480 vs 2764376'


@pytest.mark.parametrize('failure', ['ENOSPC', 'torch short write'])
def test_disk_full_at_a_checkpoint_is_one_line_and_keeps_the_previous(
        failure, images, tmp_path, monkeypatch, caplog):
    real_save = torch.save
    saves = []

    def full_disk(obj, f, *args, **kwargs):
        saves.append(obj['step'])
        if len(saves) == 3:  # step0.pt, checkpoint.pt at step 3, then the final checkpoint.pt
            if failure == 'ENOSPC':  # the kernel's error: /dev/full is always full
                with open('/dev/full', 'wb') as full:
                    real_save(obj, full)
                    full.flush()
            raise RuntimeError(TORCH_SHORT_WRITE)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', full_disk)
    out = tmp_path / 'full'
    with caplog.at_level(logging.INFO):
        rc = main(['--config', str(TINY), '--set', f'data.root={images}', '--set',
                   'train.steps=6', '--out', str(out)])
    assert rc == 2 and saves == [0, 3, 6]
    last = caplog.records[-1]
    assert last.levelno == logging.ERROR and '\n' not in last.getMessage()
    reason = 'No space left on device' if failure == 'ENOSPC' else 'write failed'
    assert last.getMessage().startswith(f'cannot write checkpoint {out / "checkpoint.pt"}: '
                                        f'{reason} (')
    assert 'the previous checkpoint there, if any, is intact' in last.getMessage()
    monkeypatch.undo()
    assert load_checkpoint(out / 'checkpoint.pt')['step'] == 3  # the previous one, intact
    assert not list(out.glob('.*.tmp'))


# -------------------------------------------------------------------------- evaluation
def plane_pairs_file(render) -> Path:
    """Write a pairs file over the plane scene: points on the plane projected into each view."""
    import numpy as np

    from ccl_perception.evaluation.pairs import save_pairs
    from ccl_perception.sim.camera import Camera
    frames = json.loads((render / 'frames.json').read_text())['frames']
    xs, ys = np.meshgrid(np.linspace(-0.12, 0.2, 5), np.linspace(-0.15, 0.15, 4))
    world = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1)
    images = []
    for meta in frames:
        cam = Camera.from_dict(meta['camera'])
        uv, _ = cam.project(world)
        visible = cam.in_image(uv)
        images.append({'file': meta['image'], 'objects': {'plane': {
            'keypoints': [[float(u), float(v)] for u, v in uv],
            'visible': [bool(b) for b in visible]}}})
    path = render / 'val_pairs.json'
    save_pairs(str(path), images, [{'image_1': 0, 'image_2': 1}, {'image_1': 1, 'image_2': 2}])
    return path


def test_periodic_evaluation_on_val_pairs(images, render, tmp_path):
    pytest.importorskip('ccl_perception.evaluation.evaluate')
    pairs = plane_pairs_file(render)
    out = tmp_path / 'eval'
    assert main(['--config', str(TINY), '--set', f'data.root={images}',
                 '--set', f'val_pairs={pairs}', '--set', 'train.steps=3', '--out', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    val = metrics['validation']
    assert val['num_pairs'] == 2 and 0.0 <= val['auc'] <= 1.0 and 'pck@3' in val
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(out / 'tb'))
    acc.Reload()
    assert [e.step for e in acc.Scalars('val/auc')] == [0, 3]  # step 0: the start to beat
    assert [h['step'] for h in metrics['validation_history']] == [0, 3]
    assert metrics['best_step'] in (0, 3)
