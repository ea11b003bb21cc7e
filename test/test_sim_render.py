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

"""Rendered ground truth is exact: camera convention, depth, reprojection, determinism."""
import json
import os

from ccl_perception.evaluation.pairs import load_pairs
from ccl_perception.sim.camera import Camera
from ccl_perception.sim.dataset import render_evaluation_set, render_training_set
from ccl_perception.sim.ground_truth import (exact_correspondences, Frame, load_frame,
                                             load_frames_index)
from ccl_perception.sim.objects import object_catalogue, ObjectSpec
from ccl_perception.sim.scene import TABLE_TOP_Z, TabletopScene
import cv2
import numpy as np
import pybullet as p
import pytest


@pytest.fixture(scope='module')
def scene():
    with TabletopScene(object_catalogue(0, 12)[:6], background_seed=2) as s:
        s.arrange(np.random.default_rng(0))
        yield s


@pytest.mark.parametrize('renderer', ['tiny', 'egl'])
@pytest.mark.parametrize('size, offset', [((160, 120), (0.0, 0.0)), ((161, 121), (0.013, 0.007))])
def test_pixel_centre_convention_and_depth(size, offset, renderer):
    """Rendered pixels are exactly those whose centres fall inside the projected box top."""
    box = ObjectSpec('flat_box', 'box', (0.08, 0.06, 0.02), texture_seed=5)
    with TabletopScene([box], renderer=renderer) as s:
        body = s.bodies['flat_box']
        p.resetBasePositionAndOrientation(body, [offset[0], offset[1], TABLE_TOP_Z + 0.01],
                                          [0, 0, 0, 1], physicsClientId=s.client)
        cam = Camera.looking_at((0, 0, 0.5), (0, 0, 0), size[0], size[1], 50.0)
        r = s.render(cam)
    ys, xs = np.nonzero(r.segmentation == body)
    corners = [[offset[0] + sx * 0.04, offset[1] + sy * 0.03, 0.02]
               for sx in (-1, 1) for sy in (-1, 1)]
    uv, z = cam.project(corners)
    assert z == pytest.approx([0.48] * 4)
    assert (xs.min(), xs.max()) == (np.ceil(uv[:, 0].min()), np.floor(uv[:, 0].max()))
    assert (ys.min(), ys.max()) == (np.ceil(uv[:, 1].min()), np.floor(uv[:, 1].max()))
    # look_at's top-down image: up = world +x, so the 8 cm side is vertical
    assert uv[:, 1].max() - uv[:, 1].min() == pytest.approx(cam.K[1, 1] * 0.08 / 0.48)
    assert offset != (0.0, 0.0) or (cam.project([[0, 0, 0.02]])[
        0][0] == pytest.approx([79.5, 59.5]))
    cy, cx = int(round(ys.mean())), int(round(xs.mean()))
    assert r.depth[cy, cx] == pytest.approx(0.48, abs=1e-3)  # true z-depth in metres
    assert np.isnan(r.depth).sum(
    ) == 0 and r.rgb.dtype == np.uint8 and r.segmentation.dtype == np.int32


def test_reprojection_lands_on_same_object_with_same_colour(scene):
    cam_a = Camera.looking_at((0, 0, 0.5), (0, 0, 0), 160, 120, 50.0)
    cam_b = Camera.looking_at((0.3, -0.2, 0.35), (0.02, 0, 0), 160, 120, 50.0)
    ra, rb = scene.render(cam_a), scene.render(cam_b)
    ids = {n: scene.bodies[n] for n in scene.active}
    poses = scene.object_poses()
    # 1) independent check of cameras + depth: depth-test-visible points keep their body id
    obj = np.isin(ra.segmentation, list(ids.values()))
    ys, xs = np.nonzero(obj)
    uv, z = cam_b.project(cam_a.backproject(np.stack([xs, ys], 1), ra.depth[ys, xs]))
    inside = cam_b.in_image(uv)
    ij = np.round(uv[inside]).astype(int)
    depth_ok = np.abs(rb.depth[ij[:, 1], ij[:, 0]] - z[inside]) < 0.004
    same = rb.segmentation[ij[:, 1], ij[:, 0]
                           ][depth_ok] == ra.segmentation[ys, xs][inside][depth_ok]
    assert depth_ok.sum() > 500 and same.mean() > 0.98
    # 2) exact_correspondences: colours agree far better than for shuffled pixels
    fa = Frame(ra.depth, ra.segmentation, cam_a, poses, ids)
    fb = Frame(rb.depth, rb.segmentation, cam_b, poses, ids)
    corr = exact_correspondences(fa, fb)
    assert len(corr['pixels_a']) > 500
    pa, pb = corr['pixels_a'], np.round(corr['pixels_b']).astype(int)
    ca = ra.rgb[pa[:, 1], pa[:, 0]].astype(float)
    cb = rb.rgb[pb[:, 1], pb[:, 0]].astype(float)
    err = np.abs(ca - cb).mean(axis=1)
    shuffled = np.abs(ca - cb[np.random.default_rng(0).permutation(len(cb))]).mean(axis=1)
    assert np.median(err) < 0.4 * np.median(shuffled)
    assert all(n in ids for n in corr['names'])


