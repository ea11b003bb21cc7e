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
The benchmark v2 grasp scene: the world the simulated Panda grasps in, seen by a D435.

:func:`v2_world_config` returns the :class:`~ccl_perception.sim.robot.SimWorldConfig` of the
simulated world node, the grasp benchmark and the demo on benchmark v2: the v2 objects (real
size, photo textures), the training capture's table photo, pybullet's OpenGL renderer
(shadows), and a RealSense D435 colour camera (640x480, fx = fy = 615 px, 42.6 deg vertical
field of view; ``camera_info`` carries exactly this ``K``) 0.30-0.50 m from the table::

    from ccl_perception.sim.grasp_scene import v2_world_config
    from ccl_perception.sim.robot import SimWorld
    world = SimWorld(v2_world_config(camera_elevation_deg=(35.0, 65.0)))
    info = world.reset(seed=5000, target='beer_bottle')

``SimWorld.reset(seed)`` first restores the snapshot taken when the world was built, so a
scene (object poses, camera, arm) depends on its seed only, not on the trials before it.
"""
from __future__ import annotations

import math

from ccl_perception.sim.camera import D435_COLOR

# vertical field of view of the D435 colour camera at 640x480 (= 2 atan(240 / 615))
D435_FOV_Y_DEG = math.degrees(2.0 * math.atan(0.5 * D435_COLOR['height'] / D435_COLOR['fy']))

V2_WORLD = {
    'benchmark': 'v2',
    'width': D435_COLOR['width'],          # px
    'height': D435_COLOR['height'],
    'fov_y_deg': D435_FOV_Y_DEG,           # with a centred principal point: exactly D435_COLOR's K
    'camera_distance': (0.30, 0.50),       # m from the look-at point on the table
    'camera_elevation_deg': (40.0, 85.0),  # 90 = straight down
    'reference_height': 0.40,              # m, top-down reference views
    'look_at_jitter': 0.03,                # m
    'clutter': (4, 6),                     # objects per scene
    'surface': 'oak_light',                # the training capture's table
}


def v2_world_config(**overrides):
    """
    Return the :class:`SimWorldConfig` of the benchmark v2 grasp scene.

    ``V2_WORLD``, then ``overrides``.

    Any :class:`SimWorldConfig` field may be overridden, e.g. ``width=320, height=240`` to grasp
    at the training resolution (the field of view stays the D435's).
    """
    from ccl_perception.sim.robot import SimWorldConfig
    cfg = dict(V2_WORLD)
    cfg.update(overrides)
    return SimWorldConfig(**cfg)


def render_grasp_scenes(out_dir: str, n_scenes: int = 8, seed: int = 5000, world_config=None,
                        progress: bool = True) -> dict:
    """
    Render ``n_scenes`` grasp scenes of the simulated world into ``out_dir``.

    Scene ``i`` is ``SimWorld.reset(seed + i)`` with a graspable seen object as its target;
    written: ``images/``, ``depth/``
    (float32 m), ``segmentation/`` and ``frames.json`` (camera_info-like ``K``, size, camera
    pose, object poses, target). Deterministic by seed. ``world_config``: default
    :func:`v2_world_config`.

    Returns ``{'num_images', 'seconds', 'images_per_second', 'targets', 'object_size'}``.
    """
    import json
    import os
    import time

    import cv2
    from tqdm import tqdm

    from ccl_perception.sim.catalogue_v2 import load_selection
    from ccl_perception.sim.dataset import _size_summary, object_short_sides
    from ccl_perception.sim.ground_truth import Frame, save_frame
    from ccl_perception.sim.robot import SimWorld

    if n_scenes < 1:
        raise ValueError(f'n_scenes must be >= 1, got {n_scenes}')
    world = SimWorld(world_config or v2_world_config())
    graspable = {e.key for e in load_selection().objects if e.graspable}
    targets = [n for n in world.object_names if n in graspable] or list(world.object_names)
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    frames, sides, start = [], [], time.perf_counter()
    try:
        for i in tqdm(range(n_scenes), desc='render grasp scenes', disable=not progress):
            info = world.reset(seed + i, target=targets[i % len(targets)])
            r = world.render()
            stem = f'g{i:03d}'
            if not cv2.imwrite(os.path.join(out_dir, 'images', stem + '.png'),
                               cv2.cvtColor(r.rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write into {out_dir}')
            ids = {n: world.body(n) for n in info.objects}
            sides.extend(object_short_sides(r.segmentation, ids.values(), info.camera.width))
            meta = save_frame(out_dir, stem, Frame(r.depth, r.segmentation, info.camera,
                                                   world.scene.object_poses(info.objects), ids))
            meta.update({'image': f'images/{stem}.png', 'seed': seed + i, 'target': info.target,
                         'target_present': info.target_present, 'objects': list(info.objects),
                         'camera_info': {'width': info.camera.width,
                                         'height': info.camera.height,
                                         'K': info.camera.K.tolist(),
                                         'distortion_model': 'plumb_bob', 'D': [0.0] * 5}})
            frames.append(meta)
    finally:
        world.close()
    size = _size_summary(sides)
    with open(os.path.join(out_dir, 'frames.json'), 'w', encoding='utf-8') as f:
        json.dump({'frames': frames, 'object_size': size}, f)
    seconds = time.perf_counter() - start
    return {'num_images': n_scenes, 'seconds': seconds,
            'images_per_second': n_scenes / max(seconds, 1e-9),
            'targets': sorted({m['target'] for m in frames}), 'object_size': size}


def world_config(benchmark: str = 'v2', width: int = 0, height: int = 0, objects=(),
                 n_objects: int = 0, background_seed: int = 1, elevation_deg=(0.0, 0.0),
                 protocol: str = 'placed'):
    """
    Return the ``SimWorldConfig`` of the simulated world node (and bringup) from its parameters.

    Args:
        benchmark: 'v2' (:func:`v2_world_config`: D435 640x480 over the v2 objects) or 'v1'.
        width: camera width in pixels; 0 = the benchmark's (v2 640, v1 320).
        height: camera height in pixels; 0 = the benchmark's (v2 480, v1 240).
        objects: object names; () = the benchmark's (v2: the 12 seen objects; v1: the first
            ``n_objects`` of its catalogue).
        n_objects: v1 only; 0 = its default.
        background_seed: v1 only (the procedural table texture).
        elevation_deg: ``(min, max)`` camera elevation of the scenes; (0, 0) = the benchmark's.
        protocol: v2: 'placed' or 'visible' (``evaluation.grasp_protocol.PROTOCOLS``: every
            present target in view and graspable, the held-out table photos loaded).
    """
    from ccl_perception.sim.robot import SimWorldConfig
    size = {k: int(v) for k, v in (('width', width), ('height', height)) if v}
    view = ({'camera_elevation_deg': tuple(float(e) for e in elevation_deg)}
            if any(elevation_deg) else {})
    if benchmark == 'v2':
        from ccl_perception.evaluation.grasp_protocol import world_fields
        return v2_world_config(objects=tuple(objects), **size, **view, **world_fields(protocol))
    if benchmark != 'v1':
        raise ValueError(f"benchmark must be 'v1' or 'v2', got {benchmark!r}")
    if protocol != 'placed':
        raise ValueError(f'protocol {protocol!r} needs benchmark v2 (held-out table photos)')
    v1 = {'n_objects': int(n_objects)} if n_objects else {}
    return SimWorldConfig(objects=tuple(objects), background_seed=int(background_seed),
                          **size, **v1, **view)
