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
Render the training image folder and the evaluation benchmark (images + pairs.json).

Training mode mirrors the paper's protocol: one fixed top-down camera, the same ``n_objects``
training objects re-arranged (new positions, new resting sides) for every frame, written as a
plain folder of PNGs. With ``depth=True`` each frame also gets depth, segmentation and the
camera/object poses (``frames.json``) for :func:`ground_truth.exact_correspondences`.

Evaluation mode: ``n_scenes`` scenes, each a new arrangement of a mix of seen (training) and
unseen objects on a new table texture under new lighting, seen from ``views_per_scene``
cameras from top-down (view 0) to ``min_elevation_deg`` oblique. Objects lean on each other
(``spacing < 1``), giving partial occlusions. Every object carries ``keypoints_per_object``
fixed surface points (half near its silhouette boundary, half inside, picked on a top-down
reference render); their pixel positions and visibility (depth test) are exact. Pairs are
images of different scenes that share an object with enough commonly visible keypoints.

Two benchmarks, chosen by the config key ``benchmark``:

- ``'v1'`` (the default of these functions, so earlier numbers stay reproducible): procedural
  primitives and pybullet_data models, a checkerboard-like procedural table, pybullet's
  TinyRenderer; ``TRAIN_DEFAULTS`` / ``EVAL_DEFAULTS``.
- ``'v2'`` (docs/benchmark.md): 24 real-textured everyday objects from the
  ``sweethome3d-furniture`` archives at real size (``catalogue_v2``), table-top photos (a
  training table, held-out ones for evaluation), pybullet's OpenGL renderer with a directional
  light and shadows, a RealSense D435 colour camera (``camera.d435_intrinsics``) 0.30-0.50 m
  from the table; ``TRAIN_V2_DEFAULTS`` / ``EVAL_V2_DEFAULTS`` / ``SAME_TABLE_V2``.

Both are rendered by the same two loops (:func:`render_training_set`,
:func:`render_evaluation_set`); what sets a benchmark apart (objects, table, lighting, cameras,
extra annotations) is its :class:`BenchmarkSpec` in ``SPECS``.

Configs are plain dicts merged over the benchmark's defaults (every key commented). Every
split (v1 too) reports the object-size statistic (:func:`object_short_sides`): the median
short side of the visible objects in stride-8 descriptor cells at the training resolution
(320x240).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import itertools
import json
import os
import time
from typing import Callable

from ccl_perception.evaluation.pairs import save_pairs
from ccl_perception.sim.camera import Camera
from ccl_perception.sim.ground_truth import Frame, save_frame, visible_points
from ccl_perception.sim.objects import object_catalogue, split_catalogue
from ccl_perception.sim.scene import (default_lighting, photo_lighting, random_lighting,
                                      TABLE_TOP_Z, TabletopScene)
import cv2
import numpy as np
from tqdm import tqdm

TRAINING_RESOLUTION = (320, 240)  # (W, H) the models train at: the object-size statistic's frame
DESCRIPTOR_STRIDE = 8

TRAIN_DEFAULTS = {
    'benchmark': 'v1',          # 'v1' (these defaults) or 'v2' (TRAIN_V2_DEFAULTS)
    'num_images': 500,          # frames to render
    'width': 320,               # px
    'height': 240,              # px
    'seed': 0,                  # arrangement / lighting RNG seed
    'catalogue_seed': 0,        # object catalogue seed (must match the evaluation set's)
    'n_procedural': 30,         # procedural objects in the catalogue (plus 5 pybullet_data models)
    'n_objects': 8,             # training ("seen") objects: the first n of the catalogue
    'camera_height': 0.55,      # m above the table, looking straight down
    'fov_y_deg': 50.0,          # vertical field of view, degrees
    'background_seed': 1,       # table texture seed
    'vary_background': False,   # new table texture per frame (paper: fixed scene)
    'lighting_jitter': 0.3,     # 0 = fixed light, 1 = strong random lighting per frame
    'settle_steps': 240,        # physics steps (240 Hz) after dropping the objects
    'depth': False,             # also write depth/segmentation/frames.json
    'depth_format': 'npy',      # 'npy' (float32 m) or 'png' (uint16 mm)
}

