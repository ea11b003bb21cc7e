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
Random backgrounds pasted behind the label-free foreground (``data.foreground.paste_background``).

New tables behind the objects of ``Î_A`` and ``I_B`` teach the head to ignore the table of the
fixed-camera capture. Pure numpy; images are ``(H, W, 3)`` uint8 RGB.
"""

import numpy as np


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
