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

1. :func:`support_plane`: RANSAC plane of the depth cloud (every 8th pixel of every 8th row:
   the table), normal towards the camera.
2. :func:`object_segment`: the connected region of pixels higher than ``min_height`` above that
   plane that contains the matched axis midpoint, cut to ``radius`` metres around it. Pixels
   whose 3D point is more than ``max_jump`` from a neighbour's (a depth edge) separate
   regions, so an object touching the target in the image is not measured with it.
3. :func:`refine_axis`: the region's footprint on the plane; its minor principal axis through
   its centroid is the closing direction, its extent along it (5-95 % quantiles) the width,
   and the grasp centre sits at half the region's height (at most a finger length below its
   top). It also returns minus the plane's normal: the approach straight onto the table (the
   pipeline's ``approach: normal``).

Speed (issue "fast on every CPU"): ~5 ms for a 640x480 frame on 2 loaded cores, against
~50 ms when the plane was scored point by point on every 4th pixel and the region grown over
the whole image (``training/benchmark.py`` prints it as ``refine``). Matrix products of
more than a few hundred thousand multiply-adds are avoided: numpy hands them to a threaded
BLAS, which on a machine whose other core is busy waits for it (15 ms instead of 0.1 ms).

Conventions as in :mod:`ccl_perception.geometry` (camera optical frame, metres, pixels with
centres at integers, NaN = missing depth).
"""
from typing import Optional, Tuple

from ccl_perception import geometry
import numpy as np

#: Constants of the refinement (``refine_axis(config=...)`` overrides them; the grasp pipeline
#: uses them as they are: they are not planner parameters).
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
#: The support plane is fitted to every ``PLANE_STEP_PX``-th pixel of every ``PLANE_STEP_PX``-th
#: row (4800 points of a 640x480 image, 1200 of 320x240).
PLANE_STEP_PX = 8
#: When the matched axis midpoint is not above the plane, the nearest pixel that is, within
#: this many pixels, seeds the object.
SEARCH_PX = 24


def support_plane(points: np.ndarray, threshold: float = 0.005, iterations: int = 200,
                  seed: int = 0, scored: int = 500) -> Optional[Tuple[np.ndarray, float]]:
    """
    Fit the dominant plane of a point cloud (RANSAC, then least squares on its inliers).

    The ``iterations`` hypotheses (planes through 3 random points) are scored together on the
    same ``scored`` random points of the cloud; the best one's inliers among all points are
    then fitted by least squares.

    Args:
        points: ``(N, 3)`` camera-frame points, metres.
        threshold: inlier distance, metres.
        iterations: RANSAC draws.
        seed: random seed (the fit is deterministic).
        scored: points that score the hypotheses (all of them when the cloud is smaller).

    Returns:
        ``(n (3,), d)`` with ``n . p + d = 0`` on the plane, ``|n| = 1`` and ``d > 0`` (the camera
        origin is on the positive side: heights above the table are positive), or None when
        there are fewer than 3 points or every draw was degenerate (collinear points).
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) < 3:
        return None
    rng = np.random.default_rng(seed)
    a, b, c = pts[rng.integers(0, len(pts), (3, iterations))]   # (iterations, 3) each
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12                                # repeated or collinear points: no plane
    if not ok.any():
        return None
    normals = normals[ok] / norms[ok, None]
    offsets = -np.einsum('ij,ij->i', normals, a[ok])
    sample = pts if len(pts) <= scored else pts[rng.choice(len(pts), scored, replace=False)]
    # distances (scored, hypotheses), written out: a matrix product here would be a threaded
    # BLAS call, which waits for a second core on a loaded machine (15 ms instead of 0.1 ms)
    dist = offsets + sample[:, :1] * normals[:, 0]
    dist += sample[:, 1:2] * normals[:, 1]
    dist += sample[:, 2:] * normals[:, 2]
    counts = np.count_nonzero(np.abs(dist) < threshold, axis=0)
    best = int(np.argmax(counts))                     # the first of the best
    n = normals[best]
    inliers = pts[np.abs(pts[:, 0] * n[0] + pts[:, 1] * n[1] + pts[:, 2] * n[2]
                         + offsets[best]) < threshold]
    if len(inliers) < 3:
        return None
    centre = inliers.mean(0)
    _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
    n = vt[2] / np.linalg.norm(vt[2])
    d = -float(n @ centre)
    if d < 0:
        n, d = -n, -d
    return n, d


def _window(x: int, y: int, half_x: int, half_y: int, H: int, W: int) -> Tuple[slice, slice]:
    """Rows and columns of the image within ``half_y`` / ``half_x`` pixels of ``(x, y)``."""
    return (slice(max(0, y - half_y), min(H, y + half_y + 1)),
            slice(max(0, x - half_x), min(W, x + half_x + 1)))


def _points(depth: np.ndarray, K: np.ndarray, rows: slice, cols: slice):
    """Camera-frame points ``(h, w, 3)`` of a window of the depth image and its valid mask."""
    z = depth[rows, cols].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    z = np.where(ok, z, 0.0)
    xs = (np.arange(cols.start, cols.stop) - K[0, 2]) / K[0, 0]
    ys = (np.arange(rows.start, rows.stop) - K[1, 2]) / K[1, 1]
    return np.stack([xs[None, :] * z, ys[:, None] * z, z], -1), ok


