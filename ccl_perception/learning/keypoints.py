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
Query keypoints ``k_A`` on the 1/8 descriptor grid: uniform, or on the label-free foreground.

Grid coordinates are ``(x, y)`` cells of the stride-``S`` descriptor map (cell centres at
integers; ``ccl_perception.correspondence.grid_to_full``). The foreground cells come from
:class:`~ccl_perception.learning.foreground.ForegroundCells`.
"""

import math

import numpy as np

from ..correspondence import STRIDE


def grid_size(height: int, width: int, stride: int = STRIDE):
    """
    Return ``(h, w)`` of the descriptor map of a ``height x width`` image.

    That is ``(ceil(H/8), ceil(W/8))`` for the default stride.
    """
    return math.ceil(height / stride), math.ceil(width / stride)


def sample_grid_keypoints(rng: np.random.Generator, batch: int,
                          h: int, w: int, n: int) -> np.ndarray:
    """
    Keypoints uniformly on the cells of an ``h x w`` grid, without repetition per image.

    Args:
        rng: numpy generator.
        batch: B.
        h, w: grid size (cells).
        n: wanted keypoints per image; ``min(n, h*w)`` are returned.

    Returns:
        ``(B, min(n, h*w), 2)`` float32 ``(x, y)`` grid coordinates (cell centres are integers).
    """
    n = min(int(n), h * w)
    out = np.empty((batch, n, 2), dtype=np.float32)
    for b in range(batch):
        cells = rng.choice(h * w, size=n, replace=False)
        out[b, :, 0] = cells % w
        out[b, :, 1] = cells // w
    return out


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
