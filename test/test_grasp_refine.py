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


# ----------------------------------------------------------------- ray-cast scenes
K640 = geometry.intrinsics_matrix(615.0, 615.0, 319.5, 239.5)   # a D435-like 640x480 camera


def rotation(axis, degrees):
    """Rotation matrix about ``axis`` (Rodrigues)."""
    a = np.deg2rad(degrees)
    x, y, z = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def ray_cast(R, t, boxes, noise=0.0, holes=0.0, seed=0):
    """
    Depth (480, 640) of a table seen by ``K640``, with boxes standing on it.

    The table is the plane z = 0 of the table frame (``p_camera = R p_table + t``, its z axis
    towards the camera); each box is ``(x, y, size_x, size_y, height, yaw_degrees)`` in the
    table frame. Each pixel's ray is intersected with the plane and every box (slab test);
    the nearest hit is the depth. ``noise``: Gaussian depth noise, metres; ``holes``: share of
    pixels set to NaN.
    """
    ys, xs = np.mgrid[0:480, 0:640].astype(float)
    rays = np.stack([(xs - K640[0, 2]) / K640[0, 0], (ys - K640[1, 2]) / K640[1, 1],
                     np.ones_like(xs)], -1)         # z = 1: the ray parameter is the depth
    origin, direction = -R.T @ t, rays @ R          # camera centre and rays in the table frame
    depth = -origin[2] / direction[..., 2]
    for x, y, sx, sy, sz, yaw in boxes:
        Rb = rotation([0, 0, 1], yaw)
        o, d = Rb.T @ (origin - [x, y, 0]), direction @ Rb
        with np.errstate(divide='ignore', invalid='ignore'):
            t1 = ([-sx / 2, -sy / 2, 0] - o) / d
            t2 = ([sx / 2, sy / 2, sz] - o) / d
        near = np.nanmax(np.minimum(t1, t2), -1)
        far = np.nanmin(np.maximum(t1, t2), -1)
        hit = (far >= near) & (near > 0) & (near < depth)
        depth[hit] = near[hit]
    depth = depth.astype(np.float32)
    rng = np.random.default_rng(seed)
    depth += rng.normal(0, noise, depth.shape).astype(np.float32) if noise else 0
    depth[rng.random(depth.shape) < holes] = np.nan
    return depth


@pytest.mark.parametrize('tilt, noise, holes', [(0, 0.0, 0.0), (30, 0.0, 0.0),
                                                (30, 0.001, 0.05), (45, 0.0005, 0.01)])
def test_box_on_a_tilted_table_seen_obliquely(tilt, noise, holes):
    """A 4 x 10 x 3 cm box turned 20 deg on a table tilted ``tilt`` deg, 55 cm away."""
    R = rotation([1, 0, 0], 180 + tilt)           # table z axis towards the camera
    t = np.array([0.0, 0.0, 0.55])
    depth = ray_cast(R, t, [(0.0, 0.0, 0.04, 0.10, 0.03, 20)], noise, holes)
    top = R @ [0, 0, 0.03] + t                    # the match: 2 cm along the top's long side
    along = R @ rotation([0, 0, 1], 20)[:, 1]
    q1, q2, approach, why = refine_axis(depth, K640, top + 0.01 * along, top - 0.01 * along)
    assert why == ''
    axis = (q2 - q1) / np.linalg.norm(q2 - q1)
    across = R @ rotation([0, 0, 1], 20)[:, 0]    # the box's 4 cm side
    # the visible footprint: the top plus the side faces the camera sees (at most 1.3 cm wider),
    # 5-95 % of it (0.9 x 4 cm), less the depth edge at each rim: two pixels of ~0.9 mm per side
    # at 55 cm are not counted (max_jump), so 0.9 x (4 - 0.36) cm at least
    assert 0.9 * (0.04 - 0.0036) - 0.001 <= np.linalg.norm(q2 - q1) <= 0.04 + 0.001
    assert abs(axis @ across) > 0.995
    # approach = minus the table normal, whatever the tilt
    assert np.degrees(np.arccos(np.clip(approach @ -R[:, 2], -1, 1))) < 0.1
    # the centre is at half the box's height, near its axis: the side faces the camera sees
    # shift the footprint's centroid towards the camera (0.7 cm at 30 deg, 1.1 cm at 45 deg)
    centre = (q1 + q2) / 2
    assert np.linalg.norm(centre - (R @ [0, 0, 0.015] + t)) < 0.012
    assert abs((centre - t) @ R[:, 2] - 0.015) < 0.002


def test_the_neighbour_box_is_not_part_of_the_object():
    """Two boxes 1.5 cm apart: only the one under the match is measured."""
    R, t = rotation([1, 0, 0], 200), np.array([0.0, 0.0, 0.55])
    boxes = [(0.0, 0.0, 0.04, 0.10, 0.03, 0), (0.05, 0.0, 0.03, 0.06, 0.05, 0)]
    depth = ray_cast(R, t, boxes, 0.001, 0.02)
    top = R @ [0, 0, 0.03] + t
    q1, q2, _, why = refine_axis(depth, K640, top + 0.01 * R[:, 1], top - 0.01 * R[:, 1])
    assert why == '' and np.linalg.norm(q2 - q1) < 0.045      # 4 cm box, not 4 + 1.5 + 3
    assert np.linalg.norm((q1 + q2) / 2 - (R @ [0, 0, 0.015] + t)) < 0.01


def test_plane_fit_ignores_the_objects_and_draws_only_planes_through_3_points():
    R, t = rotation([1, 0, 0], 210), np.array([0.0, 0.0, 0.55])
    depth = ray_cast(R, t, [(0.0, 0.0, 0.2, 0.2, 0.05, 0)])   # a box over a third of the view
    pts = geometry.depth_to_points(depth[::8, ::8], np.diag([1 / 8, 1 / 8, 1]) @ K640)
    n, d = support_plane(pts)
    assert np.allclose(n, R[:, 2], atol=1e-6) and d == pytest.approx(-(R[:, 2] @ t), abs=1e-6)
    assert support_plane(np.zeros((10, 3))) is None        # every draw degenerate
    assert support_plane(np.ones((2, 3))) is None           # fewer than 3 points
