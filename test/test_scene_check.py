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
Is the target in view and graspable: the check on hand-made images and hand-made scenes.

A scene whose target is hidden (under another object, or outside the view) is not a present
trial; the 'visible' world tries the seed's next arrangement and records why.
"""
from ccl_perception.evaluation import grasp_protocol as gp
from ccl_perception.sim import scene_check as sc
from ccl_perception.sim.camera import Camera
import numpy as np
import pytest

W, H = 64, 48
K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])


def top_down(z=1.0):
    """Camera at height ``z`` looking straight down at the origin (optical axis = -world z)."""
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])   # x right, y down in the image, z into the table
    T[2, 3] = z
    return Camera(K, T, W, H)


class TestPixels:

    def test_padded_camera_is_twice_the_field_at_half_resolution(self):
        cam = top_down()
        pad = sc.padded_camera(cam)
        pts = np.array([[0.0, 0.0, 0.0], [0.1, -0.05, 0.02], [-0.3, 0.2, 0.0]])
        uv, _ = cam.project(pts)
        uv2, _ = pad.project(pts)
        # by hand: u' = (u + 0.5) / 2 - 0.5 + W / 4
        np.testing.assert_allclose(uv2[:, 0], (uv[:, 0] + 0.5) / 2 - 0.5 + W / 4, atol=1e-9)
        np.testing.assert_allclose(uv2[:, 1], (uv[:, 1] + 0.5) / 2 - 0.5 + H / 4, atol=1e-9)
        # the image's corner pixel centres land in the central half
        corners = cam.backproject([[0, 0], [W - 1, H - 1]], [1.0, 1.0])
        np.testing.assert_allclose(pad.project(corners)[0], [[15.75, 11.75], [47.25, 35.25]])

    def test_in_view_fraction_by_hand(self):
        seg = np.full((H, W), -1, np.int32)
        seg[20:24, 30:34] = 7                    # 16 px, inside [12, 36) x [16, 48)
        assert sc.in_view_fraction(seg, 7) == 1.0
        seg[20:24, 44:52] = 7                    # 32 px more, of which columns 44-47 inside
        assert sc.in_view_fraction(seg, 7) == pytest.approx((16 + 16) / 48)
        assert sc.in_view_fraction(seg, 3) == 0.0

    def test_hidden_points_by_hand(self):
        cam = top_down()
        depth = np.full((H, W), 1.0, np.float32)  # the table top at z = 0
        depth[20:28, 36:44] = 0.9                 # an object 10 cm high in front
        pts = np.array([[0.0, 0.0, 0.0],          # pixel (31.5, 23.5): free
                        [0.06, 0.0, 0.0],         # pixel (37.5, 23.5): under the object
                        [0.06, 0.0, 0.1],         # on the object's top: seen
                        [0.5, 0.0, 0.0],          # pixel (81.5, ...): outside the image
                        [0.0, 0.0, 1.5]])         # behind the camera
        assert sc.hidden_points(cam, depth, pts, 0.005) == [1, 3, 4]
        depth[24, 32] = np.nan                    # no depth at point 0's pixel (round 31.5, 23.5)
        assert sc.hidden_points(cam, depth, pts[:1], 0.005) == [0]

    def test_axis_width_by_hand(self):
        cam = top_down()
        depth = np.full((H, W), 1.0, np.float32)
        mask = np.zeros((H, W), bool)
        mask[20:28, 30:36] = True                 # x from (30 - 31.5) cm to (35 - 31.5) cm
        # along world x: pixel columns 30..35 at 1 m with f = 100 px -> 1 cm per px -> 5 cm
        assert sc.axis_width(cam, depth, mask, [0, 0, 0], [1, 0, 0.3]) == pytest.approx(0.05)
        # along world y: image rows 20..27 -> 7 cm (the axis' height is ignored)
        assert sc.axis_width(cam, depth, mask, [0, 0, 0], [0, -1, 0]) == pytest.approx(0.07)
        assert np.isnan(sc.axis_width(cam, depth, np.zeros_like(mask), [0, 0, 0], [1, 0, 0]))


@pytest.fixture(scope='module')
def boxes():
    """Yield a TabletopScene (TinyRenderer) with a small target box and a large cover box."""
    pytest.importorskip('pybullet')
    from ccl_perception.sim.objects import ObjectSpec
    from ccl_perception.sim.scene import TabletopScene
    with TabletopScene([ObjectSpec('target', 'box', (0.06, 0.04, 0.03), texture_seed=3),
                        ObjectSpec('cover', 'box', (0.16, 0.16, 0.02), texture_seed=4)]) as s:
        yield s


def place(scene, name, xyz):
    import pybullet as p
    p.resetBasePositionAndOrientation(scene.bodies[name], list(xyz), [0, 0, 0, 1],
                                      physicsClientId=scene.client)


class TestHandMadeScene:
    """The check on rendered scenes: the target's axis runs across its 4 cm side."""

    AXIS = np.array([[0.0, -0.012, 0.03], [0.0, 0.012, 0.03]])   # on the box top

    def camera(self):
        return Camera.looking_at((0.0, 0.0, 0.5), (0.0, 0.0, 0.0), 320, 240, 50.0)

    def test_visible_target_passes(self, boxes):
        place(boxes, 'target', (0, 0, 0.015))
        place(boxes, 'cover', (0, 0, -5))
        ok, why, stats = sc.check_target(boxes, self.camera(), boxes.bodies['target'], self.AXIS)
        assert ok, why
        assert stats['in_view'] == 1.0 and stats['hidden_axis_points'] == []
        assert stats['width_m'] == pytest.approx(0.04, abs=0.005)   # its 4 cm side

    def test_fully_hidden_target_is_not_a_present_trial(self, boxes):
        place(boxes, 'target', (0, 0, 0.015))
        place(boxes, 'cover', (0, 0, 0.05))                  # a plate right above it
        ok, why, stats = sc.check_target(boxes, self.camera(), boxes.bodies['target'], self.AXIS)
        assert not ok
        assert stats['in_view'] == 0.0 and why.startswith('only 0 % of the target')

    def test_hidden_grasp_point_and_out_of_view_target(self, boxes):
        place(boxes, 'target', (0, 0, 0.015))
        place(boxes, 'cover', (0.0, 0.09, 0.05))             # covers the +y half of the box top
        ok, why, stats = sc.check_target(boxes, self.camera(), boxes.bodies['target'], self.AXIS)
        assert not ok and stats['hidden_axis_points'] == [1]
        assert why == 'grasp-axis point(s) [2] hidden or outside'
        place(boxes, 'cover', (0, 0, -5))
        place(boxes, 'target', (0.3, 0, 0.015))              # beyond the image border (x is up)
        shifted = self.AXIS + [0.3, 0, 0]
        ok, why, stats = sc.check_target(boxes, self.camera(), boxes.bodies['target'], shifted)
        assert not ok and stats['in_view'] < 0.8 and 'inside the image' in why

    def test_too_wide_for_the_stroke(self, boxes):
        place(boxes, 'target', (0, 0, 0.015))
        place(boxes, 'cover', (0, 0, -5))
        across = np.array([[-0.02, 0.0, 0.03], [0.02, 0.0, 0.03]])  # across its 6 cm side
        ok, why, stats = sc.check_target(boxes, self.camera(), boxes.bodies['target'], across,
                                         {'max_width': 0.05})
        assert not ok and stats['width_m'] == pytest.approx(0.06, abs=0.005)
        assert why.endswith('cm across the grasp axis > 5.0 cm')


