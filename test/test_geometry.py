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

"""Geometry: back-projection, robust depth, normals, grasp frame, Kabsch/RANSAC (hand-computed)."""
from ccl_perception import geometry as g
import numpy as np
import pytest

K = g.intrinsics_matrix(100.0, 200.0, 10.0, 5.0)


class TestBackproject:

    def test_hand_values(self):
        # x=30: X = (30-10)*2/100 = 0.4 ; y=25: Y = (25-5)*2/200 = 0.2
        p = g.backproject(np.array([[30.0, 25.0], [10.0, 5.0]]), np.array([2.0, 1.0]), K)
        np.testing.assert_allclose(p, [[0.4, 0.2, 2.0], [0.0, 0.0, 1.0]])

    def test_project_inverts(self):
        xy = np.array([[3.0, 7.5], [40.0, 1.0]])
        np.testing.assert_allclose(g.project(g.backproject(xy, np.array([0.5, 3.0]), K), K), xy)

    def test_bad_intrinsics(self):
        with pytest.raises(ValueError, match='3x3'):
            g.backproject(np.zeros((1, 2)), np.ones(1), np.eye(2))
        with pytest.raises(ValueError, match='focal'):
            g.check_intrinsics(np.zeros((3, 3)))


class TestRobustDepth:

    def test_median_ignores_holes_and_nan(self):
        d = np.full((10, 10), 1.0, np.float32)
        d[4:7, 4:7] = [[0, np.nan, 2.0], [2.0, 0, 2.0], [2.0, 5.0, np.nan]]
        # valid values in the 3x3 window at (5,5): 2,2,2,2,5 -> median 2
        assert g.robust_depth(d, [[5, 5]], window=3)[0] == 2.0

    def test_all_missing_and_outside_give_nan(self):
        d = np.zeros((6, 6), np.float32)
        d[0, 0] = 1.0
        z = g.robust_depth(d, [[4, 4], [-3, 2], [np.nan, 1], [0.4, 0.4]], window=3)
        assert np.isnan(z[:3]).all() and z[3] == 1.0

    def test_even_window_rejected(self):
        with pytest.raises(ValueError, match='odd'):
            g.robust_depth(np.ones((3, 3)), [[1, 1]], window=4)


class TestNormal:

    @pytest.mark.parametrize('method', ['pca', 'open3d'])
    def test_tilted_plane(self, method):
        if method == 'open3d':
            pytest.importorskip('open3d')
        # plane z = 1 + 0.5 X  -> normal ~ (0.5, 0, -1)/|.| facing the camera (negative z)
        Kp = g.intrinsics_matrix(100, 100, 20, 20)
        ys, xs = np.mgrid[0:41, 0:41].astype(float)
        a = (xs - 20) / 100
        depth = 1.0 / (1 - 0.5 * a)  # solves Z = 1 + 0.5 * a * Z
        n = g.estimate_normal(depth, Kp, (20, 20), 5, method)
        np.testing.assert_allclose(n, np.array([0.5, 0, -1]) / np.sqrt(1.25), atol=1e-6)

    def test_too_few_points(self):
        d = np.full((20, 20), np.nan)
        d[10, 10] = 1.0
        assert g.estimate_normal(d, K, (10, 10), 3, 'pca') is None