EVAL_DEFAULTS = {
    'benchmark': 'v1',          # 'v1' (these defaults) or 'v2' (EVAL_V2_DEFAULTS)
    'n_scenes': 20,             # scenes (arrangement + background + lighting)
    # cameras per scene (view 0 top-down); 20 x 4 = 80 images as the paper
    'views_per_scene': 4,
    'width': 320,               # px
    'height': 240,              # px
    'seed': 1000,               # RNG seed (disjoint from training's)
    'catalogue_seed': 0,        # must equal the training set's
    'n_procedural': 30,         # must equal the training set's
    'n_seen_objects': 8,        # = training n_objects: the first n are "seen"
    'n_unseen_objects': 8,      # held-out objects used only here
    'objects_per_scene': 6,     # objects on the table per scene
    'keypoints_per_object': 10,  # half boundary, half interior
    'min_elevation_deg': 30.0,  # most oblique view (90 = top-down)
    'camera_distance': [0.45, 0.65],  # m from the look-at point
    'fov_y_deg': 50.0,          # vertical field of view, degrees
    'spacing': 0.7,             # < 1: objects may touch / lean (occlusion)
    'min_common_keypoints': 3,  # per object, to make a pair
    'max_pairs': 300,           # pairs sampled (deterministically) from all valid ones
    'settle_steps': 240,        # physics steps after dropping
    'depth': False,             # also write depth/segmentation/frames.json
}


TRAIN_V2_DEFAULTS = {
    'benchmark': 'v2',
    'num_images': 500,          # frames to render
    'width': 320,               # px (D435 colour intrinsics scaled from 640x480)
    'height': 240,              # px
    'seed': 0,                  # arrangement / lighting / distractor RNG seed
    # m above the table, fixed, looking straight down (paper: fixed camera)
    'camera_height': 0.36,
    'objects_per_frame': [6, 8],  # min, max of the 12 seen objects on the table per frame
    'workspace_half': [0.12, 0.16],  # m (world x = image up, world y): objects are dropped here
    'spacing': 0.8,             # minimal centre distance / sum of radii (< 1: may touch)
    'surface': 'oak_light',     # training table photo (a 'train' surface of benchmark_v2.yaml)
    'vary_surface': False,      # True: a random 'train' surface per frame (paper: one table)
    'lighting_jitter': 0.3,     # strength of photo_lighting changes per frame (0 = fixed light)
    'hand_probability': 0.1,    # chance of a hand-like distractor entering the view per frame
    'settle_steps': 240,        # physics steps (240 Hz) after dropping the objects
    'renderer': 'egl',          # 'egl' (OpenGL, shadows) or 'tiny' (pybullet's CPU TinyRenderer)
    'depth': False,             # also write depth/segmentation/frames.json
    'depth_format': 'npy',      # 'npy' (float32 m) or 'png' (uint16 mm)
}

EVAL_V2_DEFAULTS = {
    'benchmark': 'v2',
    'n_scenes': 20,             # scenes (arrangement + held-out table photo + lighting)
    'views_per_scene': 4,       # = len(view_elevations_deg); 20 x 4 = 80 images as the paper
    # range per view; 90 = top-down
    'view_elevations_deg': [[90, 90], [65, 80], [50, 65], [35, 45]],
    'camera_distance': [0.30, 0.50],  # m from the look-at point on the table
    'camera': 'orbit',          # 'orbit' (views above) or 'training' (the fixed training camera)
    'camera_height': 0.36,      # m, for camera='training'
    'width': 320,               # px
    'height': 240,              # px
    'seed': 1000,               # RNG seed (disjoint from training's)
    'seen_per_scene': 3,        # seen (training) objects per scene
    'unseen_per_scene': 3,      # unseen objects per scene
    'surfaces': 'heldout',      # 'heldout' photos (one per scene) or 'train' (the training table)
    'surface': 'oak_light',     # the photo for surfaces='train'
    'lighting_strength': 1.0,   # photo_lighting strength per scene
    'keypoints_per_object': 10,  # half boundary, half interior
    'workspace_half': [0.09, 0.09],  # m around the world origin
    'look_at_jitter': 0.03,     # m, random offset of each view's look-at point
    'spacing': 0.7,             # < 1: objects may touch / lean (occlusion)
    'min_common_keypoints': 3,  # per object, to make a pair
    'max_pairs': 300,           # pairs sampled (deterministically) from all valid ones
    'settle_steps': 240,        # physics steps after dropping
    'renderer': 'egl',          # 'egl' or 'tiny'
    'depth': False,             # also write depth/segmentation into frames.json's folder
}

