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
Calibrated per-target gates and multi-view targets: stored, loaded, used by the planner.

The synthetic scene of test_targets.py: a tiny random DescriptorNet (resnet18 trunk, D=32), a
128x96 image of random 8x8 colour blocks, planar depth 0.5 m, target pixels on cell centres.
"""
from dataclasses import replace

from ccl_perception import geometry as g
from ccl_perception import target_gates as gates
from ccl_perception import targets as tg
from ccl_perception.grasp_pipeline import GraspPipeline
import numpy as np
import pytest
import torch

H, W = 96, 128
K = g.intrinsics_matrix(100.0, 100.0, 63.5, 47.5)
PTS = [(51.5, 43.5), (75.5, 51.5), (35.5, 67.5)]
CFG = {'tau': 0.003, 'min_similarity': 0.97, 'max_width': 0.2, 'grasp_refinement': 'none'}


@pytest.fixture(scope='module')
def extractor():
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return DescriptorExtractor(DescriptorNet('resnet18', 32, pretrained=False))


@pytest.fixture(scope='module')
def scene():
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    return rgb, np.full((H, W), 0.5, np.float32)


@pytest.fixture(scope='module')
def target(extractor, scene):
    rgb, depth = scene
    return tg.make_target(extractor, rgb, PTS, 'blocks', depth=depth, K=K)


def test_gate_formula_by_hand():
    pos = np.array([[0.9, 0.8, 0.1], [0.7, 0.6, 0.1], [0.5, np.nan, 0.1], [0.3, 0.4, 0.1]])
    neg = np.array([[0.2, 0.5, 0.9], [0.4, 0.1, 0.9], [0.1, 0.3, 0.9], [0.3, 0.2, 0.9]])
    cfg = {'positive_quantile': 0.0, 'negative_quantile': 1.0, 'alpha': 0.5}
    # point 1: min(s+) = 0.3, max(s-) = 0.4 -> 0.4 + 0.5 (0.3 - 0.4) = 0.35
    # point 2: min(s+) = 0.4 (NaN ignored), max(s-) = 0.5 -> 0.45; point 3 is not an axis point
    np.testing.assert_allclose(gates.gate({'positive': pos, 'negative': neg}, cfg), [0.35, 0.45])
    # the median of s+ of point 1 is (0.5 + 0.7) / 2 = 0.6 -> 0.4 + 0.25 * 0.2 = 0.45;
    # point 2: median of (0.8, 0.6, 0.4) = 0.6 -> 0.5 + 0.25 * 0.1 = 0.525
    np.testing.assert_allclose(gates.gate({'positive': pos, 'negative': neg},
                                          {**cfg, 'positive_quantile': 0.5, 'alpha': 0.25}),
                               [0.45, 0.525])
    no_pos = pos.copy()
    no_pos[:, 1] = np.nan                 # point 2 never stayed in the image
    g = gates.gate({'positive': no_pos, 'negative': neg}, cfg)
    assert g[0] == pytest.approx(0.35) and np.isnan(g[1])


def test_random_view_maps_points_like_its_image(scene):
    import cv2
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[40:42, 60:62] = 255                       # a bright 2x2 dot centred at (60.5, 40.5)
    Hm, gain, offset = gates.random_view(np.random.default_rng(3), (H, W))
    out = cv2.warpPerspective(rgb, Hm, (W, H)).astype(float).sum(2)
    ys, xs = np.nonzero(out > 0)
    centre = np.array([(out[ys, xs] * xs).sum(), (out[ys, xs] * ys).sum()]) / out[ys, xs].sum()
    moved = cv2.perspectiveTransform(np.array([[[60.5, 40.5]]]), Hm)[0, 0]
    np.testing.assert_allclose(centre, moved, atol=0.5)
    assert gain.shape == (3,) and np.all((gain > 0.6) & (gain < 1.45)) and abs(offset) <= 20


class TestCalibratedGate:

    def test_stored_and_loaded(self, target, tmp_path):
        assert target.gate.shape == (2,) and np.all(np.abs(target.gate) <= 1)
        A = gates.DEFAULTS['augmentations']
        assert target.calibration_pos.shape == target.calibration_neg.shape == (A, 3)
        # the gates are the formula applied to the stored statistics
        np.testing.assert_allclose(target.gate, gates.gate(
            {'positive': target.calibration_pos, 'negative': target.calibration_neg}))
        path = str(tmp_path / 't.npz')
        tg.save_target(path, target)
        back = tg.load_target(path, target.model_identity)
        np.testing.assert_allclose(back.gate, target.gate)
        np.testing.assert_array_equal(back.calibration_neg, target.calibration_neg)

    def test_made_without_calibration(self, extractor, scene):
        t = tg.make_target(extractor, scene[0], PTS, 'plain', calibrate=False)
        assert t.gate is None and t.calibration_pos is None

    def test_used_by_the_planner_and_overridden_by_the_global_gate(self, extractor, scene,
                                                                   target):
        rgb, depth = scene
        grey = np.full((H, W, 3), 128, np.uint8)
        # the identical view passes point 1's own gate (-1) and fails point 2's (1.01, above
        # any cosine): the abstention names point 2 and the calibrated gate
        r = GraspPipeline(extractor, CFG).frame_to_pose(
            rgb, depth, K, replace(target, min_similarity=np.array([-1.0, 1.01])))
        assert not r.ok and r.gate.tolist() == [-1.0, 1.01]
        assert r.reason.endswith(" < 1.010 at grasp point 2 (the target view's calibrated "
                                 'gate): target not in view')
        # low calibrated gates let the identical view through where min_similarity 1 would not
        lax = replace(target, min_similarity=np.array([-1.0, -1.0]))
        r = GraspPipeline(extractor, {**CFG, 'min_similarity': 1.0}).frame_to_pose(
            rgb, depth, K, lax)
        assert r.ok and r.gate.tolist() == [-1.0, -1.0]
        # per_target_gates off: the global min_similarity (1.0) applies again
        r = GraspPipeline(extractor, {**CFG, 'min_similarity': 1.0, 'per_target_gates': False}
                          ).frame_to_pose(grey, depth, K, lax)
        assert not r.ok and r.gate.tolist() == [1.0, 1.0]
        assert '< 1.000 at grasp point' in r.reason and '(min_similarity)' in r.reason


def test_todays_format_loads_and_uses_the_global_gate(extractor, scene, target, tmp_path):
    """A file with only the keys of format 1 before issue 18 (no gate, one view)."""
    path = tmp_path / 'old.npz'
    np.savez(path, format_version=np.int64(1), name=np.str_('blocks'),
             model_identity=np.str_(target.model_identity), descriptors=target.descriptors,
             pixels=np.asarray(target.pixels), image_size=np.array([H, W]),
             points_3d=target.points_3d, axis_length=np.float64(target.axis_length),
             intrinsics=K)
    old = tg.load_target(str(path), target.model_identity)
    assert old.gate is None and len(old.views) == 1 and old.calibration_pos is None
    grey = np.full((H, W, 3), 128, np.uint8)
    r = GraspPipeline(extractor, CFG).frame_to_pose(grey, scene[1], K, old)
    assert not r.ok and r.gate.tolist() == [0.97, 0.97]
    assert r.reason.endswith('(min_similarity): target not in view')
    assert GraspPipeline(extractor, CFG).frame_to_pose(*scene, K, old).ok


class TestMultiView:

    def decoy(self, target):
        """Return a view of the same object whose descriptors point nowhere in the scene."""
        rng = np.random.default_rng(1)
        d = rng.normal(size=target.descriptors.shape).astype(np.float32)
        return replace(target, descriptors=d / np.linalg.norm(d, axis=1, keepdims=True),
                       min_similarity=np.array([0.9, 0.9]))

    def test_save_load_and_match_the_best_supported_view(self, extractor, scene, target,
                                                         tmp_path):
        two = tg.add_view(self.decoy(target), target)
        assert len(two.views) == 2 and two.views[1] is not two
        path = str(tmp_path / 'two.npz')
        tg.save_target(path, two)
        back = tg.load_target(path, target.model_identity)
        assert len(back.views) == 2 and back.views[1].extra_views == []
        np.testing.assert_array_equal(back.views[1].descriptors, target.descriptors)
        np.testing.assert_array_equal(back.views[0].descriptors, two.descriptors)
        np.testing.assert_allclose(back.views[0].gate, [0.9, 0.9])
        np.testing.assert_allclose(back.views[1].gate, target.gate)
        r = GraspPipeline(extractor, CFG).frame_to_pose(*scene, K, back)
        assert r.ok and r.view == 1
        np.testing.assert_allclose(r.pose.position, [0.0, 0.0, 0.5], atol=1e-3)

    def test_no_view_matches(self, extractor, scene, target):
        two = tg.add_view(target, self.decoy(target))
        r = GraspPipeline(extractor, CFG).frame_to_pose(
            np.full((H, W, 3), 128, np.uint8), scene[1], K, two)
        assert not r.ok and r.reason.startswith('view ') and ' of 2 (best supported): ' in r.reason

    def test_views_of_another_object_or_model_are_refused(self, target, tmp_path):
        with pytest.raises(tg.TargetError, match="cannot join target 'blocks'"):
            tg.add_view(target, replace(target, name='mug'))
        with pytest.raises(tg.TargetError, match='made with model other'):
            tg.add_view(target, replace(target, model_identity='other'))
        four = target
        for _ in range(3):
            four = tg.add_view(four, target)
        with pytest.raises(tg.TargetError, match='would have 5 views; at most 4'):
            tg.add_view(four, target)
        path = str(tmp_path / 'four.npz')
        tg.save_target(path, four)
        assert len(tg.load_target(path).views) == 4
        with pytest.raises(tg.TargetError, match='made with model'):
            tg.load_target(path, expected_identity='another-model')

    def test_broken_view_is_refused(self, target, tmp_path):
        path = tmp_path / 'broken.npz'
        tg.save_target(str(path), tg.add_view(target, target))
        with np.load(path) as z:
            data = dict(z)
        data['view1_pixels'] = data['view1_pixels'][:2]
        np.savez(path, **data)
        with pytest.raises(tg.TargetError, match='view 1: pixels'):
            tg.load_target(str(path))
        data['extra_views'] = np.int64(7)
        np.savez(path, **data)
        with pytest.raises(tg.TargetError, match='7 extra views; at most 3'):
            tg.load_target(str(path))


def test_cli_adds_views_and_reports_the_gate(scene, tmp_path, capsys):
    import cv2

    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import build_model
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'm.pt'), build_model(
        {'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False, 'head_hidden': 8}))
    img = str(tmp_path / 'ref.png')
    cv2.imwrite(img, scene[0][:, :, ::-1])
    out = str(tmp_path / 'blocks.npz')
    base = ['--checkpoint', ck, '--image', img, '--points', '51.5,43.5', '75.5,51.5',
            '--name', 'blocks', '--out', out]
    assert tg.main(base) == 0
    assert 'view 1 of 1' in capsys.readouterr().out
    assert tg.main(base + ['--add-view', '--no-calibrate']) == 0
    assert 'view 2 of 2' in capsys.readouterr().out
    t = tg.load_target(out)
    assert len(t.views) == 2 and t.gate is not None and t.views[1].gate is None
    assert tg.main(base[:-4] + ['--name', 'mug', '--out', out, '--add-view']) == 2
    assert "view of 'mug' cannot join target 'blocks'" in capsys.readouterr().err
