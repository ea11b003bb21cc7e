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
Exact correspondences between rendered views for the supervised baseline.

The stand-in for the paper's geometric-correspondence DON baselines: pairs of rendered views
of the same scene whose pixel correspondences follow from the saved depth, segmentation,
camera and object poses (``ccl_perception.sim.ground_truth.exact_correspondences``).

Data layout (written by the renderer, see ``ccl_perception.sim.ground_truth``):
``<root>/frames.json`` = ``{"frames": [meta, ...]}``, each ``meta`` holding ``save_frame``'s
entries (``depth``, ``segmentation``, ``camera``, ``object_poses``, ``object_ids``) plus the RGB
file (key ``image`` or ``rgb``, relative to root) and the scene it shows (``scene`` or
``scene_id``; frames without one count as one scene). Pairs are drawn within a scene.
"""

import logging
import os

import numpy as np
import torch

from .dataset import DatasetError
from .keypoints import grid_size
from ..correspondence import full_to_grid, grid_to_full, STRIDE
from ..image_io import read_rgb

LOG = logging.getLogger(__name__)

IMAGE_KEYS = ('image', 'rgb')
SCENE_KEYS = ('scene', 'scene_id')


def _first(meta: dict, keys, default=None):
    for key in keys:
        if key in meta:
            return meta[key]
    return default


def training_to_render(xy: np.ndarray, train_size, render_size) -> np.ndarray:
    """
    Pixels ``(N, 2)`` of a ``train_size=(W, H)`` image to the ``render_size=(W0, H0)`` image.

    Pixel centres at integers, so pixel edges scale: ``x0 = (x + 0.5) * W0 / W - 0.5``.
    """
    scale = np.array(render_size, float) / np.array(train_size, float)
    return (np.asarray(xy, float) + 0.5) * scale - 0.5


def render_to_training(xy: np.ndarray, train_size, render_size) -> np.ndarray:
    """Inverse of :func:`training_to_render`."""
    scale = np.array(train_size, float) / np.array(render_size, float)
    return (np.asarray(xy, float) + 0.5) * scale - 0.5


class RenderedPairs(torch.utils.data.Dataset):
    """
    Pairs of rendered views of one scene with exact keypoint correspondences.

    Item ``s`` = batch of step ``s``.

    Keypoints ``k_A`` are drawn among the 1/8-grid cells whose centre pixel lies on an object
    (``min(N, #cells)``, padded with invalid points); each is moved to the nearest whole
    rendered pixel (its grid coordinate is then exact, sub-cell) and reprojected into ``I_B``
    with depth test. Points occluded or outside ``I_B`` are ``valid = False``.

    Args:
        root: rendered dataset folder with ``frames.json``.
        height, width: training resolution (pixels).
        batch_size, num_keypoints, seed, rank: as
            :class:`~ccl_perception.learning.dataset.ImagePairs`.

    Items: ``image_a``, ``image_b`` ``(B, 3, H, W)`` uint8; ``kp_a``, ``kp_b`` ``(B, N, 2)``
    float32 grid coordinates; ``valid`` ``(B, N)`` bool; ``index_a``, ``index_b``; ``skipped``.
    """

    def __init__(self, root, height: int, width: int, batch_size: int, num_keypoints: int,
                 seed: int = 0, rank: int = 0):
        from ..sim.ground_truth import load_frames_index
        self.root = str(root)
        if not os.path.isdir(self.root):
            raise DatasetError(f'rendered dataset folder not found: {root}')
        try:
            frames = load_frames_index(self.root)
        except (ValueError, KeyError, OSError) as exc:
            raise DatasetError(
                f'supervised training needs a rendered dataset with frames.json: {exc}') from exc
        self.frames = []
        self.skipped = []
        for meta in frames:
            image = _first(meta, IMAGE_KEYS)
            if image is None or not os.path.isfile(os.path.join(self.root, image)):
                self.skipped.append((str(image), 'RGB file missing'))
                continue
            self.frames.append(meta)
        scenes = {}
        for i, meta in enumerate(self.frames):
            scenes.setdefault(str(_first(meta, SCENE_KEYS, '')), []).append(i)
        self.scene_of = {i: key for key, members in scenes.items() for i in members}
        self.scenes = {key: members for key, members in scenes.items() if len(members) >= 2}
        self.anchors = [i for members in self.scenes.values() for i in members]
        if not self.anchors:
            raise DatasetError(f'{root}: no scene with two or more usable frames '
                               f'({len(self.frames)} frames, {len(self.skipped)} skipped)')
        self.height, self.width = int(height), int(width)
        self.batch_size, self.num_keypoints = int(batch_size), int(num_keypoints)
        self.seed, self.rank = int(seed), int(rank)
        self.paths = [os.path.join(self.root, _first(m, IMAGE_KEYS)) for m in self.frames]

    def __len__(self) -> int:
        return 2 ** 31 - 1

    def _frame(self, index: int):
        from ..sim.ground_truth import load_frame
        try:
            return load_frame(self.root, self.frames[index])
        except (ValueError, OSError, KeyError) as exc:
            raise DatasetError(f'cannot load frame {index} of {self.root}: {exc}') from exc

    def correspondences(self, rng, index_a: int, index_b: int):
        """``(kp_a, kp_b, valid)`` for one pair: ``(N, 2)`` grid coordinates and ``(N,)`` bool."""
        from ..sim.ground_truth import exact_correspondences
        fa, fb = self._frame(index_a), self._frame(index_b)
        render_a = (fa.depth.shape[1], fa.depth.shape[0])
        render_b = (fb.depth.shape[1], fb.depth.shape[0])
        train = (self.width, self.height)
        h, w = grid_size(self.height, self.width)
        cells = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2).astype(float)
        centres = grid_to_full(torch.from_numpy(cells), STRIDE).numpy()       # training pixels
        px = np.rint(training_to_render(centres, train, render_a)).astype(int)
        px[:, 0] = np.clip(px[:, 0], 0, render_a[0] - 1)
        px[:, 1] = np.clip(px[:, 1], 0, render_a[1] - 1)
        on_object = fa.segmentation[px[:, 1], px[:, 0]] >= 0
        candidates = np.nonzero(on_object)[0]
        n = min(self.num_keypoints, h * w)
        kp_a = np.zeros((n, 2), np.float32)
        kp_b = np.zeros((n, 2), np.float32)
        valid = np.zeros(n, bool)
        if len(candidates) == 0:
            return kp_a, kp_b, valid
        chosen = rng.choice(candidates, size=min(n, len(candidates)), replace=False)
        pixels_a = px[chosen]
        corr = exact_correspondences(fa, fb, pixels_a)
        lookup = {tuple(p): i for i, p in enumerate(pixels_a.tolist())}
        grid_a = full_to_grid(
            torch.from_numpy(
                render_to_training(
                    pixels_a,
                    train,
                    render_a)),
            STRIDE).numpy()
        kp_a[:len(chosen)] = grid_a
        if len(corr['pixels_a']):
            rows = np.array([lookup[tuple(p)] for p in corr['pixels_a'].tolist()])
            grid_b = full_to_grid(
                torch.from_numpy(render_to_training(corr['pixels_b'], train, render_b)),
                STRIDE).numpy()
            inside = ((grid_b[:, 0] >= -0.5) & (grid_b[:, 0] <= w - 0.5)
                      & (grid_b[:, 1] >= -0.5) & (grid_b[:, 1] <= h - 0.5))
            kp_b[rows[inside]] = grid_b[inside]
            valid[rows[inside]] = True
        return kp_a, kp_b, valid

    def __getitem__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        out = {
            k: [] for k in (
                'image_a',
                'image_b',
                'kp_a',
                'kp_b',
                'valid',
                'index_a',
                'index_b')}
        for _ in range(self.batch_size):
            ia = self.anchors[int(rng.integers(len(self.anchors)))]
            others = [j for j in self.scenes[self.scene_of[ia]] if j != ia]
            ib = others[int(rng.integers(len(others)))]
            kp_a, kp_b, valid = self.correspondences(rng, ia, ib)
            out['image_a'].append(read_rgb(self.paths[ia], (self.width, self.height)))
            out['image_b'].append(read_rgb(self.paths[ib], (self.width, self.height)))
            for key, value in (('kp_a', kp_a), ('kp_b', kp_b), ('valid', valid),
                               ('index_a', ia), ('index_b', ib)):
                out[key].append(value)
        item = {
            'image_a': torch.from_numpy(np.stack(out['image_a'])).permute(0, 3, 1, 2).contiguous(),
            'image_b': torch.from_numpy(np.stack(out['image_b'])).permute(0, 3, 1, 2).contiguous(),
            'kp_a': torch.from_numpy(np.stack(out['kp_a'])),
            'kp_b': torch.from_numpy(np.stack(out['kp_b'])),
            'valid': torch.from_numpy(np.stack(out['valid'])),
            'index_a': torch.tensor(out['index_a'], dtype=torch.int64),
            'index_b': torch.tensor(out['index_b'], dtype=torch.int64),
            'skipped': 0,
            'aug_seed': int(rng.integers(0, 2 ** 62)),
        }
        return item