class TestQuaternion:

    def test_known_rotation(self):
        # 90 deg about z: q = (0, 0, sin45, cos45)
        Rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
        np.testing.assert_allclose(
            g.rotation_to_quaternion(Rz), [
                0, 0, np.sqrt(0.5), np.sqrt(0.5)])

    def test_round_trip_random(self):
        rng = np.random.default_rng(1)
        for _ in range(20):
            q = rng.normal(size=4)
            q /= np.linalg.norm(q)
            R = g.quaternion_to_rotation(q)
            q2 = g.rotation_to_quaternion(R)
            np.testing.assert_allclose(g.quaternion_to_rotation(q2), R, atol=1e-12)
            assert abs(abs(np.dot(q, q2)) - 1) < 1e-12

    @pytest.mark.parametrize('R, q', [
        # half turns (trace -1): each branch of the largest diagonal entry, by hand
        (np.diag([1.0, -1.0, -1.0]), [1, 0, 0, 0]),
        (np.diag([-1.0, 1.0, -1.0]), [0, 1, 0, 0]),
        (np.diag([-1.0, -1.0, 1.0]), [0, 0, 1, 0]),
        # 180 deg about (1, 1, 0) / sqrt(2): R = 2 a a^T - I
        (np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]]), [np.sqrt(0.5), np.sqrt(0.5), 0, 0]),
        # 120 deg about (1, 1, 1) / sqrt(3) (x -> y -> z, trace 0): q = (1, 1, 1, 1) / 2
        (np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]), [0.5, 0.5, 0.5, 0.5]),
        # -150 deg about z (trace < 0, w would come out negative): (0, 0, -sin75, cos75)
        (np.array([[np.cos(np.radians(150)), np.sin(np.radians(150)), 0],
                   [-np.sin(np.radians(150)), np.cos(np.radians(150)), 0], [0, 0, 1]]),
         [0, 0, -np.sin(np.radians(75)), np.cos(np.radians(75))]),
    ])
    def test_every_branch_by_hand(self, R, q):
        np.testing.assert_allclose(g.rotation_to_quaternion(R), q, atol=1e-15)
        np.testing.assert_allclose(g.quaternion_to_rotation(q), R, atol=1e-15)

    def test_w_is_never_negative(self):
        # 200 deg about x: the half-angle quaternion (sin100, 0, 0, cos100) has w < 0
        a = np.radians(200)
        R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        q = g.rotation_to_quaternion(R)
        np.testing.assert_allclose(q, [-np.sin(np.radians(100)), 0, 0, -np.cos(np.radians(100))],
                                   atol=1e-15)
        assert q[3] > 0

    def test_unnormalised_and_zero_quaternions(self):
        np.testing.assert_allclose(g.quaternion_to_rotation([0, 0, 2.0, 2.0]),
                                   [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
        for bad in ([0, 0, 0, 0], [np.nan, 0, 0, 1], [np.inf, 0, 0, 1]):
            with pytest.raises(ValueError, match='zero or non-finite norm'):
                g.quaternion_to_rotation(bad)

    def test_executor_and_simulator_use_this_implementation(self):
        from ccl_perception.executors import base
        from ccl_perception.sim import scene
        assert base.rotation_to_quaternion is g.rotation_to_quaternion
        assert base.quaternion_to_rotation is g.quaternion_to_rotation
        assert scene.rotation_to_quaternion is g.rotation_to_quaternion


class TestGraspPoseMatrix:

    def test_hand_computed_transform(self):
        # axis along camera x at 0.5 m: y = (1, 0, 0), z = optical axis, x = y cross z = (0, -1, 0)
        p = g.grasp_from_axis([-0.03, 0, 0.5], [0.03, 0, 0.5], None, margin=0.02)
        expected = np.array([[0.0, 1.0, 0.0, 0.0],
                             [-1.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 1.0, 0.5],
                             [0.0, 0.0, 0.0, 1.0]])
        T = p.matrix
        assert T.shape == (4, 4) and T.dtype == np.float64
        np.testing.assert_array_equal(T, expected)
        # the fingertip points (0, -+axis_length / 2, 0) of the gripper frame are the keypoints
        np.testing.assert_allclose(T @ [0, -0.03, 0, 1], [-0.03, 0, 0.5, 1], atol=1e-15)
        np.testing.assert_allclose(T @ [0, 0.03, 0, 1], [0.03, 0, 0.5, 1], atol=1e-15)
        # an approach 0.1 m short of the pose is 0.1 m nearer the camera
        np.testing.assert_allclose(T @ [0, 0, -0.1, 1], [0, 0, 0.4, 1], atol=1e-15)

    def test_agrees_with_the_quaternion(self):
        from ccl_perception.executors.base import matrix_to_pose, pose_to_matrix
        p = g.grasp_from_axis([0.1, -0.05, 0.6], [0.13, 0.02, 0.64], approach_hint=[0.2, 0.1, 1])
        np.testing.assert_allclose(pose_to_matrix(p.position, p.quaternion), p.matrix,
                                   atol=1e-12)
        pos, q = matrix_to_pose(p.matrix)
        np.testing.assert_array_equal(pos, p.position)
        np.testing.assert_array_equal(q, p.quaternion)
        assert p.matrix is not p.matrix  # a fresh array: changing it leaves the pose alone


class TestGraspFromAxis:

    def test_frame_convention(self):
        # axis along camera x at 0.5 m, approach along the optical axis
        p = g.grasp_from_axis([-0.03, 0, 0.5], [0.03, 0, 0.5], None, margin=0.02, max_width=0.08)
        np.testing.assert_allclose(p.position, [0, 0, 0.5])
        np.testing.assert_allclose(p.rotation[:, 1], [1, 0, 0])   # y = closing axis
        np.testing.assert_allclose(p.rotation[:, 2], [0, 0, 1])   # z = approach
        np.testing.assert_allclose(p.rotation[:, 0], [0, -1, 0])  # x = y cross z
        assert p.width == pytest.approx(0.08) and p.axis_length == pytest.approx(0.06)
        assert np.linalg.det(p.rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(g.quaternion_to_rotation(p.quaternion), p.rotation, atol=1e-12)

    def test_hint_orthogonalised(self):
        p = g.grasp_from_axis([0, 0, 1], [0, 0.2, 1], approach_hint=[0, 1, 1])
        np.testing.assert_allclose(p.rotation[:, 2], [0, 0, 1], atol=1e-12)
        assert p.width == pytest.approx(0.22)  # 0.2 axis + 0.02 default margin, no limit given

    def test_wider_than_gripper_is_refused_not_clamped(self):
        # 0.2 m axis + 0.02 m margin = 0.22 m opening > 0.08 m stroke
        with pytest.raises(ValueError, match=r'opening 0\.2200 m .* max_width = 0\.0800 m'):
            g.grasp_from_axis([0, 0, 1], [0, 0.2, 1], max_width=0.08)
        # exactly at the stroke (0.06 + 0.02 = 0.08) is allowed
        grasp = g.grasp_from_axis([-0.03, 0, 0.5], [0.03, 0, 0.5], margin=0.02, max_width=0.08)
        assert grasp.width == pytest.approx(0.08)

    def test_hint_parallel_to_axis_falls_back(self):
        p = g.grasp_from_axis([0, 0, 1], [0, 0, 1.1], approach_hint=[0, 0, 1])
        np.testing.assert_allclose(p.rotation[:, 1], [0, 0, 1])
        np.testing.assert_allclose(p.rotation[:, 2], [1, 0, 0])

    def test_degenerate(self):
        with pytest.raises(ValueError, match='coincide'):
            g.grasp_from_axis([0, 0, 1], [0, 0, 1])
        with pytest.raises(ValueError, match='finite'):
            g.grasp_from_axis([np.nan, 0, 1], [0, 0, 1])


class TestKabsch:

    def _pose(self):
        R = g.quaternion_to_rotation([0.2, -0.3, 0.1, 0.9])
        return R, np.array([0.1, -0.2, 0.7])

    def test_exact(self):
        R, t = self._pose()
        src = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.05, 0], [0, 0, 0.02]])
        R2, t2 = g.kabsch(src, src @ R.T + t)
        np.testing.assert_allclose(R2, R, atol=1e-12)
        np.testing.assert_allclose(t2, t, atol=1e-12)

    def test_ransac_rejects_outlier_and_missing(self):
        R, t = self._pose()
        src = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.05, 0],
                       [0.05, 0.05, 0.02], [0.02, 0.0, 0.03]])
        dst = src @ R.T + t
        dst[4] += [0.0, 0.2, 0.0]        # wrong match
        dst[3] = np.nan                  # missing depth
        R2, t2, inl = g.ransac_kabsch(src, dst, threshold=0.005)
        assert inl.tolist() == [True, True, True, False, False]
        np.testing.assert_allclose(R2, R, atol=1e-9)
        np.testing.assert_allclose(t2, t, atol=1e-9)

    def test_ransac_none_when_shape_contradicts(self):
        src = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]])
        dst = np.array([[0, 0, 1], [0.3, 0, 1], [0, 0.3, 1]])  # 3x larger: no rigid fit
        assert g.ransac_kabsch(src, dst, threshold=0.01) is None