# Same table, same camera as the training capture, new arrangements (of the seen objects only):
# separates "cannot learn" (bad here too) from "does not generalise" (good here, bad on eval).
SAME_TABLE_V2 = {'camera': 'training', 'views_per_scene': 1, 'view_elevations_deg': [[90, 90]],
                 'n_scenes': 80, 'seen_per_scene': 7, 'unseen_per_scene': 0, 'surfaces': 'train',
                 'lighting_strength': 0.3, 'workspace_half': [0.12, 0.16], 'spacing': 0.8,
                 'seed': 3000}


def object_short_sides(segmentation: np.ndarray, object_ids,
                       width: int | None = None) -> np.ndarray:
    """
    Short side of every object visible in a segmentation (stride-8 cells, training resolution).

    The shorter side of the minimum-area rectangle around the object's visible pixels
    (occluded or cut parts do not count), scaled from the image's ``width`` to
    :data:`TRAINING_RESOLUTION`'s, in stride-8 descriptor cells. Objects with fewer than 10
    visible pixels are left out. Returns ``(K,)`` float.
    """
    seg = np.asarray(segmentation)
    scale = TRAINING_RESOLUTION[0] / float(width or seg.shape[1])
    out = []
    for body in object_ids:
        ys, xs = np.nonzero(seg == body)
        if len(xs) < 10:
            continue
        (_, _), (w, h), _ = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
        # minAreaRect measures between pixel centres: add one pixel for the pixels' own extent
        out.append((min(w, h) + 1.0) * scale / DESCRIPTOR_STRIDE)
    return np.asarray(out, dtype=float)


def _size_summary(sides: list) -> dict:
    a = np.asarray(sides, dtype=float)
    if not len(a):
        return {'median_short_side_cells': float('nan'), 'num_instances': 0}
    return {'median_short_side_cells': float(np.median(a)),
            'p10_short_side_cells': float(np.percentile(a, 10)),
            'p90_short_side_cells': float(np.percentile(a, 90)), 'num_instances': int(len(a))}


def merge_config(defaults: dict, overrides: dict | None) -> dict:
    """``defaults`` updated with ``overrides``; unknown keys raise ValueError."""
    cfg = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in defaults:
            raise ValueError(f'unknown config key {key!r}; known: {sorted(defaults)}')
        cfg[key] = value
    return cfg


def _write_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


def _reference_keypoints(scene: TabletopScene, name: str, n: int, rng: np.random.Generator):
    """
    Pick fixed object-frame keypoints: half near the silhouette boundary, half inside.

    Picked on a 320x240 top-down render of the object alone: boundary points 2-5 px inside
    the silhouette, interior points where the distance to the silhouette is >= half its
    maximum, spread by farthest-point sampling. Returns ``(points (K, 3) m, kinds list)``.
    """
    scene.arrange(rng, names=[name], settle_steps=120, workspace_half=(0.0, 0.0))
    cam = Camera.looking_at((0, 0, 0.3), (0, 0, 0), 320, 240, 50.0)
    result = scene.render(cam)
    mask = (result.segmentation == scene.bodies[name]).astype(np.uint8)
    if mask.sum() < 30:
        raise ValueError(f'object {name} too small in its reference render')
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    frame = Frame(result.depth, result.segmentation, cam, scene.object_poses([name]),
                  {name: scene.bodies[name]})
    inv = np.linalg.inv(frame.object_poses[name])
    points, kinds = [], []
    n_boundary = n // 2
    for kind, sel, count in (('boundary', (dist >= 2) & (dist <= 5), n_boundary),
                             ('interior', dist >= 0.5 * dist.max(), n - n_boundary)):
        ys, xs = np.nonzero(sel)
        cand = np.stack([xs, ys], axis=1)
        chosen = [int(rng.integers(len(cand)))]
        d = np.linalg.norm(cand - cand[chosen[0]], axis=1)
        while len(chosen) < min(count, len(cand)):
            chosen.append(int(d.argmax()))
            d = np.minimum(d, np.linalg.norm(cand - cand[chosen[-1]], axis=1))
        px = cand[chosen]
        world = cam.backproject(px, result.depth[px[:, 1], px[:, 0]])
        points.append(world @ inv[:3, :3].T + inv[:3, 3])
        kinds += [kind] * len(px)
    return np.concatenate(points), kinds


