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

"""Depth refinement of a grasp axis on a hand-made depth image: a box on a table."""
from ccl_perception import geometry
from ccl_perception.grasp_refine import object_segment, refine_axis, support_plane
import numpy as np
import pytest

K = geometry.intrinsics_matrix(500.0, 500.0, 159.5, 119.5)


def box_scene(width=0.04, length=0.10, height=0.03, table=0.50):
    """
    Render the depth of a box on a table, seen by a camera looking straight down.

    The table is 0.5 m away; the box is centred under the camera, ``width`` along image x,
    ``length`` along image y, ``height`` tall. Returns the depth.
    """
    ys, xs = np.mgrid[0:240, 0:320].astype(float)
    depth = np.full((240, 320), table, np.float32)
    top = table - height
    X = (xs - K[0, 2]) * top / K[0, 0]
    Y = (ys - K[1, 2]) * top / K[1, 1]
    on_box = (np.abs(X) < width / 2) & (np.abs(Y) < length / 2)
    depth[on_box] = top
    return depth


def test_support_plane_of_a_flat_table():
    pts = geometry.depth_to_points(np.full((30, 40), 0.5, np.float32), K)
    n, d = support_plane(pts)
    assert np.allclose(np.abs(n), [0, 0, 1], atol=1e-6) and d == pytest.approx(0.5, abs=1e-6)
    assert n[2] < 0  # the normal points at the camera (heights above the table are positive)


def test_refined_axis_spans_the_box_across_its_short_side():
    depth = box_scene()
    # a sloppy match: both points off-centre and along the long side
    p1 = geometry.backproject(np.array([[150.0, 100.0]]), np.array([0.47]), K)[0]
    p2 = geometry.backproject(np.array([[165.0, 130.0]]), np.array([0.47]), K)[0]
    q1, q2, approach, why = refine_axis(depth, K, p1, p2)
    assert why == ''
    axis = q2 - q1
    assert np.linalg.norm(axis) == pytest.approx(0.04 * 0.9, abs=0.004)  # 5-95 % of the 4 cm side
    assert abs(axis[0]) / np.linalg.norm(axis) > 0.99                    # across = image x
    centre = (q1 + q2) / 2
    assert (centre[0] == pytest.approx(0.0, abs=0.002)
            and centre[1] == pytest.approx(0.0, abs=0.002))
    assert centre[2] == pytest.approx(0.50 - 0.015, abs=0.002)           # half way up the 3 cm box
    assert np.allclose(approach, [0, 0, 1], atol=1e-6)                   # straight down


def test_no_object_under_the_match_is_a_reason():
    depth = box_scene()
    p = geometry.backproject(np.array([[20.0, 20.0]]), np.array([0.5]), K)[0]
    q1, _, _, why = refine_axis(depth, K, p, p + [0.01, 0, 0])
    assert q1 is None and 'no object above the table' in why


def test_a_touching_taller_object_is_split_off_at_the_depth_edge():
    depth = box_scene()                                  # 4 x 10 cm box, 3 cm tall
    ys, xs = np.mgrid[0:240, 0:320].astype(float)
    X = (xs - K[0, 2]) * 0.45 / K[0, 0]
    Y = (ys - K[1, 2]) * 0.45 / K[1, 1]
    first_free = (xs - K[0, 2]) * 0.47 / K[0, 0] >= 0.02   # the columns right of the 4 cm box
    # a 5 cm tall box touching it on its +x side (up to x = 8 cm), seen from above
    depth[first_free & (X < 0.08) & (np.abs(Y) < 0.05)] = 0.45
    p1 = geometry.backproject(np.array([[150.0, 119.5]]), np.array([0.47]), K)[0]
    p2 = geometry.backproject(np.array([[169.0, 119.5]]), np.array([0.47]), K)[0]
    q1, q2, _, why = refine_axis(depth, K, p1, p2)
    assert why == ''
    # 2 cm between the tops: the edge splits them and only the 4 cm box is measured (5-95 %)
    assert np.linalg.norm(q2 - q1) == pytest.approx(0.04 * 0.9, abs=0.004)
    q1, q2, _, _ = refine_axis(depth, K, p1, p2, {'max_jump': 1.0})   # no split: both boxes
    assert np.linalg.norm(q2 - q1) > 0.07


def test_segment_stays_within_the_radius():
    depth = box_scene(length=0.30)
    seed = np.array([159.5, 119.5])
    plane = support_plane(geometry.depth_to_points(depth[::4, ::4], np.diag([0.25, 0.25, 1]) @ K))
    mask, why = object_segment(depth, K, seed, plane, 0.008, 0.05)
    ys, xs = np.nonzero(mask)
    Y = (ys - K[1, 2]) * 0.47 / K[1, 1]
    assert why == '' and np.abs(Y).max() < 0.05 + 0.001  # the seed pixel is 0.5 px off centre
