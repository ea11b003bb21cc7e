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
Exact ground truth between rendered frames: reprojection with depth and a depth test.

A :class:`Frame` is what the renderer stores per image: depth (z, metres), segmentation
(pybullet body ids), the camera, and the world pose of every object by name. Objects are
rigid, so a surface point seen in frame A is found in frame B by
``pixel -> camera A -> world -> object (pose in A) -> world (pose in B) -> camera B -> pixel``
and is visible in B when B's rendered depth there agrees with the point's depth.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import os

from ccl_perception.sim.camera import Camera
import cv2
import numpy as np

DEPTH_TOLERANCE = 0.004  # m, |rendered depth - reprojected depth| for a point to count as visible


@dataclass
class Frame:
    """
    A rendered frame with its geometry.

    Attributes:
        depth: ``(H, W)`` float32 z-depth in metres, NaN = no hit.
        segmentation: ``(H, W)`` int32 body ids (-1 = nothing).
        camera: the :class:`Camera` that rendered it.
        object_poses: ``{name: world_from_object (4, 4)}``.
        object_ids: ``{name: body id in this frame's segmentation}``.
    """

    depth: np.ndarray
    segmentation: np.ndarray
    camera: Camera
    object_poses: dict
    object_ids: dict


def visible_points(frame: Frame, name: str, points_obj: np.ndarray,
                   depth_tol: float = DEPTH_TOLERANCE):
    """
    Project object-frame points into a frame and test their visibility.

    Args:
        frame: target :class:`Frame`.
        name: object name (must be in ``frame.object_poses``).
        points_obj: ``(N, 3)`` points in the object's frame, metres.
        depth_tol: visibility tolerance in metres.

    Returns:
        ``(uv (N, 2) float pixels, visible (N,) bool)``: visible = in front of the camera,
        inside the image, the pixel shows this object and its depth agrees within ``depth_tol``.
    """
    pts = np.asarray(points_obj, dtype=float).reshape(-1, 3)
    if name not in frame.object_poses:
        return np.full((len(pts), 2), np.nan), np.zeros(len(pts), bool)
    pose = frame.object_poses[name]
    world = pts @ pose[:3, :3].T + pose[:3, 3]
    uv, z = frame.camera.project(world)
    ok = frame.camera.in_image(uv) & (z > 0)
    vis = np.zeros(len(pts), bool)
    if ok.any():
        # Test the 2x2 pixels around the point and the nearest one: on surfaces seen at a
        # grazing angle the depth changes by more than depth_tol from one pixel to the next.
        h, w = frame.depth.shape
        hit = np.zeros(int(ok.sum()), bool)
        base = np.floor(uv[ok]).astype(int)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            x = np.clip(base[:, 0] + dx, 0, w - 1)
            y = np.clip(base[:, 1] + dy, 0, h - 1)
            d = frame.depth[y, x]
            hit |= (np.abs(d - z[ok]) < depth_tol) & (frame.segmentation[y, x]
                                                      == frame.object_ids[name])
        vis[ok] = hit
    return uv, vis


def exact_correspondences(frame_a: Frame, frame_b: Frame, pixels_a: np.ndarray | None = None,
                          depth_tol: float = DEPTH_TOLERANCE) -> dict:
    """
    Exact pixel correspondences of object pixels from frame A into frame B.

    Only pixels on objects present in both frames are used (the table and floor are not
    rigidly tied to the objects); occluded or out-of-view points in B are dropped.

    Args:
        frame_a, frame_b: :class:`Frame`.
        pixels_a: optional ``(N, 2)`` integer pixels ``(x, y)`` of A to map; default every
            object pixel of A.
        depth_tol: visibility tolerance in metres.

    Returns:
        dict with ``pixels_a (M, 2)`` int, ``pixels_b (M, 2)`` float sub-pixel positions in B,
        ``names (M,)`` object names (array of str).
    """
    h, w = frame_a.depth.shape
    if pixels_a is None:
        ys, xs = np.nonzero(frame_a.segmentation >= 0)
        pixels_a = np.stack([xs, ys], axis=1)
    pixels_a = np.asarray(pixels_a).reshape(-1, 2).astype(int)
    if len(pixels_a) and ((pixels_a < 0).any() or (
            pixels_a[:, 0] >= w).any() or (pixels_a[:, 1] >= h).any()):
        raise ValueError(f'pixels_a must lie inside the {w}x{h} image')
    seg = frame_a.segmentation[pixels_a[:, 1], pixels_a[:, 0]]
    depth = frame_a.depth[pixels_a[:, 1], pixels_a[:, 0]]
    out_a, out_b, out_n = [], [], []
    for name, body in frame_a.object_ids.items():
        if name not in frame_b.object_poses or name not in frame_a.object_poses:
            continue
        sel = (seg == body) & np.isfinite(depth)
        if not sel.any():
            continue
        world = frame_a.camera.backproject(pixels_a[sel], depth[sel])
        inv = np.linalg.inv(frame_a.object_poses[name])
        pts_obj = world @ inv[:3, :3].T + inv[:3, 3]
        uv, vis = visible_points(frame_b, name, pts_obj, depth_tol)
        out_a.append(pixels_a[sel][vis])
        out_b.append(uv[vis])
        out_n += [name] * int(vis.sum())
    if not out_a:
        return {'pixels_a': np.zeros((0, 2), int), 'pixels_b': np.zeros(
            (0, 2)), 'names': np.array([], str)}
    return {'pixels_a': np.concatenate(out_a), 'pixels_b': np.concatenate(
        out_b), 'names': np.array(out_n)}


