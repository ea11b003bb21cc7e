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
Label-free foreground of a fixed-camera capture, and keypoint sampling on it.

The paper's capture (and a user's five-minute recording) is one fixed camera over objects
that are re-arranged between frames. The table is then identical in every frame, and for the
cycle-correspondence loss every table cell has a perfect, trivial correspondence at the same
pixel of every other frame: on benchmark v1 only 13.7 % of uniformly sampled keypoints landed
on objects, and of the cycles the quantile drop kept only 2-3 % did after training. Sampling
the keypoints ``k_A`` on the moving objects removes that shortcut without any label:

1. :func:`estimate_background`: the per-pixel median over many frames is the empty table
   (each object covers a given pixel in fewer than half the frames).
2. :func:`foreground_mask`: a per-image, per-channel gain/offset fit of the background to the
   frame (lighting changes between frames), then ``max_c |I - (g B + o)| > threshold``.
3. :func:`cell_fractions`: the share of foreground pixels in each stride-8 descriptor cell;
   :func:`sample_keypoints` draws ``share * N`` keypoints among the cells that are mostly
   foreground and the rest on the background (missing foreground slots stay empty).

Pure numpy; images are ``(H, W, 3)`` uint8 RGB at the training resolution.
"""
from __future__ import annotations

import logging

import numpy as np

from ..correspondence import STRIDE

LOG = logging.getLogger(__name__)

#: Defaults of the foreground estimate (``data.foreground`` in the training config).
DEFAULT_THRESHOLD = 40.0      # max-channel absolute difference (0-255) that counts as foreground
DEFAULT_MAX_FRAMES = 200      # frames (evenly spaced) for the median background
DEFAULT_CELL_FRACTION = 0.5   # a cell is foreground when at least this share of its pixels is
#: Gain/offset fits per frame (the first on every pixel, then on the background found).
LIGHTING_ITERATIONS = 3
#: Median foreground share above which the camera probably moved (no static background).
MOVING_CAMERA_SHARE = 0.6


class NoForegroundError(ValueError):
    """No frame differs from the estimated background: nothing moves in the capture."""


def estimate_background(images, max_frames: int = DEFAULT_MAX_FRAMES) -> np.ndarray:
    """
    Per-pixel median of up to ``max_frames`` evenly spaced frames.

    Args:
        images: sequence of ``(H, W, 3)`` uint8 frames of one fixed camera (``len()`` and
            indexing needed; a list, or a lazy sequence that decodes on access).
        max_frames: how many frames to use at most.

    Returns:
        ``(H, W, 3)`` float32 background in [0, 255].

    Raises:
        ValueError: no frames, or frames of different shapes.
    """
    n = len(images)
    if n == 0:
        raise ValueError('background estimate needs at least one frame')
    picks = np.unique(np.linspace(0, n - 1, min(n, int(max_frames))).round().astype(int))
    stack = [np.asarray(images[int(i)]) for i in picks]
    shapes = {s.shape for s in stack}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f'frames must all be (H, W, 3) of one size, got shapes {sorted(shapes)}')
    return np.median(np.stack(stack), axis=0).astype(np.float32)


def fit_gain_offset(image: np.ndarray, background: np.ndarray, mask: np.ndarray = None):
    """
    Least-squares ``image ~ gain * background + offset`` per channel.

    Args:
        image, background: ``(H, W, 3)``.
        mask: ``(H, W)`` bool, the pixels to fit on (default all).

    Returns:
        ``(gain (3,), offset (3,))`` float64; identity when fewer than 16 pixels or a flat
        background channel leave the fit undetermined.
    """
    img = np.asarray(image, np.float64).reshape(-1, 3)
    bg = np.asarray(background, np.float64).reshape(-1, 3)
    if mask is not None:
        sel = np.asarray(mask, bool).reshape(-1)
        img, bg = img[sel], bg[sel]
    gain, offset = np.ones(3), np.zeros(3)
    if len(img) < 16:
        return gain, offset
    for c in range(3):
        var = bg[:, c].var()
        if var < 1e-6:
            offset[c] = img[:, c].mean() - bg[:, c].mean()
            continue
        gain[c] = ((bg[:, c] - bg[:, c].mean()) * (img[:, c] - img[:, c].mean())).mean() / var
        offset[c] = img[:, c].mean() - gain[c] * bg[:, c].mean()
    return gain, offset


def foreground_mask(image: np.ndarray, background: np.ndarray,
                    threshold: float = DEFAULT_THRESHOLD,
                    fit_lighting: bool = True) -> np.ndarray:
    """
    Pixels that differ from the (lighting-corrected) background.

    The frame's lighting is fitted as a per-channel gain/offset of the background
    (:func:`fit_gain_offset`): first on every pixel (objects are a minority), then
    ``LIGHTING_ITERATIONS - 1`` times on the pixels that the previous fit called background.
    A 3x3 opening removes isolated pixels.

    Args:
        image: ``(H, W, 3)`` uint8 frame.
        background: ``(H, W, 3)`` from :func:`estimate_background`.
        threshold: max-channel absolute difference (0-255) that counts as foreground.
        fit_lighting: apply the gain/offset correction.

    Returns:
        ``(H, W)`` bool.
    """
    import cv2

    img = np.asarray(image, np.float32)
    bg = np.asarray(background, np.float32)
    if img.shape != bg.shape:
        raise ValueError(f'image {img.shape} and background {bg.shape} differ in size')
    diff = np.abs(img - bg).max(axis=2)
    if fit_lighting:
        fit_on = None  # all pixels first: the objects are a minority of the frame
        for _ in range(LIGHTING_ITERATIONS):
            gain, offset = fit_gain_offset(img, bg, fit_on)
            diff = np.abs(img - (bg * gain.astype(np.float32) +
                          offset.astype(np.float32))).max(axis=2)
            fit_on = diff < threshold
    mask = (diff > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return mask.astype(bool)


def cell_fractions(mask: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """
    Share of foreground pixels in each ``stride x stride`` descriptor cell.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(ceil(H/stride), ceil(W/stride))`` float32 in [0, 1]; partial border cells count
        only their pixels inside the image.
    """
    m = np.asarray(mask, np.float32)
    height, width = m.shape
    h, w = -(-height // stride), -(-width // stride)
    padded = np.zeros((h * stride, w * stride), np.float32)
    inside = np.zeros_like(padded)
    padded[:height, :width] = m
    inside[:height, :width] = 1.0
    total = padded.reshape(h, stride, w, stride).sum(axis=(1, 3))
    area = inside.reshape(h, stride, w, stride).sum(axis=(1, 3))
    return (total / area).astype(np.float32)


def sample_keypoints(rng: np.random.Generator, cells: np.ndarray, n: int, share: float):
    """
    Keypoints on the grid: ``round(share * n)`` on foreground cells, the rest uniform.

    Without repetition per image. The foreground quota is never filled with background
    cells: an image with fewer foreground cells than its quota takes all of them and marks
    the missing slots invalid (a shortcut cycle through the static table is worse than no
    cycle). An image without any foreground cell is sampled uniformly (all valid).

    Args:
        rng: numpy generator.
        cells: ``(B, h, w)`` bool, the foreground cells of each image.
        n: keypoints per image; ``min(n, h*w)`` slots are returned.
        share: fraction in [0, 1] of the slots drawn from the foreground.

    Returns:
        ``(kp, valid)``: ``(B, min(n, h*w), 2)`` float32 ``(x, y)`` grid coordinates (invalid
        slots hold cell (0, 0)) and ``(B, min(n, h*w))`` bool.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f'foreground share must be in [0, 1], got {share}')
    cells = np.asarray(cells, bool)
    batch, h, w = cells.shape
    n = min(int(n), h * w)
    out = np.zeros((batch, n, 2), np.float32)
    valid = np.zeros((batch, n), bool)
    for b in range(batch):
        flat = cells[b].reshape(-1)
        fg_cells, bg_cells = np.flatnonzero(flat), np.flatnonzero(~flat)
        if len(fg_cells) == 0:
            chosen = rng.choice(h * w, size=n, replace=False)
        else:
            quota = int(round(share * n))
            n_fg = min(quota, len(fg_cells))
            n_bg = min(n - quota, len(bg_cells))
            chosen = np.concatenate([rng.choice(fg_cells, size=n_fg, replace=False),
                                     rng.choice(bg_cells, size=n_bg, replace=False)])
        out[b, :len(chosen), 0] = chosen % w
        out[b, :len(chosen), 1] = chosen // w
        valid[b, :len(chosen)] = True
    return out, valid


