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
Training instruments on rendered data: where the CCL cycles go, and whether they are right.

Only for training folders rendered with ground truth (``frames.json`` with depth,
segmentation, camera and object poses; ``training/render_dataset.py train --depth``); a
user's own photos have none, and the instruments are then off.

Per logged step, over the batch (:meth:`CycleInstruments.measure`):

- ``sampled_on_objects``: share of the valid keypoints ``k_A`` that lie on an object (not on
  the table or floor);
- ``kept_on_objects``: the same share among the cycles the quantile drop kept;
- ``kept_object_precision``: of the kept cycles on objects, the share whose intermediate match
  ``k*_B`` (the spatial expectation over ``D_B``) lies within one descriptor cell of the true
  correspondence of ``k_A`` in ``I_B`` (exact, from depth and poses); a point hidden in
  ``I_B`` has no correspondence and counts as wrong;
- ``kept_background_precision``: the same for kept cycles on the background, whose true
  correspondence in the fixed-camera capture is the same pixel when ``I_B`` shows the
  background there (the trivial cycle the foreground sampling avoids).

With ``b_from_a`` (the sanity bound: ``I_B`` is a second augmented copy of ``I_A``) the true
``k_B`` is the keypoint warped by ``I_B``'s homography instead.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch

from ..correspondence import full_to_grid, grid_to_full, STRIDE

LOG = logging.getLogger(__name__)

KEYS = (
    'sampled_on_objects',
    'kept_on_objects',
    'kept_object_precision',
    'kept_background_precision')


def _rate(hits: np.ndarray, mask: np.ndarray) -> float:
    n = int(mask.sum())
    return float(hits[mask].mean()) if n else float('nan')