def _annotate(frame: Frame, names, keypoints: dict) -> dict:
    """
    Pairs-file annotation of the objects ``names`` in ``frame``.

    Exact keypoint pixels and visibility (depth test) of each object's fixed object-frame
    keypoints.
    """
    objects = {}
    for name in names:
        pts, kinds = keypoints[name]
        uv, vis = visible_points(frame, name, pts)
        objects[name] = {
            'keypoints': [[round(float(x), 3), round(float(y), 3)] if vis[k] else None
                          for k, (x, y) in enumerate(uv)],
            'visible': [bool(b) for b in vis], 'kinds': kinds}
    return objects


def _cross_scene_pairs(images: list, scene_of: list, min_common: int, max_pairs: int,
                       rng: np.random.Generator) -> list:
    """
    Pair images of different scenes that share an object's visible keypoints.

    Every pair of images from different scenes sharing an object with >= ``min_common``
    commonly visible keypoints; at most ``max_pairs`` of them, sampled with ``rng``.
    """
    pairs = []
    for i, j in itertools.combinations(range(len(images)), 2):
        if scene_of[i] == scene_of[j]:
            continue
        shared = []
        for name in sorted(set(images[i]['objects']) & set(images[j]['objects'])):
            a, b = images[i]['objects'][name]['visible'], images[j]['objects'][name]['visible']
            if sum(x and y for x, y in zip(a, b)) >= min_common:
                shared.append(name)
        if shared:
            pairs.append({'image_1': i, 'image_2': j, 'objects': shared})
    if len(pairs) > max_pairs:
        keep = np.sort(rng.choice(len(pairs), max_pairs, replace=False))
        pairs = [pairs[k] for k in keep]
    return pairs


# ---------------------------------------------------------------- benchmark specs
@dataclass
class Assets:
    """What one render run draws from: its objects, the scene's options, its table photos."""

    seen: list                  # ObjectSpec of the training ("seen") objects
    unseen: list = field(default_factory=list)  # ObjectSpec of the held-out objects (evaluation)
    scene_options: dict = field(default_factory=dict)  # TabletopScene keyword arguments
    catalogue: object = None    # v2: catalogue_v2's catalogue (table photos, skipped assets)

    @property
    def skipped(self) -> list:
        """``(asset, reason)`` of the assets the catalogue could not convert (v2)."""
        return self.catalogue.skipped if self.catalogue is not None else []


@dataclass(frozen=True)
class BenchmarkSpec:
    """
    What sets one benchmark apart; the two render loops below are shared by all of them.

    The loops call the hooks at fixed points and every hook draws from the run's random
    generator in a fixed order, so a seed gives the same images, poses and pairs.
    """

    name: str
    train_defaults: dict        # config of render_training_set (every key commented above)
    eval_defaults: dict         # config of render_evaluation_set
    training_assets: Callable   # (cfg) -> Assets; checks the config first
    eval_assets: Callable       # (cfg) -> Assets; checks the config first
    training_camera: Callable   # (cfg) -> the fixed training Camera
    training_frame: Callable    # (scene, rng, cfg, assets, camera) -> (lighting, extra meta)
    table_order: Callable       # (rng, assets) -> the evaluation's table order (or None)
    eval_scene: Callable        # (scene, rng, cfg, assets, index, order) -> lighting
    eval_camera: Callable       # (rng, view, cfg) -> Camera of one view of a scene
    eval_meta: Callable         # (scene, ids, lighting) -> extra frames.json entries of a view
    render_lighting: Callable   # (lighting, cfg) -> what scene.render gets (None: unlit)
    reports_assets: bool        # frames.json has object_size + skipped_assets, stats 'skipped'