class ForegroundCells:
    """
    The foreground cells of every frame of a fixed-camera image folder.

    Args:
        frames: sequence of ``(H, W, 3)`` uint8 frames at the training resolution.
        threshold, max_frames, cell_fraction: see the module defaults.
        stride: descriptor stride.

    Attributes:
        background: ``(H, W, 3)`` float32.
        cells: ``(M, h, w)`` bool, one map per frame.
        masks: ``(M, H, W)`` bool pixel masks (for :func:`paste_background`).
        pixel_share: ``(M,)`` foreground share of each frame's pixels.
        empty: indices of frames without a single foreground cell.

    Raises:
        NoForegroundError: no frame has any foreground cell (e.g. identical frames).
    """

    def __init__(self, frames, threshold: float = DEFAULT_THRESHOLD,
                 max_frames: int = DEFAULT_MAX_FRAMES,
                 cell_fraction: float = DEFAULT_CELL_FRACTION, stride: int = STRIDE):
        if not 0.0 < cell_fraction <= 1.0:
            raise ValueError(f'cell_fraction must be in (0, 1], got {cell_fraction}')
        if not np.isfinite(threshold) or threshold <= 0:
            raise ValueError(f'foreground threshold must be a positive number, got {threshold}')
        self.background = estimate_background(frames, max_frames)
        cells, shares, masks = [], [], []
        for i in range(len(frames)):
            mask = foreground_mask(frames[i], self.background, threshold)
            shares.append(float(mask.mean()))
            masks.append(mask)
            cells.append(cell_fractions(mask, stride) >= cell_fraction)
        self.cells = np.stack(cells)
        self.masks = np.stack(masks)
        self.pixel_share = np.asarray(shares)
        self.empty = [i for i in range(len(cells)) if not cells[i].any()]
        if len(self.empty) == len(cells):
            raise NoForegroundError(
                f'none of the {len(cells)} frames differs from their median background by more '
                f'than {threshold:g} grey levels: nothing moves in this capture, so foreground '
                'keypoint sampling has nothing to sample (set data.keypoints=uniform, or record '
                'frames in which the objects are re-arranged)')
        if self.empty:
            LOG.warning('%d of %d frames have no foreground cell; their keypoints are drawn '
                        'uniformly', len(self.empty), len(cells))
        median_share = float(np.median(self.pixel_share))
        if median_share > MOVING_CAMERA_SHARE:
            LOG.warning('median foreground share is %.0f %% of the pixels: the camera probably '
                        'moved, and the median background of a moving camera is meaningless '
                        "(foreground sampling assumes one fixed camera, as the paper's capture)",
                        100 * median_share)
        LOG.info('foreground: median %.1f %% of the pixels, %.1f %% of the cells',
                 100 * median_share, 100 * float(self.cells.mean()))


