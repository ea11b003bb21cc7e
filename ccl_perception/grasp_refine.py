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
Depth refinement of a matched grasp axis: the object under the match, measured in depth.

The descriptors say *which* object and roughly *where* (the two matched grasp-axis keypoints);
at the stride of a 320x240 model on a 640x480 camera (16 px per cell) the keypoints of a 5 cm
object scatter by a centimetre or more, which is enough to close the gripper beside it. With
``grasp_refinement: depth`` the pipeline keeps the match as the object's location and measures
the grasp on the depth image instead:

1. :func:`support_plane`: RANSAC plane of the whole depth cloud (the table), normal towards
   the camera.
2. :func:`object_segment`: the connected region of pixels higher than ``min_height`` above that
   plane that contains the matched axis midpoint, cut to ``radius`` metres around it. Pixels
   whose 3D point is more than ``max_jump`` from a neighbour's (a depth edge) separate
   regions, so an object touching the target in the image is not measured with it.
3. :func:`refine_axis`: the region's footprint on the plane; its minor principal axis through
   its centroid is the closing direction, its extent along it (5-95 % quantiles) the width,
   and the grasp centre sits at half the region's height (at most a finger length below its
   top). The approach is straight down onto the plane.

Conventions as in :mod:`ccl_perception.geometry` (camera optical frame, metres, pixels with
centres at integers, NaN = missing depth).
"""
from typing import Optional, Tuple

from ccl_perception import geometry
import numpy as np

#: Defaults of the refinement (``grasp_pipeline`` knobs of the same names).
DEFAULTS = {
    'min_height': 0.008,     # m above the support plane that counts as object
    'radius': 0.07,          # m around the matched axis midpoint the object may extend
    'finger_length': 0.04,   # m, the grasp centre is at most this far below the object top
    # m between neighbouring pixels' 3D points that splits two surfaces (a depth edge);
    # chosen on benchmark v2 validation scenes (seeds 9009, 9010, 9020: touching objects
    # merged into the target's footprint at 1.5 cm and more, split at 5 mm)
    'max_jump': 0.005,
    # ... or this many pixel footprints (depth / focal length), whichever is larger: a coarse
    # depth image's neighbours lie far apart on any slanted surface (640x480 at 0.4 m: 2.6 mm)
    'jump_px': 4.0,
}


def support_plane(points: np.ndarray, threshold: float = 0.005, iterations: int = 200,
                  seed: int = 0) -> Optional[Tuple[np.ndarray, float]]:
    """
    Fit the dominant plane of a point cloud (RANSAC, then least squares on its inliers).

    Args:
        points: ``(N, 3)`` camera-frame points, metres.
        threshold: inlier distance, metres.
        iterations: RANSAC draws.
        seed: random seed (the fit is deterministic).

    Returns:
        ``(n (3,), d)`` with ``n . p + d = 0`` on the plane, ``|n| = 1`` and ``d > 0`` (the camera
        origin is on the positive side: heights above the table are positive), or None when
        there are fewer than 3 points.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) < 3:
        return None
    rng = np.random.default_rng(seed)
    best, best_count = None, -1
    for _ in range(iterations):
        a, b, c = pts[rng.choice(len(pts), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n /= norm
        count = int((np.abs(pts @ n - n @ a) < threshold).sum())
        if count > best_count:
            best, best_count = (n, -float(n @ a)), count
    if best is None:
        return None
    n, d = best
    inliers = pts[np.abs(pts @ n + d) < threshold]
    centre = inliers.mean(0)
    _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
    n = vt[2] / np.linalg.norm(vt[2])
    d = -float(n @ centre)
    if d < 0:
        n, d = -n, -d
    return n, d


def depth_edges(P: np.ndarray, max_jump: float, focal: float = None,
                jump_px: float = 0.0) -> np.ndarray:
    """
    ``(H, W)`` bool: pixels farther from a 4-neighbour's 3D point than the jump threshold.

    Args:
        P: ``(H, W, 3)`` back-projected points (any value where depth is missing).
        max_jump: metres.
        focal: focal length in pixels (None: the threshold is ``max_jump``).
        jump_px: with ``focal``, the threshold of a pair is
            ``max(max_jump, jump_px * z / focal)`` (``z``: the nearer point's depth).

    Both pixels of a jump are marked, so an edge is a barrier of two pixels.
    """
    def jumps(a, b):
        limit = max_jump
        if focal:
            limit = np.maximum(max_jump, jump_px * np.minimum(a[..., 2], b[..., 2]) / focal)
        return np.linalg.norm(a - b, axis=-1) > limit
    dx = jumps(P[:, 1:], P[:, :-1])
    dy = jumps(P[1:], P[:-1])
    edge = np.zeros(P.shape[:2], bool)
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    return edge


def object_segment(depth: np.ndarray, K, seed_px, plane, min_height: float, radius: float,
                   search_px: int = 24, max_jump: Optional[float] = None,
                   jump_px: float = 0.0) -> Tuple[Optional[np.ndarray], str]:
    """
    Pixels of the object under ``seed_px``: connected, above the plane, near the seed.

    Args:
        depth: ``(H, W)`` metres, NaN = missing.
        K: ``(3, 3)`` intrinsics.
        seed_px: ``(2,)`` pixel of the matched axis midpoint.
        plane: ``(n, d)`` from :func:`support_plane`.
        min_height: metres above the plane that count as object.
        radius: metres around the seed's 3D point the object may extend.
        search_px: when the seed pixel itself is not above the plane, the nearest such pixel
            within this many pixels is used.
        max_jump: metres; depth edges (:func:`depth_edges`) separate regions (None: not).
        jump_px: the edge threshold is at least this many pixel footprints.

    Returns:
        ``(mask (H, W) bool, '')`` or ``(None, reason)``.
    """
    import cv2

    depth = np.asarray(depth, np.float32)
    H, W = depth.shape
    ys, xs = np.mgrid[0:H, 0:W]
    ok = np.isfinite(depth) & (depth > 0)
    z = np.where(ok, depth, 0.0)
    K = np.asarray(K, float)
    P = np.stack([(xs - K[0, 2]) * z / K[0, 0], (ys - K[1, 2]) * z / K[1, 1], z], -1)
    n, d = plane
    height = np.where(ok, P @ n + d, -np.inf)
    above = height > min_height
    if max_jump is not None:
        above &= ~depth_edges(P, max_jump, float(K[0, 0]), jump_px)
    sx, sy = int(round(seed_px[0])), int(round(seed_px[1]))
    if not (0 <= sx < W and 0 <= sy < H):
        return None, f'matched axis midpoint ({sx}, {sy}) is outside the image'
    if not above[sy, sx]:
        y0, y1 = max(0, sy - search_px), min(H, sy + search_px + 1)
        x0, x1 = max(0, sx - search_px), min(W, sx + search_px + 1)
        cy, cx = np.nonzero(above[y0:y1, x0:x1])
        if len(cx) == 0:
            return None, (f'no object above the table within {search_px} px of the matched axis '
                          f'midpoint ({sx}, {sy})')
        k = int(np.argmin((cx + x0 - sx) ** 2 + (cy + y0 - sy) ** 2))
        sx, sy = int(cx[k] + x0), int(cy[k] + y0)
    _, labels = cv2.connectedComponents(above.astype(np.uint8), connectivity=8)
    region = labels == labels[sy, sx]
    region &= np.linalg.norm(P - P[sy, sx], axis=-1) < radius
    if region.sum() < 20:
        return None, f'the object under the match has only {int(region.sum())} depth pixels'
    return region, ''


def refine_axis(depth: np.ndarray, K, p1: np.ndarray, p2: np.ndarray, config: dict = None):
    """
    Re-measure a matched grasp axis on the depth image (see the module docstring).

    Args:
        depth: ``(H, W)`` metres; K: ``(3, 3)``.
        p1, p2: ``(3,)`` the matched axis end points (camera frame, metres).
        config: overrides of :data:`DEFAULTS`.

    Returns:
        ``(q1 (3,), q2 (3,), approach (3,), '')`` -- the refined axis end points (their distance
        is the object's width across the closing direction) and the approach direction
        (minus the table normal) -- or ``(None, None, None, reason)``.
    """
    cfg = {**DEFAULTS, **(config or {})}
    pts = geometry.depth_to_points(np.asarray(depth)[::4, ::4], _scaled(K, 4))
    plane = support_plane(pts)
    if plane is None:
        return None, None, None, 'no support plane in the depth image'
    n, d = plane
    mid = (np.asarray(p1, float) + np.asarray(p2, float)) / 2
    seed = geometry.project(mid[None], K)[0]
    region, why = object_segment(depth, K, seed, plane, cfg['min_height'], cfg['radius'],
                                 max_jump=cfg['max_jump'], jump_px=cfg['jump_px'])
    if region is None:
        return None, None, None, why
    obj = geometry.depth_to_points(depth, K, region)
    h = obj @ n + d
    foot = obj - np.outer(h, n)                       # on the plane
    centre = foot.mean(0)
    u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    uv = np.stack([(foot - centre) @ u, (foot - centre) @ v], 1)
    evals, evecs = np.linalg.eigh(np.cov(uv.T))
    minor = evecs[:, 0]
    t = uv @ minor
    lo, hi = np.quantile(t, [0.05, 0.95])
    top = float(np.quantile(h, 0.95))
    grasp_h = max(top / 2.0, top - cfg['finger_length'])
    axis = minor[0] * u + minor[1] * v
    lift = centre + grasp_h * n
    return lift + lo * axis, lift + hi * axis, -n, ''


def _scaled(K, factor: int) -> np.ndarray:
    """Intrinsics of the image subsampled every ``factor`` pixels (pixel (0, 0) kept)."""
    K = np.array(K, float)
    K[0, 0] /= factor
    K[1, 1] /= factor
    K[0, 2] /= factor
    K[1, 2] /= factor
    return K