# benchmark v1: procedural objects, procedural table textures, TinyRenderer
def _v1_training_assets(cfg: dict) -> Assets:
    catalogue = object_catalogue(cfg['catalogue_seed'], cfg['n_procedural'])
    seen, _ = split_catalogue(catalogue, cfg['n_objects'])
    return Assets(seen, scene_options={'background_seed': cfg['background_seed']})


def _v1_eval_assets(cfg: dict) -> Assets:
    catalogue = object_catalogue(cfg['catalogue_seed'], cfg['n_procedural'])
    seen, rest = split_catalogue(catalogue, cfg['n_seen_objects'])
    unseen = rest[:cfg['n_unseen_objects']]
    if cfg['objects_per_scene'] > len(seen) + len(unseen):
        raise ValueError(f"objects_per_scene={cfg['objects_per_scene']} > "
                         f'{len(seen) + len(unseen)} available objects')
    return Assets(seen, unseen)


def _v1_training_camera(cfg: dict) -> Camera:
    return Camera.looking_at((0.0, 0.0, TABLE_TOP_Z + cfg['camera_height']),
                             (0.0, 0.0, TABLE_TOP_Z),
                             cfg['width'], cfg['height'], cfg['fov_y_deg'])


def _v1_training_frame(scene, rng, cfg: dict, assets: Assets, camera: Camera):
    if cfg['vary_background']:
        scene.set_background(int(rng.integers(0, 2**31 - 1)))
    scene.arrange(rng, settle_steps=cfg['settle_steps'])
    light = random_lighting(rng, cfg['lighting_jitter']) if cfg['lighting_jitter'] > 0 \
        else default_lighting()
    return light, {}


def _v1_eval_scene(scene, rng, cfg: dict, assets: Assets, index: int, order) -> dict:
    scene.set_background(int(rng.integers(0, 2**31 - 1)))
    pool = assets.seen + assets.unseen
    names = [pool[i].name for i in rng.choice(len(pool), cfg['objects_per_scene'], replace=False)]
    scene.arrange(rng, names=names, settle_steps=cfg['settle_steps'], spacing=cfg['spacing'])
    return random_lighting(rng, 1.0)


def _eval_camera(rng: np.random.Generator, view: int, cfg: dict) -> Camera:
    elev = np.radians(90.0 if view == 0 else rng.uniform(cfg['min_elevation_deg'], 80.0))
    azim = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*cfg['camera_distance'])
    target = np.array([*(rng.uniform(-0.04, 0.04, 2)), TABLE_TOP_Z])
    eye = target + dist * np.array([np.cos(elev) * np.cos(azim),
                                   np.cos(elev) * np.sin(azim), np.sin(elev)])
    up = (np.cos(azim + np.pi), np.sin(azim + np.pi), 0.0) if view == 0 else (0.0, 0.0, 1.0)
    return Camera.looking_at(eye, target, cfg['width'], cfg['height'], cfg['fov_y_deg'], up=up)


# benchmark v2: real-textured objects, table photos, a D435 camera, the OpenGL renderer
def _v2_catalogue():
    from ccl_perception.sim.catalogue_v2 import build_catalogue
    return build_catalogue()


def _v2_training_assets(cfg: dict) -> Assets:
    cat = _v2_catalogue()
    lo, hi = (int(v) for v in cfg['objects_per_frame'])
    if not 1 <= lo <= hi <= len(cat.seen):
        raise ValueError('objects_per_frame must satisfy 1 <= min <= max <= '
                         f"{len(cat.seen)} seen objects, got {cfg['objects_per_frame']}")
    return Assets(cat.seen, catalogue=cat, scene_options={
        'renderer': cfg['renderer'], 'surface': cat.surface_path(cfg['surface'])})