def test_the_visible_world_retries_until_its_target_is_seen():
    """Seed 3 of this world hides its target at first; the accepted scene passes the check."""
    pytest.importorskip('pybullet')
    from ccl_perception.sim.robot import SimWorld, SimWorldConfig
    cfg = {'width': 160, 'height': 120, 'n_objects': 6, 'scene_rule': 'visible',
           'camera_elevation_deg': (35.0, 45.0)}
    world = SimWorld(SimWorldConfig(**cfg))
    try:
        name = world.object_names[0]
        info = world.reset(3, target=name)
        assert info.target_present and info.attempt >= 1 and len(info.rejected) == info.attempt
        assert info.check['in_view'] >= 0.8 and info.check['hidden_axis_points'] == []
        again = world.reset(3, target=name)              # a pure function of the seed
        assert (again.attempt, again.objects) == (info.attempt, info.objects)
        absent = world.reset(3, target=name, target_present=False)
        assert absent.attempt == 0 and not absent.target_present  # absent scenes: no check
    finally:
        world.close()
    world = SimWorld(SimWorldConfig(**cfg, max_scene_tries=1))
    try:
        with pytest.raises(ValueError, match='no arrangement of 1 shows'):
            world.reset(3, target=name)
    finally:
        world.close()


def test_schedule_by_hand():
    plan = {'a': [('t1', ('target-coloured',)), ('t2', ('glossy',)), ('t3', ())],
            'b': [('t4', ('target-coloured', 'glossy'))]}
    assert gp.schedule(['a', 'b'], 5, 3, 100, plan) == [
        (100, 'a', True, 't1', ('target-coloured',)),
        (101, 'b', True, 't4', ('target-coloured', 'glossy')),
        (102, 'a', True, 't2', ('glossy',)),
        (103, 'b', True, 't4', ('target-coloured', 'glossy')),
        (104, 'a', True, 't3', ()),
        (105, 'b', False, 't4', ('target-coloured', 'glossy')),
        (106, 'a', False, 't1', ('target-coloured',)),
        (107, 'b', False, 't4', ('target-coloured', 'glossy'))]
    assert gp.schedule(['a'], 1, 1, 7) == [(7, 'a', True, None, ()), (8, 'a', False, None, ())]


def test_median_lab_of_known_colours():
    # OpenCV's 8-bit Lab: white (255, 128, 128), black (0, 128, 128)
    np.testing.assert_allclose(gp.median_lab(np.array([[255, 255, 255]] * 3 + [[0, 0, 0]])),
                               [255, 128, 128])
    with pytest.raises(ValueError, match='protocol must be one of'):
        gp.world_fields('paper')