def test_moved_object_correspondences_follow_its_pose(scene):
    cam = Camera.looking_at((0, 0, 0.5), (0, 0, 0), 160, 120, 50.0)
    ids = {n: scene.bodies[n] for n in scene.active}
    ra = scene.render(cam)
    fa = Frame(ra.depth, ra.segmentation, cam, scene.object_poses(), ids)
    name = scene.active[0]
    pos, quat = p.getBasePositionAndOrientation(ids[name], physicsClientId=scene.client)
    p.resetBasePositionAndOrientation(ids[name], [pos[0] + 0.03, pos[1], pos[2]], quat,
                                      physicsClientId=scene.client)
    try:
        rb = scene.render(cam)
        fb = Frame(rb.depth, rb.segmentation, cam, scene.object_poses(), ids)
        corr = exact_correspondences(fa, fb)
        moved = corr['names'] == name
        assert moved.sum() > 20
        shift = corr['pixels_b'][moved] - corr['pixels_a'][moved]
        # +3 cm along world x = image up (-y) for look_at's top-down camera;
        # at ~0.47 m: f*0.03/z px
        expected = cam.K[0, 0] * 0.03 / float(np.median(ra.depth[ra.segmentation == ids[name]]))
        assert np.median(shift[:, 1]) == pytest.approx(-expected, rel=0.1)
        assert abs(np.median(shift[:, 0])) < 0.5
    finally:
        p.resetBasePositionAndOrientation(ids[name], pos, quat, physicsClientId=scene.client)


def test_two_worlds_in_one_process():
    a = TabletopScene(object_catalogue(0, 6)[:2])
    b = TabletopScene(object_catalogue(0, 6)[2:4])
    try:
        assert a.client != b.client
        assert set(a.bodies) .isdisjoint(b.bodies)
    finally:
        a.close()
        b.close()


def test_training_set_is_deterministic_and_has_ground_truth(tmp_path):
    cfg = {
        'num_images': 2,
        'width': 160,
        'height': 120,
        'n_objects': 4,
        'depth': True,
        'settle_steps': 60}
    render_training_set(str(tmp_path / 'a'), cfg, progress=False)
    render_training_set(str(tmp_path / 'b'), dict(cfg, depth=False), progress=False)
    for name in ('000000.png', '000001.png'):
        ia = cv2.imread(str(tmp_path / 'a' / name))
        ib = cv2.imread(str(tmp_path / 'b' / name))
        assert ia.shape == (120, 160, 3) and np.array_equal(ia, ib)
    assert not np.array_equal(cv2.imread(str(tmp_path / 'a' / '000000.png')),
                              cv2.imread(str(tmp_path / 'a' / '000001.png')))
    metas = load_frames_index(str(tmp_path / 'a'))
    f0, f1 = (load_frame(str(tmp_path / 'a'), m) for m in metas)
    corr = exact_correspondences(f0, f1)
    assert len(corr['pixels_a']) > 50  # the same objects, re-arranged, are found again
    with pytest.raises(ValueError, match='frames.json'):
        load_frames_index(str(tmp_path / 'b'))


def test_evaluation_set_pairs_are_cross_scene_and_annotated(tmp_path):
    stats = render_evaluation_set(str(tmp_path), {
        'n_scenes': 3, 'views_per_scene': 2, 'width': 160, 'height': 120, 'n_seen_objects': 3,
        'n_unseen_objects': 3, 'objects_per_scene': 4, 'settle_steps': 60,
        'keypoints_per_object': 6},
        progress=False)
    pf = load_pairs(str(tmp_path / 'pairs.json'))
    assert stats['num_images'] == 6 and len(pf.images) == 6
    assert {v['split'] for v in pf.objects.values()} == {'seen', 'unseen'}
    kinds = {k for im in pf.images for o in im['objects'].values() for k in o['kinds']}
    assert kinds == {'boundary', 'interior'}
    assert stats['num_pairs'] == len(pf.pairs) > 0
    for pair in pf.pairs:
        assert pf.images[pair['image_1']]['scene'] != pf.images[pair['image_2']]['scene']
        assert pf.pair_keypoints(pair)
    for im in pf.images:
        assert os.path.isfile(os.path.join(str(tmp_path), im['file']))
    frames = json.loads((tmp_path / 'frames.json').read_text())
    assert len(frames['frames']) == 6
