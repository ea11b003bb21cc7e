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
Unordered RGB image folders as a stream of random training pairs.

Any folder of png/jpg images works (rendered views or a user's own photos). Item ``s`` of
:class:`ImagePairs` is the whole batch of optimiser step ``s`` for one DDP rank: the image
indices and keypoints are drawn from ``numpy.random.default_rng([seed, rank, s])``, so a
resumed run, a run with DataLoader workers and a run without them see exactly the same data,
and each rank sees its own shard of random pairs.

Corrupt or unreadable files are skipped and counted: at scan time when ``verify=True``,
otherwise when first decoded (the batch then reports ``skipped`` and uses another image).

Keypoints ``k_A`` are drawn uniformly over the 1/8 grid (``keypoints='uniform'``) or mostly on
the label-free foreground of a fixed-camera capture (``keypoints='foreground'``,
:mod:`~ccl_perception.learning.foreground`).
"""

import logging
import math
from pathlib import Path

import numpy as np
import torch

from . import foreground as fg
from ..correspondence import STRIDE
from ..image_io import ImageReadError, read_rgb

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')
KEYPOINT_MODES = ('uniform', 'foreground')
#: Random backgrounds kept for ``data.foreground.paste_background``.
PASTE_TEXTURES = 48


class DatasetError(ValueError):
    """The data folder is missing, empty, or has no usable image."""


def list_images(root) -> list:
    """Sorted image files (by extension, case-insensitive) under ``root``, recursively."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'image folder not found: {root}')
    return sorted(p for p in root.rglob('*') if p.is_file()
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


def scan_images(root, verify: bool = True):
    """
    List the usable images of a folder.

    Args:
        root: folder with images.
        verify: decode each image once; failures are skipped, logged and returned.

    Returns:
        ``(paths, skipped)``: usable files and a list of ``(path, reason)`` for the skipped ones.

    Raises:
        DatasetError: missing folder, no image files, or no decodable image.
    """
    files = list_images(root)
    if not files:
        raise DatasetError(f'no image files ({", ".join(IMAGE_EXTENSIONS)}) found under {root}')
    paths, skipped = [], []
    for path in files:
        if verify:
            try:
                read_rgb(path)
            except ImageReadError as exc:
                skipped.append((str(path), str(exc)))
                LOG.warning('skipping corrupt image %s: %s', path, exc)
                continue
        paths.append(path)
    if skipped:
        LOG.warning(
            'skipped %d of %d images under %s as unreadable',
            len(skipped),
            len(files),
            root)
    if not paths:
        raise DatasetError(f'none of the {len(files)} image files under {root} could be decoded')
    return paths, skipped


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


class ImagePairs(torch.utils.data.Dataset):
    """
    Random pairs ``(I_A, I_B)``, ``I_B != I_A``, of one image folder.

    Item ``s`` is the batch of step ``s``.

    Args:
        root: image folder.
        height, width: training resolution in pixels.
        batch_size: pairs per item.
        num_keypoints: N keypoints per ``I_A`` on the 1/8 grid.
        seed, rank: data stream ``default_rng([seed, rank, step])``.
        verify: decode every image at construction (see :func:`scan_images`).
        load_b: False skips decoding ``I_B`` (identical-view training); ``image_b`` is then absent.
        keypoints: ``uniform`` or ``foreground``
            (:class:`~ccl_perception.learning.foreground.ForegroundCells` estimated once from
            this folder at construction).
        foreground: dict with ``share`` (fraction of ``k_A`` on foreground cells), ``threshold``,
            ``max_frames``, ``cell_fraction`` (see the foreground module's defaults).

    Each item is a dict:
        ``image_a``, ``image_b``: ``(B, 3, H, W)`` uint8 RGB;
        ``kp_a``: ``(B, N, 2)`` float32 grid coordinates of the 1/8 map of ``image_a``;
        ``kp_valid``: ``(B, N)`` bool, False for empty foreground slots;
        ``index_a``, ``index_b``: ``(B,)`` int64 image indices; ``skipped``: images that failed
        to decode;
        ``aug_seed``: int seed of this step's augmentation (so ``Î_A`` is reproducible too);
        with ``foreground.paste_background`` > 0 also ``image_a_hat_source`` (``I_A`` on a
        random background, what ``Î_A`` is augmented from) and ``pasted_b`` ``(B,)`` bool
        (which ``I_B`` got a random background).
    """

    def __init__(self, root, height: int, width: int, batch_size: int, num_keypoints: int,
                 seed: int = 0, rank: int = 0, verify: bool = True, load_b: bool = True,
                 keypoints: str = 'uniform', foreground: dict = None):
        if keypoints not in KEYPOINT_MODES:
            raise DatasetError(f'keypoints must be one of {KEYPOINT_MODES}, got {keypoints!r}')
        self.paths, self.skipped = scan_images(root, verify)
        self.root = str(root)
        self.height, self.width = int(height), int(width)
        self.batch_size = int(batch_size)
        self.num_keypoints = int(num_keypoints)
        self.seed, self.rank = int(seed), int(rank)
        self.load_b = bool(load_b)
        self.bad = set()  # indices found corrupt after the scan (this process only)
        self.keypoints = keypoints
        self.foreground = None
        self.foreground_share = 0.0
        self.paste_probability = 0.0
        self.textures = None
        if keypoints == 'foreground':
            opts = dict(foreground or {})
            self.foreground_share = float(opts.pop('share', 1.0))
            self.paste_probability = float(opts.pop('paste_background', 0.0))
            try:
                self.foreground = fg.ForegroundCells(_Frames(self), **opts)
            except fg.NoForegroundError as exc:
                raise DatasetError(f'{root}: {exc}') from exc
            except TypeError as exc:
                raise DatasetError(f'data.foreground: {exc}') from exc
            if self.paste_probability > 0:
                self.textures = fg.texture_bank(PASTE_TEXTURES, self.height, self.width, self.seed)

    def __len__(self) -> int:
        return 2 ** 31 - 1  # indexed by step

    def rng(self, step: int) -> np.random.Generator:
        """Return the generator of step ``step`` on this rank."""
        return np.random.default_rng([self.seed, self.rank, int(step)])

    def pair_indices(self, rng: np.random.Generator):
        """Return ``(idx_a, idx_b)``, each ``(B,)``; ``idx_b != idx_a`` given 2+ images."""
        m = len(self.paths)
        idx_a = rng.integers(0, m, size=self.batch_size)
        if m == 1:
            return idx_a, idx_a.copy()
        idx_b = (idx_a + rng.integers(1, m, size=self.batch_size)) % m
        return idx_a, idx_b

    def load(self, index: int):
        """
        Load image ``index`` resized to the training size, ``(H, W, 3)`` uint8.

        On a decode error the next usable image is used instead. Returns ``(image, n_failed)``.
        """
        failed = 0
        for k in range(len(self.paths)):
            i = (index + k) % len(self.paths)
            if i in self.bad:
                continue
            try:
                return read_rgb(self.paths[i], (self.width, self.height)), failed
            except ImageReadError as exc:
                self.bad.add(i)
                failed += 1
                LOG.warning('skipping unreadable image %s: %s', self.paths[i], exc)
        raise DatasetError(f'no image under {self.root} can be decoded any more')

    def __getitem__(self, step: int) -> dict:
        rng = self.rng(step)
        idx_a, idx_b = self.pair_indices(rng)
        h, w = grid_size(self.height, self.width)
        if self.foreground is None:
            kp_a = sample_grid_keypoints(rng, self.batch_size, h, w, self.num_keypoints)
            kp_valid = np.ones(kp_a.shape[:2], bool)
        else:
            kp_a, kp_valid = fg.sample_keypoints(rng, self.foreground.cells[idx_a],
                                                 self.num_keypoints, self.foreground_share)
        aug_seed = int(rng.integers(0, 2 ** 62))
        images_a, images_b, skipped = [], [], 0
        for ia, ib in zip(idx_a, idx_b):
            img, n = self.load(int(ia))
            images_a.append(img)
            skipped += n
            if self.load_b:
                img, n = self.load(int(ib))
                images_b.append(img)
                skipped += n

        def stack(images):
            return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()

        pasted_b = np.zeros(self.batch_size, bool)
        sources_hat = images_a
        if self.textures is not None:  # new backgrounds behind the objects of Î_A and I_B
            sources_hat = [self._paste(rng, img, int(ia)) for img, ia in zip(images_a, idx_a)]
            if self.load_b:
                pasted_b = rng.random(self.batch_size) < self.paste_probability
                images_b = [self._paste(rng, img, int(ib), force=True) if p else img
                            for img, ib, p in zip(images_b, idx_b, pasted_b)]

        item = {
            'image_a': stack(images_a),
            'kp_a': torch.from_numpy(kp_a),
            'kp_valid': torch.from_numpy(kp_valid),
            'index_a': torch.from_numpy(idx_a.astype(np.int64)),
            'index_b': torch.from_numpy(idx_b.astype(np.int64)),
            'skipped': skipped,
            'aug_seed': aug_seed,
        }
        if self.load_b:
            item['image_b'] = stack(images_b)
            item['pasted_b'] = torch.from_numpy(pasted_b)
        if self.textures is not None:
            item['image_a_hat_source'] = stack(sources_hat)
        return item

    def _paste(self, rng: np.random.Generator, image: np.ndarray, index: int, force: bool = False):
        """
        Paste ``image`` (frame ``index``) on a random background.

        With probability ``paste_probability`` (always with ``force``).
        """
        if not force and rng.random() >= self.paste_probability:
            return image
        texture = self.textures[int(rng.integers(len(self.textures)))]
        return fg.paste_background(image, self.foreground.masks[index], texture)


class _Frames:
    """Lazy ``len()``/index view of an :class:`ImagePairs` folder's images at the training size."""

    def __init__(self, pairs: ImagePairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.pairs.load(int(index))[0]
