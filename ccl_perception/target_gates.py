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

r"""
A similarity gate per target view, calibrated from the reference view and the model alone.

One global ``min_similarity`` fits one model and average objects: a wooden toy on a wooden
table never reaches 0.8 while a printed box does easily. At ``make_target`` time this module
measures, without any label, how similar each target point stays to itself under view changes
and how similar the rest of the scene gets, and turns that into the view's own gate.

Statistics of point :math:`i` over :math:`A` augmented copies :math:`a` of the reference image
(:func:`random_view`: any in-plane rotation, scale 0.7-1.4, a shift, a tilt, exposure and
white balance; exact homographies, the ranges of the package's training augmentation):

- positive :math:`s^+_{a,i}`: the highest cosine similarity (Eq. 1) of the point's reference
  descriptor to the descriptor cells within one cell of where the point lands in copy
  :math:`a` -- what the matcher's peak similarity is when the point is there;
- negative :math:`s^-_{a,i}`: the highest similarity to any cell of copy :math:`a` that is off
  the object (outside the object's mask dilated by one cell) -- what the rest of a scene
  offers when the object is absent. The mask is the object under the grasp axis measured in
  the reference depth (``grasp_refine.object_segment``); without depth, a disc of
  ``exclusion_cells`` cells around every target point.

The gate of grasp-axis point :math:`i \in \{1, 2\}` of a view is

.. math:: g_i = \tilde s^-_i + \alpha (\tilde s^+_i - \tilde s^-_i)

with :math:`\tilde s^+_i` the ``positive_quantile`` of :math:`s^+_{\cdot,i}`,
:math:`\tilde s^-_i` the ``negative_quantile`` of :math:`s^-_{\cdot,i}` and :math:`\alpha`
(``alpha``) chosen once, on validation grasp scenes (``training/choose_thresholds.py
--gates``), never per target by hand. The planner abstains when either axis point's peak
similarity in the frame is below its own gate (the global ``min_similarity`` is the same
gate for both points).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: Defaults of the calibration (every key is used by :func:`calibrate`).
DEFAULTS = {
    'augmentations': 8,          # augmented copies of the reference view
    'seed': 0,                   # their seed (a target is a pure function of its inputs)
    # the view changes of the copies (random_view): scale range, shift and corner moves as a
    # fraction of the image size, brightness and per-channel tint ranges
    'scale': (0.7, 1.4),
    'shift': 0.1,
    'perspective': 0.12,
    'brightness': 0.3,
    'tint': 0.08,
    'positive_quantile': 0.25,   # of s+ over the copies (a view change the point survives)
    'negative_quantile': 1.0,    # of s- over the copies (the most similar off-object cell)
    'exclusion_cells': 2,        # no depth: cells around each target point that count as object
    # chosen on validation grasp scenes with min_confidence (training/choose_thresholds.py
    # --gates; seeds 9000-9035 at 35-65 and 50-80 deg, protocol 'visible': alpha 0.5-0.65 with
    # min_confidence 0.02 gave the most grasps, 28/48, with no false grasp; the middle)
    'alpha': 0.55,
}


def object_mask(depth: np.ndarray, K, p1, p2) -> Optional[np.ndarray]:
    """
    ``(H, W)`` bool mask of the object under the grasp axis, from depth; None when unknown.

    The connected region above the support plane around the axis midpoint
    (:func:`ccl_perception.grasp_refine.object_segment`, radius 0.15 m).
    """
    from ccl_perception import geometry
    from ccl_perception.grasp_refine import _scaled, object_segment, support_plane
    depth = np.asarray(depth, np.float32)
    plane = support_plane(geometry.depth_to_points(depth[::4, ::4], _scaled(K, 4)))
    if plane is None:
        return None
    mid = (np.asarray(p1, float) + np.asarray(p2, float)) / 2
    region, _ = object_segment(depth, K, geometry.project(mid[None], K)[0], plane,
                               min_height=0.004, radius=0.15)
    return region


def _cells_near(points_grid: np.ndarray, shape, radius: float) -> np.ndarray:
    """``(h, w)`` bool: cells within ``radius`` cells of any of ``points_grid`` ``(N, 2)``."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    d = np.full((h, w), np.inf)
    for x, y in points_grid:
        d = np.minimum(d, np.hypot(xs - x, ys - y))
    return d <= radius


def random_view(rng: np.random.Generator, size, config: dict = None):
    """
    Draw a random view change of an ``(H, W)`` image: ``(homography, gain (3,), offset)``.

    The homography takes a pixel ``(x, y)`` of the reference to its pixel in the new view:
    a turn about the image centre by any angle, a scale in ``scale``, a shift of up to
    ``shift`` of the image size, then each corner moved by up to ``perspective`` of the image
    size (a tilted view). The colour change is ``gain * rgb + offset`` per channel (the
    camera's exposure and white balance).
    """
    import cv2
    cfg = {**DEFAULTS, **(config or {})}
    H, W = int(size[0]), int(size[1])
    c = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
    a = rng.uniform(-np.pi, np.pi)
    s = rng.uniform(*cfg['scale'])
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = c - R @ c + rng.uniform(-1, 1, 2) * cfg['shift'] * np.array([W, H])
    A = np.eye(3)
    A[:2, :2], A[:2, 2] = R, t
    corners = np.array([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], np.float32)
    moved = corners + rng.uniform(-1, 1, (4, 2)) * cfg['perspective'] * np.array([W, H])
    P = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    gain = rng.uniform(1 - cfg['brightness'], 1 + cfg['brightness']) * \
        rng.uniform(1 - cfg['tint'], 1 + cfg['tint'], 3)
    return P @ A, gain, rng.uniform(-20, 20)


