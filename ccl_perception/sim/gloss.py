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
Glossy table tops: a specular highlight shaded onto the render (Blinn-Phong).

pybullet's OpenGL renderer ignores a body's specular colour (measured: ``changeVisualShape(
specularColor=...)`` left every pixel unchanged), so a glossy surface is shaded here, per
pixel, from the rendered depth: with ``n`` the table normal (world +z), ``v`` the direction
from the surface point to the camera, ``l`` the direction to the (directional) light and
``h = (l + v) / |l + v|``, the highlight is ``strength * max(0, n . h) ** shininess`` of full
white, added to the table pixels. :func:`mirror_light` puts the light where the camera's
central ray is reflected to, so the highlight lies in the middle of the view, where the
objects are. No mirror images of the objects are drawn.
"""
from __future__ import annotations

import numpy as np

#: Defaults of a glossy finish (``strength``: peak highlight, fraction of white).
GLOSS = {'strength': 0.55, 'shininess': 25.0}


def mirror_light(camera) -> tuple:
    """
    Light direction (unit, world, towards the light) that mirrors the camera's optical axis.

    The reflection of the central viewing ray in the table plane: its highlight is at the
    image centre.
    """
    d = np.asarray(camera.world_from_camera, float)[:3, 2]   # optical axis in the world
    r = np.array([d[0], d[1], -d[2]])
    if r[2] <= 0.05:                                          # looking up or grazing: from above
        r = np.array([0.0, 0.0, 1.0])
    return tuple(float(v) for v in r / np.linalg.norm(r))


def add_highlight(rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray, camera, light_dir,
                  strength: float = GLOSS['strength'],
                  shininess: float = GLOSS['shininess']) -> np.ndarray:
    """
    Add a white specular highlight of a horizontal glossy surface to ``rgb``.

    Args:
        rgb: ``(H, W, 3)`` uint8 render.
        depth: ``(H, W)`` z-depth, metres (NaN: nothing).
        mask: ``(H, W)`` bool, the glossy surface's pixels.
        camera: :class:`~ccl_perception.sim.camera.Camera` of the render.
        light_dir: ``(3,)`` world direction towards the light.
        strength, shininess: Blinn-Phong highlight (see the module docstring).

    Returns:
        a new ``(H, W, 3)`` uint8 image.
    """
    m = np.asarray(mask, bool) & np.isfinite(depth)
    out = np.asarray(rgb).astype(np.float32)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return np.asarray(rgb).copy()
    P = camera.backproject(np.stack([xs, ys], 1), depth[ys, xs])
    eye = np.asarray(camera.world_from_camera, float)[:3, 3]
    v = eye - P
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    la = np.asarray(light_dir, float)
    h = v + la / np.linalg.norm(la)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    spec = strength * np.clip(h[:, 2], 0.0, 1.0) ** shininess
    out[ys, xs] += 255.0 * spec[:, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
