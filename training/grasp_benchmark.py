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
Grasp benchmark in simulation, without ROS (in-process pipeline, for speed).

    python training/grasp_benchmark.py --checkpoint runs/ccl/model.pt --grasps 30 --absent 10

Scenes: cluttered tables seen from oblique viewpoints (elevation --min-elevation ..
--max-elevation degrees) against top-down reference views (--views adds oblique ones);
``--absent`` scenes leave the target out (any grasp there is a false grasp; goal: zero).
--protocol visible (default, paper Table II): every present target is in view and graspable
(checked on the render), tables from the held-out photos incl. target-coloured and glossy
ones (ccl_perception.evaluation.grasp_protocol); --protocol placed: the earlier benchmark.
Prints a results table, with an oracle row (true keypoints) as the ceiling of the executor
and geometry, and per target / table kind.
Everything lives in ccl_perception.evaluation.grasp_trials.run_grasp_benchmark.
"""
import argparse
import sys

from ccl_perception import cli
from ccl_perception.model_settings import DOWNSCALE
from ccl_perception.validation import integer, real
import yaml


def main(argv=None) -> int:
    count = cli.arg_type(integer(1))
    elevation = cli.arg_type(real(0, 90))
    ap = cli.ArgumentParser(prog='grasp_benchmark', description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', default='', help='model (.pt); default: the shipped model')
    ap.add_argument('--features', choices=['head', 'backbone'], default='head',
                    help="backbone: the checkpoint's ImageNet trunk alone "
                         '(pretrained-features row)')
    ap.add_argument('--benchmark', choices=['v1', 'v2'], default='v2',
                    help='v2: D435 640x480 world of real-textured objects (default); '
                         'v1: the earlier one')
    ap.add_argument('--downscale', type=cli.arg_type(DOWNSCALE), default=None,
                    help='camera -> model shrink factor (default: 2 on v2, 1 on v1)')
    ap.add_argument(
        '--grasps',
        type=count,
        default=30,
        help='scenes with the target (>= 30 recommended)')
    ap.add_argument(
        '--absent',
        type=cli.arg_type(
            integer(0)),
        default=10,
        help='scenes without the target')
    ap.add_argument('--protocol', choices=['visible', 'placed'], default='visible',
                    help='visible: every present target in view and graspable, held-out and '
                         'glossy table photos (paper Table II, the default); placed: the '
                         'benchmark before issue 18 (target anywhere on the training table)')
    ap.add_argument('--views', type=cli.arg_type(integer(1, 4)), default=1,
                    help='reference views per target: 1 top-down; 2-4 adds oblique ones')
    ap.add_argument('--no-calibrate', action='store_true',
                    help="targets without calibrated gates (the planner's global "
                         'min_similarity applies)')
    ap.add_argument('--targets', type=count, default=4, help='number of target objects')
    ap.add_argument(
        '--out',
        default='grasp_benchmark',
        help='output folder (targets, heatmaps, results.json)')
    ap.add_argument('--min-elevation', type=elevation, default=35.0,
                    help='degrees; 90 = top-down like the reference')
    ap.add_argument('--max-elevation', type=elevation, default=65.0)
    ap.add_argument('--no-oracle', action='store_true', help='skip the true-keypoint ceiling row')
    ap.add_argument('--seed', type=cli.arg_type(integer(0)), default=5000)
    ap.add_argument('--set', dest='planner', action='append', default=[], metavar='KEY=VALUE',
                    help='grasp planner option (ccl_perception.grasp_pipeline.DEFAULTS), '
                         'repeatable, e.g. --set min_inlier_fraction=0.8')
    args = ap.parse_args(argv)
    planner = {}
    for item in args.planner:
        key, sep, value = item.partition('=')
        if not sep:
            ap.error(f'--set needs KEY=VALUE, got {item!r}')
        try:
            planner[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            ap.error(f'--set {item!r}: the value is not a number or string')
    if args.min_elevation > args.max_elevation:
        ap.error(
            f'--min-elevation {args.min_elevation:g} is above '
            f'--max-elevation {args.max_elevation:g}')
    from ccl_perception.checkpoint import CheckpointError
    return cli.run('grasp_benchmark', lambda: _run(args, planner), CheckpointError)


def _run(args, planner: dict) -> int:
    from ccl_perception.checkpoint import load_checkpoint
    from ccl_perception.evaluation.grasp_trials import format_table, run_grasp_benchmark
    from ccl_perception.grasp_pipeline import merge_config
    from ccl_perception.model_zoo import default_model_path
    merge_config(planner)  # unknown option / bad value: one line, before any rendering
    checkpoint = args.checkpoint or default_model_path()
    load_checkpoint(checkpoint)  # missing / corrupt: one line, before the scenes are built
    downscale = args.downscale or (2 if args.benchmark == 'v2' else 1)
    rep = run_grasp_benchmark(checkpoint, args.grasps, args.absent, args.targets, args.out,
                              args.min_elevation, args.max_elevation, not args.no_oracle,
                              args.seed, planner_config=planner, benchmark=args.benchmark,
                              downscale=downscale, features=args.features,
                              protocol=args.protocol, views=args.views,
                              calibrate=not args.no_calibrate)
    size = rep['image_size']
    print()
    print(f'checkpoint {checkpoint} ({args.features}); benchmark {args.benchmark}, protocol '
          f'{args.protocol}, {size[0]}x{size[1]} px camera, model input 1/{downscale}; '
          f'elevation {args.min_elevation:.0f}-{args.max_elevation:.0f} deg; {args.views} '
          f'reference view(s) per target, gates '
          f'{"global" if args.no_calibrate else "calibrated per target"}; '
          f'{rep["seconds"]:.0f} s')
    print(format_table(rep['results']))
    print()
    print(format_table({**rep['per_target'], **rep['per_tag']}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