def _v2_eval_assets(cfg: dict) -> Assets:
    if len(cfg['view_elevations_deg']) != cfg['views_per_scene']:
        raise ValueError(f"views_per_scene={cfg['views_per_scene']} but view_elevations_deg has "
                         f"{len(cfg['view_elevations_deg'])} ranges")
    if cfg['camera'] not in ('orbit', 'training'):
        raise ValueError(f"camera must be 'orbit' or 'training', got {cfg['camera']!r}")
    if cfg['surfaces'] not in ('heldout', 'train'):
        raise ValueError(f"surfaces must be 'heldout' or 'train', got {cfg['surfaces']!r}")
    cat = _v2_catalogue()
    for what, want, have in (('seen', cfg['seen_per_scene'], len(cat.seen)),
                             ('unseen', cfg['unseen_per_scene'], len(cat.unseen))):
        if not 0 <= want <= have:
            raise ValueError(f'{what}_per_scene={want} but {have} {what} objects are available')
    if cfg['seen_per_scene'] + cfg['unseen_per_scene'] < 1:
        raise ValueError('a scene needs at least one object')
    if cfg['surfaces'] == 'heldout' and not cat.heldout_surfaces:
        raise ValueError('no held-out surface could be converted')
    first = (cat.surface_path(cfg['surface']) if cfg['surfaces'] == 'train'
             else cat.heldout_surfaces[0])
    return Assets(cat.seen, cat.unseen, catalogue=cat,
                  scene_options={'renderer': cfg['renderer'], 'surface': first})


def _training_camera(cfg: dict) -> Camera:
    from ccl_perception.sim.camera import d435_intrinsics, look_at
    return Camera(d435_intrinsics(cfg['width'], cfg['height']),
                  look_at((0.0, 0.0, TABLE_TOP_Z + cfg['camera_height']), (0.0, 0.0, TABLE_TOP_Z)),
                  cfg['width'], cfg['height'])


def _v2_training_frame(scene, rng, cfg: dict, assets: Assets, camera: Camera):
    if cfg['vary_surface']:
        photos = list(assets.catalogue.train_surfaces)
        scene.set_surface(photos[int(rng.integers(len(photos)))])
    lo, hi = (int(v) for v in cfg['objects_per_frame'])
    k = int(rng.integers(lo, hi + 1))
    seen = assets.seen
    names = [seen[j].name for j in np.sort(rng.choice(len(seen), k, replace=False))]
    scene.arrange(rng, names=names, settle_steps=cfg['settle_steps'],
                  spacing=cfg['spacing'], workspace_half=tuple(cfg['workspace_half']))
    light = photo_lighting(rng, cfg['lighting_jitter']) if cfg['lighting_jitter'] > 0 \
        else photo_lighting()
    hand = rng.random() < cfg['hand_probability']
    if hand:
        scene.show_hand(rng, camera)
    return light, {'hand': bool(hand)}


def _v2_table_order(rng, assets: Assets):
    """Held-out photos: a new one per scene, cycling through a seeded permutation."""
    photos = assets.catalogue.heldout_surfaces
    return rng.permutation(len(photos)) if photos else []


def _v2_eval_scene(scene, rng, cfg: dict, assets: Assets, index: int, order) -> dict:
    if cfg['surfaces'] == 'heldout':
        scene.set_surface(assets.catalogue.heldout_surfaces[int(order[index % len(order)])])
    seen, unseen = assets.seen, assets.unseen
    names = [seen[i].name
             for i in np.sort(rng.choice(len(seen), cfg['seen_per_scene'], replace=False))]
    names += [unseen[i].name
              for i in np.sort(rng.choice(len(unseen), cfg['unseen_per_scene'], replace=False))]
    scene.arrange(rng, names=names, settle_steps=cfg['settle_steps'],
                  spacing=cfg['spacing'], workspace_half=tuple(cfg['workspace_half']))
    return photo_lighting(rng, cfg['lighting_strength'])


def _v2_eval_camera(rng, view: int, cfg: dict) -> Camera:
    return _training_camera(cfg) if cfg['camera'] == 'training' else _orbit_camera(rng, view, cfg)


def _orbit_camera(rng: np.random.Generator, view: int, cfg: dict) -> Camera:
    from ccl_perception.sim.camera import d435_intrinsics, look_at
    lo, hi = cfg['view_elevations_deg'][view]
    elev = np.radians(rng.uniform(lo, hi))
    azim = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*cfg['camera_distance'])
    target = np.array([*(rng.uniform(-1, 1, 2) * cfg['look_at_jitter']), TABLE_TOP_Z])
    eye = target + dist * np.array([np.cos(elev) * np.cos(azim),
                                   np.cos(elev) * np.sin(azim), np.sin(elev)])
    # near top-down the image's up is a random direction in the table plane, else world up
    up = (np.cos(azim + np.pi), np.sin(azim + np.pi), 0.0) if lo >= 85 else (0.0, 0.0, 1.0)
    return Camera(d435_intrinsics(cfg['width'], cfg['height']), look_at(eye, target, up),
                  cfg['width'], cfg['height'])


