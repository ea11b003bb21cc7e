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
Render the synthetic training folder or the evaluation benchmark with pybullet (CPU).

    # 500 PNGs + depth/seg/poses
    python training/render_dataset.py train --out data/v2/train --depth
    # 80 images + pairs.json
    python training/render_dataset.py eval  --out data/v2/eval
    python training/render_dataset.py eval  --out data/v2/val --scenes 6 --seed 12345
    # training table + camera
    python training/render_dataset.py same_table --out data/v2/same_table
    # sim grasp scenes, 640x480
    python training/render_dataset.py grasp --out data/v2/grasp --scenes 8
    # benchmark v1
    python training/render_dataset.py train --benchmark v1 --out data/train_gt --depth

--benchmark v2 (the default here; docs/benchmark.md) renders real-textured objects from the
sweethome3d-furniture package with pybullet's OpenGL renderer; v1 the earlier procedural
benchmark. Options override the commented defaults of ccl_perception/sim/dataset.py
(TRAIN_DEFAULTS / EVAL_DEFAULTS for v1, TRAIN_V2_DEFAULTS / EVAL_V2_DEFAULTS / SAME_TABLE_V2
for v2); --config takes a YAML file with any of those keys. Every run prints the object-size
statistic (median object short side in stride-8 cells at 320x240).
"""
import argparse
import sys

from ccl_perception import cli
from ccl_perception.validation import integer
import yaml

#: Config keys that must be positive integers (pixels, counts), checked before rendering.
COUNTS = {'num_images': integer(1), 'n_scenes': integer(1), 'views_per_scene': integer(1),
          'width': integer(16, 4096), 'height': integer(16, 4096), 'seed': integer(0)}


def main(argv=None):
    count, size = cli.arg_type(integer(1)), cli.arg_type(integer(16, 4096))
    parser = cli.ArgumentParser(prog='render_dataset', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('mode', choices=['train', 'eval', 'same_table', 'grasp'])
    parser.add_argument('--benchmark', choices=['v1', 'v2'], default='v2',
                        help='v2: real-textured objects, OpenGL renderer (default); '
                             'v1: the earlier one')
    parser.add_argument('--out', default=None,
                        help='output folder (default data/train_images, data/eval, '
                             'data/same_table or data/grasp)')
    parser.add_argument('--config', default=None, help='YAML file with config keys')
    parser.add_argument('--num-images', type=count, help='train: number of frames')
    parser.add_argument('--scenes', type=count, help='eval: number of scenes')
    parser.add_argument('--views', type=count, help='eval: views per scene')
    parser.add_argument('--width', type=size)
    parser.add_argument('--height', type=size)
    parser.add_argument('--seed', type=cli.arg_type(integer(0)))
    parser.add_argument(
        '--depth',
        action='store_true',
        help='also write depth, segmentation, poses')
    args = parser.parse_args(argv)
    from ccl_perception.sim.furniture import FurnitureMissing
    return cli.run('render_dataset', lambda: _run(args), FurnitureMissing)


def read_config(path: str) -> dict:
    """Read a YAML mapping of config keys; ``ValueError`` naming the file otherwise."""
    try:
        with open(path, encoding='utf-8') as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f'--config {path} is not valid YAML: {exc}') from None
    if not isinstance(cfg, dict):
        raise ValueError(
            f'--config {path} must hold a mapping of config keys, got {type(cfg).__name__}')
    return cfg


def _run(args) -> int:
    from ccl_perception.sim.dataset import (SAME_TABLE_V2, render_evaluation_set,
                                            render_training_set)
    cfg = read_config(args.config) if args.config else {}
    for key, value in (('num_images', args.num_images), ('n_scenes', args.scenes),
                       ('views_per_scene', args.views), ('width', args.width),
                       ('height', args.height), ('seed', args.seed)):
        if value is not None:
            cfg[key] = value
    for key, limit in COUNTS.items():
        if key in cfg:
            limit.check(key, cfg[key])
    if args.depth:
        cfg['depth'] = True
    cfg['benchmark'] = args.benchmark
    if args.mode in ('same_table', 'grasp') and args.benchmark != 'v2':
        raise ValueError(f'{args.mode} exists for --benchmark v2 only')
    if args.mode == 'same_table':
        cfg = {**SAME_TABLE_V2, **cfg}
    if args.mode == 'grasp':
        from ccl_perception.sim.grasp_scene import render_grasp_scenes, v2_world_config
        size = {k: cfg[k] for k in ('width', 'height') if k in cfg}
        out = args.out or 'data/grasp'
        stats = render_grasp_scenes(out, cfg.get('n_scenes', 8), cfg.get('seed', 5000),
                                    v2_world_config(**size))
    elif args.mode == 'train':
        out = args.out or 'data/train_images'
        stats = render_training_set(out, cfg)
    else:
        out = args.out or ('data/eval' if args.mode == 'eval' else 'data/same_table')
        stats = render_evaluation_set(out, cfg)
    extra = f", {stats['num_pairs']} pairs" if 'num_pairs' in stats else ''
    print(f"rendered {stats['num_images']} images{extra} into {out} in {stats['seconds']:.1f} s "
          f"({stats['images_per_second']:.2f} images/s)")
    if 'object_size' in stats:
        size = stats['object_size']
        print(f"object size: median short side {size['median_short_side_cells']:.2f} "
              'descriptor cells (stride 8 at 320x240; 10-90 %: '
              f"{size.get('p10_short_side_cells', float('nan')):.2f}-"
              f"{size.get('p90_short_side_cells', float('nan')):.2f}; "
              f"{size['num_instances']} object views)")
    if stats.get('skipped'):
        print(f"skipped assets ({len(stats['skipped'])}): " +
              '; '.join(f'{k}: {r}' for k, r in stats['skipped']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
