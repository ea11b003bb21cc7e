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
Is the target in view and graspable? Checked on the render of a scene.

The paper's grasp test (Table II) has "the current target object always visible and
graspable". A simulated scene with its target placed at random is not always so: the camera
may see only part of it, or another object may hide its grasp points. :func:`check_target`
decides it for one scene, from what the camera renders:

1. **in view**: at least ``min_in_view`` of the target's projected mask lies inside the image.
   The mask beyond the image border comes from a second render of the same camera pose with
   twice the field of view at half the resolution (:func:`padded_camera`): the image is its
   central half, so the fraction is ``mask inside / whole mask`` of that render.
2. **grasp points unoccluded**: both grasp-axis points (the target's reference axis moved
   with its true pose) project into the image and the rendered depth at their pixels is
   within ``depth_tolerance`` of theirs (nothing in front of them; :func:`hidden_points`,
   the oracle's test).
3. **width within the stroke**: the extent of the target's rendered 3D points along the
   grasp axis (the larger of the two renders' measures) is at most ``max_width`` (the 8 cm
   stroke of a Franka Hand minus 3 mm, the benchmark catalogue's rule for a graspable
   object).

Units: metres, pixels ``(x, y)`` with centres at integers, as in :mod:`ccl_perception.geometry`.
"""
from __future__ import annotations

import numpy as np

#: Defaults of the check (``SimWorldConfig.scene_check`` overrides them).
DEFAULTS = {
    'min_in_view': 0.8,          # fraction of the target's projected mask inside the image
    'depth_tolerance': 0.005,    # m: an axis point is hidden when the render is nearer by more
    'max_width': 0.077,          # m: Franka Hand stroke 0.08 - 3 mm (catalogue_v2 graspable)
}


def padded_camera(camera):
    """
    Return the same camera pose with twice the field of view at half the resolution.

    Pixel ``(u, v)`` of ``camera`` (size ``W x H``) is pixel
    ``((u + 0.5) / 2 - 0.5 + W / 4, (v + 0.5) / 2 - 0.5 + H / 4)`` here: the original image is
    the central half ``[W/4, 3W/4) x [H/4, 3H/4)`` of the returned ``W x H`` canvas.
    """
    from ccl_perception.sim.camera import Camera
    W, H = camera.width, camera.height
    K = np.array(camera.K, float)
    K[0, 0] /= 2.0
    K[1, 1] /= 2.0
    K[0, 1] /= 2.0
    K[0, 2] = (K[0, 2] + 0.5) / 2.0 - 0.5 + W / 4.0
    K[1, 2] = (K[1, 2] + 0.5) / 2.0 - 0.5 + H / 4.0
    return Camera(K, camera.world_from_camera, W, H, camera.near, camera.far)


def in_view_fraction(segmentation: np.ndarray, body: int) -> float:
    """
    Fraction of ``body``'s pixels of a :func:`padded_camera` render inside the original image.

    Args:
        segmentation: ``(H, W)`` body ids of the padded render.
        body: the target's id.

    Returns:
        in ``[0, 1]``; 0 when the body is not seen at all.
    """
    mask = np.asarray(segmentation) == body
    total = int(mask.sum())
    if total == 0:
        return 0.0
    H, W = mask.shape
    inside = int(mask[H // 4:3 * H // 4, W // 4:3 * W // 4].sum())
    return inside / total


def hidden_points(camera, depth: np.ndarray, points_world: np.ndarray, tol: float) -> list:
    """
    Return the indices of ``points_world`` that ``camera`` cannot see.

    A point is hidden when it lies behind the camera, projects outside the image, or the
    rendered depth at the pixel nearest its projection differs from its own depth by more
    than ``tol`` metres (something is in front of it). The oracle of the grasp benchmark
    (``auto_targets.oracle_pose``) abstains exactly when this finds a hidden axis point.

    Args:
        camera: the camera ``depth`` was rendered with.
        depth: ``(H, W)`` z-depth, metres, NaN = nothing.
        points_world: ``(N, 3)`` metres.
        tol: metres of depth difference that still count as the point itself.
    """
    uv, z = camera.project(points_world)
    inside = camera.in_image(uv) & (z > 0)
    out = []
    for i in range(len(uv)):
        if not inside[i]:
            out.append(i)
            continue
        d = depth[int(round(uv[i, 1])), int(round(uv[i, 0]))]
        if not abs(d - z[i]) < tol:  # NaN depth counts as hidden
            out.append(i)
    return out


def axis_width(camera, depth: np.ndarray, mask: np.ndarray, p1, p2) -> float:
    """
    Extent (m) of the masked rendered points along the horizontal grasp axis ``p1 -> p2``.

    Args:
        camera: the render's camera; depth: ``(H, W)`` m; mask: ``(H, W)`` bool of the target.
        p1, p2: ``(3,)`` world points of the grasp axis.

    Returns:
        ``max - min`` of the points' projection on the axis direction (its world-horizontal
        part: the gripper closes horizontally on a top-down grasp); NaN without points.
    """
    ys, xs = np.nonzero(np.asarray(mask) & np.isfinite(depth))
    if len(xs) == 0:
        return float('nan')
    P = camera.backproject(np.stack([xs, ys], 1), depth[ys, xs])
    axis = np.asarray(p2, float) - np.asarray(p1, float)
    axis[2] = 0.0
    n = np.linalg.norm(axis)
    if n < 1e-9:
        return float('nan')
    t = P @ (axis / n)
    return float(t.max() - t.min())


def check_target(scene, camera, body: int, axis_world: np.ndarray, config: dict = None):
    """
    Decide whether the target ``body`` is in view and graspable (see the module docstring).

    Args:
        scene: the :class:`~ccl_perception.sim.scene.TabletopScene` (rendered with
            :func:`padded_camera`, and with ``camera`` when the target is in view).
        camera: the scene's camera.
        body: the target's pybullet id.
        axis_world: ``(2, 3)`` the grasp-axis points in the world, metres.
        config: overrides of :data:`DEFAULTS`.

    Returns:
        ``(ok, reason, stats)``: ``reason`` is '' when ``ok``, else why not; ``stats`` holds
        ``in_view`` (fraction), ``hidden_axis_points`` (indices) and ``width_m``.
    """
    cfg = {**DEFAULTS, **(config or {})}
    axis = np.asarray(axis_world, float)[:2]
    pad = padded_camera(camera)
    r = scene.render(pad)
    frac = in_view_fraction(r.segmentation, body)
    width = axis_width(pad, r.depth, r.segmentation == body, *axis)
    hidden = []
    if frac >= cfg['min_in_view']:
        full = scene.render(camera)
        hidden = hidden_points(camera, full.depth, axis, cfg['depth_tolerance'])
        # pixel-centre extents fall short by up to a pixel: the finer render counts too
        width = np.nanmax([width, axis_width(camera, full.depth, full.segmentation == body,
                                             *axis)])
    stats = {'in_view': round(frac, 3), 'hidden_axis_points': hidden,
             'width_m': round(width, 4) if np.isfinite(width) else None}
    if frac < cfg['min_in_view']:
        return False, (f'only {100 * frac:.0f} % of the target inside the image '
                       f'(needs {100 * cfg["min_in_view"]:.0f} %)'), stats
    if hidden:
        return False, f'grasp-axis point(s) {[i + 1 for i in hidden]} hidden or outside', stats
    if not np.isfinite(width) or width > cfg['max_width']:
        return False, (f'{100 * width:.1f} cm across the grasp axis > '
                       f'{100 * cfg["max_width"]:.1f} cm'), stats
    return True, '', stats