SPECS = {
    'v1': BenchmarkSpec(
        name='v1', train_defaults=TRAIN_DEFAULTS, eval_defaults=EVAL_DEFAULTS,
        training_assets=_v1_training_assets, eval_assets=_v1_eval_assets,
        training_camera=_v1_training_camera, training_frame=_v1_training_frame,
        table_order=lambda rng, assets: None, eval_scene=_v1_eval_scene,
        eval_camera=_eval_camera, eval_meta=lambda scene, ids, light: {},
        render_lighting=lambda light, cfg: light, reports_assets=False),
    'v2': BenchmarkSpec(
        name='v2', train_defaults=TRAIN_V2_DEFAULTS, eval_defaults=EVAL_V2_DEFAULTS,
        training_assets=_v2_training_assets, eval_assets=_v2_eval_assets,
        training_camera=_training_camera, training_frame=_v2_training_frame,
        table_order=_v2_table_order, eval_scene=_v2_eval_scene,
        eval_camera=_v2_eval_camera,
        eval_meta=lambda scene, ids, light: {
            'object_ids': dict(ids), 'surface': os.path.basename(scene.surface or ''),
            'light': light},
        # the OpenGL renderer takes the photo lighting; TinyRenderer renders v2 unlit
        render_lighting=lambda light, cfg: light if cfg['renderer'] == 'egl' else None,
        reports_assets=True),
}
BENCHMARKS = tuple(SPECS)


def _spec(config: dict | None) -> BenchmarkSpec:
    bench = (config or {}).get('benchmark', 'v1')
    if bench not in SPECS:
        raise ValueError(f'benchmark must be one of {BENCHMARKS}, got {bench!r}')
    return SPECS[bench]


# ------------------------------------------------------------------ the render loops
def render_training_set(out_dir: str, config: dict | None = None, progress: bool = True) -> dict:
    """
    Render the training folder ``out_dir`` (PNGs ``000000.png`` ...).

    ``config['benchmark']`` picks the benchmark (default ``'v1'``: ``TRAIN_DEFAULTS``; ``'v2'``:
    ``TRAIN_V2_DEFAULTS``).

    Returns:
        ``{'num_images', 'seconds', 'images_per_second', 'objects', 'object_size'}``
        (``object_size``: summary of :func:`object_short_sides`), v2 also ``'skipped'``.
    """
    spec = _spec(config)
    cfg = merge_config(spec.train_defaults, config)
    assets = spec.training_assets(cfg)
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(cfg['seed'])
    camera = spec.training_camera(cfg)
    frames, sides = [], []
    start = time.perf_counter()
    with TabletopScene(assets.seen, **assets.scene_options) as scene:
        for i in tqdm(range(cfg['num_images']), desc=f'render train {spec.name}',
                      disable=not progress):
            light, extra = spec.training_frame(scene, rng, cfg, assets, camera)
            result = scene.render(camera, spec.render_lighting(light, cfg))
            scene.hide_hand()
            ids = {n: scene.bodies[n] for n in scene.active}
            sides.extend(object_short_sides(result.segmentation, ids.values(), cfg['width']))
            stem = f'{i:06d}'
            _write_png(os.path.join(out_dir, stem + '.png'), result.rgb)
            if cfg['depth']:
                frame = Frame(result.depth, result.segmentation, camera, scene.object_poses(), ids)
                meta = save_frame(out_dir, stem, frame, cfg['depth_format'])
                meta['image'] = stem + '.png'
                meta.update(extra)
                frames.append(meta)
    seconds = time.perf_counter() - start
    size = _size_summary(sides)
    if cfg['depth']:
        index = {'config': cfg, 'frames': frames}
        if spec.reports_assets:
            index.update(object_size=size, skipped_assets=assets.skipped)
        with open(os.path.join(out_dir, 'frames.json'), 'w', encoding='utf-8') as f:
            json.dump(index, f)
    stats = {'num_images': cfg['num_images'], 'seconds': seconds,
             'images_per_second': cfg['num_images'] / max(seconds, 1e-9),
             'objects': [s.name for s in assets.seen], 'object_size': size}
    if spec.reports_assets:
        stats['skipped'] = assets.skipped
    return stats


