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
Depth + intrinsics -> 3D keypoints -> 6D parallel-gripper grasp pose (no ROS).

Conventions (see docs/ARCHITECTURE.md and docs/ros_interface.md):

* Pixels ``(x, y)`` = (column, row), pixel centres at integer coordinates.
* Depth maps are ``(H, W)`` float32 metres along the optical axis; ``NaN`` or ``<= 0``
  means missing.
* Points are in the camera optical frame (x right, y down, z forward), metres.
* Gripper frame (like the Franka hand): ``z`` = approach direction (from the gripper
  into the object), ``y`` = closing direction (the line between the fingers, i.e. the
  grasp axis), ``x = y cross z``. The origin is the point between the fingertips, at the
  centre of the grasp axis.
* Quaternions are ``(x, y, z, w)`` as in ``geometry_msgs/Quaternion``.
"""

from dataclasses import dataclass
import math
from typing import Optional, Tuple

import numpy as np

OPTICAL_AXIS = np.array([0.0, 0.0, 1.0])
#: Rounding allowance of width comparisons, metres (a nanometre: float error, not a tolerance).
WIDTH_EPS = 1e-9
#: Frame id of the colour optical frame (RealSense driver name): images, grasp poses, rviz.
CAMERA_FRAME = 'camera_color_optical_frame'


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Build a ``(3, 3)`` pinhole matrix K from focal lengths and principal point (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def check_intrinsics(K, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """
    Return K as a ``(3, 3)`` float64 array or raise ``ValueError``.

    Args:
        K: ``(3, 3)`` or ``(9,)`` pinhole matrix, pixels.
        size: ``(H, W)`` of the image K belongs to; when given, the principal point must lie
            inside it (``0 <= cx <= W - 1``, ``0 <= cy <= H - 1``).

    Raises:
        ValueError: wrong shape, a non-finite entry, a focal length ``<= 0``, a last row other
            than ``(0, 0, 1)``, or a principal point outside the image; the message names it.
    """
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'intrinsics must be a 3x3 matrix of numbers ({e})') from None
    if K.shape == (9,):
        K = K.reshape(3, 3)
    if K.shape != (3, 3):
        raise ValueError(f'intrinsics must be a 3x3 matrix, got shape {K.shape}')
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError('intrinsics need finite entries and positive focal lengths, got '
                         f'fx={K[0, 0]:g}, fy={K[1, 1]:g}, cx={K[0, 2]:g}, cy={K[1, 2]:g}')
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
        raise ValueError('intrinsics must be a pinhole matrix '
                         f'[[fx, s, cx], [0, fy, cy], [0, 0, 1]], got rows 2-3 {K[1:].tolist()}')
    if size is not None:
        h, w = int(size[0]), int(size[1])
        if not (0 <= K[0, 2] <= w - 1 and 0 <= K[1, 2] <= h - 1):
            raise ValueError(f'principal point (cx, cy) = ({K[0, 2]:g}, {K[1, 2]:g}) is outside '
                             f'the {w}x{h} image: allowed cx in [0, {w - 1}], cy in [0, {h - 1}]')
    return K


def robust_depth(depth: np.ndarray, xy: np.ndarray, window: int = 5) -> np.ndarray:
    """
    Median of the valid depths in a ``window x window`` patch around each point.

    Robust to holes and flying pixels at edges: ``NaN`` / ``<= 0`` values are ignored.

    Args:
        depth: ``(H, W)`` metres.
        xy: ``(N, 2)`` pixel positions ``(x, y)``.
        window: odd patch size in pixels.

    Returns:
        ``(N,)`` metres, ``NaN`` where the point is outside the image or the patch has
        no valid depth.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W), got shape {depth.shape}')
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if window < 1 or window % 2 == 0:
        raise ValueError(f'window must be a positive odd number, got {window}')
    h, w = depth.shape
    r = window // 2
    out = np.full(len(xy), np.nan)
    for i, (x, y) in enumerate(xy):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        c, ro = int(round(x)), int(round(y))
        if not (0 <= c < w and 0 <= ro < h):
            continue
        patch = depth[max(ro - r, 0):ro + r + 1, max(c - r, 0):c + r + 1].astype(np.float64)
        patch = patch[np.isfinite(patch) & (patch > 0)]
        if patch.size:
            out[i] = float(np.median(patch))
    return out


def backproject(xy: np.ndarray, z: np.ndarray, K) -> np.ndarray:
    """
    Pinhole back-projection: ``X = (x - cx) z / fx``, ``Y = (y - cy) z / fy``, ``Z = z``.

    Args:
        xy: ``(N, 2)`` pixels; z: ``(N,)`` metres; K: ``(3, 3)``.

    Returns:
        ``(N, 3)`` points in the camera optical frame, metres (NaN where z is NaN).
    """
    K = check_intrinsics(K)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if len(z) != len(xy):
        raise ValueError(f'{len(xy)} pixels but {len(z)} depths')
    X = (xy[:, 0] - K[0, 2]) * z / K[0, 0]
    Y = (xy[:, 1] - K[1, 2]) * z / K[1, 1]
    return np.stack([X, Y, z], axis=1)


