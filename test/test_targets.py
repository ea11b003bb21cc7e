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
Targets (file format, identity check, CLI), keypoint matcher and the frame->pose pipeline.

The synthetic scene: a tiny randomly initialised DescriptorNet (resnet18 trunk, D=32,
pretrained=False), a 128x96 image of random 8x8 colour blocks, planar depth at 0.5 m and
K = [[100, 0, 63.5], [0, 100, 47.5], [0, 0, 1]]. Target pixels sit on grid-cell centres
(8 j + 3.5) so an identical view matches them exactly (tau = 0.003), and the 3D points
follow by hand: X = (x - 63.5) * 0.5 / 100, Y = (y - 47.5) * 0.5 / 100, Z = 0.5.
"""
import os

from ccl_perception import geometry as g
from ccl_perception import targets as tg
from ccl_perception.grasp_pipeline import DEFAULTS, frame_to_pose, GraspPipeline, merge_config
from ccl_perception.keypoint_matcher import KeypointMatcher
import numpy as np
import pytest
import torch

H, W = 96, 128
K = g.intrinsics_matrix(100.0, 100.0, 63.5, 47.5)
PTS = [(51.5, 43.5), (75.5, 51.5), (35.5, 67.5)]
# by hand: (51.5-63.5)*0.005 = -0.06, (43.5-47.5)*0.005 = -0.02, ...
PTS_3D = np.array([[-0.06, -0.02, 0.5], [0.06, 0.02, 0.5], [-0.14, 0.10, 0.5]])
# a flat textured plane (no object to measure in depth): the pose is the matched axis
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
    # no calibrated gate: these tests use the global min_similarity (test_target_views.py
    # covers the calibrated one)
    return tg.make_target(extractor, rgb, PTS, 'blocks', depth=depth, K=K, calibrate=False)


class TestMakeTarget:

    def test_fields(self, target, extractor):
        assert target.descriptors.shape == (3, 32)
        np.testing.assert_allclose(np.linalg.norm(target.descriptors, axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(target.points_3d, PTS_3D, atol=1e-9)
        assert target.axis_length == pytest.approx(np.hypot(0.12, 0.04))
        assert target.model_identity == extractor.identity and target.image_size == (H, W)

    def test_descriptor_at_grid_centre_equals_map(self, target, extractor, scene):
        d = extractor(scene[0])  # (32, 12, 16); pixel 51.5 -> cell (51.5-3.5)/8 = 6, row 5
        np.testing.assert_allclose(target.descriptors[0], d[:, 5, 6].numpy(), atol=1e-5)

    def test_integer_pixels_equal_upsampled_map(self, extractor, scene):
        from ccl_perception.model import upsample_descriptors
        rgb = scene[0]
        t = tg.make_target(extractor, rgb, [(0, 0), (17, 30), (W - 1, H - 1)], 'x')
        up = upsample_descriptors(extractor(rgb)[None], (H, W))[0]
        for (x, y), d in zip([(0, 0), (17, 30), (W - 1, H - 1)], t.descriptors):
            np.testing.assert_allclose(d, up[:, y, x].numpy(), atol=1e-5)

    def test_bad_input(self, extractor, scene):
        rgb, depth = scene
        with pytest.raises(ValueError, match='at least two'):
            tg.make_target(extractor, rgb, [(1, 1)], 'x')
        with pytest.raises(ValueError, match=r'^point 2 \(128, 1\) is outside the 128x96 image: '
                                             r'allowed x in \[0, 127\], y in \[0, 95\]$'):
            tg.make_target(extractor, rgb, [(1, 1), (W, 1)], 'x')
        with pytest.raises(ValueError, match=r'^point 1 \(nan, 10\) is not finite$'):
            tg.make_target(extractor, rgb, [(np.nan, 10), (40, 11)], 'x')
        with pytest.raises(ValueError, match=r'^points 1 and 2 \(the grasp axis\) are 3.00 px '
                                             r'apart; they must be at least 4 px apart$'):
            tg.make_target(extractor, rgb, [(40, 10), (43, 10)], 'x')
        with pytest.raises(ValueError, match=r'^points 1 and 3 are 0.50 px apart'):
            tg.make_target(extractor, rgb, [(40, 10), (50, 10), (40.5, 10)], 'x')
        with pytest.raises(ValueError, match=r'principal point \(cx, cy\) = \(1e\+09, 47.5\) '
                                             r'is outside the 128x96 image'):
            tg.make_target(
                extractor,
                rgb,
                PTS,
                'x',
                depth=depth,
                K=g.intrinsics_matrix(
                    100,
                    100,
                    1e9,
                    47.5))
        with pytest.raises(ValueError, match=r'positive focal lengths, got fx=-100'):
            tg.make_target(extractor, rgb, PTS, 'x', depth=depth,
                           K=g.intrinsics_matrix(-100, 100, 63.5, 47.5))
        with pytest.raises(ValueError, match='non-empty string'):
            tg.make_target(extractor, rgb, PTS, ' ')
        # 8 px apart at 0.5 m with f = 1e5 px: 8 * 0.5 / 1e5 = 0.04 mm < 5 mm
        with pytest.raises(ValueError, match=r'^the grasp axis between points 1 and 2 is 0.04 mm '
                                             r'long in 3D; a target needs at least 5 mm$'):
            tg.make_target(
                extractor, rgb, [
                    (40, 10), (48, 10)], 'x', depth=depth, K=g.intrinsics_matrix(
                    1e5, 1e5, 63.5, 47.5))
        with pytest.raises(ValueError, match='intrinsics'):
            tg.make_target(extractor, rgb, PTS, 'x', depth=depth)
        hole = depth.copy()
        hole[40:48, 48:56] = np.nan
        with pytest.raises(ValueError, match='no valid depth'):
            tg.make_target(extractor, rgb, PTS, 'x', depth=hole, K=K)


class TestTargetFiles:

    def test_round_trip_and_identity(self, target, tmp_path):
        path = str(tmp_path / 't.npz')
        tg.save_target(path, target)
        back = tg.load_target(path, expected_identity=target.model_identity)
        assert back.name == 'blocks' and back.image_size == (H, W)
        np.testing.assert_array_equal(back.descriptors, target.descriptors)
        np.testing.assert_array_equal(back.points_3d, target.points_3d)
        with pytest.raises(tg.TargetError, match='made with model'):
            tg.load_target(path, expected_identity='another-model')

    def test_downscale_is_recorded_and_a_mismatch_names_it(self, extractor, scene, tmp_path):
        """A target made at downscale 2 says so; loading it for a model at 1 names downscale."""
        from ccl_perception.inference import DescriptorExtractor
        rgb, depth = scene
        half = DescriptorExtractor(extractor.model, downscale=2)
        made = tg.make_target(half, rgb, PTS, 'mug', depth=depth, K=K)
        path = str(tmp_path / 'mug.npz')
        tg.save_target(path, made)
        with np.load(path, allow_pickle=False) as z:
            assert int(z['downscale']) == 2
        assert tg.load_target(path, half.identity).downscale == made.downscale == 2
        with pytest.raises(tg.TargetError) as e:
            tg.load_target(path, extractor.identity)
        assert ('was made at downscale 2, the model runs at downscale 1: start the planner '
                'with downscale:=2 (parameter downscale), or remake the target with make_target '
                '--downscale 1') in str(e.value)
        # a file written before the downscale key: the scale is read from the identity
        with np.load(path, allow_pickle=False) as z:
            old = {k: z[k] for k in z.files if k != 'downscale'}
        np.savez(tmp_path / 'old.npz', **old)
        assert tg.load_target(str(tmp_path / 'old.npz')).downscale == 2
        np.savez(tmp_path / 'bad.npz', **old, downscale=np.int64(3))
        with pytest.raises(tg.TargetError, match='downscale 3 and model identity .*/2 disagree'):
            tg.load_target(str(tmp_path / 'bad.npz'))

    def test_rejects_pickle_and_garbage(self, tmp_path):
        bad = tmp_path / 'obj.npz'
        np.savez(bad, format_version=np.int64(1), name=np.array([{'a': 1}], dtype=object))
        with pytest.raises(tg.TargetError, match='not a valid npz|lacks'):
            tg.load_target(str(bad))
        (tmp_path / 'junk.npz').write_bytes(b'not a zip')
        with pytest.raises(tg.TargetError, match='not a valid npz'):
            tg.load_target(str(tmp_path / 'junk.npz'))
        with pytest.raises(tg.TargetError, match='does not exist'):
            tg.load_target(str(tmp_path / 'missing.npz'))

    def test_library_skips_bad_files(self, target, tmp_path):
        tg.save_target(str(tmp_path / 'a.npz'), target)
        (tmp_path / 'b.npz').write_bytes(b'junk')
        lib, errors = tg.load_library(str(tmp_path), target.model_identity)
        assert list(lib) == ['blocks'] and list(errors) == ['b.npz']

    def test_cli(self, tmp_path, scene):
        import cv2
        from ccl_perception.checkpoint import model_identity, save_checkpoint
        from ccl_perception.model import DescriptorNet
        torch.manual_seed(1)
        net = DescriptorNet('resnet18', 16, pretrained=False)
        ck = save_checkpoint(str(tmp_path / 'ck.pt'), net)
        rgb, depth = scene
        cv2.imwrite(str(tmp_path / 'ref.png'), rgb[:, :, ::-1])
        cv2.imwrite(str(tmp_path / 'ref_depth.png'), (depth * 1000).astype(np.uint16))
        out = str(tmp_path / 'targets' / 'mug.npz')
        rc = tg.main(['--checkpoint', ck, '--image', str(tmp_path / 'ref.png'), '--depth',
                      str(tmp_path / 'ref_depth.png'), '--intrinsics', '100,100,63.5,47.5',
                      '--points', '51.5,43.5', '75.5,51.5', '--name', 'mug', '--out', out])
        assert rc == 0
        t = tg.load_target(out, expected_identity=model_identity(net))
        assert t.name == 'mug' and t.descriptors.shape == (2, 16)
        np.testing.assert_allclose(t.points_3d, PTS_3D[:2], atol=1e-9)
        assert tg.main(['--checkpoint', ck, '--image', str(tmp_path / 'ref.png'),
                        '--points', '1,1', '--name', 'x', '--out', out]) == 2
        assert oct(os.stat(out).st_mode & 0o777) == oct(0o666 & ~_umask())  # 0644 under umask 022

    def test_parse_intrinsics(self, tmp_path):
        np.testing.assert_array_equal(tg.parse_intrinsics(
            '1,2,3,4'), [[1, 0, 3], [0, 2, 4], [0, 0, 1]])
        (tmp_path / 'ci.yaml').write_text('camera_matrix:\n  data: [5, 0, 1, 0, 6, 2, 0, 0, 1]\n')
        assert tg.parse_intrinsics(str(tmp_path / 'ci.yaml'))[1, 1] == 6
        with pytest.raises(ValueError, match='fx,fy,cx,cy'):
            tg.parse_intrinsics('1,2')
        with pytest.raises(ValueError, match=r"^intrinsics \(fx,fy,cx,cy\) '615,615,a,240': "
                                             r"'a' is not a number$"):
            tg.parse_intrinsics('615,615,a,240')
        with pytest.raises(ValueError, match=r"^intrinsics 'cam.yaml' is neither an existing file "
                                             r'nor fx,fy,cx,cy$'):
            tg.parse_intrinsics('cam.yaml')
        with pytest.raises(ValueError,
                           match=r'finite entries and positive focal lengths, got fx=nan'):
            tg.parse_intrinsics('nan,615,320,240')
        (tmp_path / 'bad.yaml').write_text('k: [1, 2, 3]\n')
        with pytest.raises(ValueError, match='bad.yaml'):
            tg.parse_intrinsics(str(tmp_path / 'bad.yaml'))


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


class TestKeypointMatcher:

    def _map(self):
        d = torch.zeros(3, 5, 5)
        d[2] = 1.0             # background: (0, 0, 1)
        d[:, 1, 2] = torch.tensor([1.0, 0, 0])
        return d

    def test_single_peak_exact(self):
        m = KeypointMatcher(tau=0.01).match(np.array([[1.0, 0, 0]]), self._map())
        # cell (x=2, y=1) -> full res (2*8+3.5, 1*8+3.5); all mass on one cell -> confidence 1
        np.testing.assert_allclose(m.keypoints, [[19.5, 11.5]], atol=1e-6)
        np.testing.assert_allclose(m.confidence, [1.0], atol=1e-6)
        assert m.heatmaps.shape == (1, 5, 5) and m.peak_similarity[0] == pytest.approx(1.0)

    def test_two_peaks_low_confidence(self):
        d = self._map()
        d[:, 1, 2] = torch.tensor([0.0, 0, 1])
        d[:, 0, 0] = torch.tensor([1.0, 0, 0])
        d[:, 0, 4] = torch.tensor([1.0, 0, 0])
        m = KeypointMatcher(tau=0.01, confidence_scale_px=16).match(np.array([[1.0, 0, 0]]), d)
        # mean x = 2 (grid) -> 19.5 px, var_x = 4 -> std = 8 * 2 = 16 px -> confidence e^-1
        np.testing.assert_allclose(m.keypoints, [[19.5, 3.5]], atol=1e-4)
        np.testing.assert_allclose(m.std_px, [16.0], atol=1e-3)
        np.testing.assert_allclose(m.confidence, [np.exp(-1)], atol=1e-4)

    def test_dimension_mismatch(self):
        with pytest.raises(ValueError, match='another model'):
            KeypointMatcher().match(np.ones((2, 4)), self._map())


class TestGraspPipeline:

    def test_identical_view_gives_hand_computed_pose(self, extractor, scene, target):
        rgb, depth = scene
        r = GraspPipeline(extractor, CFG).frame_to_pose(rgb, depth, K, target)
        assert r.ok, r.reason
        np.testing.assert_allclose(r.match.keypoints, PTS, atol=0.05)
        np.testing.assert_allclose(r.pose.position, [0.0, 0.0, 0.5], atol=1e-3)
        y = np.array([0.12, 0.04, 0]) / np.hypot(0.12, 0.04)
        np.testing.assert_allclose(r.pose.rotation[:, 1], y, atol=1e-3)        # closing axis
        np.testing.assert_allclose(r.pose.rotation[:, 2], [
                                   0, 0, 1], atol=1e-6)  # approach: into the plane
        assert r.pose.width == pytest.approx(np.hypot(0.12, 0.04) + 0.02, abs=1e-3)
        assert r.confidence > 0.9 and set(r.timings) >= {'descriptors', 'match', 'geometry'}

    def test_shifted_object(self, extractor, scene, target):
        rgb, depth = scene
        moved = np.roll(rgb, (8, 16), axis=(0, 1))  # object moved 16 px right, 8 px down
        r = frame_to_pose(extractor, moved, depth, K, target, CFG)
        assert r.ok, r.reason
        np.testing.assert_allclose(
            r.pose.position, [
                0.08, 0.04, 0.5], atol=1e-3)  # 16*0.005, 8*0.005

    def test_absent_target_abstains(self, extractor, scene, target):
        r = GraspPipeline(extractor, CFG).frame_to_pose(
            np.full((H, W, 3), 128, np.uint8), scene[1], K, target)
        assert not r.ok and 'not in view' in r.reason

    def test_low_confidence_abstains(self, extractor, scene, target):
        r = GraspPipeline(extractor, {**CFG, 'tau': 0.2, 'min_confidence': 0.3}).frame_to_pose(
            *scene, K, target)
        assert not r.ok and 'low match confidence' in r.reason

    def test_missing_depth_abstains(self, extractor, scene, target):
        rgb, depth = scene
        d = depth.copy()
        d[38:50, 46:58] = np.nan  # around keypoint 1 (51.5, 43.5)
        two = tg.Target(**{**target.__dict__, 'descriptors': target.descriptors[:2],
                           'pixels': target.pixels[:2], 'points_3d': target.points_3d[:2]})
        r = GraspPipeline(extractor, CFG).frame_to_pose(rgb, d, K, two)
        assert not r.ok and 'no valid depth' in r.reason
        # with three keypoints the reference-shape fit needs 3 with depth -> abstain as well,
        # naming the missing depth (not a shape contradiction)
        r3 = GraspPipeline(extractor, CFG).frame_to_pose(rgb, d, K, target)
        assert not r3.ok and r3.reason.startswith('no valid depth at 1 of 3 keypoints [[51.5, '
                                                  '43.5]]'), r3.reason
        assert r3.reason.endswith('the 3D check needs 3 keypoints with depth'), r3.reason

    def test_axis_length_contradiction(self, extractor, scene, target):
        rgb, depth = scene
        two = tg.Target(**{**target.__dict__, 'descriptors': target.descriptors[:2],
                           'pixels': target.pixels[:2], 'points_3d': None, 'axis_length': 0.5})
        r = GraspPipeline(extractor, CFG).frame_to_pose(rgb, depth, K, two)
        assert not r.ok and 'axis length' in r.reason

    def test_ransac_rejects_scaled_scene(self, extractor, scene, target):
        rgb, depth = scene
        r = GraspPipeline(
            extractor,
            CFG).frame_to_pose(
            rgb,
            depth * 2,
            K,
            target)  # twice as far: 2x larger
        assert not r.ok and 'contradict' in r.reason

    def test_min_inlier_fraction(self, extractor, scene):
        rgb, depth = scene
        four = tg.make_target(extractor, rgb, PTS + [(99.5, 27.5)], 'four', depth=depth, K=K)
        bumped = depth.copy()
        # keypoint 4 now 5 cm closer: 3 of 4 keypoints fit the reference
        bumped[22:34, 94:106] = 0.45
        r = GraspPipeline(extractor, {**CFG, 'min_inlier_fraction': 0.75}
                          ).frame_to_pose(rgb, bumped, K, four)
        assert r.ok, r.reason  # needs ceil(0.75 * 4) = 3
        r = GraspPipeline(extractor, {**CFG, 'min_inlier_fraction': 1.0}
                          ).frame_to_pose(rgb, bumped, K, four)
        assert not r.ok and 'fewer than 4 of 4' in r.reason
        with pytest.raises(ValueError, match='min_inlier_fraction'):
            merge_config({'min_inlier_fraction': 0.0})

    def test_too_wide_for_the_gripper_abstains(self, extractor, scene, target):
        # axis |(0.12, 0.04, 0)| = 12.65 cm, + 0.5 cm least clearance = 13.15 cm > 10 cm stroke
        r = GraspPipeline(extractor, {**CFG, 'max_width': 0.10}).frame_to_pose(*scene, K, target)
        assert not r.ok and r.pose is None
        assert r.reason == ('object too wide for the gripper: needs at least a 13.1 cm opening '
                            '(axis 12.6 cm + min_clearance 0.5 cm), max_width is 10.0 cm')
        # 13.15 cm > 13 cm; with no clearance required a 13 cm stroke takes it at 12.65 cm
        assert not GraspPipeline(extractor, {**CFG, 'max_width': 0.13, 'gripper_margin': 0.0}
                                 ).frame_to_pose(*scene, K, target).ok
        r = GraspPipeline(extractor, {**CFG, 'max_width': 0.13, 'gripper_margin': 0.0,
                                      'min_clearance': 0.0}).frame_to_pose(*scene, K, target)
        assert r.ok and r.pose.width == pytest.approx(np.hypot(0.12, 0.04), abs=1e-3)

    def test_an_object_that_fits_the_stroke_is_attempted(self, extractor, scene, target):
        # 12.65 cm + 2 cm margin = 14.65 cm > a 14 cm stroke, but 12.65 + 0.5 fits: the
        # gripper opens fully (14 cm, 1.35 cm of margin) instead of abstaining
        r = GraspPipeline(extractor, {**CFG, 'max_width': 0.14}).frame_to_pose(*scene, K, target)
        assert r.ok, r.reason
        assert r.pose.width == pytest.approx(0.14, abs=1e-9)

    def test_depth_outside_working_range_abstains(self, extractor, scene, target):
        r = GraspPipeline(extractor, {**CFG, 'max_depth': 0.4}).frame_to_pose(*scene, K, target)
        assert not r.ok and r.reason == ('grasp keypoint depth 0.500 / 0.500 m outside the '
                                         'working range [0.05, 0.4] m (min_depth, max_depth)')
        r = GraspPipeline(extractor, {**CFG, 'min_depth': 0.6}).frame_to_pose(*scene, K, target)
        assert not r.ok and 'outside the working range [0.6, 3] m' in r.reason

    def test_update_config_validates_and_applies_all_or_nothing(self, extractor, scene, target):
        p = GraspPipeline(extractor, CFG)
        with pytest.raises(ValueError, match=r'^tau = nan is not allowed: '
                                             r'must be a finite number in \(0, 1\]$'):
            p.update_config(tau=float('nan'))
        with pytest.raises(ValueError, match=r'^depth_window = 4 is not allowed: '
                                             r'must be an odd integer in \[1, 51\]$'):
            p.update_config(min_confidence=0.5, depth_window=4)
        # nothing applied
        assert p.config['min_confidence'] == DEFAULTS['min_confidence'] != 0.5
        assert p.config['depth_window'] == 5
        with pytest.raises(ValueError, match='unknown grasp pipeline option'):
            p.update_config(tauu=0.1)
        p.update_config(tau=0.2, confidence_scale_px=8.0, min_confidence=0.3)
        assert p.matcher.tau == 0.2 and p.matcher.confidence_scale_px == 8.0
        assert p.config['tau'] == 0.2
        assert 'low match confidence' in p.frame_to_pose(
            *scene, K, target).reason  # the new tau is used

    def test_bad_input_raises(self, extractor, scene, target):
        rgb, depth = scene
        with pytest.raises(ValueError, match='does not match'):
            GraspPipeline(extractor, CFG).frame_to_pose(rgb, depth[:-1], K, target)
        with pytest.raises(ValueError, match='unknown grasp pipeline option'):
            merge_config({'tauu': 1})


def test_no_tmp_files_left(target, tmp_path):
    tg.save_target(str(tmp_path / 'x.npz'), target)
    assert os.listdir(tmp_path) == ['x.npz']


def test_target_mode_follows_the_umask(target, tmp_path):
    old = os.umask(0o022)
    try:
        tg.save_target(str(tmp_path / 'a.npz'), target)
        os.umask(0o077)
        tg.save_target(str(tmp_path / 'b.npz'), target)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / 'a.npz').st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / 'b.npz').st_mode & 0o777 == 0o600


def test_onnx_backend_gives_the_same_pose(extractor, scene, target, tmp_path):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    from ccl_perception.inference import DescriptorExtractor, export_onnx
    path = export_onnx(extractor.model, str(tmp_path / 'm.onnx'), H, W)
    onnx_ex = DescriptorExtractor(extractor.model, backend='onnx', onnx_path=path)
    assert onnx_ex.identity == target.model_identity
    r = GraspPipeline(onnx_ex, CFG).frame_to_pose(*scene, K, target)
    assert r.ok, r.reason
    np.testing.assert_allclose(r.pose.position, [0.0, 0.0, 0.5], atol=1e-3)
