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
Every pipeline knob acts under the default ``grasp_refinement: depth``.

(Issue 21, "knobs that do nothing".) A hand-made descriptor map makes the match exact: the
map has one one-hot descriptor per cell, so a target descriptor matches exactly one cell and
(with a small tau) the keypoint is that cell's centre ``8 i + 3.5``. The depth is a
4 x 10 x 3 cm box on a table tilted 30 deg (ray-cast as in test_grasp_refine.py), so the
table's normal, the optical axis and the box's axes all differ.
"""
from ccl_perception import geometry, grasp_pipeline
from ccl_perception.grasp_pipeline import GraspPipeline
from ccl_perception.targets import Target
import numpy as np
import pytest
import torch

H, W, STRIDE = 240, 320, 8
K = geometry.intrinsics_matrix(300.0, 300.0, 159.5, 119.5)
h, w = H // STRIDE, W // STRIDE


def rotation(axis, degrees):
    a = np.deg2rad(degrees)
    x, y, z = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


R_TABLE, T_TABLE = rotation([1, 0, 0], 210), np.array([0.0, 0.0, 0.5])


def box_on_tilted_table():
    """Depth (H, W): the table z = 0 (table frame) and a 4 x 10 x 3 cm box centred on it."""
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    rays = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)], -1)
    o, d = -R_TABLE.T @ T_TABLE, rays @ R_TABLE
    depth = -o[2] / d[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = ([-0.02, -0.05, 0] - o) / d
        t2 = ([0.02, 0.05, 0.03] - o) / d
    near, far = np.nanmax(np.minimum(t1, t2), -1), np.nanmin(np.maximum(t1, t2), -1)
    hit = (far >= near) & (near > 0) & (near < depth)
    depth[hit] = near[hit]
    return depth.astype(np.float32)


class OneHotCells:
    """A ``DescriptorExtractor`` stand-in whose map has one one-hot descriptor per cell."""

    stride = STRIDE

    def __call__(self, rgb):
        return torch.eye(h * w).reshape(h * w, h, w)


def cell_of(point):
    """Return the cell (column, row) whose centre is nearest the projection of ``point``."""
    x, y = geometry.project(np.asarray(point)[None], K)[0]
    return int(round((x - 3.5) / STRIDE)), int(round((y - 3.5) / STRIDE))


def target_at(points_3d, reference_length=None):
    """Make a 2-keypoint target at the cells of ``points_3d`` (axis length as given, or theirs)."""
    cells = [cell_of(p) for p in points_3d]
    desc = np.zeros((len(cells), h * w), np.float32)
    for k, (i, j) in enumerate(cells):
        desc[k, j * w + i] = 1.0
    length = (float(np.linalg.norm(points_3d[1] - points_3d[0])) if reference_length is None
              else reference_length)
    return Target(name='box', descriptors=desc, model_identity='cells', image_size=(H, W),
                  pixels=np.array([[STRIDE * i + 3.5, STRIDE * j + 3.5] for i, j in cells]),
                  axis_length=length)


@pytest.fixture(scope='module')
def scene():
    depth = box_on_tilted_table()
    top = R_TABLE @ [0, 0, 0.03] + T_TABLE
    # the match: two points on the box top, 2 cm apart along its long side
    p1, p2 = top + 0.01 * R_TABLE[:, 1], top - 0.01 * R_TABLE[:, 1]
    rgb = np.zeros((H, W, 3), np.uint8)
    return rgb, depth, np.array([p1, p2])


OPEN = {'tau': 0.001, 'min_similarity': 0.5}


def plan(scene, target, **config):
    rgb, depth, _ = scene
    return GraspPipeline(OneHotCells(), {**OPEN, **config}).frame_to_pose(rgb, depth, K, target)


def test_default_refinement_measures_the_box_and_approaches_onto_the_table(scene):
    assert grasp_pipeline.DEFAULTS['grasp_refinement'] == 'depth'
    r = plan(scene, target_at(scene[2]))
    assert r.ok, r.reason
    assert 'refine' in r.timings and r.timings['refine'] <= r.timings['geometry']
    # approach = minus the table normal (the table z axis points at the camera)
    np.testing.assert_allclose(r.pose.rotation[:, 2], -R_TABLE[:, 2], atol=1e-3)
    # closing across the box's 4 cm side (table x), not along the matched axis (table y)
    assert abs(r.pose.rotation[:, 1] @ R_TABLE[:, 0]) > 0.99


def test_approach_camera_acts_under_depth_refinement(scene):
    r = plan(scene, target_at(scene[2]), approach='camera')
    assert r.ok, r.reason
    z, y = r.pose.rotation[:, 2], r.pose.rotation[:, 1]
    # the optical axis made orthogonal to the closing axis: by hand, (0, 0, 1) - y_z y
    expected = np.array([0.0, 0.0, 1.0]) - y[2] * y
    np.testing.assert_allclose(z, expected / np.linalg.norm(expected), atol=1e-9)
    # 30 deg away from the approach onto the table
    normal = plan(scene, target_at(scene[2])).pose.rotation[:, 2]
    assert np.degrees(np.arccos(z @ normal)) == pytest.approx(30.0, abs=1.0)
    # the grasp position and width are the refinement's in both
    np.testing.assert_allclose(
        r.pose.position, plan(scene, target_at(scene[2])).pose.position, atol=1e-12)


def test_axis_length_tolerance_acts_under_depth_refinement(scene):
    pts = scene[2]
    first = plan(scene, target_at(pts))
    matched = float(np.linalg.norm(first.points_3d[1] - first.points_3d[0]))   # at cell centres
    long_reference = target_at(pts, reference_length=2.0 * matched)
    r = plan(scene, long_reference)                       # 50 % off > 30 %: abstain
    assert not r.ok and 'axis length' in r.reason and 'tolerance 30%' in r.reason
    assert plan(scene, long_reference, axis_length_tolerance=0.6).ok   # 50 % < 60 %


def test_removed_knobs_are_refused():
    for gone in ('normal_radius_px', 'normal_method'):
        assert gone not in grasp_pipeline.DEFAULTS and gone not in grasp_pipeline.LIMITS
        with pytest.raises(ValueError, match=f'unknown grasp pipeline option {gone!r}'):
            grasp_pipeline.merge_config({gone: 7})


def test_refinement_none_keeps_the_matched_axis_and_the_local_normal(scene):
    r = plan(scene, target_at(scene[2]), grasp_refinement='none', max_width=0.2)
    assert r.ok, r.reason
    assert 'refine' not in r.timings
    axis = r.match.keypoints[1] - r.match.keypoints[0]
    assert abs(axis[0]) < 1e-6                               # along the matched cells (image y)
    # the box top is parallel to the table: its local normal is the table's
    np.testing.assert_allclose(r.pose.rotation[:, 2], -R_TABLE[:, 2], atol=1e-3)


def test_matching_runs_on_one_thread_and_restores_the_count():
    from ccl_perception.keypoint_matcher import KeypointMatcher, one_thread
    seen = []
    threads = torch.get_num_threads()
    with one_thread(torch.device('cpu')):
        seen.append(torch.get_num_threads())
    assert seen == [1] and torch.get_num_threads() == threads
    desc = torch.eye(h * w).reshape(h * w, h, w)
    m = KeypointMatcher(0.001, STRIDE).match(np.eye(h * w, dtype=np.float32)[[0, w + 1]], desc)
    np.testing.assert_allclose(m.keypoints, [[3.5, 3.5], [11.5, 11.5]], atol=1e-3)
    assert torch.get_num_threads() == threads