def precision_recall(predicted: np.ndarray, truth: np.ndarray):
    """
    Return ``(precision, recall)`` of a predicted bool mask against a true one.

    Either is NaN when undefined.
    """
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = float((predicted & truth).sum())
    p, t = float(predicted.sum()), float(truth.sum())
    return (tp / p if p else float('nan')), (tp / t if t else float('nan'))


def texture_bank(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """
    Make ``(n, H, W, 3)`` uint8 random backgrounds.

    Smooth procedural table textures of ``ccl_perception.sim.textures`` (a quarter of them
    replaced by flat random colours).
    """
    from ..sim.textures import background_texture
    rng = np.random.default_rng(seed)
    size = max(height, width)
    bank = np.empty((n, height, width, 3), np.uint8)
    for k in range(n):
        if rng.random() < 0.25:
            bank[k] = rng.integers(0, 256, 3, dtype=np.uint8)
        else:
            bank[k] = background_texture(int(rng.integers(0, 2 ** 31 - 1)), size)[:height, :width]
    return bank


def paste_background(image: np.ndarray, mask: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """
    ``image`` with every pixel outside the foreground ``mask`` taken from ``texture``.

    Args:
        image, texture: ``(H, W, 3)`` uint8.
        mask: ``(H, W)`` bool foreground.

    Returns:
        a new ``(H, W, 3)`` uint8 image.
    """
    return np.where(np.asarray(mask, bool)[..., None], image, texture).astype(np.uint8)
