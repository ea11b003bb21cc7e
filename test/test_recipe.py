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
The self-supervised recipe.

Conv head, PCA start, frozen trunk, trunk cache, keep-best, label-free foreground sampling,
the sanity bound and the CCL instruments.
"""
import json
import logging
from pathlib import Path

from ccl_perception.checkpoint import load_checkpoint
from ccl_perception.heads import ConvHead, LinearHead
from ccl_perception.learning import foreground as fg
from ccl_perception.learning.config import ConfigError, load_config
from ccl_perception.learning.dataset import DatasetError, ImagePairs
from ccl_perception.learning.head_init import init_head_pca, pca_projection
from ccl_perception.learning.keypoints import sample_keypoints
from ccl_perception.learning.synthetic import write_shape_images, write_static_scene
from ccl_perception.learning.trainer import Trainer
from ccl_perception.model import build_model
import cv2
import numpy as np
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
    write_shape_images(folder, 8, height=64, width=96, seed=0)
    return folder


def static_scene(folder: Path, n: int = 24, seed: int = 0):
    """64x96 frames of a fixed table with two moving squares; the true masks ``(n, H, W)``."""
    return write_static_scene(folder, n, 64, 96, seed, squares=2)


def tiny(root, *overrides):
    return load_config(TINY, [f'data.root={root}', *overrides])


def tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- heads
class TestHeads:

    def test_conv_head_parameter_count_by_hand(self):
        head = ConvHead(152, 64, 192)
        # 3x3 152->192, 3x3 192->192, 1x1 192->64, projection 1x1 152->64, each with a bias
        expected = (152 * 192 * 9 + 192) + (192 * 192 * 9 + 192) + \
            (192 * 64 + 64) + (152 * 64 + 64)
        assert sum(p.numel() for p in head.parameters()) == expected == 616960

    def test_conv_head_starts_as_its_projection(self):
        torch.manual_seed(0)
        head = ConvHead(6, 4, 5)
        x = torch.randn(2, 6, 3, 4)
        expected = torch.nn.functional.conv2d(torch.nn.functional.normalize(x, dim=1),
                                              head.proj.weight, head.proj.bias)
        assert torch.allclose(head(x), expected, atol=1e-6)

    def test_linear_head_keeps_the_old_state_keys(self):
        net = build_model({'backbone': 'resnet18', 'descriptor_dim': 8,
                          'pretrained': False, 'head': 'linear'})
        assert isinstance(net.head, LinearHead) and net.head.proj is net.head
        assert {'head.weight', 'head.bias'} <= set(net.state_dict())

    def test_legacy_config_without_head_is_linear(self):
        net = build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False,
                           'trunk': 'dilated', 'stride': 8})
        assert net.config['head'] == 'linear' and isinstance(net.head, LinearHead)

    def test_unknown_head_is_refused(self):
        with pytest.raises(ValueError, match='unknown head'):
            build_model({'backbone': 'resnet18', 'pretrained': False, 'head': 'mlp'})


# ------------------------------------------------------------------------------- PCA
class TestPCA:

    def test_pca_by_hand(self):
        # {+-3 e1, +-2 e2, +-1 e3}: mean 0, covariance diag(18, 8, 2) / 5
        e = torch.eye(3, dtype=torch.float64)
        x = torch.cat([3 * e[:1], -3 * e[:1], 2 * e[1:2], -2 * e[1:2], e[2:], -e[2:]])
        mean, dirs, explained = pca_projection(x, 2)
        assert torch.allclose(mean, torch.zeros(3, dtype=torch.float64))
        assert torch.allclose(dirs.abs(), e[:, :2])
        assert explained == pytest.approx(26 / 28)

    def test_pca_refuses_bad_shapes(self):
        with pytest.raises(ValueError, match='M >= 2'):
            pca_projection(torch.zeros(1, 3, dtype=torch.float64), 1)
        with pytest.raises(ValueError, match='dimension'):
            pca_projection(torch.zeros(5, 3, dtype=torch.float64), 4)

    def test_init_head_pca_makes_step_zero_the_projection(self):
        torch.manual_seed(0)
        net = build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False,
                           'head_hidden': 8}).eval()
        frames = torch.rand(3, 3, 32, 48)
        info = init_head_pca(net, [frames])
        assert info['images'] == 3 and info['cells'] == 3 * \
            4 * 6 and 0 < info['explained_variance'] <= 1
        with torch.no_grad():
            x = torch.nn.functional.normalize(net.trunk_features(frames), dim=1).double()
            flat = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
            mean, dirs, _ = pca_projection(flat, 8)
            by_hand = ((flat - mean) @ dirs).reshape(3, 4, 6, 8).permute(0, 3, 1, 2)
            assert torch.allclose(net(frames).double(),
                                  torch.nn.functional.normalize(by_hand, dim=1), atol=1e-4)


# ------------------------------------------------------------------- trunk training modes
def _trunk_state(net):
    return {k: v.clone() for k, v in net.state_dict().items() if k.startswith('backbone.')}


def test_frozen_trunk_keeps_weights_and_batchnorm_statistics(images, tmp_path):
    trainer = Trainer(tiny(images, 'optim.trunk=frozen'), tmp_path / 'frozen')
    trunk0 = _trunk_state(trainer.model)
    head0 = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}
    for step in range(3):
        trainer.train_step(trainer.dataset[step])
    assert tensors_equal(_trunk_state(trainer.model), trunk0)  # running_mean/var included
    changed = [k for k, v in trainer.model.head.state_dict().items()
               if not torch.equal(v, head0[k])]
    assert changed, 'the head did not train'
    assert all(not p.requires_grad for p in trainer.model.backbone.parameters())
    assert len(trainer.optimizer.param_groups) == 1  # head only


def test_last_stage_trains_only_the_last_stage(images, tmp_path):
    trainer = Trainer(
        tiny(
            images,
            'optim.trunk=last_stage',
            'optim.trunk_lr_scale=0.1'),
        tmp_path / 'last')
    before = _trunk_state(trainer.model)
    for step in range(2):
        trainer.train_step(trainer.dataset[step])
    after = _trunk_state(trainer.model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith('backbone.layer3.') for k in changed)
    assert not any('running_' in k for k in changed)  # BatchNorm statistics stay ImageNet's
    lrs = [g['lr'] for g in trainer.optimizer.param_groups]
    assert lrs == pytest.approx([1e-3, 1e-4])


def test_trunk_cache_gives_the_same_loss(images, tmp_path):
    """
    The cached trunk features of un-augmented frames are the fresh ones.

    Same loss, same step.
    """
    cfg = tiny(images, 'optim.trunk=frozen')
    cached = Trainer(cfg, tmp_path / 'c')
    fresh = Trainer(load_config(TINY, [f'data.root={images}', 'optim.trunk=frozen',
                                       'train.cache_trunk_features=false']), tmp_path / 'f')
    fresh.model.load_state_dict(cached.model.state_dict())
    batch = cached.dataset[0]
    with torch.no_grad():
        cached.compute_loss(batch)  # fills the cache
        assert len(cached.describe.cache) == len(
            set(batch['index_a'].tolist()) | set(batch['index_b'].tolist()))
        l1, _ = cached.compute_loss(batch)
        l2, _ = fresh.compute_loss(batch)
    assert fresh.describe.cache is None
    assert torch.allclose(l1, l2, atol=1e-6)


# ----------------------------------------------------------------------------- keep-best
def test_keep_best_keeps_step_zero_of_a_run_that_only_gets_worse(images, tmp_path):
    cfg = tiny(images, 'train.steps=6', 'train.eval_every=3', 'val_pairs=unused.json')
    trainer = Trainer(cfg, tmp_path / 'worse')
    scores = iter([0.5, 0.4, 0.3])  # step 0, 3, 6: every evaluation worse than the last
    trainer.selection.evaluate_fn = lambda *a, **k: {'auc': next(scores), 'pck': {'10': 0.1}}
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.run()
    assert metrics['best_step'] == 0 and metrics['best_validation'] == pytest.approx(0.5)
    assert [h['step'] for h in metrics['validation_history']] == [0, 3, 6]
    shipped = load_checkpoint(tmp_path / 'worse' / 'model.pt')['model_state']
    assert tensors_equal(shipped, start)
    last = load_checkpoint(tmp_path / 'worse' / 'last.pt')['model_state']
    assert not tensors_equal(last, start)
    assert json.loads((tmp_path / 'worse' / 'metrics.json').read_text())['best_step'] == 0


def test_keep_best_takes_a_later_improvement(images, tmp_path):
    cfg = tiny(images, 'train.steps=6', 'train.eval_every=3', 'val_pairs=unused.json')
    trainer = Trainer(cfg, tmp_path / 'better')
    scores = iter([0.3, 0.5, 0.4])
    trainer.selection.evaluate_fn = lambda *a, **k: {'auc': next(scores)}
    metrics = trainer.run()
    assert metrics['best_step'] == 3
    best = load_checkpoint(tmp_path / 'better' / 'best.pt')
    assert best['step'] == 3
    assert tensors_equal(
        load_checkpoint(
            tmp_path /
            'better' /
            'model.pt')['model_state'],
        best['model_state'])


# ----------------------------------------------------------------------------- foreground
class TestForeground:

    def test_background_and_masks_find_the_moving_squares(self, tmp_path):
        truth = static_scene(tmp_path / 'scene')
        frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                  for p in sorted((tmp_path / 'scene').glob('*.png'))]
        cells = fg.ForegroundCells(frames, threshold=40.0)
        masks = np.stack([fg.foreground_mask(f, cells.background, 40.0) for f in frames])
        precision, recall = fg.precision_recall(masks, truth)
        assert precision > 0.95 and recall > 0.95
        # Without the lighting fit the gain/offset changes light up the table.
        plain = np.stack([fg.foreground_mask(f, cells.background,
                         40.0, fit_lighting=False) for f in frames])
        assert fg.precision_recall(plain, truth)[0] < precision

    def test_foreground_report_against_a_written_segmentation(self, tmp_path):
        """training/foreground_report.py on a static scene whose true masks are its frames.json."""
        from ccl_perception.sim.camera import Camera
        from ccl_perception.sim.ground_truth import Frame, save_frame
        from training.foreground_report import main, report
        truth = static_scene(tmp_path / 'scene')
        cam = Camera.looking_at((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), 96, 64, 40.0)
        metas = []
        for i, mask in enumerate(truth):
            seg = np.where(mask, 7, -1).astype(np.int32)   # body 7 = the squares
            frame = Frame(np.ones((64, 96), np.float32), seg, cam, {'squares': np.eye(4)},
                          {'squares': 7})
            metas.append(dict(save_frame(str(tmp_path / 'scene'), f'{i:03d}', frame),
                              image=f'{i:03d}.png'))
        (tmp_path / 'scene' / 'frames.json').write_text(json.dumps({'frames': metas}))
        res = report(str(tmp_path / 'scene'), (96, 64), 40.0)
        assert res['frames'] == len(truth)
        assert res['true_object_share'] == pytest.approx(truth.mean())
        fit, plain = res['lighting_fit'], res['no_lighting_fit']
        # the same numbers as the masks of the trainer's estimate (test above)
        frames = [cv2.cvtColor(cv2.imread(str(tmp_path / 'scene' / f'{i:03d}.png')),
                               cv2.COLOR_BGR2RGB) for i in range(len(truth))]
        cells = fg.ForegroundCells(frames, threshold=40.0)
        p, r = fg.precision_recall(cells.masks, truth)
        assert (fit['pixel_precision'], fit['pixel_recall']) == pytest.approx((p, r))
        assert p > 0.95 and r > 0.95 and fit['cell_precision'] > 0.9
        assert plain['pixel_precision'] < fit['pixel_precision']
        out = tmp_path / 'fg.json'
        assert main([str(tmp_path / 'scene'), '--width', '96', '--height', '64',
                     '--out', str(out)]) == 0
        assert json.loads(out.read_text())['lighting_fit'] == pytest.approx(fit)

    def test_a_moving_camera_is_warned_about(self, tmp_path, caplog):
        """The same capture, shaken by 2 px per frame as a hand-held camera: the warning fires."""
        static_scene(tmp_path / 'fixed')
        frames = [cv2.imread(str(p)) for p in sorted((tmp_path / 'fixed').glob('*.png'))]
        (tmp_path / 'moving').mkdir()
        for k, frame in enumerate(frames):
            shift = np.float32([[1, 0, 2 * np.sin(k)], [0, 1, 2 * np.cos(1.3 * k)]])
            cv2.imwrite(str(tmp_path / 'moving' / f'{k:03d}.png'),
                        cv2.warpAffine(frame, shift, (96, 64), borderMode=cv2.BORDER_REFLECT))
        warned = 'the camera probably moved'
        with caplog.at_level(logging.WARNING):
            fixed = ImagePairs(tmp_path / 'fixed', 64, 96, 2, 6, keypoints='foreground')
        assert warned not in caplog.text
        assert fixed.foreground.motion_ratio < fg.MOVING_CAMERA_RATIO
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            moving = ImagePairs(tmp_path / 'moving', 64, 96, 2, 6, keypoints='foreground')
        assert moving.foreground.motion_ratio > fg.MOVING_CAMERA_RATIO
        assert sum(warned in r.getMessage() for r in caplog.records) == 1
        assert 'ONE FIXED camera' in caplog.text and 'data.keypoints=uniform' in caplog.text

    def test_motion_ratio_by_hand(self):
        """Texture 10 (a 2-px step of 10 grey levels), table residual 5: ratio 0.5."""
        background = np.zeros((8, 8, 3), np.float32)
        background[:, ::4] = 10.0  # every fourth column: any 2-px shift changes by 10
        background[:, 1::4] = 10.0
        frame = background.copy()
        frame[:, :, 0] += np.where(np.arange(8) % 2 == 0, 5.0, -5.0)[:, None]  # +-5 per row
        masks = np.zeros((1, 8, 8), bool)
        assert fg.camera_motion_ratio([frame], background, masks) == pytest.approx(0.5, rel=1e-6)
        flat = np.full((8, 8, 3), 100.0, np.float32)  # no texture: cannot tell
        assert np.isnan(fg.camera_motion_ratio([flat], flat, masks))

    def test_fit_gain_offset_by_hand(self):
        bg = np.stack([np.arange(16, dtype=float).reshape(4, 4)] * 3, axis=-1)
        gain, offset = fg.fit_gain_offset(2.0 * bg + 5.0, bg)
        assert np.allclose(gain, 2.0) and np.allclose(offset, 5.0)

    def test_cell_fractions_by_hand(self):
        mask = np.zeros((10, 12), bool)
        mask[0:8, 0:4] = True      # half of cell (0, 0)
        mask[8:10, 8:12] = True    # the whole bottom-right partial cell (2 x 4 pixels inside)
        frac = fg.cell_fractions(mask, stride=8)
        assert frac.shape == (2, 2)
        assert frac[0, 0] == pytest.approx(0.5) and frac[1, 1] == pytest.approx(1.0)
        assert frac[0, 1] == 0 and frac[1, 0] == 0

    def test_sampling_respects_the_share(self):
        rng = np.random.default_rng(0)
        cells = np.zeros((2, 6, 8), bool)
        cells[:, :3, :4] = True    # 12 foreground cells of 48
        kp, valid = sample_keypoints(rng, cells, 16, 0.5)
        assert kp.shape == (2, 16, 2) and valid.all()
        for b in range(2):
            on = cells[b][kp[b, :, 1].astype(int), kp[b, :, 0].astype(int)]
            assert on.sum() == 8  # exactly the share; the rest from the background
            assert len({tuple(p) for p in kp[b].tolist()}) == 16  # no repetition
        kp, valid = sample_keypoints(rng, cells, 20, 1.0)  # asks 20 on the foreground, 12 exist
        assert valid.sum(axis=1).tolist() == [12, 12]
        on = cells[0][kp[0, valid[0], 1].astype(int), kp[0, valid[0], 0].astype(int)]
        assert on.all() and len({tuple(p) for p in kp[0, valid[0]].tolist()}) == 12

    def test_share_zero_is_uniform(self):
        cells = np.zeros((1, 4, 4), bool)
        cells[0, 0, 0] = True
        kp, valid = sample_keypoints(np.random.default_rng(1), cells, 15, 0.0)
        assert valid.all()
        assert (0.0, 0.0) not in {tuple(p)
                                  for p in kp[0].tolist()}  # 15 background cells, no foreground

    def test_frame_without_foreground_is_uniform(self):
        kp, valid = sample_keypoints(
            np.random.default_rng(2), np.zeros(
                (1, 4, 4), bool), 16, 1.0)
        assert valid.all()
        assert {tuple(p) for p in kp[0].tolist()} == {(float(x), float(y))
                                                      for y in range(4) for x in range(4)}

    def test_identical_frames_give_a_clear_error(self, tmp_path):
        folder = tmp_path / 'same'
        folder.mkdir()
        frame = np.full((32, 48, 3), 120, np.uint8)
        for i in range(5):
            cv2.imwrite(str(folder / f'{i}.png'), frame)
        with pytest.raises(DatasetError, match='nothing moves'):
            ImagePairs(folder, 32, 48, 2, 16, keypoints='foreground')

    def test_dataset_draws_keypoints_on_the_foreground(self, tmp_path):
        truth = static_scene(tmp_path / 'scene2', seed=3)
        # Two 16 px squares cover at least 2 x 4 cells at >= 50 %: ask for 6 keypoints.
        ds = ImagePairs(tmp_path / 'scene2', 64, 96, 4, 6, keypoints='foreground',
                        foreground={'share': 1.0})
        batch = ds[0]
        for b in range(4):
            cells = fg.cell_fractions(truth[int(batch['index_a'][b])]) >= 0.5
            kp = batch['kp_a'][b].numpy().astype(int)
            assert batch['kp_valid'][b].all() and cells[kp[:, 1], kp[:, 0]].all()

    def test_bad_foreground_config_is_refused(self, images):
        with pytest.raises(ConfigError, match='data.foreground.share'):
            tiny(images, 'data.foreground.share=1.5')
        with pytest.raises(ConfigError, match='data.keypoints'):
            tiny(images, 'data.keypoints=edges')
        with pytest.raises(ConfigError, match='optim.trunk'):
            tiny(images, 'optim.trunk=half')


# -------------------------------------------------------------------------- sanity bound
def test_sanity_bound_b_is_a_warped_copy_of_a(images, tmp_path):
    from ccl_perception.augment import warp_points
    from ccl_perception.learning.views import augment_seeds
    trainer = Trainer(tiny(images, 'loss.sanity_b_from_a=true'), tmp_path / 'sanity')
    assert 'image_b' not in trainer.dataset[0]  # I_B is never read from disk
    batch = trainer.dataset[0]
    views = trainer.views(batch)
    a = batch['image_a'].float() / 255.0
    b, hom_b = trainer.augment(a, seed=augment_seeds(batch['aug_seed'])[2])
    assert torch.equal(views.images[2], b)
    full = 8 * views.kp_orig + 3.5
    warped, ok = warp_points(full, hom_b, a.shape[-2:])
    sel = views.valid
    assert bool(sel.any()) and not bool((views.valid & ~ok).any())
    assert torch.allclose(views.kp_b_true[sel], ((warped - 3.5) / 8)[sel], atol=1e-4)


def test_augment_overrides_add_up(images):
    cfg = tiny(images, 'augment.degrees=180', 'augment.scale=[0.7, 1.4]')
    assert cfg['augment'] == {'degrees': 180, 'scale': [0.7, 1.4]}


# --------------------------------------------------------------------------- instruments
def test_instruments_on_a_plane_scene_with_a_known_shift(tmp_path):
    """View j of the plane scene is view i shifted by fx * (j - i) * shift / height pixels."""
    from ccl_perception.learning.instruments import CycleInstruments
    from ccl_perception.learning.synthetic import write_plane_scene
    metas = write_plane_scene(tmp_path / 'plane', 2, height=64, width=96, shift=0.05)
    paths = [tmp_path / 'plane' / m['image'] for m in metas]
    inst = CycleInstruments(tmp_path / 'plane', paths, (96, 64))
    fx = np.asarray(metas[0]['camera']['K'])[0, 0]
    shift_cells = fx * 0.05 / 1.0 / 8.0
    grid = np.array([[5.0, 3.0], [6.0, 4.0], [7.0, 2.0]])
    assert inst.on_objects(0, grid).all()
    true_b, exists = inst.true_in_b(0, 1, grid)
    assert exists.all()
    # (looking straight down, world x is the image's vertical; pixels are rounded: 1/16 cell)
    np.testing.assert_allclose(np.linalg.norm(true_b - grid, axis=1), shift_cells, atol=0.07)
    valid = keep = np.ones((1, 3), bool)
    exact = inst.measure([0], [1], grid[None], valid, keep, true_b[None])
    assert exact['sampled_on_objects'] == 1.0 and exact['kept_object_precision'] == 1.0
    off = inst.measure([0], [1], grid[None], valid, keep, (true_b + [2.0, 0.0])[None])
    assert off['kept_object_precision'] == 0.0
    assert np.isnan(off['kept_background_precision'])  # no background cycle was kept


def test_validation_runs_at_the_training_size_times_eval_scale(images, tmp_path):
    cfg = tiny(images, 'train.steps=1', 'train.eval_every=1', 'val_pairs=unused.json',
               'train.eval_scale=2')
    trainer = Trainer(cfg, tmp_path / 'scaled')
    sizes = []
    trainer.selection.evaluate_fn = lambda *a, **k: sizes.append(k['input_size']) or {'auc': 0.1}
    trainer.run()
    w, h = cfg['data']['width'], cfg['data']['height']
    assert sizes == [(2 * w, 2 * h)] * 2  # step 0 and step 1
