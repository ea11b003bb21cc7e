"""Render the training image folder and the evaluation benchmark (images + pairs.json).

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

Configs are plain dicts merged over ``TRAIN_DEFAULTS`` / ``EVAL_DEFAULTS`` (every key commented).
"""
from __future__ import annotations

import itertools
import json
import os
import time

import cv2
import numpy as np
from tqdm import tqdm

from ccl_perception.evaluation.pairs import save_pairs
from ccl_perception.sim.camera import Camera
from ccl_perception.sim.ground_truth import Frame, save_frame, visible_points
from ccl_perception.sim.objects import object_catalogue, split_catalogue
from ccl_perception.sim.scene import TABLE_TOP_Z, TabletopScene, default_lighting, random_lighting

TRAIN_DEFAULTS = {
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
    'n_scenes': 20,             # scenes (arrangement + background + lighting)
    'views_per_scene': 4,       # cameras per scene (view 0 top-down); 20 x 4 = 80 images as the paper
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


def render_training_set(out_dir: str, config: dict | None = None, progress: bool = True) -> dict:
    """Render the training folder ``out_dir`` (PNGs ``000000.png`` ...).

    Returns:
        ``{'num_images', 'seconds', 'images_per_second', 'objects'}``.
    """
    cfg = merge_config(TRAIN_DEFAULTS, config)
    catalogue = object_catalogue(cfg['catalogue_seed'], cfg['n_procedural'])
    seen, _ = split_catalogue(catalogue, cfg['n_objects'])
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(cfg['seed'])
    camera = Camera.looking_at((0.0, 0.0, TABLE_TOP_Z + cfg['camera_height']), (0.0, 0.0, TABLE_TOP_Z),
                               cfg['width'], cfg['height'], cfg['fov_y_deg'])
    frames = []
    start = time.perf_counter()
    with TabletopScene(seen, background_seed=cfg['background_seed']) as scene:
        for i in tqdm(range(cfg['num_images']), desc='render train', disable=not progress):
            if cfg['vary_background']:
                scene.set_background(int(rng.integers(0, 2**31 - 1)))
            scene.arrange(rng, settle_steps=cfg['settle_steps'])
            light = random_lighting(rng, cfg['lighting_jitter']) if cfg['lighting_jitter'] > 0 \
                else default_lighting()
            result = scene.render(camera, light)
            stem = f'{i:06d}'
            _write_png(os.path.join(out_dir, stem + '.png'), result.rgb)
            if cfg['depth']:
                frame = Frame(result.depth, result.segmentation, camera, scene.object_poses(),
                              {n: scene.bodies[n] for n in scene.active})
                meta = save_frame(out_dir, stem, frame, cfg['depth_format'])
                meta['image'] = stem + '.png'
                frames.append(meta)
    seconds = time.perf_counter() - start
    if cfg['depth']:
        with open(os.path.join(out_dir, 'frames.json'), 'w', encoding='utf-8') as f:
            json.dump({'config': cfg, 'frames': frames}, f)
    stats = {'num_images': cfg['num_images'], 'seconds': seconds,
             'images_per_second': cfg['num_images'] / max(seconds, 1e-9),
             'objects': [s.name for s in seen]}
    return stats


def _reference_keypoints(scene: TabletopScene, name: str, n: int, rng: np.random.Generator):
    """Fixed object-frame keypoints: half near the silhouette boundary, half inside.

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


def _eval_camera(rng: np.random.Generator, view: int, cfg: dict) -> Camera:
    elev = np.radians(90.0 if view == 0 else rng.uniform(cfg['min_elevation_deg'], 80.0))
    azim = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*cfg['camera_distance'])
    target = np.array([*(rng.uniform(-0.04, 0.04, 2)), TABLE_TOP_Z])
    eye = target + dist * np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    up = (np.cos(azim + np.pi), np.sin(azim + np.pi), 0.0) if view == 0 else (0.0, 0.0, 1.0)
    return Camera.looking_at(eye, target, cfg['width'], cfg['height'], cfg['fov_y_deg'], up=up)


def render_evaluation_set(out_dir: str, config: dict | None = None, progress: bool = True) -> dict:
    """Render the evaluation benchmark into ``out_dir`` (``images/``, ``pairs.json``, ``frames.json``).

    Returns:
        ``{'num_images', 'num_pairs', 'seconds', 'images_per_second', 'seen', 'unseen'}``.
    """
    cfg = merge_config(EVAL_DEFAULTS, config)
    catalogue = object_catalogue(cfg['catalogue_seed'], cfg['n_procedural'])
    seen, rest = split_catalogue(catalogue, cfg['n_seen_objects'])
    unseen = rest[:cfg['n_unseen_objects']]
    pool = seen + unseen
    if cfg['objects_per_scene'] > len(pool):
        raise ValueError(f"objects_per_scene={cfg['objects_per_scene']} > {len(pool)} available objects")
    split = {s.name: {'split': 'seen'} for s in seen}
    split.update({s.name: {'split': 'unseen'} for s in unseen})
    rng = np.random.default_rng(cfg['seed'])
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    images, frames, scene_of = [], [], []
    start = time.perf_counter()
    n_images = cfg['n_scenes'] * cfg['views_per_scene']
    with TabletopScene(pool) as scene:
        keypoints = {s.name: _reference_keypoints(scene, s.name, cfg['keypoints_per_object'], rng)
                     for s in pool}
        bar = tqdm(total=n_images, desc='render eval', disable=not progress)
        for s in range(cfg['n_scenes']):
            scene.set_background(int(rng.integers(0, 2**31 - 1)))
            names = [pool[i].name for i in rng.choice(len(pool), cfg['objects_per_scene'], replace=False)]
            scene.arrange(rng, names=names, settle_steps=cfg['settle_steps'], spacing=cfg['spacing'])
            light = random_lighting(rng, 1.0)
            poses = scene.object_poses()
            for v in range(cfg['views_per_scene']):
                camera = _eval_camera(rng, v, cfg)
                result = scene.render(camera, light)
                stem = f's{s:03d}_v{v}'
                _write_png(os.path.join(out_dir, 'images', stem + '.png'), result.rgb)
                frame = Frame(result.depth, result.segmentation, camera, poses,
                              {n: scene.bodies[n] for n in scene.active})
                objects = {}
                for name in scene.active:
                    pts, kinds = keypoints[name]
                    uv, vis = visible_points(frame, name, pts)
                    objects[name] = {
                        'keypoints': [[round(float(x), 3), round(float(y), 3)] if vis[k] else None
                                      for k, (x, y) in enumerate(uv)],
                        'visible': [bool(b) for b in vis], 'kinds': kinds}
                images.append({'file': f'images/{stem}.png', 'width': cfg['width'],
                               'height': cfg['height'], 'objects': objects, 'scene': s})
                meta = {'image': f'images/{stem}.png', 'camera': camera.to_dict(),
                        'object_poses': {k: val.tolist() for k, val in poses.items()}}
                if cfg['depth']:
                    meta.update(save_frame(out_dir, stem, frame))
                frames.append(meta)
                scene_of.append(s)
                bar.update(1)
        bar.close()
    seconds = time.perf_counter() - start
    pairs = []
    for i, j in itertools.combinations(range(len(images)), 2):
        if scene_of[i] == scene_of[j]:
            continue
        shared = []
        for name in sorted(set(images[i]['objects']) & set(images[j]['objects'])):
            a, b = images[i]['objects'][name]['visible'], images[j]['objects'][name]['visible']
            if sum(x and y for x, y in zip(a, b)) >= cfg['min_common_keypoints']:
                shared.append(name)
        if shared:
            pairs.append({'image_1': i, 'image_2': j, 'objects': shared})
    if len(pairs) > cfg['max_pairs']:
        keep = np.sort(rng.choice(len(pairs), cfg['max_pairs'], replace=False))
        pairs = [pairs[k] for k in keep]
    save_pairs(os.path.join(out_dir, 'pairs.json'), images, pairs, split)
    with open(os.path.join(out_dir, 'frames.json'), 'w', encoding='utf-8') as f:
        json.dump({'config': cfg, 'frames': frames,
                   'keypoints_object_frame': {k: v[0].tolist() for k, v in keypoints.items()}}, f)
    return {'num_images': len(images), 'num_pairs': len(pairs), 'seconds': seconds,
            'images_per_second': len(images) / max(seconds, 1e-9),
            'seen': [s.name for s in seen], 'unseen': [s.name for s in unseen]}
