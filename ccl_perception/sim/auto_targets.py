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
Targets for simulated objects, picked automatically from a top-down reference view.

The user's step "two annotated grasp-axis pixels on a reference image" done for the
simulated world: the object's segmentation mask in the top-down reference render gives the
grasp axis (:func:`auto_grasp_pixels`: across the short side, for a parallel gripper), and
:func:`make_sim_targets` turns it into target files with ``ccl_perception.targets``. The
oracle of the grasp benchmark (:func:`object_frame_points`, :func:`oracle_pose`) moves the
same reference points with the true object pose: the ceiling of geometry + executor.
"""
from __future__ import annotations

import logging
import os

import numpy as np

LOG = logging.getLogger(__name__)


def spread_points(mask: np.ndarray, n: int, taken: np.ndarray, margin: int = 3) -> np.ndarray:
    """
    ``n`` pixels spread over ``mask`` (farthest-point sampling), away from ``taken``.

    Args:
        mask: ``(H, W)`` bool.
        n: how many points.
        taken: ``(K, 2)`` pixels already chosen (the new ones keep away from them too).
        margin: the points lie at least this many pixels inside the mask (when it allows).

    Returns:
        ``(min(n, #candidates), 2)`` float pixels ``(x, y)``.
    """
    import cv2
    m = np.asarray(mask, np.uint8)
    inner = cv2.erode(m, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    ys, xs = np.nonzero(inner if inner.any() else m)
    cand = np.stack([xs, ys], 1).astype(np.float64)
    d = np.min(np.linalg.norm(cand[:, None] - np.asarray(taken, float)[None], axis=2), axis=1)
    out = []
    for _ in range(min(n, len(cand))):
        k = int(np.argmax(d))
        out.append(cand[k])
        d = np.minimum(d, np.linalg.norm(cand - cand[k], axis=1))
    return np.asarray(out).reshape(-1, 2)


def auto_grasp_pixels(mask: np.ndarray, inset: float = 0.6, n_extra: int = 3,
                      n_spread: int = 0) -> np.ndarray:
    """
    Grasp-axis pixels of an object from its segmentation mask.

    Principal component analysis of the mask pixel coordinates: the minor axis through the
    centroid is the grasp axis (a parallel gripper closes across the short side). Points 1
    and 2 are at ``inset`` of the way from the centroid to the mask border along that axis
    (inside the object, on its top surface in a top-down view); ``n_extra`` further points
    (centroid, then +-half the long extent) help the robust 3D fit, and ``n_spread`` more
    are spread over the object (:func:`spread_points`), for a fit that tolerates a few
    mismatched keypoints.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(2 + n_extra + n_spread, 2)`` float pixels ``(x, y)`` (fewer spread points when the
        mask is tiny), all inside the mask.

    Raises:
        ValueError: fewer than 20 mask pixels.
    """
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    if len(xs) < 20:
        raise ValueError(f'object mask has only {len(xs)} pixels: not visible enough for a target')
    pts = np.stack([xs, ys], 1).astype(np.float64)
    c = pts.mean(0)
    evals, evecs = np.linalg.eigh(np.cov((pts - c).T))
    minor, major = evecs[:, 0], evecs[:, 1]
    t_minor = (pts - c) @ minor
    t_major = (pts - c) @ major
    cand = [c + inset * t_minor.min() * minor, c + inset * t_minor.max() * minor, c,
            c + 0.5 * inset * t_major.min() * major, c + 0.5 * inset * t_major.max() * major]
    out = []
    m = np.asarray(mask, dtype=bool)
    for q in cand[:2 + n_extra]:
        # snap to the nearest mask pixel (concave shapes)
        xi, yi = int(round(q[0])), int(round(q[1]))
        if not (0 <= yi < m.shape[0] and 0 <= xi < m.shape[1] and m[yi, xi]):
            q = pts[int(np.argmin(np.linalg.norm(pts - q, axis=1)))]
        out.append(q)
    out = np.asarray(out)
    if n_spread:
        out = np.concatenate([out, spread_points(m, n_spread, out)])
    return out


def object_short_side(depth: np.ndarray, mask: np.ndarray, K: np.ndarray) -> float:
    """Width in metres of a top-down-viewed object across its minor axis (from depth)."""
    from ccl_perception import geometry
    pts = geometry.depth_to_points(depth, K, np.asarray(mask, bool))
    if len(pts) < 10:
        return float('inf')
    xy = pts[:, :2] - pts[:, :2].mean(0)
    _, evecs = np.linalg.eigh(np.cov(xy.T))
    t = xy @ evecs[:, 0]
    return float(t.max() - t.min())


def graspable_width(spec) -> float:
    """
    Middle extent (m) of a catalogue object.

    What a top-down parallel grasp must span when the object rests on its largest face (0 for
    library meshes: measured from the view).
    """
    if spec.shape == 'box':
        return float(sorted(spec.size)[1])
    if spec.shape == 'cylinder':
        return float(sorted([2 * spec.size[0], 2 * spec.size[0], spec.size[1]])[1])
    if spec.shape == 'ellipsoid':
        return float(sorted(2 * np.asarray(spec.size))[1])
    return 0.0


#: ``(elevation, azimuth)`` degrees of the reference views of a multi-view sim target: view 0
#: top-down (the paper's), then oblique ones from the middle of the benchmark's 35-65 deg.
REFERENCE_VIEWS = ((90.0, 0.0), (50.0, 0.0), (50.0, 120.0), (50.0, 240.0))


def make_sim_targets(world, extractor, out_dir: str, n_targets: int, max_width: float,
                     names=None, seed: int = 0, n_spread: int = 5, views: int = 1,
                     calibrate: bool = True) -> dict:
    """
    Create (or reuse) target files for objects of ``world`` from reference views.

    Objects too wide for the gripper (short side > ``max_width`` m) are skipped. A target
    file that exists and was made by the same model (and has ``views`` views, calibrated
    or not as asked) is reused. ``views`` > 1 adds oblique views (:data:`REFERENCE_VIEWS`,
    :func:`oblique_view`); ``calibrate`` stores each view's similarity gate.

    Returns:
        ``{name: path}`` of at most ``n_targets`` targets.
    """
    from ccl_perception import targets as tg
    if not 1 <= views <= len(REFERENCE_VIEWS):
        raise ValueError(f'views must be 1-{len(REFERENCE_VIEWS)}, got {views}')
    os.makedirs(out_dir, exist_ok=True)
    made = {}
    for name in (names or world.object_names):
        if len(made) >= n_targets:
            break
        path = os.path.join(out_dir, f'{name}.npz')
        if os.path.exists(path):
            try:
                t = tg.load_target(path, str(extractor.identity))
                if tuple(t.image_size) != (world.cfg.height, world.cfg.width):
                    raise tg.TargetError(f'reference is {t.image_size[1]}x{t.image_size[0]} px, '
                                         f'the camera {world.cfg.width}x{world.cfg.height}')
                if len(t.views) != views or (t.gate is not None) != calibrate:
                    raise tg.TargetError(f'it has {len(t.views)} view(s), gate {t.gate}')
                made[name] = path
                LOG.info(f'target {name}: exists ({path})')
                continue
            except tg.TargetError as e:
                LOG.info(f'target {name}: re-creating ({e})')
        spec_width = graspable_width(world.scene.specs[name])
        if spec_width > max_width + 0.005:
            LOG.info(f'target {name}: skipped, {spec_width * 100:.1f} cm across in most resting '
                     'poses')
            continue
        render, cam = world.reference_view(name, seed=seed)
        mask = render.segmentation == world.body(name)
        width = object_short_side(render.depth, mask, cam.K)
        if width > max_width:
            LOG.info(f'target {name}: skipped, short side {width * 100:.1f} cm > '
                     f'{max_width * 100:.1f} cm')
            continue
        try:
            pixels = auto_grasp_pixels(mask, n_spread=n_spread)
            target = tg.make_target(extractor, render.rgb, pixels, name, depth=render.depth,
                                    K=cam.K, calibrate=calibrate)
            pictures = [draw_points(render.rgb, pixels)]
            for elevation, azimuth in REFERENCE_VIEWS[1:views]:
                view, picture = oblique_view(world, extractor, name, elevation, azimuth,
                                             seed, n_spread + 3, calibrate)
                if view is None:
                    LOG.info(f'target {name}: no view from elevation {elevation:g} deg near '
                             f'azimuth {azimuth:g} deg shows both grasp-axis points')
                    continue
                target = tg.add_view(target, view)
                pictures.append(picture)
        except ValueError as e:
            LOG.info(f'target {name}: skipped ({e})')
            continue
        tg.save_target(path, target)
        save_png(os.path.join(out_dir, f'{name}_reference.png'), np.hstack(pictures))
        made[name] = path
        LOG.info(f'target {name}: axis {target.axis_length * 100:.1f} cm, short side '
                 f'{width * 100:.1f} cm, {len(target.views)} view(s), gates '
                 f'{[None if v.gate is None else v.gate.round(3).tolist() for v in target.views]}')
    return made


def oblique_view(world, extractor, name: str, elevation: float, azimuth: float, seed: int,
                 n_spread: int, calibrate: bool):
    """
    Make a further reference view of ``name``: the same grasp axis seen obliquely.

    The object in its reference pose is rendered from ``elevation`` / ``azimuth`` degrees
    (where an axis point is hidden from there: ``azimuth`` + 30, 60, ... up to 90 deg either
    way); the grasp-axis points are the top-down view's ones (the same physical points, as a
    user clicks them again in a second view) projected into this view, and ``n_spread``
    further points are spread over the object's mask.

    Returns:
        ``(Target view, picture)``, or ``(None, None)`` when no such azimuth shows both axis
        points.
    """
    from ccl_perception import targets as tg
    from ccl_perception.sim.scene_check import hidden_points
    P_obj = object_frame_points(world, name, seed)[:2]
    for turn in (0.0, 30.0, -30.0, 60.0, -60.0, 90.0, -90.0):
        render, cam = world.reference_view(name, seed, elevation, azimuth + turn)
        T = world.scene.object_poses([name])[name]
        P_world = P_obj @ T[:3, :3].T + T[:3, 3]
        if not hidden_points(cam, render.depth, P_world, 0.005):
            break
    else:
        return None, None
    axis = cam.project(P_world)[0]
    mask = render.segmentation == world.body(name)
    pixels = np.concatenate([axis, spread_points(mask, n_spread, axis)])
    view = tg.make_target(extractor, render.rgb, pixels, name, depth=render.depth, K=cam.K,
                          calibrate=calibrate)
    return view, draw_points(render.rgb, pixels)


def draw_points(rgb, pixels):
    import cv2
    img = np.ascontiguousarray(rgb.copy())
    p = np.round(pixels).astype(int)
    cv2.line(img, tuple(p[0]), tuple(p[1]), (0, 0, 255), 1)
    for i, q in enumerate(p):
        cv2.circle(img, tuple(q), 3, (0, 255, 0) if i < 2 else (255, 255, 0), -1)
    return img


def save_png(path, rgb):
    import cv2
    cv2.imwrite(path, cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))


def object_frame_points(world, name: str, seed: int = 0) -> np.ndarray:
    """
    Ground truth for the oracle.

    The auto grasp pixels of ``name``'s reference view as (N, 3) points in the object's own
    frame (metres).
    """
    render, cam = world.reference_view(name, seed=seed)
    mask = render.segmentation == world.body(name)
    px = auto_grasp_pixels(mask)
    z = render.depth[np.round(px[:, 1]).astype(int), np.round(px[:, 0]).astype(int)]
    P_world = cam.backproject(px, z)
    T = world.scene.object_poses([name])[name]
    return (P_world - T[:3, 3]) @ T[:3, :3]


def oracle_pose(world, name: str, P_obj: np.ndarray, depth: np.ndarray, tol: float = 0.005):
    """
    (4, 4) camera-frame grasp from the TRUE object pose (perfect keypoints).

    The reference axis points moved with the object, approach straight down; None when either
    axis point is hidden in this view (``scene_check.hidden_points``: outside the image, or the
    rendered ``depth`` (H, W) m differs from its depth by > ``tol``), as a keypoint pipeline
    could not see it either.
    """
    from ccl_perception import geometry
    from ccl_perception.sim.scene_check import hidden_points
    T_obj = world.scene.object_poses([name])[name]
    P_world = P_obj @ T_obj[:3, :3].T + T_obj[:3, 3]
    T_cw = world.camera.camera_from_world
    P_cam = P_world @ T_cw[:3, :3].T + T_cw[:3, 3]
    if hidden_points(world.camera, depth, P_world[:2], tol):
        return None
    down = T_cw[:3, :3] @ np.array([0.0, 0.0, -1.0])
    g = geometry.grasp_from_axis(P_cam[0], P_cam[1], approach_hint=down)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = g.rotation, g.position
    return T
