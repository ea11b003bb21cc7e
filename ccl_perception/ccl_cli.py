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
``ccl``: the robot-side commands of the README without the ``ros2`` command line.

Each subcommand is a thin rclpy client (:class:`ccl_perception.ros_client.RosClient`) with a
timeout; a failure is one line ``ccl <command>: error: <reason>`` on stderr, exit code 2::

    ccl record my_bag --duration 300 --compressed   # ros2 bag record <camera topics>
    ccl grab-frame --out ref/mug                      # colour + aligned depth + camera_info files
    ccl preview --image ref/mug/color.png --points 300,200 340,210 --out ref/mug/preview.png
    ccl save-target mug                               # target_maker: clicked points -> mug.npz
    ccl set-target mug                                # ros2 param set /grasp_planner target mug
    ccl reload                                        # ros2 service call .../reload_targets ...
    ccl execute                                       # ros2 service call .../execute ...
    ccl status                                        # the planner's and executor's state

``ccl execute`` waits for the grasp's outcome and exits 0 when it succeeded, 1 when the arm
ran and the grasp failed. Also runnable as ``python -m ccl_perception.ccl_cli``.
"""

import json
import re
import sys

from ccl_perception import cli
from ccl_perception.ros_client import ClientError, DEFAULT_TIMEOUT_S

#: The console script's name (setup.py ``console_scripts``).
PROG = 'ccl'

PLANNER, EXECUTOR, MAKER = '/grasp_planner', '/grasp_executor', '/target_maker'
#: Seconds ``ccl execute`` waits for the outcome of a grasp it started.
GRASP_WAIT_S = 120.0
#: Seconds ``ccl execute`` waits for the planner's status before it asks for the grasp.
STATUS_WAIT_S = 2.0


def _client(args):
    from ccl_perception.ros_client import RosClient
    return RosClient('ccl_' + args.command.replace('-', '_'), args.timeout)


def cmd_record(args) -> int:
    from ccl_perception.bag_recorder import record
    with _client(args) as client:
        s = record(client, args.out, args.camera_ns, args.duration, args.compressed,
                   args.timeout)
    counts = ', '.join(f'{t} {n}' for t, n in s['messages'].items())
    print(f'wrote {args.out}: {counts} messages in {s["seconds"]:.1f} s, '
          f'{s["bytes"] / 1e6:.1f} MB')
    silent = [t for t, n in s['messages'].items() if not n]
    if silent:
        print(f'ccl record: warning: nothing arrived on {", ".join(silent)}', file=sys.stderr)
    return 0


def cmd_grab_frame(args) -> int:
    from ccl_perception.frame_grabber import grab_frame, write_frame
    with _client(args) as client:
        rgb, depth, info = grab_frame(client, args.camera_ns, args.slop)
    paths = write_frame(args.out, rgb, depth, info)
    K = info.k
    print(f'wrote {", ".join(paths.values())} ({info.width}x{info.height}, fx {K[0]:g} '
          f'fy {K[4]:g} cx {K[2]:g} cy {K[5]:g}); next: make_target --image '
          f'{paths["color.png"]} --depth {paths["depth.png"]} --intrinsics '
          f'{paths["camera_info.yaml"]} --points X,Y X,Y ...')
    return 0


def cmd_preview(args) -> int:
    import os

    import cv2

    import inspect

    from ccl_perception import targets
    from ccl_perception.image_io import read_rgb
    from ccl_perception.target_preview import depth_missing, draw_preview
    if os.path.abspath(args.out) in (os.path.abspath(args.image),
                                     os.path.abspath(args.depth or args.image)):
        raise ValueError(f'--out {args.out} would overwrite an input image')
    rgb = read_rgb(args.image)
    pts = [targets.parse_point(p) for p in args.points]
    missing = None
    if args.depth:
        depth = targets.read_depth(args.depth, args.depth_scale)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f'--depth is {depth.shape[1]}x{depth.shape[0]} but --image is '
                             f'{rgb.shape[1]}x{rgb.shape[0]}')
        # make_target's own window (no torch import for a preview)
        window = inspect.signature(targets.make_target).parameters['depth_window'].default
        missing = depth_missing(depth, targets.check_points(pts, rgb.shape[:2]), window)
        for i in map(int, missing.nonzero()[0]):
            print(f'point {i + 1} {args.points[i]}: no depth in its {window}x{window} window'
                  + (' (a grasp-axis point: make_target will refuse it)' if i < 2 else ''))
    image = draw_preview(rgb, pts, missing)
    if not cv2.imwrite(args.out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {args.out}')
    print(f'wrote {args.out} ({len(pts)} points)')
    return 0


def cmd_set_target(args) -> int:
    with _client(args) as client:
        client.set_parameters(args.planner, {'target': args.name})
    print(f'{args.planner}: target set to {args.name!r}')
    return 0


def cmd_save_target(args) -> int:
    from ccl_perception.nodes import private, SAVE_TARGET_SERVICE
    with _client(args) as client:
        client.set_parameters(args.maker, {'name': args.name})
        ok, message = client.trigger(private(args.maker, SAVE_TARGET_SERVICE))
    if not ok:
        raise ClientError(message)
    print(message)
    return 0


def cmd_reload(args) -> int:
    from ccl_perception.nodes import private, RELOAD_TARGETS_SERVICE
    with _client(args) as client:
        ok, message = client.trigger(private(args.planner, RELOAD_TARGETS_SERVICE))
    if not ok:
        raise ClientError(message)
    print(message)
    return 0


def _last_ok(statuses) -> str:
    ok = [m.data for m in statuses if m.data.startswith('ok')]
    return ok[-1] if ok else 'no ok status seen'


def cmd_execute(args) -> int:
    from std_msgs.msg import String

    from ccl_perception.nodes import (EXECUTE_SERVICE, LATCHED_QOS, private, RESULT_TOPIC,
                                      STATUS_QOS, STATUS_TOPIC)
    with _client(args) as client:
        results = client.collect(String, private(args.executor, RESULT_TOPIC), LATCHED_QOS)
        statuses = client.collect(String, private(args.planner, STATUS_TOPIC), STATUS_QOS)
        try:  # the planner's word on the pose about to be executed (it is not in the result)
            client.wait_for(lambda: statuses, 'planner status', min(STATUS_WAIT_S, args.timeout))
        except ClientError:
            pass
        ok, message = client.trigger(private(args.executor, EXECUTE_SERVICE))
        if not ok:
            raise ClientError(f'{args.executor} started no grasp: {message}')
        planner = _last_ok(statuses)
        print(message)
        stamp = re.search(r'stamped (\d+)\.(\d{9})', message)
        want = {'sec': int(stamp.group(1)), 'nanosec': int(stamp.group(2))} if stamp else None

        def outcome():
            for m in results:
                r = json.loads(m.data)
                if want is None or r.get('pose_stamp') == want:
                    return r
            return None
        r = client.wait_for(outcome, f'grasp result on {private(args.executor, RESULT_TOPIC)}',
                            args.wait)
    lift = r.get('lift_m')
    print(f'grasp {"succeeded" if r["success"] else "failed"}: {r["reason"]} (lift '
          f'{lift if lift is None else f"{lift:.3f}"} m); planner at the call: {planner}')
    return 0 if r['success'] else 1


def cmd_status(args) -> int:
    from std_msgs.msg import String

    from ccl_perception.nodes import (LATCHED_QOS, private, RESULT_TOPIC, STATUS_QOS,
                                      STATUS_TOPIC)
    with _client(args) as client:
        results = client.collect(String, private(args.executor, RESULT_TOPIC), LATCHED_QOS)
        statuses = client.collect(String, private(args.planner, STATUS_TOPIC), STATUS_QOS)
        p = client.get_parameters(args.planner, ('target', 'target_dir', 'downscale',
                                                 'checkpoint'))
        print(f'{args.planner}: target {p["target"]!r}, target_dir {p["target_dir"]!r}, '
              f'downscale {p["downscale"]}, checkpoint {p["checkpoint"] or "(shipped model)"}')
        try:
            client.wait_for(lambda: statuses, f'status from {args.planner}')
            print(f'{args.planner} status: {statuses[-1].data}')
        except ClientError as e:
            print(f'{args.planner} status: {e} (no camera frames?)')
        client.spin_for(0.5)  # the latched result, if any
        last = json.loads(results[-1].data) if results else None
    print(f'{args.executor} last grasp: ' + (
        f'{"succeeded" if last["success"] else "failed"}: {last["reason"]}' if last
        else 'none (or the executor is not running)'))
    return 0


def build_parser():
    import argparse
    head, usage = __doc__.split('::\n')
    p = cli.ArgumentParser(prog=PROG, description=head.strip().split('\n\n')[0].replace('``', ''),
                           epilog='examples:\n' + usage.split('\n\n')[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True, metavar='command')

    def command(name, fn, text):
        c = sub.add_parser(name, help=text, description=text)
        c.set_defaults(fn=fn)
        c.add_argument('--timeout', type=cli.arg_type(cli_limit()), default=DEFAULT_TIMEOUT_S,
                       help='seconds to wait for a service, an answer or a first message')
        return c
    camera = {'default': 'camera',
              'help': 'camera topic prefix (realsense-ros 4.x: camera/camera)'}
    c = command('record', cmd_record, 'record the camera topics into a new rosbag2 folder')
    c.add_argument('out', help='bag folder to create')
    c.add_argument('--duration', type=cli.arg_type(cli_limit(zero=True)), default=0.0,
                   help='seconds (0 = until Ctrl-C)')
    c.add_argument('--compressed', action='store_true',
                   help='record <image topic>/compressed (~16x smaller; compressed here when '
                        'the camera does not publish it)')
    c.add_argument('--camera-ns', **camera)
    c = command('grab-frame', cmd_grab_frame,
                'save the live colour, aligned depth and camera_info for make_target')
    c.add_argument('--out', required=True, help='folder for color.png, depth.png, '
                                                'camera_info.yaml')
    c.add_argument('--camera-ns', **camera)
    c.add_argument('--slop', type=cli.arg_type(cli_limit()), default=0.02,
                   help='colour/depth stamps may differ by this much, seconds')
    c = command('preview', cmd_preview, 'draw chosen target points on the reference image')
    c.add_argument('--image', required=True)
    c.add_argument('--points', nargs='+', required=True, help='pixels x,y; 1-2 = grasp axis')
    c.add_argument('--out', required=True, help='PNG to write')
    c.add_argument('--depth', help='aligned depth (marks points without depth)')
    c.add_argument('--depth-scale', type=cli.arg_type(cli_limit()), default=0.001,
                   help='metres per integer depth unit')
    c = command('save-target', cmd_save_target,
                "save the target_maker's clicked points as target NAME in its target_dir")
    c.add_argument('name', help='target name (file <target_dir>/<name>.npz)')
    c.add_argument('--maker', default=MAKER, help='target_maker node name')
    c = command('set-target', cmd_set_target, "set the planner's target (SetParameters)")
    c.add_argument('name', help='target name in target_dir, or a .npz path')
    for name, fn, text in (('reload', cmd_reload, "re-read the planner's target_dir"),
                           ('execute', cmd_execute,
                            "execute the executor's last grasp pose; wait for the outcome"),
                           ('status', cmd_status, "print the planner's and executor's state")):
        c = command(name, fn, text)
        if name == 'execute':
            c.add_argument('--wait', type=cli.arg_type(cli_limit()), default=GRASP_WAIT_S,
                           help='seconds to wait for the outcome')
    for c in sub.choices.values():
        if c.get_default('fn') in (cmd_set_target, cmd_reload, cmd_execute, cmd_status):
            c.add_argument('--planner', default=PLANNER, help='planner node name')
            c.add_argument('--executor', default=EXECUTOR, help='executor node name')
    return p


def cli_limit(zero: bool = False):
    """Seconds: a finite number > 0 (``zero``: >= 0)."""
    from ccl_perception.validation import real
    return real(0, None, low_open=not zero)


def main(argv=None) -> int:
    import signal
    import threading
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C / kill -INT stop a command (also one started in the background of a script,
        # which inherits SIGINT ignored): `ccl record` then closes a complete bag
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return cli.run(f'ccl {args.command}', lambda: args.fn(args), ClientError, ImportError)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    raise SystemExit(main())
