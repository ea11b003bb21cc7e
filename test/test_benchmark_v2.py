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
Benchmark v2: furniture conversion, catalogue, exact ground truth, size statistic, determinism.

Tests that need the real models skip with the reason when the Debian package
sweethome3d-furniture is missing (scripts/setup_env.sh installs it); everything else uses
small archives built here.
"""
import json
import logging
import os
import subprocess
import sys
import zipfile

from ccl_perception.evaluation.pairs import load_pairs
from ccl_perception.sim import furniture
from ccl_perception.sim.camera import Camera, d435_intrinsics
from ccl_perception.sim.catalogue_v2 import (build_catalogue, load_selection, notice_text,
                                             ObjectEntry, Selection, SurfaceEntry)
from ccl_perception.sim.dataset import (object_short_sides, render_evaluation_set,
                                        render_training_set)
from ccl_perception.sim.ground_truth import (exact_correspondences, Frame, load_frame,
                                             load_frames_index)
from ccl_perception.sim.objects import ObjectSpec
from ccl_perception.sim.scene import photo_lighting, TABLE_TOP_Z, TabletopScene
import cv2
import numpy as np
import pybullet as p
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def real_catalogue():
    try:
        furniture.archive_path('Scopia')
    except furniture.FurnitureMissing as exc:
        pytest.skip(f'{furniture.APT_PACKAGE} is not installed: {exc}')
    return build_catalogue()


# ------------------------------------------------------------------ small synthetic archives
CUBE_OBJ = """mtllib m.mtl
v 0 0 0
v 2 0 0
v 2 4 0
v 0 4 0
v 0 0 1
v 2 0 1
v 2 4 1
v 0 4 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl printed
f 1/1 2/2 3/3 4/4
f 5/1 8/4 7/3 6/2
usemtl plain
f 1 5 6 2
f 2 6 7 3
f 3 7 8 4
f -4 -8 -5 -1
"""
CUBE_MTL = 'newmtl printed\nKd 1 1 1\nmap_Kd label.jpg\nnewmtl plain\nKd 0.5 0.25 0.125\n'


def _props(entries):
    lines = ['id=Test#catalog', 'license=Public domain test archive']
    for n, (eid, model, w, d, h) in enumerate(entries, 1):
        lines += [f'id#{n}={eid}', f'name#{n}={eid}', f'model#{n}=/{model}', f'width#{n}={w}',
                  f'depth#{n}={d}', f'height#{n}={h}', f'creator#{n}=Tester']
    return '\n'.join(lines) + '\n'


def _jpeg(shape=(30, 45)):
    img = np.zeros((*shape, 3), np.uint8)
    img[:, : shape[1] // 2] = (0, 0, 255)
    return cv2.imencode('.jpg', img)[1].tobytes()


def _make_archive(folder, name='Test'):
    """Archive with a good model, one whose OBJ is missing, one with a corrupt texture."""
    path = os.path.join(folder, name + '.sh3f')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('PluginFurnitureCatalog.properties', _props([
            ('Test#good', 'good/good.obj', 20, 10, 40),
            ('Test#missing', 'missing/missing.obj', 5, 5, 5),
            ('Test#badtex', 'badtex/badtex.obj', 5, 5, 5)]))
        z.writestr('good/good.obj', CUBE_OBJ)
        z.writestr('good/m.mtl', CUBE_MTL)
        z.writestr('good/label.jpg', _jpeg())
        z.writestr('badtex/badtex.obj', CUBE_OBJ)
        z.writestr('badtex/m.mtl', CUBE_MTL)
        z.writestr('badtex/label.jpg', b'not a jpeg at all')
        z.writestr('photos/cloth.jpg', _jpeg((64, 64)))
        z.writestr('photos/broken.jpg', b'\xff\xd8 truncated')
    return path


# ---------------------------------------------------------------------------- package missing
def test_missing_package_is_a_clear_error(tmp_path):
    with pytest.raises(furniture.FurnitureMissing,
                       match='sweethome3d-furniture is not installed.*apt-get install'):
        furniture.archive_path('Scopia', folder=str(tmp_path))
    with pytest.raises(furniture.FurnitureMissing, match='setup_env.sh'):
        build_catalogue(folder=str(tmp_path), cache=str(tmp_path / 'cache'))


def test_render_cli_reports_missing_package_in_one_line(tmp_path):
    env = dict(os.environ, CCL_FURNITURE_DIR=str(tmp_path / 'none'),
               CCL_ASSET_CACHE=str(tmp_path / 'c'), PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'training', 'render_dataset.py'),
                        'train', '--out', str(tmp_path / 'out'), '--num-images', '1'],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if 'error' in line]
    assert len(err) == 1 and 'sweethome3d-furniture is not installed' in err[0]
    assert 'Traceback' not in r.stderr


# ------------------------------------------------------------------------------ conversion
def test_to_world_scales_to_catalogue_size_and_turns_y_up_into_z_up():
    entry = furniture.CatalogEntry('A', 'A#x', 'x', 'x.obj', width=20, depth=10, height=40,
                                   creator='', category='', licence='')
    # model box [0,2] x [0,4] x [0,1] (x, y up, z): 20 x 40 x 10 cm -> world x 0.2, y 0.1, z 0.4
    pts = np.array([[0, 0, 0], [2, 4, 1], [2, 0, 0]], float)
    w = furniture.to_world(pts, entry)
    np.testing.assert_allclose(w, [[-0.1, 0.05, -0.2], [0.1, -0.05, 0.2], [0.1, 0.05, -0.2]],
                               atol=1e-12)
    # modelRotation (row-major) is applied first: a quarter turn about x swaps model y and z
    rot = furniture.CatalogEntry('A', 'A#x', 'x', 'x.obj', 20, 10, 40, '', '', '',
                                 model_rotation=(1, 0, 0, 0, 0, -1, 0, 1, 0))
    # rotated: (0,0,0), (2,-4,1); box [0,2] x [-4,0] x [0,1] scaled to 20 x 40 x 10 cm, centred
    w2 = furniture.to_world(np.array([[0, 0, 0], [2, 1, 4]], float), rot)
    np.testing.assert_allclose(w2, [[-0.1, 0.05, 0.2], [0.1, -0.05, -0.2]], atol=1e-12)


def test_parse_obj_triangulates_polygons_and_resolves_negative_indices():
    mesh = furniture.parse_obj(CUBE_OBJ)
    assert mesh.positions.shape == (8, 3) and mesh.uvs.shape == (4, 2)
    assert sorted(mesh.groups) == ['plain', 'printed']
    assert mesh.groups['printed'].shape == (4, 3, 3) and mesh.groups['plain'].shape == (8, 3, 3)
    # 'f -4 -8 -5 -1' = vertices 5 1 4 8 (1-based): first fan triangle (5, 1, 4),
    # 0-based (4, 0, 3)
    assert mesh.groups['plain'][6, :, 0].tolist() == [4, 0, 3]
    assert (mesh.groups['plain'][:, :, 1] == -1).all()  # no uv on the plain faces
    with pytest.raises(furniture.AssetError, match='does not exist'):
        furniture.parse_obj('v 0 0 0\nv 1 0 0\nf 1 2 3\n')
    with pytest.raises(furniture.AssetError, match='no vertices'):
        furniture.parse_obj('# empty\n')


def test_smooth_normals_keep_cube_edges_sharp_and_round_a_sphere():
    mesh = furniture.parse_obj(CUBE_OBJ)
    faces = np.concatenate([g[:, :, 0] for g in mesh.groups.values()])
    pos = mesh.positions * [1.0, 0.5, 2.0]  # any box: 90 degree edges stay sharp
    n = furniture.smooth_normals(pos, faces)
    tri = pos[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    face_n /= np.linalg.norm(face_n, axis=1, keepdims=True)
    np.testing.assert_allclose(n, np.repeat(face_n[:, None], 3, axis=1), atol=1e-9)
    # a finely tessellated sphere: smoothed normals point radially
    from ccl_perception.sim import meshes
    v, _, _, f = meshes.ellipsoid((1.0, 1.0, 1.0), rings=24, segments=48)
    ns = furniture.smooth_normals(v, f)
    radial = v[f] / np.linalg.norm(v[f], axis=2, keepdims=True)
    assert np.median(np.sum(ns * radial, axis=2)) > 0.999


def test_convert_model_writes_textured_parts_at_catalogue_size(tmp_path):
    _make_archive(str(tmp_path))
    cache = str(tmp_path / 'cache')
    a = furniture.convert_model('Test', 'Test#good', folder=str(tmp_path), cache=cache)
    assert a.key == 'good' and a.num_triangles == 12
    np.testing.assert_allclose(a.extents, [0.2, 0.1, 0.4], atol=1e-6)
    textured = [q for q in a.parts if q.texture_file]
    plain = [q for q in a.parts if not q.texture_file]
    assert len(textured) == 1 and len(plain) == 1
    assert plain[0].rgba == (0.5, 0.25, 0.125, 1.0)
    img = cv2.imread(textured[0].texture_file)
    assert img.shape == (32, 32, 3)  # 45 x 30 JPEG -> power-of-two PNG (OpenGL row alignment)
    assert img[:, :12, 2].mean() > 200 and img[:, -12:, 2].mean() < 50  # same picture, resized
    text = open(textured[0].obj_file).read()
    assert text.startswith('mtllib ') and text.count('\nf ') == 4 and '\nvt ' in text
    # the cache answers the second call with the same files
    b = furniture.convert_model('Test', 'Test#good', folder=str(tmp_path), cache=cache)
    assert b.parts == a.parts and b.collision_file == a.collision_file


def test_corrupt_models_are_skipped_with_a_logged_reason(tmp_path, caplog):
    _make_archive(str(tmp_path))
    sel = Selection(
        objects=[ObjectEntry(k, 'seen', 'Test', f'Test#{k}', k,
                             (20.0, 10.0, 40.0) if k == 'good' else (5.0,) * 3,
                             'Public domain', 'Tester') for k in ('good', 'missing', 'badtex')]
        + [ObjectEntry('ghost', 'unseen', 'Test', 'Test#ghost', 'ghost', (5.0,) * 3, 'x', 'y')],
        surfaces=[SurfaceEntry(k, split, 'cloth', 'Test', f'photos/{k}.jpg', 'Test#good', 'x', 'y')
                  for k, split in (('cloth', 'train'), ('broken', 'heldout'),
                                   ('gone', 'heldout'))],
        archives={})
    with caplog.at_level(logging.WARNING, logger='ccl_perception.sim.catalogue_v2'):
        cat = build_catalogue(sel, folder=str(tmp_path), cache=str(tmp_path / 'cache'))
    assert [s.name for s in cat.seen] == ['good'] and cat.unseen == []
    reasons = dict(cat.skipped)
    assert set(reasons) == {'missing', 'badtex', 'ghost', 'broken', 'gone'}
    assert 'missing/missing.obj is missing' in reasons['missing']
    assert 'not a readable image' in reasons['badtex']
    assert 'not in the catalogue' in reasons['ghost']
    assert 'gone.jpg is missing' in reasons['gone']
    assert len([r for r in caplog.records if 'skipping' in r.getMessage()]) == 5
    assert cat.train_surfaces and not cat.heldout_surfaces
    assert cv2.imread(cat.surface_path('cloth')).shape == (64, 64, 3)
    with pytest.raises(ValueError, match='broken'):
        cat.surface_path('broken')


# ------------------------------------------------------------------------------ selection
def test_selection_is_consistent_and_notice_is_current():
    sel = load_selection()
    seen = [e for e in sel.objects if e.split == 'seen']
    unseen = [e for e in sel.objects if e.split == 'unseen']
    assert len(seen) == 12 and len(unseen) == 12
    assert all(4.0 <= max(e.size_cm) <= 21.5 for e in sel.objects)
    assert sum(e.graspable for e in sel.objects) >= 2 * len(sel.objects) // 3
    assert {e.archive for e in sel.objects} <= set(sel.archives)
    assert any(s.split == 'train' for s in sel.surfaces)
    assert sum(s.split == 'heldout' for s in sel.surfaces) >= 20
    with open(os.path.join(ROOT, 'NOTICE'), encoding='utf-8') as f:
        assert f.read() == notice_text(sel), \
            'NOTICE is stale: python -m ccl_perception.sim.catalogue_v2 --notice > NOTICE'
    for e in sel.objects:
        assert e.key in notice_text(sel) and e.author in notice_text(sel)


# ------------------------------------------------------------------ real packaged models
def test_real_model_loads_at_real_size_with_its_texture(real_catalogue):
    specs = real_catalogue.specs()
    box = specs['medicine_box']  # Scopia#medicoscopia_box: 10.9 x 4.3 x 6.6 cm, one texture
    np.testing.assert_allclose(box.size, [0.109, 0.043, 0.066], atol=1e-6)
    tex = [q.texture_file for q in box.parts if q.texture_file]
    assert len(tex) == 1 and cv2.imread(tex[0]).std() > 20  # a real picture, not a flat colour
    assert not real_catalogue.skipped
    with TabletopScene([box], renderer='egl') as s:
        body = s.bodies['medicine_box']
        aabb = np.array(p.getAABB(body, physicsClientId=s.client))
        s.arrange(np.random.default_rng(0), names=['medicine_box'], workspace_half=(0.0, 0.0))
        pos = s.object_poses()['medicine_box'][:3, 3]
    # collision hull = the mesh: AABB (plus pybullet's margin) spans the real size
    np.testing.assert_allclose(aabb[1] - aabb[0], [0.109, 0.043, 0.066], atol=0.004)
    # settles on its largest face: centre at half of 4.3 cm
    assert pos[2] == pytest.approx(0.0215, abs=0.003)


def test_exact_correspondences_between_two_v2_views(real_catalogue):
    specs = real_catalogue.specs()
    names = ['medicine_box', 'beer_bottle', 'creamer', 'rubiks_cube']
    with TabletopScene([specs[n] for n in names], renderer='egl',
                       surface=real_catalogue.surface_path('oak_light')) as s:
        s.arrange(np.random.default_rng(3), workspace_half=(0.07, 0.07))
        cam_a = Camera.d435_looking_at((0, 0, 0.38), (0, 0, 0), 320, 240, up=(1, 0, 0))
        cam_b = Camera.d435_looking_at((0.22, -0.18, 0.25), (0.01, 0, 0), 320, 240)
        light = photo_lighting()
        ra, rb = s.render(cam_a, light), s.render(cam_b, light)
        ids = {n: s.bodies[n] for n in s.active}
        poses = s.object_poses()
    assert len(s.active) == 4
    obj = np.isin(ra.segmentation, list(ids.values()))
    ys, xs = np.nonzero(obj)
    uv, z = cam_b.project(cam_a.backproject(np.stack([xs, ys], 1), ra.depth[ys, xs]))
    inside = cam_b.in_image(uv)
    ij = np.round(uv[inside]).astype(int)
    depth_ok = np.abs(rb.depth[ij[:, 1], ij[:, 0]] - z[inside]) < 0.004
    seg_b = rb.segmentation[ij[:, 1], ij[:, 0]][depth_ok]
    same = seg_b == ra.segmentation[ys, xs][inside][depth_ok]
    assert depth_ok.sum() > 1000 and same.mean() > 0.98
    corr = exact_correspondences(Frame(ra.depth, ra.segmentation, cam_a, poses, ids),
                                 Frame(rb.depth, rb.segmentation, cam_b, poses, ids))
    pa, pb = corr['pixels_a'], np.round(corr['pixels_b']).astype(int)
    ca = ra.rgb[pa[:, 1], pa[:, 0]].astype(float)
    cb = rb.rgb[pb[:, 1], pb[:, 0]].astype(float)
    err = np.abs(ca - cb).mean(axis=1)
    shuffled = np.abs(ca - cb[np.random.default_rng(0).permutation(len(cb))]).mean(axis=1)
    assert len(pa) > 1000 and np.median(err) < 0.4 * np.median(shuffled)


# ------------------------------------------------------------------------ size statistic
def test_object_short_sides_hand_computed():
    seg = np.full((240, 320), -1, np.int32)
    seg[100:116, 50:90] = 7                       # 40 x 16 px: short side 16 px = 2 cells
    pts = cv2.boxPoints(((200.0, 120.0), (80.0, 32.0), 30.0)).astype(np.int32)
    cv2.fillPoly(seg, [pts], 9)                   # rotated 80 x 32 px rectangle: 4 cells
    sides = object_short_sides(seg, [7, 9, 11])   # 11 is not visible: left out
    assert len(sides) == 2 and sides[0] == pytest.approx(2.0, abs=1e-6)
    # fillPoly also fills the pixels its edges touch: about one more pixel across
    assert sides[1] == pytest.approx(33.0 / 8, abs=0.1)
    big = cv2.resize(seg, (640, 480), interpolation=cv2.INTER_NEAREST)  # same objects at 640x480
    np.testing.assert_allclose(object_short_sides(big, [7, 9], 640), sides, atol=0.1)


def test_object_short_side_of_a_rendered_box_matches_the_pinhole_model():
    box = ObjectSpec('flat_box', 'box', (0.06, 0.04, 0.02), texture_seed=5)
    with TabletopScene([box], renderer='egl') as s:
        p.resetBasePositionAndOrientation(s.bodies['flat_box'], [0, 0, TABLE_TOP_Z + 0.01],
                                          [0, 0, 0, 1], physicsClientId=s.client)
        cam = Camera.d435_looking_at((0, 0, 0.32), (0, 0, 0), 320, 240, up=(1, 0, 0))
        r = s.render(cam)
    # top face at 0.30 m: the 4 cm side spans f * 0.04 / 0.30 px, f = 615 / 2
    expected = d435_intrinsics(320, 240)[0, 0] * 0.04 / 0.30 / 8
    side = object_short_sides(r.segmentation, [s.bodies['flat_box']], 320)[0]
    assert side == pytest.approx(expected, abs=0.15)


# --------------------------------------------------------------------- determinism, restore
def test_v2_training_frames_are_deterministic_by_seed(real_catalogue, tmp_path):
    cfg = {'benchmark': 'v2', 'num_images': 2, 'depth': True, 'hand_probability': 0.5,
           'settle_steps': 120, 'width': 160, 'height': 120}
    st = render_training_set(str(tmp_path / 'a'), cfg, progress=False)
    render_training_set(str(tmp_path / 'b'), cfg, progress=False)
    render_training_set(str(tmp_path / 'c'), dict(cfg, seed=1), progress=False)
    for name in ('000000.png', '000001.png'):
        a, b, c = (cv2.imread(str(tmp_path / d / name)) for d in 'abc')
        assert a.shape == (120, 160, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert st['object_size']['num_instances'] > 0
    f0, f1 = (load_frame(str(tmp_path / 'a'), m) for m in load_frames_index(str(tmp_path / 'a')))
    assert len(exact_correspondences(f0, f1)['pixels_a']) > 50


def test_scene_restore_gives_bit_identical_renders(real_catalogue):
    specs = real_catalogue.specs()
    with TabletopScene([specs['beer_bottle'], specs['cupcake']], renderer='egl') as s:
        s.arrange(np.random.default_rng(0))
        state = s.save_state()
        poses = s.object_poses()
        cam = Camera.d435_looking_at((0.1, 0.1, 0.35), (0, 0, 0), 160, 120)
        s.restore_state(state)
        first = s.render(cam)
        s.arrange(np.random.default_rng(1))       # something else happens in between
        assert not np.array_equal(s.render(cam).rgb, first.rgb)
        s.restore_state(state)
        again = s.render(cam)
        restored = s.object_poses(list(poses))
        runs = []
        for _ in range(2):                        # physics from a restore is repeatable too
            s.restore_state(state)
            p.applyExternalForce(s.bodies['cupcake'], -1, [0.5, 0, 0], [0, 0, 0.05], p.WORLD_FRAME,
                                 physicsClientId=s.client)
            for _ in range(60):
                p.stepSimulation(physicsClientId=s.client)
            runs.append(s.render(cam))
    for n in poses:
        np.testing.assert_allclose(restored[n], poses[n], atol=1e-12)
    assert np.array_equal(first.rgb, again.rgb)
    assert np.array_equal(first.depth, again.depth, equal_nan=True)
    assert np.array_equal(first.segmentation, again.segmentation)
    assert np.array_equal(runs[0].rgb, runs[1].rgb) and not np.array_equal(runs[0].rgb, first.rgb)


def test_v2_evaluation_set_pairs_are_cross_scene(real_catalogue, tmp_path):
    stats = render_evaluation_set(str(tmp_path), {
        'benchmark': 'v2', 'n_scenes': 2, 'views_per_scene': 2,
        'view_elevations_deg': [[90, 90], [35, 45]], 'seen_per_scene': 7, 'unseen_per_scene': 1,
        'keypoints_per_object': 6, 'settle_steps': 120},
        progress=False)
    pf = load_pairs(str(tmp_path / 'pairs.json'))
    assert stats['num_images'] == 4 and stats['num_pairs'] == len(pf.pairs) > 0
    assert {v['split'] for v in pf.objects.values()} == {'seen', 'unseen'}
    for pair in pf.pairs:
        assert pf.images[pair['image_1']]['scene'] != pf.images[pair['image_2']]['scene']
    frames = json.loads((tmp_path / 'frames.json').read_text())
    surfaces = {f['surface'] for f in frames['frames']}
    heldout = {os.path.basename(pth) for pth in real_catalogue.heldout_surfaces}
    assert surfaces <= heldout and len(surfaces) == 2  # a new held-out table per scene
    cam = Camera.from_dict(frames['frames'][1]['camera'])
    axis = cam.world_from_camera[:3, 2]
    assert np.degrees(np.arcsin(-axis[2])) <= 45.5  # the oblique view is >= 45 deg off vertical


def test_v2_grasp_world_uses_the_d435_and_resets_exactly(real_catalogue):
    from ccl_perception.sim.grasp_scene import v2_world_config
    from ccl_perception.sim.robot import SimWorld
    world = SimWorld(v2_world_config(width=320, height=240))
    try:
        np.testing.assert_allclose(world.camera.K, d435_intrinsics(320, 240), atol=1e-9)
        assert world.scene.renderer == 'egl' and len(world.object_names) == 12
        info = world.reset(7, target='beer_bottle')
        assert info.target_present and 0.30 <= np.linalg.norm(info.camera.world_from_camera[:3, 3]
                                                              - [0, 0, 0]) <= 0.56
        first = world.render()
        world.reset(8, target='cupcake')         # another trial in between: the arm moves
        world.robot.move_to([0.0, 0.0, 0.15], [1.0, 0.0, 0.0, 0.0], max_steps=100)
        world.reset(7, target='beer_bottle')
        again = world.render()
    finally:
        world.close()
    assert np.array_equal(first.rgb, again.rgb)
    assert np.array_equal(first.segmentation, again.segmentation)


def test_grasp_scenes_render_deterministically_with_camera_info(real_catalogue, tmp_path):
    from ccl_perception.sim.grasp_scene import render_grasp_scenes, v2_world_config
    cfg = v2_world_config(width=160, height=120)
    for d in ('a', 'b'):
        st = render_grasp_scenes(str(tmp_path / d), 2, seed=11, world_config=cfg, progress=False)
    assert st['num_images'] == 2
    for name in ('g000.png', 'g001.png'):
        a, b = (cv2.imread(str(tmp_path / d / 'images' / name)) for d in 'ab')
        assert a.shape == (120, 160, 3) and np.array_equal(a, b)
    meta = json.loads((tmp_path / 'a' / 'frames.json').read_text())['frames'][0]
    np.testing.assert_allclose(meta['camera_info']['K'], d435_intrinsics(160, 120), atol=1e-9)
    assert meta['target'] in meta['objects'] and meta['target_present']