def render_evaluation_set(out_dir: str, config: dict | None = None, progress: bool = True) -> dict:
    """
    Render the evaluation benchmark into ``out_dir`` (images/, pairs.json, frames.json).

    ``config['benchmark']`` picks the benchmark (default ``'v1'``: ``EVAL_DEFAULTS``; ``'v2'``:
    ``EVAL_V2_DEFAULTS``, with ``SAME_TABLE_V2`` merged in the same-table split).

    Returns:
        ``{'num_images', 'num_pairs', 'seconds', 'images_per_second', 'seen', 'unseen',
        'object_size'}``, v2 also ``'skipped'``.
    """
    spec = _spec(config)
    cfg = merge_config(spec.eval_defaults, config)
    assets = spec.eval_assets(cfg)
    pool = assets.seen + assets.unseen
    split = {s.name: {'split': 'seen'} for s in assets.seen}
    split.update({s.name: {'split': 'unseen'} for s in assets.unseen})
    rng = np.random.default_rng(cfg['seed'])
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    images, frames, scene_of, sides = [], [], [], []
    start = time.perf_counter()
    n_images = cfg['n_scenes'] * cfg['views_per_scene']
    with TabletopScene(pool, **assets.scene_options) as scene:
        keypoints = {s.name: _reference_keypoints(scene, s.name, cfg['keypoints_per_object'], rng)
                     for s in pool}
        order = spec.table_order(rng, assets)
        bar = tqdm(total=n_images, desc=f'render eval {spec.name}', disable=not progress)
        for s in range(cfg['n_scenes']):
            light = spec.eval_scene(scene, rng, cfg, assets, s, order)
            poses = scene.object_poses()
            ids = {n: scene.bodies[n] for n in scene.active}
            for v in range(cfg['views_per_scene']):
                camera = spec.eval_camera(rng, v, cfg)
                result = scene.render(camera, spec.render_lighting(light, cfg))
                sides.extend(object_short_sides(result.segmentation, ids.values(), cfg['width']))
                stem = f's{s:03d}_v{v}'
                _write_png(os.path.join(out_dir, 'images', stem + '.png'), result.rgb)
                frame = Frame(result.depth, result.segmentation, camera, poses, ids)
                images.append({'file': f'images/{stem}.png', 'width': cfg['width'],
                               'height': cfg['height'],
                               'objects': _annotate(frame, scene.active, keypoints),
                               'scene': s})
                meta = {'image': f'images/{stem}.png', 'camera': camera.to_dict(),
                        'object_poses': {k: val.tolist() for k, val in poses.items()},
                        **spec.eval_meta(scene, ids, light)}
                if cfg['depth']:
                    meta.update(save_frame(out_dir, stem, frame))
                frames.append(meta)
                scene_of.append(s)
                bar.update(1)
        bar.close()
    seconds = time.perf_counter() - start
    pairs = _cross_scene_pairs(images, scene_of, cfg['min_common_keypoints'], cfg['max_pairs'],
                               rng)
    save_pairs(os.path.join(out_dir, 'pairs.json'), images, pairs, split)
    size = _size_summary(sides)
    index = {'config': cfg, 'frames': frames}
    if spec.reports_assets:
        index.update(object_size=size, skipped_assets=assets.skipped)
    index['keypoints_object_frame'] = {k: v[0].tolist() for k, v in keypoints.items()}
    with open(os.path.join(out_dir, 'frames.json'), 'w', encoding='utf-8') as f:
        json.dump(index, f)
    stats = {'num_images': len(images), 'num_pairs': len(pairs), 'seconds': seconds,
             'images_per_second': len(images) / max(seconds, 1e-9),
             'seen': [s.name for s in assets.seen], 'unseen': [s.name for s in assets.unseen],
             'object_size': size}
    if spec.reports_assets:
        stats['skipped'] = assets.skipped
    return stats
