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

"""Procedural training images (random textured shapes) for tests and smoke runs; no downloads."""

from pathlib import Path

import cv2
import numpy as np


def shape_image(rng: np.random.Generator, height: int,
                width: int, n_shapes: int = 6) -> np.ndarray:
    """
    Draw one ``(H, W, 3)`` uint8 RGB image.

    A noise background with filled, striped circles and boxes.
    """
    small = rng.integers(0, 255, size=(max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(n_shapes):
        color = tuple(int(c) for c in rng.integers(0, 255, size=3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(max(3, min(height, width) // 10), max(4, min(height, width) // 3)))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), size, color, thickness=-1)
        else:
            cv2.rectangle(img, (cx - size, cy - size // 2),
                          (cx + size, cy + size // 2), color, thickness=-1)
        stripe = tuple(int(c) for c in rng.integers(0, 255, size=3))
        cv2.line(img, (cx - size, cy), (cx + size, cy + size // 3), stripe, thickness=2)
    return img


def write_shape_images(folder, count: int, height: int = 64, width: int = 96, seed: int = 0,
                       ext: str = '.png') -> list:
    """Write ``count`` images ``img_000.png`` ... into ``folder`` (created); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f'img_{i:03d}{ext}'
        rgb = shape_image(rng, height, width)
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f'could not write {path}')
        paths.append(path)
    return paths


def write_plane_scene(folder, count: int = 4, height: int = 64, width: int = 96, seed: int = 0,
                      shift: float = 0.05, camera_height: float = 1.0,
                      fov_y_deg: float = 40.0) -> list:
    """
    Write a rendered-dataset stand-in: a textured plane seen from ``count`` downward cameras.

    The plane is object ``"plane"`` (body id 0, world pose = identity, lying in ``z = 0``);
    camera ``i`` sits at ``(i * shift, 0, camera_height)`` metres looking straight down, so the
    exact correspondence between views ``i`` and ``j`` is a pure image shift of
    ``fx * (j - i) * shift / camera_height`` pixels. Writes ``frames.json`` in the layout of
    ``ccl_perception.sim.ground_truth`` (plus ``image`` and ``scene`` keys); returns the metas.
    """
    import json

    from ..sim.camera import Camera
    from ..sim.ground_truth import Frame, save_frame

    folder = Path(folder)
    (folder / 'rgb').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = shape_image(rng, 512, 512, n_shapes=40)  # covers world [-1, 1]^2
    metas = []
    for i in range(count):
        eye = (i * shift, 0.0, camera_height)
        cam = Camera.looking_at(eye, (eye[0], 0.0, 0.0), width, height, fov_y_deg)
        xs, ys = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
        uv = np.stack([xs.ravel(), ys.ravel()], 1)
        world = cam.backproject(uv, np.full(len(uv), camera_height))
        tex_x = ((world[:, 0] + 1.0) / 2.0 * 512 - 0.5).reshape(height, width).astype(np.float32)
        tex_y = ((1.0 - world[:, 1]) / 2.0 * 512 - 0.5).reshape(height, width).astype(np.float32)
        rgb = cv2.remap(texture, tex_x, tex_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        stem = f'view_{i:03d}'
        cv2.imwrite(str(folder / 'rgb' / f'{stem}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frame = Frame(depth=np.full((height, width), camera_height, np.float32),
                      segmentation=np.zeros((height, width), np.int32), camera=cam,
                      object_poses={'plane': np.eye(4)}, object_ids={'plane': 0})
        meta = save_frame(str(folder), stem, frame)
        meta.update({'image': f'rgb/{stem}.png', 'scene': 0})
        metas.append(meta)
    with open(folder / 'frames.json', 'w', encoding='utf-8') as f:
        json.dump({'frames': metas}, f)
    return metas


def write_static_scene(folder, count: int, height: int = 64, width: int = 96, seed: int = 0,
                       squares: int = 3):
    """
    Write a fixed-camera capture in miniature: one textured table, ``squares`` moving squares.

    Every frame shows the same smooth random background under a random gain/offset (lighting)
    with ``squares`` uniformly coloured squares (a quarter of the shorter image side) at new
    places; the label-free foreground of :mod:`~ccl_perception.learning.foreground` finds them.

    Returns:
        ``(count, H, W)`` bool true foreground masks.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    side = max(4, min(height, width) // 4)
    background = cv2.GaussianBlur(
        rng.uniform(60, 190, (height, width, 3)).astype(np.float32), (5, 5), 0)
    truth = np.zeros((count, height, width), bool)
    for i in range(count):
        frame = np.clip(background * rng.uniform(0.75, 1.25) + rng.uniform(-15, 15), 0, 255)
        for _ in range(squares):
            x, y = rng.integers(0, width - side), rng.integers(0, height - side)
            frame[y:y + side, x:x + side] = rng.choice([10.0, 245.0], size=3)
            truth[i, y:y + side, x:x + side] = True
        cv2.imwrite(str(folder / f'{i:03d}.png'),
                    cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return truth