class CycleInstruments:
    """
    Ground-truth lookups for the images of a training folder.

    Args:
        root: the training folder (holds ``frames.json``).
        paths: the dataset's image paths (``ImagePairs.paths``), in index order.
        size: training ``(width, height)`` in pixels.

    Raises:
        ValueError: no ``frames.json`` or no frame matches an image (use
            :func:`maybe_instruments`).
    """

    def __init__(self, root, paths, size):
        from ..sim.ground_truth import load_frames_index
        self.root = str(root)
        frames = {m.get('image', m.get('rgb')): m for m in load_frames_index(self.root)}
        self.meta = []
        for path in paths:
            rel = os.path.relpath(str(path), self.root)
            self.meta.append(frames.get(rel))
        if not any(m is not None for m in self.meta):
            raise ValueError(
                f'no frame of {self.root}/frames.json matches the images of the folder')
        self.size = (int(size[0]), int(size[1]))
        self._cache = {}

    def frame(self, index: int):
        """
        Return the :class:`~ccl_perception.sim.ground_truth.Frame` of image ``index``.

        None if absent.
        """
        from ..sim.ground_truth import load_frame
        if self.meta[index] is None:
            return None
        if index not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[index] = load_frame(self.root, self.meta[index])
        return self._cache[index]

    def _render_pixels(self, frame, grid_xy: np.ndarray) -> np.ndarray:
        from .supervised import training_to_render
        render = (frame.depth.shape[1], frame.depth.shape[0])
        full = grid_to_full(torch.from_numpy(np.asarray(grid_xy, np.float32)), STRIDE).numpy()
        px = np.rint(training_to_render(full, self.size, render)).astype(int)
        px[:, 0] = np.clip(px[:, 0], 0, render[0] - 1)
        px[:, 1] = np.clip(px[:, 1], 0, render[1] - 1)
        return px

    def _to_grid(self, frame, render_xy: np.ndarray) -> np.ndarray:
        from .supervised import render_to_training
        render = (frame.depth.shape[1], frame.depth.shape[0])
        full = render_to_training(np.asarray(render_xy, float), self.size, render)
        return full_to_grid(torch.from_numpy(full), STRIDE).numpy()

    def on_objects(self, index: int, grid_xy: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: the grid points of image ``index`` that show an object."""
        frame = self.frame(index)
        px = self._render_pixels(frame, grid_xy)
        ids = np.array(sorted(frame.object_ids.values()))
        return np.isin(frame.segmentation[px[:, 1], px[:, 0]], ids)

    def true_in_b(self, index_a: int, index_b: int, grid_a: np.ndarray):
        """
        Find the true grid positions in image ``index_b`` of grid points of image ``index_a``.

        Returns:
            ``(kp_b (N, 2), exists (N,) bool)``: objects through depth and poses; background
            points at the same pixel where ``I_B`` shows background there.
        """
        from ..sim.ground_truth import exact_correspondences
        fa, fb = self.frame(index_a), self.frame(index_b)
        px = self._render_pixels(fa, grid_a)
        on_obj = self.on_objects(index_a, grid_a)
        kp_b = np.zeros((len(grid_a), 2))
        exists = np.zeros(len(grid_a), bool)
        obj_rows = np.flatnonzero(on_obj)
        if len(obj_rows):
            corr = exact_correspondences(fa, fb, px[obj_rows])
            lookup = {}
            for row in obj_rows:
                lookup.setdefault(tuple(px[row]), []).append(row)
            for p_a, p_b in zip(corr['pixels_a'].tolist(), corr['pixels_b']):
                for row in lookup.get(tuple(p_a), []):
                    kp_b[row] = self._to_grid(fb, p_b[None])[0]
                    exists[row] = True
        bg_rows = np.flatnonzero(~on_obj)
        if len(bg_rows):
            ids_b = np.array(sorted(fb.object_ids.values()))
            px_b = self._render_pixels(fb, grid_a[bg_rows])
            free = ~np.isin(fb.segmentation[px_b[:, 1], px_b[:, 0]], ids_b)
            kp_b[bg_rows] = grid_a[bg_rows]
            exists[bg_rows] = free
        return kp_b, exists

    def measure(self, index_a, index_b, kp_a, valid, keep, kp_b_star, kp_b_true=None) -> dict:
        """
        Measure the instrument values of one batch (floats; NaN where a share has no members).

        Args:
            index_a: ``(B,)`` image indices of ``I_A``.
            index_b: ``(B,)`` image indices of ``I_B``.
            kp_a: ``(B, N, 2)`` keypoints on ``I_A``'s original (un-augmented) grid.
            valid: ``(B, N)`` bool, valid cycles.
            keep: ``(B, N)`` bool, cycles kept by the quantile drop.
            kp_b_star: ``(B, N, 2)`` expected positions in ``I_B`` (grid coordinates).
            kp_b_true: ``(B, N, 2)`` known true positions in ``I_B`` (sanity bound), or None
                to look them up in the ground truth.
        """
        on_all, kept_all, hit_all = [], [], []
        for b in range(len(index_a)):
            ia, ib = int(index_a[b]), int(index_b[b])
            if self.meta[ia] is None or (kp_b_true is None and self.meta[ib] is None):
                continue
            grid = np.asarray(kp_a[b], np.float64)
            on_obj = self.on_objects(ia, grid)
            if kp_b_true is None:
                true_b, exists = self.true_in_b(ia, ib, grid)
            else:
                true_b, exists = np.asarray(kp_b_true[b], np.float64), np.ones(len(grid), bool)
            dist = np.linalg.norm(np.asarray(kp_b_star[b], np.float64) - true_b, axis=1)
            v = np.asarray(valid[b], bool)
            on_all.append(on_obj[v])
            kept_all.append((np.asarray(keep[b], bool)[v], on_obj[v]))
            hit_all.append(((dist <= 1.0) & exists)[v])
        if not on_all:
            return {key: float('nan') for key in KEYS}
        on = np.concatenate(on_all)
        kept = np.concatenate([k for k, _ in kept_all])
        hit = np.concatenate(hit_all)
        return {
            'sampled_on_objects': float(on.mean()) if len(on) else float('nan'),
            'kept_on_objects': _rate(on, kept),
            'kept_object_precision': _rate(hit, kept & on),
            'kept_background_precision': _rate(hit, kept & ~on),
        }

    def measure_step(self, batch: dict, views, details: dict) -> dict:
        """:meth:`measure` of a training step: its batch, views and the loss's ``details``."""
        return self.measure(
            batch['index_a'].tolist(), batch['index_b'].tolist(), views.kp_orig.cpu().numpy(),
            views.valid.cpu().numpy(), details['keep'].cpu().numpy(),
            details['kp_b_star'].cpu().numpy(),
            None if views.kp_b_true is None else views.kp_b_true.cpu().numpy())


def maybe_instruments(root, paths, size):
    """:class:`CycleInstruments` for ``root`` when it holds ground truth, else None (logged)."""
    if not os.path.isfile(os.path.join(str(root), 'frames.json')):
        LOG.info('no %s/frames.json: training instruments off (they need rendered ground truth)',
                 root)
        return None
    try:
        return CycleInstruments(root, paths, size)
    except (ValueError, KeyError, OSError) as exc:
        LOG.warning('training instruments off: %s', exc)
        return None
