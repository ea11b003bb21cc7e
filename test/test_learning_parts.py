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
The parts of ``learning/`` on their own: the method table, the views, the precision choice.

* a new method is one objective, one ``Method`` and one YAML file, and trains;
* the views of a step follow hand-made homographies exactly (a one-cell shift per view);
* ``train.amp: auto`` picks bf16 only on a CPU with bf16 instructions (the query mocked).
"""
import json
import logging
from pathlib import Path

from ccl_perception.correspondence import sample_descriptors
from ccl_perception.learning import methods, precision
from ccl_perception.learning.config import ConfigError, load_config
from ccl_perception.learning.synthetic import write_shape_images
from ccl_perception.learning.views import augment_seeds, rendered_views, ViewMaker
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / 'training' / 'configs' / 'tiny.yaml'


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'images'
    write_shape_images(folder, 6, height=64, width=96, seed=2)
    return folder


# ----------------------------------------------------------------------- config View
def test_config_view_reads_by_attribute(images):
    from ccl_perception.learning.config import View
    cfg = load_config(TINY, [f'data.root={images}'])
    c = View(cfg)
    assert c.train.steps == cfg['train']['steps'] == 6 and c.data.foreground.share == 1.0
    model = dict(c.model)  # a plain copy, e.g. for build_model
    assert model == cfg['model'] and model is not cfg['model']
    with pytest.raises(AttributeError, match='config has no key "train.stepz"'):
        c.train.stepz
    with pytest.raises(AttributeError, match='read-only'):
        c.train.steps = 7


# ------------------------------------------------------------------------- new method
def toy_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b, params, details=None):
    """Return a toy loss: 1 - cosine similarity of the descriptors at ``k_A`` and ``k_Â``."""
    a = sample_descriptors(desc_a, kp_a)
    b = sample_descriptors(desc_a_hat, kp_a_hat)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    loss = ((1.0 - cos) * valid).sum() / valid.sum().clamp(min=1)
    return loss, {'loss_toy': float(loss.detach())}


def test_a_new_method_is_one_objective_one_method_one_yaml(images, tmp_path, monkeypatch):
    from training.train import main
    monkeypatch.setattr(methods, 'METHODS', dict(methods.METHODS))  # unregistered afterwards
    config = tmp_path / 'toy.yaml'
    config.write_text(TINY.read_text().replace('method: ccl', 'method: toy'))
    with pytest.raises(ConfigError, match="method = 'toy' is not allowed"):
        load_config(config)
    methods.register(methods.Method('toy', toy_objective, summary='pull k_A and k_Â together'))
    out = tmp_path / 'run'
    assert main(['--config', str(config), '--set', f'data.root={images}',
                 '--set', 'train.steps=5', '--out', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['method'] == 'toy' and metrics['final_step'] == 5
    history = metrics['loss_history']
    assert [h['step'] for h in history] == [1, 2, 3, 4, 5]  # tiny.yaml logs every step
    assert all(h['loss'] == h['loss_toy'] and 0 < h['loss'] < 2 for h in history)
    assert metrics['forwarded_images_per_s'] == 2 * metrics['images_per_s']  # no I_B
    with pytest.raises(ValueError, match='taken'):
        methods.register(methods.Method('toy', toy_objective))


def test_the_paper_methods_in_the_table():
    table = {name: (m.second_image, m.rendered_pairs) for name, m in methods.METHODS.items()}
    assert table == {'identical_view': (False, False), 'ccl': (True, False),
                     'ccl_iv': (True, False), 'supervised': (False, True)}
    assert methods.get_method(methods.METHODS['ccl']) is methods.METHODS['ccl']


# ----------------------------------------------------------------------------- views
SHIFTS = {}  # seed -> (dx, dy) pixels of the fake augmentation


def shift_augment(images, seed=None):
    """Translate by ``SHIFTS[seed]`` pixels: the homography of a pure shift, made by hand."""
    dx, dy = SHIFTS[seed]
    hom = torch.tensor([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
    return torch.roll(images, shifts=(dy, dx), dims=(-2, -1)), hom.expand(len(images), 3, 3)


def one_batch(**extra):
    """One 32 x 48 image (a 4 x 6 grid) with four keypoints."""
    gen = torch.Generator().manual_seed(0)
    batch = {'image_a': torch.randint(0, 256, (1, 3, 32, 48), generator=gen, dtype=torch.uint8),
             'kp_a': torch.tensor([[[1.0, 1.0], [2.0, 0.0], [3.0, 2.0], [5.0, 0.0]]]),
             'index_a': torch.tensor([7]), 'index_b': torch.tensor([9]), 'aug_seed': 100}
    batch.update(extra)
    return batch


def test_identical_view_shift_by_one_cell():
    seed_hat, _, _ = augment_seeds(100)
    SHIFTS[seed_hat] = (8, 0)  # one cell to the right
    views = ViewMaker(methods.METHODS['identical_view'], shift_augment, 8, 'cpu')(one_batch())
    assert len(views.images) == 2
    assert torch.equal(views.kp_a, one_batch()['kp_a'])  # I_A is the frame itself
    # (5, 0) + 1 leaves the 6-cell-wide grid: invalid and set to 0
    assert views.valid.tolist() == [[True, True, True, False]]
    assert views.kp_a_hat.tolist() == [[[2.0, 1.0], [3.0, 0.0], [4.0, 2.0], [0.0, 0.0]]]
    assert views.indices == [[7], None]  # I_A's trunk features may be cached, Î_A's not
    a = one_batch()['image_a'].float() / 255.0
    assert torch.equal(views.images[1], torch.roll(a, 8, dims=-1))


def test_augment_a_and_the_sanity_b_follow_their_own_shifts():
    seed_hat, seed_a, seed_b = augment_seeds(100)
    SHIFTS.update({seed_hat: (8, 0), seed_a: (0, 8), seed_b: (-8, 0)})
    maker = ViewMaker(methods.METHODS['ccl'], shift_augment, 8, 'cpu', augment_a=True,
                      sanity_b_from_a=True)
    views = maker(one_batch())
    assert len(views.images) == 3 and views.indices == [None, None, None]
    assert views.valid.tolist() == [[True, True, True, False]]
    assert views.kp_a.tolist() == [[[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [0.0, 0.0]]]
    assert views.kp_a_hat.tolist() == [[[2.0, 1.0], [3.0, 0.0], [4.0, 2.0], [0.0, 0.0]]]
    assert views.kp_b_true.tolist() == [[[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [0.0, 0.0]]]
    assert torch.equal(views.kp_orig, one_batch()['kp_a'])


def test_unrelated_b_pasted_background_and_empty_slots():
    seed_hat, _, _ = augment_seeds(100)
    SHIFTS[seed_hat] = (0, 8)  # one cell down
    source = torch.zeros(1, 3, 32, 48, dtype=torch.uint8)
    b = torch.full((1, 3, 32, 48), 255, dtype=torch.uint8)
    batch = one_batch(image_a_hat_source=source, image_b=b, pasted_b=torch.tensor([True]),
                      kp_valid=torch.tensor([[True, False, True, True]]))
    views = ViewMaker(methods.METHODS['ccl'], shift_augment, 8, 'cpu')(batch)
    assert torch.equal(views.images[1], torch.zeros(1, 3, 32, 48))  # Î_A from the source
    assert torch.equal(views.images[2], torch.ones(1, 3, 32, 48))
    assert views.indices == [[7], None, [None]]  # a pasted I_B is no dataset image
    assert views.valid.tolist() == [[True, False, True, True]]
    assert views.kp_a_hat.tolist() == [[[1.0, 2.0], [0.0, 0.0], [3.0, 3.0], [5.0, 1.0]]]


def test_rendered_pairs_pass_through():
    batch = one_batch(image_b=torch.zeros(1, 3, 32, 48, dtype=torch.uint8),
                      kp_b=torch.tensor([[[0.5, 0.5]] * 4]), valid=torch.tensor([[True] * 4]))
    views = ViewMaker(methods.METHODS['supervised'], None, 8, 'cpu')(batch)
    direct = rendered_views(batch, 'cpu')
    assert torch.equal(views.kp_a_hat, batch['kp_b']) and torch.equal(direct.kp_a, views.kp_a)
    assert views.indices == [[7], [9]]


# ------------------------------------------------------------------------- precision
def cpu(monkeypatch, flags, query):
    monkeypatch.setattr(precision, 'cpu_flags', lambda: flags)
    monkeypatch.setattr(precision, 'onednn_bf16_supported', lambda: query)


def test_auto_is_fp32_on_a_cpu_without_bf16(monkeypatch, caplog):
    cpu(monkeypatch, {'avx2', 'fma'}, False)
    with caplog.at_level(logging.INFO):
        p = precision.resolve_precision('auto', 'cpu')
    assert p.name == 'fp32' and not p.autocast_enabled
    assert 'no avx512_bf16/amx_bf16' in p.reason and '10-40x slower' in p.reason
    assert f'precision fp32: {p.reason}' in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_auto_is_bf16_with_bf16_instructions(monkeypatch):
    cpu(monkeypatch, {'avx2', 'avx512f', 'avx512_bf16'}, True)
    p = precision.resolve_precision('auto', 'cpu')
    assert p.name == 'bf16' and p.dtype == torch.bfloat16 and p.autocast_enabled
    assert 'avx512_bf16' in p.reason
    cpu(monkeypatch, {'amx_bf16'}, True)
    assert precision.resolve_precision('auto', 'cpu').name == 'bf16'


def test_without_cpuinfo_onednn_decides(monkeypatch):
    cpu(monkeypatch, None, True)
    assert precision.resolve_precision('auto', 'cpu').name == 'bf16'
    cpu(monkeypatch, None, False)
    assert precision.resolve_precision('auto', 'cpu').name == 'fp32'


def test_cuda_is_fp16_and_false_is_fp32(monkeypatch):
    cpu(monkeypatch, {'avx512_bf16'}, True)
    assert precision.resolve_precision('auto', 'cuda').name == 'fp16'
    assert precision.resolve_precision(True, 'cuda').dtype == torch.float16
    assert precision.resolve_precision(False, 'cpu').name == 'fp32'


def test_amp_true_on_a_cpu_without_bf16_warns_once(monkeypatch, images, tmp_path, caplog):
    from ccl_perception.learning.trainer import Trainer
    cpu(monkeypatch, {'avx2'}, False)
    cfg = load_config(TINY, [f'data.root={images}', 'train.amp=true', 'train.steps=2',
                             'train.image_every=0'])
    with caplog.at_level(logging.INFO):
        trainer = Trainer(cfg, tmp_path / 'run')
        metrics = trainer.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'train.amp=true trains in bf16' in warnings[0]
    assert metrics['precision'] == 'bf16' and metrics['amp'] is True
    assert 'no avx512_bf16' in metrics['precision_reason']


def test_metrics_record_the_auto_choice(monkeypatch, images, tmp_path):
    from ccl_perception.learning.trainer import Trainer
    cpu(monkeypatch, {'avx2'}, False)
    cfg = load_config(TINY, [f'data.root={images}', 'train.amp=auto', 'train.steps=2',
                             'train.image_every=0'])
    metrics = Trainer(cfg, tmp_path / 'run').run()
    saved = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert saved['precision'] == metrics['precision'] == 'fp32' and saved['amp'] is False
    assert saved['precision_reason'].startswith('train.amp is auto and the CPU has no')
    assert saved['cpu'] == precision.cpu_description() and '(' in saved['cpu']