# ------------------------------------------------------------------ storage
def save_frame(folder: str, stem: str, frame: Frame, depth_format: str = 'npy') -> dict:
    """
    Write depth / segmentation of a frame next to its image; return its JSON metadata.

    Files: ``depth/<stem>.npy`` (float32 m) or ``depth/<stem>.png`` (uint16 mm, 0 = missing);
    ``segmentation/<stem>.npy`` (int32 body ids, -1 = nothing). No auxiliary file is a PNG, so
    the folder can be given to any training run as a plain image folder (its PNGs are RGB only).
    """
    os.makedirs(os.path.join(folder, 'depth'), exist_ok=True)
    os.makedirs(os.path.join(folder, 'segmentation'), exist_ok=True)
    if depth_format == 'npy':
        depth_rel = f'depth/{stem}.npy'
        np.save(os.path.join(folder, depth_rel), frame.depth.astype(np.float32))
    elif depth_format == 'png':
        depth_rel = f'depth/{stem}.png'
        mm = np.nan_to_num(frame.depth * 1000.0, nan=0.0)
        cv2.imwrite(
            os.path.join(
                folder,
                depth_rel),
            np.clip(
                np.round(mm),
                0,
                65535).astype(
                np.uint16))
    else:
        raise ValueError(f"depth_format must be 'npy' or 'png', got {depth_format!r}")
    seg_rel = f'segmentation/{stem}.npy'
    np.save(os.path.join(folder, seg_rel), frame.segmentation.astype(np.int32))
    return {'depth': depth_rel, 'segmentation': seg_rel, 'camera': frame.camera.to_dict(),
            'object_poses': {k: v.tolist() for k, v in frame.object_poses.items()},
            'object_ids': dict(frame.object_ids)}


def load_frame(folder: str, meta: dict) -> Frame:
    """Inverse of :func:`save_frame` (``meta`` is one entry of ``frames.json``)."""
    path = os.path.join(folder, meta['depth'])
    if path.endswith('.npy'):
        depth = np.load(path, allow_pickle=False).astype(np.float32)
    else:
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f'cannot read depth image {path}')
        depth = raw.astype(np.float32) / 1000.0
        depth[raw == 0] = np.nan
    seg_path = os.path.join(folder, meta['segmentation'])
    if seg_path.endswith('.npy'):
        seg = np.load(seg_path, allow_pickle=False).astype(np.int32)
    else:  # uint16 PNG, body id + 1
        raw = cv2.imread(seg_path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"cannot read segmentation {meta['segmentation']} in {folder}")
        seg = raw.astype(np.int32) - 1
    return Frame(depth, seg, Camera.from_dict(meta['camera']),
                 {k: np.array(v) for k, v in meta['object_poses'].items()},
                 dict(meta['object_ids']))


def load_frames_index(folder: str) -> list:
    """Read ``<folder>/frames.json`` written by the training renderer (list of frame metadata)."""
    path = os.path.join(folder, 'frames.json')
    if not os.path.isfile(path):
        raise ValueError(f'{path} not found: render with --depth to get ground-truth geometry')
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    return data['frames']
