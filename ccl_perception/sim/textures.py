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
Procedural textures (deterministic by seed) for objects and table backgrounds.

Object textures are busy and asymmetric (blobs, stripes, polygons, glyphs over a coloured
noise field) so every surface point has a distinctive neighbourhood, like printed packaging.
Background textures are calmer (wood-like grain, tiles, fabric noise, checker).
All images are RGB uint8 ``(S, S, 3)``.
"""
from __future__ import annotations

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) float noise in [0, 1]: random ``cells x cells`` grid upsampled bicubically."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _random_colour(rng: np.random.Generator) -> tuple:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(90, 256), rng.integers(80, 256)]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def object_texture(seed: int, size: int = 256) -> np.ndarray:
    """
    Make a distinctive object texture.

    Args:
        seed: RNG seed; equal seeds give identical images.
        size: side length in pixels.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    base = np.array(_random_colour(rng), dtype=np.float32)
    alt = np.array(_random_colour(rng), dtype=np.float32)
    t = _smooth_noise(rng, size, int(rng.integers(3, 7)))[..., None]
    img = (base * t + alt * (1 - t)).astype(np.uint8)
    for _ in range(int(rng.integers(10, 18))):
        colour = _random_colour(rng)
        kind = rng.integers(0, 5)
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(size // 24, size // 6))
        if kind == 0:
            cv2.circle(img, c, r, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, c, (c[0] + r, c[1] + 2 * r // 3), colour, -1)
        elif kind == 2:
            pts = rng.integers(0, size, (int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
        elif kind == 3:
            end = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(img, c, end, colour, int(rng.integers(2, 7)), cv2.LINE_AA)
        else:
            text = ''.join(chr(int(rng.integers(65, 91))) for _ in range(int(rng.integers(1, 4))))
            cv2.putText(img, text, c, cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.8, 2.0)),
                        colour, int(rng.integers(2, 5)), cv2.LINE_AA)
    return img


def background_texture(seed: int, size: int = 256) -> np.ndarray:
    """
    Make a table-cloth / wood / tile texture for the table top.

    Args:
        seed: RNG seed.
        size: side length in pixels.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    kind = int(rng.integers(0, 4))
    c1 = np.array(_random_colour(rng), dtype=np.float32) * 0.8
    c2 = np.array(_random_colour(rng), dtype=np.float32) * 0.8
    if kind == 0:  # wood-like grain
        yy = np.linspace(0, 1, size, dtype=np.float32)[:, None]
        warp = _smooth_noise(rng, size, 4) * float(rng.uniform(2, 6))
        t = 0.5 + 0.5 * np.sin((yy * float(rng.uniform(15, 40)) + warp) * np.pi)
    elif kind == 1:  # tiles
        n = int(rng.integers(3, 9))
        ij = (np.arange(size) * n // size)
        t = ((ij[:, None] + ij[None, :]) % 2).astype(np.float32)
        t = np.clip(t + 0.15 * _smooth_noise(rng, size, 16), 0, 1)
    elif kind == 2:  # fabric noise
        t = 0.6 * _smooth_noise(rng, size, 24) + 0.4 * _smooth_noise(rng, size, 6)
    else:  # soft blotches
        t = _smooth_noise(rng, size, int(rng.integers(4, 10)))
    t = t[..., None]
    return np.clip(c1 * t + c2 * (1 - t), 0, 255).astype(np.uint8)