def similarity_statistics(extractor, rgb: np.ndarray, pixels: np.ndarray,
                          descriptors: np.ndarray, mask: Optional[np.ndarray] = None,
                          config: dict = None) -> dict:
    """
    Positive and negative similarities of the target points (see the module docstring).

    Args:
        extractor: ``DescriptorExtractor``-like (``__call__(rgb) -> (D, h, w)``, ``stride``).
        rgb: ``(H, W, 3)`` uint8 reference image.
        pixels: ``(N, 2)`` target pixels ``(x, y)``.
        descriptors: ``(N, D)`` their unit descriptors (``Target.descriptors``).
        mask: ``(H, W)`` bool object mask, or None (discs around the points instead).
        config: overrides of :data:`DEFAULTS`.

    Returns:
        ``{'positive': (A, N), 'negative': (A, N)}`` float32; NaN where point ``i`` left the
        image in copy ``a``.
    """
    import cv2
    import torch

    from ccl_perception.correspondence import full_to_grid
    cfg = {**DEFAULTS, **(config or {})}
    rgb = np.asarray(rgb, np.uint8)
    H, W = rgb.shape[:2]
    stride = int(getattr(extractor, 'stride', 8))
    q = torch.as_tensor(np.asarray(descriptors, np.float32))
    A, N = int(cfg['augmentations']), len(pixels)
    pos = np.full((A, N), np.nan, np.float32)
    neg = np.full((A, N), np.nan, np.float32)
    pts = np.asarray(pixels, np.float64)
    rng = np.random.default_rng(int(cfg['seed']))
    for a in range(A):
        Hm, gain, offset = random_view(rng, (H, W), cfg)
        warped = cv2.warpPerspective(rgb, Hm, (W, H), flags=cv2.INTER_LINEAR)
        warped = np.clip(warped * gain + offset + 0.5, 0, 255).astype(np.uint8)
        with torch.no_grad():
            desc = extractor(warped).float().cpu()
        h, w = desc.shape[-2:]
        sim = (q @ desc.reshape(desc.shape[0], -1)).reshape(N, h, w).numpy()
        moved = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), Hm).reshape(-1, 2)
        valid = ((moved[:, 0] >= -0.5) & (moved[:, 0] < W - 0.5)
                 & (moved[:, 1] >= -0.5) & (moved[:, 1] < H - 0.5))
        grid = full_to_grid(torch.from_numpy(moved), stride).numpy()
        if mask is not None:
            m = cv2.warpPerspective(np.asarray(mask, np.uint8), Hm, (W, H),
                                    flags=cv2.INTER_NEAREST)
            cells = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) > 0
            cells = cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        else:
            cells = _cells_near(grid[valid], (h, w), float(cfg['exclusion_cells']))
        off = ~cells
        for i in range(N):
            if off.any():
                neg[a, i] = sim[i][off].max()
            if valid[i]:
                pos[a, i] = sim[i][_cells_near(grid[i:i + 1], (h, w), 1.0)].max()
    return {'positive': pos, 'negative': neg}


def gate(stats: dict, config: dict = None) -> np.ndarray:
    """
    Return the ``(2,)`` gates of the view's axis points (the module docstring's formula).

    NaN where an axis point has no positive or negative statistic (the planner then uses the
    global ``min_similarity`` for the view).
    """
    cfg = {**DEFAULTS, **(config or {})}
    pos, neg = np.asarray(stats['positive'], float), np.asarray(stats['negative'], float)
    out = np.full(2, np.nan)
    for i in (0, 1):
        p, n = pos[:, i][np.isfinite(pos[:, i])], neg[:, i][np.isfinite(neg[:, i])]
        if len(p) and len(n):
            sp = float(np.quantile(p, cfg['positive_quantile']))
            sn = float(np.quantile(n, cfg['negative_quantile']))
            out[i] = sn + cfg['alpha'] * (sp - sn)
    return out


def calibrate(extractor, rgb, pixels, descriptors, depth=None, K=None, points_3d=None,
              config: dict = None) -> dict:
    """
    Statistics and gate of one reference view: ``{'positive', 'negative', 'min_similarity'}``.

    With reference ``depth``, ``K`` and ``points_3d`` (the axis in 3D) the object mask comes
    from depth; else discs around the points.
    """
    mask = None
    if depth is not None and K is not None and points_3d is not None \
            and np.all(np.isfinite(points_3d[:2])):
        mask = object_mask(depth, K, points_3d[0], points_3d[1])
    stats = similarity_statistics(extractor, rgb, pixels, descriptors, mask, config)
    return {**stats, 'min_similarity': gate(stats, config)}