def project(points: np.ndarray, K) -> np.ndarray:
    """
    Project ``(N, 3)`` optical-frame points to ``(N, 2)`` pixels.

    The inverse of :func:`backproject`.
    """
    K = check_intrinsics(K)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.stack([K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2],
                    K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]], axis=1)


def keypoints_to_3d(depth: np.ndarray, xy: np.ndarray, K,
                    window: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """
    Robust 3D keypoints: :func:`robust_depth` then :func:`backproject`.

    Returns:
        ``points (N, 3)`` metres and ``valid (N,)`` bool (False where depth is missing).
    """
    z = robust_depth(depth, xy, window)
    pts = backproject(xy, z, K)
    return pts, np.isfinite(z)


def depth_to_points(depth: np.ndarray, K, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """All valid pixels of a depth map (optionally within ``mask``) as ``(M, 3)`` points."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        valid &= mask
    ys, xs = np.nonzero(valid)
    return backproject(np.stack([xs, ys], axis=1), depth[ys, xs], K)


def estimate_normal(depth: np.ndarray, K, xy, radius_px: int = 7,
                    method: str = 'open3d') -> Optional[np.ndarray]:
    """
    Local surface normal at a pixel, oriented towards the camera.

    Uses the valid depth pixels of a ``(2r+1)^2`` patch. ``method='open3d'`` runs
    ``open3d.geometry.PointCloud.estimate_normals`` on that small neighbourhood (the
    full cloud would cost ~360 ms); ``'pca'`` computes the same quantity directly
    (eigenvector of the smallest eigenvalue of the patch covariance).

    Returns:
        ``(3,)`` unit normal with ``n . p < 0`` (faces the camera), or ``None`` when
        fewer than 6 valid points or the patch is degenerate (collinear points).
    """
    depth = np.asarray(depth)
    h, w = depth.shape
    c, r = int(round(float(xy[0]))), int(round(float(xy[1])))
    mask = np.zeros((h, w), dtype=bool)
    mask[max(r - radius_px, 0):r + radius_px + 1, max(c - radius_px, 0):c + radius_px + 1] = True
    pts = depth_to_points(depth, K, mask)
    if len(pts) < 6:
        return None
    centroid = pts.mean(axis=0)
    cov = np.cov((pts - centroid).T)
    evals, evecs = np.linalg.eigh(cov)
    if evals[1] <= 1e-12:  # collinear or single point
        return None
    if method == 'open3d':
        import open3d as o3d
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=len(pts)))
        # The normal of the point nearest the patch centroid, i.e. of the whole patch.
        idx = int(np.argmin(np.linalg.norm(pts - centroid, axis=1)))
        n = np.asarray(pcd.normals)[idx].copy()
    elif method == 'pca':
        n = evecs[:, 0]
    else:
        raise ValueError(f"normal method must be 'open3d' or 'pca', got {method!r}")
    n = n / np.linalg.norm(n)
    if np.dot(n, centroid) > 0:
        n = -n
    return n


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """
    ``(3, 3)`` rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0``.

    Shepperd's method: the trace, or else the largest diagonal entry, picks the formula whose
    divisor is largest (numerically stable for every rotation, including half turns). The
    one implementation of the package (grasp poses, executors, the simulator's bodies).
    """
    m = np.asarray(R, dtype=np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1e-12, 1.0 + m[i, i] - m[j, j] - m[k, k]))
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_rotation(q) -> np.ndarray:
    """
    Quaternion ``(x, y, z, w)`` (any non-zero norm; it is normalised) -> ``(3, 3)`` rotation.

    Raises:
        ValueError: a zero or non-finite quaternion.
    """
    x, y, z, w = np.asarray(q, dtype=np.float64)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f'quaternion {q} has zero or non-finite norm')
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@dataclass
class GraspPose:
    """
    A parallel-gripper grasp in the camera optical frame.

    Attributes:
        position: ``(3,)`` metres, centre between the fingertips.
        rotation: ``(3, 3)`` columns = gripper x, y (closing), z (approach) axes.
        quaternion: ``(4,)`` ``(x, y, z, w)`` of ``rotation``.
        width: opening width in metres (axis length + margin; never wider than the gripper).
        axis_length: measured distance between the two axis keypoints, metres.
    """

    position: np.ndarray
    rotation: np.ndarray
    quaternion: np.ndarray
    width: float
    axis_length: float

    @property
    def matrix(self) -> np.ndarray:
        """
        ``(4, 4)`` float64 homogeneous transform ``T_camera_grasp`` (translation in metres).

        Maps gripper-frame points to the camera optical frame the pose is in:
        ``p_camera = T @ [p_grasp, 1]``. The upper-left ``(3, 3)`` is ``rotation`` (columns =
        gripper x, y = closing, z = approach axes in camera coordinates), the last column is
        ``position``, the last row ``(0, 0, 0, 1)``. E.g. the fingertip points
        ``(0, +-axis_length / 2, 0)`` map to the two grasp-axis keypoints.
        """
        T = np.eye(4)
        T[:3, :3] = self.rotation
        T[:3, 3] = self.position
        return T


def grasp_from_axis(p1: np.ndarray, p2: np.ndarray, approach_hint: Optional[np.ndarray] = None,
                    margin: float = 0.02, max_width: Optional[float] = None) -> GraspPose:
    """
    6D grasp from the two grasp-axis keypoints (the paper's two pixels per object).

    Position = midpoint; closing axis y = ``(p2 - p1) / |p2 - p1|``; approach z =
    ``approach_hint`` (e.g. minus the surface normal, default the optical axis) made
    orthogonal to y (Gram-Schmidt); if the hint is (nearly) parallel to y the optical
    axis, then the camera x axis, is used instead; x = y cross z.
    Width = ``|p2 - p1| + margin``; it is never clamped: an opening wider than
    ``max_width`` (the gripper stroke, metres; None = no limit) is an error.

    Raises:
        ValueError: on non-finite points, coincident keypoints, or an opening wider than
            ``max_width``.
    """
    p1 = np.asarray(p1, dtype=np.float64)
    p2 = np.asarray(p2, dtype=np.float64)
    if not (np.all(np.isfinite(p1)) and np.all(np.isfinite(p2))):
        raise ValueError('grasp keypoints must be finite')
    axis = p2 - p1
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        raise ValueError('grasp keypoints coincide: the grasp axis is undefined')
    if max_width is not None and length + margin > max_width + WIDTH_EPS:
        raise ValueError(f'the opening {length + margin:.4f} m (axis {length:.4f} m + margin '
                         f'{margin:.4f} m) exceeds the gripper stroke '
                         f'max_width = {max_width:.4f} m')
    y = axis / length
    candidates = [approach_hint] if approach_hint is not None else []
    candidates += [OPTICAL_AXIS, np.array([1.0, 0.0, 0.0])]
    z = None
    for c in candidates:
        c = np.asarray(c, dtype=np.float64)
        zc = c - np.dot(c, y) * y
        n = np.linalg.norm(zc)
        if np.linalg.norm(c) > 0 and n > 0.1 * np.linalg.norm(c):
            z = zc / n
            break
    x = np.cross(y, z)
    R = np.stack([x, y, z], axis=1)
    return GraspPose(position=(p1 + p2) / 2.0, rotation=R, quaternion=rotation_to_quaternion(R),
                     width=float(length + margin), axis_length=length)


def kabsch(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Least-squares rigid transform with ``dst ~= R @ src + t`` (Kabsch / Umeyama, no scale).

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3`` and not collinear.

    Returns:
        ``R (3, 3)`` proper rotation (det = +1) and ``t (3,)``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f'kabsch needs two (N>=3, 3) arrays, got {src.shape} and {dst.shape}')
    cs, cd = src.mean(0), dst.mean(0)
    H = (src - cs).T @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    return R, cd - R @ cs


def ransac_kabsch(src: np.ndarray, dst: np.ndarray, valid: Optional[np.ndarray] = None,
                  threshold: float = 0.01, iterations: int = 100, min_inliers: int = 3, rng=None):
    """
    Robust rigid fit of a target's reference 3D keypoints ``src`` to observed ``dst``.

    RANSAC over minimal sets of 3 correspondences, then Kabsch on all inliers.

    Args:
        src, dst: ``(N, 3)`` metres; valid: ``(N,)`` bool (observed depth available).
        threshold: inlier distance in metres.

    Returns:
        ``(R, t, inliers (N,) bool)``, or ``None`` when fewer than ``min_inliers``
        points agree (the object is not where the keypoints say).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = len(src)
    valid = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    valid = valid & np.all(np.isfinite(src), 1) & np.all(np.isfinite(dst), 1)
    idx = np.flatnonzero(valid)
    if len(idx) < max(3, min_inliers):
        return None
    rng = np.random.default_rng(0) if rng is None else rng
    best = None
    for _ in range(iterations):
        pick = rng.choice(idx, 3, replace=False)
        try:
            R, t = kabsch(src[pick], dst[pick])
        except np.linalg.LinAlgError:
            continue
        err = np.linalg.norm(src @ R.T + t - dst, axis=1)
        inl = valid & (err < threshold)
        if best is None or inl.sum() > best.sum():
            best = inl
        if best.sum() == len(idx):
            break
    if best is None or best.sum() < min_inliers:
        return None
    R, t = kabsch(src[best], dst[best])
    return R, t, best
