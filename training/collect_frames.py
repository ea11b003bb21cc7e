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
Extract sharp, distinct frames from a video or a rosbag2 image topic into a training folder.

    python training/collect_frames.py my_video.mp4 --out data/my_images
    python training/collect_frames.py my_bag/ --topic /camera/color/image_raw --out data/my_images
"""
import argparse
import sys

from ccl_perception import cli
from ccl_perception.frame_collector import collect_frames, CollectConfig
from ccl_perception.validation import integer, real


def main(argv=None):
    parser = cli.ArgumentParser(prog='collect_frames', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='video file (OpenCV) or rosbag2 folder / .db3 / .mcap')
    parser.add_argument('--out', required=True, help='output folder of PNGs (+ collect_log.csv)')
    parser.add_argument(
        '--topic',
        default=None,
        help='image topic (bags; optional with one image topic)')
    parser.add_argument('--blur-ratio', type=cli.arg_type(real(0, 1)), default=0.5,
                        help='drop sharpness < ratio x run median')
    parser.add_argument('--min-difference', type=cli.arg_type(real(0, 255)), default=6.0,
                        help='drop frames whose 32x32 thumbnail differs from the last kept one by '
                             'less (0-255)')
    parser.add_argument(
        '--step',
        type=cli.arg_type(
            integer(1)),
        default=1,
        help='consider every n-th frame')
    parser.add_argument(
        '--max-frames',
        type=cli.arg_type(
            integer(0)),
        default=0,
        help='0 = no limit')
    args = parser.parse_args(argv)
    return cli.run('collect_frames', lambda: _run(args))


def _run(args) -> int:
    s = collect_frames(args.source, args.out, args.topic,
                       CollectConfig(args.blur_ratio, args.min_difference, args.step,
                                     args.max_frames))
    print(f"kept {s['kept']} of {s['total']} frames ({s['blurry']} blurry, "
          f"{s['duplicate']} near-duplicates, "
          f"{s['skipped_step']} skipped by --step) -> {args.out} (log: collect_log.csv)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