def _heights(P: np.ndarray, ok: np.ndarray, plane) -> np.ndarray:
    """Height above the plane of every point of ``P (h, w, 3)``; ``-inf`` where no depth."""
    n, d = plane
    return np.where(ok, P @ np.asarray(n, float) + d, -np.inf)


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


def _above(depth, K, rows, cols, plane, min_height, max_jump, jump_px):
    """
    Return ``(above (h, w) bool, P (h, w, 3))`` of a window of the depth image.

    ``above``: higher than ``min_height`` above the plane, and not on a depth edge
    (:func:`depth_edges`, when ``max_jump`` is not None); ``P``: the window's points.
    """
    P, ok = _points(depth, K, rows, cols)
    above = _heights(P, ok, plane) > min_height
    if max_jump is not None:
        above &= ~depth_edges(P, max_jump, float(K[0, 0]), jump_px)
    return above, P


def object_segment(depth: np.ndarray, K, seed_px, plane, min_height: float, radius: float,
                   search_px: int = SEARCH_PX, max_jump: Optional[float] = None,
                   jump_px: float = 0.0) -> Tuple[Optional[np.ndarray], str]:
    """
    Pixels of the object under ``seed_px``: connected, above the plane, near the seed.

    Only the window of pixels that can lie within ``radius`` of the seed's 3D point is read
    (about 200 x 200 pixels for the default 7 cm at 0.5 m with a 640x480 D435-like camera),
    so the cost does not grow with the image. Connectivity is that of this window: a pixel
    within ``radius`` that touches the seed's region only through pixels more than ``radius``
    away (outside the window) is not part of the object.

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
    found = _segment(depth, K, seed_px, plane, min_height, radius, search_px, max_jump, jump_px)
    if isinstance(found, str):
        return None, found
    rows, cols, region, _ = found
    mask = np.zeros(np.shape(depth), bool)
    mask[rows, cols] = region
    return mask, ''


def _segment(depth, K, seed_px, plane, min_height, radius, search_px, max_jump=None,
             jump_px=0.0):
    """:func:`object_segment`: ``(rows, cols, region (h, w), its points (M, 3))`` or a reason."""
    import cv2

    depth = np.asarray(depth)
    H, W = depth.shape
    K = np.asarray(K, float)
    sx, sy = int(round(seed_px[0])), int(round(seed_px[1]))
    if not (0 <= sx < W and 0 <= sy < H):
        return f'matched axis midpoint ({sx}, {sy}) is outside the image'
    rows, cols = _window(sx, sy, search_px, search_px, H, W)
    above = _above(depth, K, rows, cols, plane, min_height, max_jump, jump_px)[0]
    if not above[sy - rows.start, sx - cols.start]:
        cy, cx = np.nonzero(above)
        if len(cx) == 0:
            return (f'no object above the table within {search_px} px of the matched axis '
                    f'midpoint ({sx}, {sy})')
        k = int(np.argmin((cx + cols.start - sx) ** 2 + (cy + rows.start - sy) ** 2))
        sx, sy = int(cx[k] + cols.start), int(cy[k] + rows.start)
    seed = _points(depth, K, slice(sy, sy + 1), slice(sx, sx + 1))[0][0, 0]
    if seed[2] > radius:
        # A point Q with |Q - S| < r around the seed S has Q_z > S_z - r and
        # |Q_x / Q_z - S_x / S_z| = |(Q_x - S_x) S_z - S_x (Q_z - S_z)| / (Q_z S_z)
        #                          < r (S_z + |S_x|) / ((S_z - r) S_z)   (same for y).
        half_x = int(np.ceil(K[0, 0] * radius * (seed[2] + abs(seed[0]))
                             / ((seed[2] - radius) * seed[2]))) + 1
        half_y = int(np.ceil(K[1, 1] * radius * (seed[2] + abs(seed[1]))
                             / ((seed[2] - radius) * seed[2]))) + 1
        rows, cols = _window(sx, sy, half_x, half_y, H, W)
    else:  # the camera is inside the ball: any pixel may be
        rows, cols = slice(0, H), slice(0, W)
    above, P = _above(depth, K, rows, cols, plane, min_height, max_jump, jump_px)
    _, labels = cv2.connectedComponents(above.astype(np.uint8), connectivity=8)
    region = labels == labels[sy - rows.start, sx - cols.start]
    region &= ((P - seed) ** 2).sum(-1) < radius ** 2
    count = int(region.sum())
    if count < 20:
        return f'the object under the match has only {count} depth pixels'
    return rows, cols, region, P[region]


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
    step = PLANE_STEP_PX
    pts = geometry.depth_to_points(np.asarray(depth)[::step, ::step], _scaled(K, step))
    plane = support_plane(pts)
    if plane is None:
        return None, None, None, 'no support plane in the depth image'
    n, d = plane
    mid = (np.asarray(p1, float) + np.asarray(p2, float)) / 2
    seed = geometry.project(mid[None], K)[0]
    found = _segment(depth, K, seed, plane, cfg['min_height'], cfg['radius'], SEARCH_PX,
                     cfg['max_jump'], cfg['jump_px'])
    if isinstance(found, str):
        return None, None, None, found
    obj = found[3]
    h = obj @ n + d
    foot = obj - h[:, None] * n                       # on the plane
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
