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
Soak test of the grasp planner: 30 Hz RGB-D input, one process layout after another.

Publishes synthetic RGB-D + camera_info at ``--rate`` Hz with a frame counter in the stamp
and, for each of ``--modes`` (run one after the other, each for ``--duration`` s):

* ``planner``   -- the planner alone in its own process (``grasp_planner_node``);
* ``processes`` -- planner and descriptor node, one process each (``ros2 launch``-style);
* ``bringup``   -- the same two nodes in ONE ``bringup`` process, one single-threaded executor;

prints every ``--every`` seconds the measured process's VmRSS (bringup: the one process;
otherwise the planner's), output rate, frame age (receive time - input stamp) and lag
(frames published after the one an output was computed on, when the output arrived:
about processing time x rate when working on the newest frame; growing = backlog), then
a side-by-side table of all modes. Age and lag are read from the planner's ``~/heatmap``,
published for every processed frame with the input header.

    python training/soak_planner.py --duration 60                 # the operating point
    python training/soak_planner.py --modes planner bringup --checkpoint runs/ccl/model.pt
    python training/soak_planner.py --backend torch --downscale 1  # the planner's defaults
    python training/soak_planner.py --modes planner --profile out/soak  # + cProfile of it

The planner runs at the operating point by default: ``backend`` onnx (exported next to a copy
of the checkpoint in a temporary folder), ``downscale`` 2 (a 640x480 camera, the model at
320x240). The frame is a random-blocks image over a table 0.5 m away with a 3 cm high box
under the target's grasp axis, so the depth refinement measures a real object every frame.
Without ``--checkpoint`` an untrained ``build_model()`` DescriptorNet (efficientnet_lite0,
D=64: the deployed architecture; fine for throughput, meaningless for accuracy) is saved to
a temporary folder, and a target is made from the synthetic frame itself, so every frame
yields a pose. The machine's load average is printed with every window (a shared machine:
compare modes of one run). Not a test: it prints numbers for the README.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def vm_rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def make_assets(width: int, height: int, out_dir: str, backbone: str = 'efficientnet_lite0',
                checkpoint: str = None, downscale: int = 1, backend: str = 'torch'):
    """
    Make a synthetic blocks image, its depth (a 3 cm box on a table 0.5 m away) and a target.

    The checkpoint (``checkpoint`` copied into ``out_dir``, default: a random model of
    ``backbone`` saved there) gets its ONNX export next to it for ``backend`` onnx; the target
    (two axis points across the box) is made at ``downscale``.
    """
    import torch

    from ccl_perception import geometry, targets
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.inference import DescriptorExtractor, export_onnx
    from ccl_perception.model import build_model
    torch.manual_seed(0)
    if checkpoint:
        ck = shutil.copy(checkpoint, os.path.join(out_dir, 'soak.pt'))
    else:
        ck = save_checkpoint(os.path.join(out_dir, 'soak.pt'), build_model(
            {'backbone': backbone, 'descriptor_dim': 64, 'pretrained': False}))
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (height // 8, width // 8, 3)),
                  np.ones((8, 8, 1))).astype(np.uint8)
    depth_mm = np.full((height, width), 500, np.uint16)
    K = geometry.intrinsics_matrix(500.0, 500.0, (width - 1) / 2, (height - 1) / 2)
    cell = 8 * downscale
    cx, cy = width // 2 // cell, height // 2 // cell
    depth_mm[(cy - 2) * cell:(cy + 3) * cell, (cx - 4) * cell:(cx + 5) * cell] = 470
    pts = [(cell * (cx - 2) + (cell - 1) / 2, cell * cy + (cell - 1) / 2),
           (cell * (cx + 2) + (cell - 1) / 2, cell * cy + (cell - 1) / 2)]
    extractor = DescriptorExtractor(ck, downscale=downscale)
    if backend == 'onnx':
        export_onnx(extractor.model, os.path.splitext(ck)[0] + '.onnx', height // downscale,
                    width // downscale)
    t = targets.make_target(extractor, rgb, pts, 'soak', depth=depth_mm / 1000.0, K=K)
    path = os.path.join(out_dir, 'soak.npz')
    targets.save_target(path, t)
    return ck, path, rgb, depth_mm, K


PLANNER_PARAMS = ['tau:=0.003', 'max_width:=0.2']  # a sharp softmax for the random model


def start(mode: str, ck: str, target: str, args):
    """Start the processes of ``mode``; returns ``(measured process, [all processes])``."""
    ros = ['--log-level', 'error']
    point = [f'backend:={args.backend}', f'downscale:={args.downscale}']
    planner_p = [a for kv in PLANNER_PARAMS + point + [
        f'max_rate_hz:={args.max_rate_hz}', f'checkpoint:={ck}', f'target:={target}']
        for a in ('-p', kv)]
    node = plain = [sys.executable, '-m']
    if args.profile:  # the measured process only
        os.makedirs(args.profile, exist_ok=True)
        node = plain + ['cProfile', '-o', os.path.join(args.profile, f'{mode}.prof'), '-m']
    if mode == 'planner':
        procs = [subprocess.Popen(node + ['ccl_perception.nodes.grasp_planner_node', '--ros-args']
                                  + planner_p + ros)]
    elif mode == 'processes':
        procs = [subprocess.Popen(node + ['ccl_perception.nodes.grasp_planner_node', '--ros-args']
                                  + planner_p + ros),
                 subprocess.Popen(plain + ['ccl_perception.nodes.descriptor_node', '--ros-args',
                                           '-p', f'checkpoint:={ck}']
                                  + [a for kv in point for a in ('-p', kv)] + ros)]
    elif mode == 'bringup':
        procs = [subprocess.Popen(node + ['ccl_perception.bringup', f'checkpoint:={ck}',
                                          f'target:={target}', *point,
                                          'sim:=false', 'executor_backend:=moveit', '--nodes',
                                          'descriptor_node', 'grasp_planner', '--ros-args']
                                  + [a for kv in PLANNER_PARAMS
                                     + [f'max_rate_hz:={args.max_rate_hz}']
                                     for a in ('-p', f'grasp_planner:{kv}')] + ros)]
    else:
        raise ValueError(f'unknown mode {mode!r}')
    return procs[0], procs


def soak(mode, args, ck, target, rgb, depth_mm, K) -> dict:
    """One mode for ``args.duration`` s; prints its windows and returns its summary."""
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String

    from ccl_perception.nodes import (COLOR_TOPIC, DEPTH_TOPIC, GRASP_POSE_TOPIC, HEATMAP_TOPIC,
                                      INFO_TOPIC, SENSOR_QOS, STATUS_TOPIC, private)
    from ccl_perception.nodes.messages import camera_info_msg, image_msg

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node(f'soak_feeder_{os.getpid()}', context=ctx)
    pubs = (node.create_publisher(Image, COLOR_TOPIC, SENSOR_QOS),
            node.create_publisher(Image, DEPTH_TOPIC, SENSOR_QOS),
            node.create_publisher(CameraInfo, INFO_TOPIC, SENSOR_QOS))
    lock = threading.Lock()
    state = {'seq': 0, 'ages': [], 'lags': [], 'poses': 0, 'abstain': 0}
    t0 = time.time()

    def on_output(msg):
        """Handle one heatmap image (published for every processed frame, with its header)."""
        now = time.time()
        seq = msg.header.stamp.nanosec // 1000  # frame counter encoded in the stamp
        stamp = t0 + msg.header.stamp.sec + (msg.header.stamp.nanosec % 1000) * 1e-3
        with lock:
            state['ages'].append(now - stamp)
            state['lags'].append(state['seq'] - seq)

    def on_pose(msg):
        with lock:
            state['poses'] += 1

    def on_status(msg):
        if msg.data.startswith('abstain'):
            with lock:
                state['abstain'] += 1

    node.create_subscription(PoseStamped, GRASP_POSE_TOPIC, on_pose, 10)
    node.create_subscription(Image, private('grasp_planner', HEATMAP_TOPIC), on_output, 10)
    node.create_subscription(String, private('grasp_planner', STATUS_TOPIC), on_status, 10)
    color_msg = image_msg(rgb, 'rgb8')
    depth_msg = image_msg(depth_mm, '16UC1')
    info = camera_info_msg(K, args.width, args.height)

    def publish():
        with lock:
            state['seq'] += 1
            seq = state['seq']
        dt = time.time() - t0
        ms = int(round((dt - int(dt)) * 1000)) % 1000
        # stamp: sec = whole seconds since start, nanosec = seq * 1000 + milliseconds
        header = Header(frame_id='camera_color_optical_frame')
        header.stamp.sec, header.stamp.nanosec = int(dt), seq * 1000 + ms
        for m in (color_msg, depth_msg, info):
            m.header = header
        pubs[2].publish(info)
        pubs[0].publish(color_msg)
        pubs[1].publish(depth_msg)

    node.create_timer(1.0 / args.rate, publish)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    procs = []  # started last, inside the try: whatever fails, none is left running
    try:
        measured, procs = start(mode, ck, target, args)
        return _measure(mode, args, measured, procs, ex, state, lock, t0)
    finally:
        stop(procs)
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def stop(procs) -> None:
    """SIGINT every process, then kill what is still running after 20 s."""
    for p in procs:
        p.send_signal(2)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _measure(mode, args, measured, procs, ex, state, lock, t0) -> dict:
    """Spin the feeder for ``args.duration`` s, printing windows; return the summary."""
    print(f'# mode {mode}: measured pid {measured.pid} ({len(procs)} process(es)), '
          f'{args.width}x{args.height} input at {args.rate:.0f} Hz for {args.duration:.0f} s')
    print(f'{"t[s]":>6} {"VmRSS[MB]":>10} {"in[Hz]":>7} {"proc[Hz]":>8} {"pose[Hz]":>8} '
          f'{"age_ms_mean":>12} {"age_ms_max":>11} {"lag_mean":>9} {"lag_max":>8} {"abstain":>8} '
          f'{"load1":>6}')
    rss, windows = [], []
    next_report = time.time() + args.every
    last_seq = 0
    while time.time() - t0 < args.duration and all(p.poll() is None for p in procs):
        ex.spin_once(timeout_sec=0.005)
        if time.time() >= next_report:
            with lock:
                ages, lags, n = state['ages'], state['lags'], state['poses']
                ab, seq = state['abstain'], state['seq']
                state['ages'], state['lags'], state['poses'], state['abstain'] = [], [], 0, 0
            r = vm_rss_mb(measured.pid)
            rss.append((time.time() - t0, r))
            a = np.array(ages) * 1000 if ages else np.array([np.nan])
            lg = np.array(lags) if lags else np.array([np.nan])
            load = os.getloadavg()[0]
            windows.append({'proc': len(ages) / args.every, 'age_mean': float(np.mean(a)),
                            'age_max': float(np.max(a)), 'lag_mean': float(np.mean(lg)),
                            'load': load})
            print(f'{time.time() - t0:6.1f} {r:10.1f} {(seq - last_seq) / args.every:7.1f} '
                  f'{len(ages) / args.every:8.2f} {n / args.every:8.2f} '
                  f'{a.mean():12.1f} {a.max():11.1f} {lg.mean():9.2f} {lg.max():8.0f} '
                  f'{ab:8d} {load:6.2f}', flush=True)
            last_seq = seq
            next_report += args.every
    stop(procs)
    steady = windows[2:] or windows  # two windows of warm-up
    out = {'mode': mode, 'exit': [p.returncode for p in procs]}
    if steady:
        proc = [w['proc'] for w in steady]
        out.update(proc_min=min(proc), proc_max=max(proc),
                   age_mean=float(np.nanmean([w['age_mean'] for w in steady])),
                   age_max=float(np.nanmax([w['age_max'] for w in steady])),
                   lag_mean=float(np.nanmean([w['lag_mean'] for w in steady])),
                   load_min=min(w['load'] for w in steady),
                   load_max=max(w['load'] for w in steady),
                   # after the warm-up windows (the model loads during the first ones)
                   rss_first=rss[len(windows) - len(steady)][1], rss_last=rss[-1][1],
                   rss_max=max(r for _, r in rss[len(windows) - len(steady):]))
    return out


def main(argv=None) -> int:
    from ccl_perception import cli
    from ccl_perception.validation import integer, real
    seconds = cli.arg_type(real(0, 86400, low_open=True))
    p = cli.ArgumentParser(prog='soak_planner', description=__doc__.split('\n\n')[0])
    p.add_argument('--duration', type=seconds, default=60.0, help='seconds of input per mode')
    p.add_argument('--modes', nargs='+', default=['planner', 'processes', 'bringup'],
                   choices=['planner', 'processes', 'bringup'])
    p.add_argument('--rate', type=cli.arg_type(real(0, 1000, low_open=True)), default=30.0,
                   help='input frames per second')
    p.add_argument('--every', type=seconds, default=5.0, help='report period, seconds')
    p.add_argument('--width', type=cli.arg_type(integer(32, 4096)), default=640)
    p.add_argument('--height', type=cli.arg_type(integer(32, 4096)), default=480)
    p.add_argument('--checkpoint', help='trained checkpoint (default: an untrained build_model())')
    p.add_argument(
        '--backbone',
        default='efficientnet_lite0',
        help='backbone of the default model')
    p.add_argument('--target', help='target .npz (default: made from the synthetic frame)')
    p.add_argument('--max-rate-hz', type=cli.arg_type(real(0, 1000, low_open=True)),
                   default=30.0, help="planner's max_rate_hz parameter")
    p.add_argument('--backend', choices=['torch', 'onnx'], default='onnx',
                   help='planner backend (default onnx: the operating point)')
    p.add_argument('--downscale', type=cli.arg_type(integer(1, 8)), default=2,
                   help='planner downscale (default 2: the operating point)')
    p.add_argument('--profile', default=None,
                   help='folder: run the measured process under cProfile (<mode>.prof)')
    args = p.parse_args(argv)  # every bad value exits 2 here, before any node starts
    for flag in ('checkpoint', 'target'):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            return cli.fail('soak_planner', f'--{flag.replace("_", "-")} {path!r} does not exist')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    tmp = tempfile.mkdtemp(prefix='ccl_soak_')
    ck, target, rgb, depth_mm, K = make_assets(args.width, args.height, tmp, args.backbone,
                                               args.checkpoint, args.downscale, args.backend)
    target = args.target or target
    from ccl_perception import hardware
    print(f'# checkpoint {ck}; backend {args.backend}, downscale {args.downscale}; '
          f'{hardware.describe("cpu")}; load average at start {os.getloadavg()[0]:.2f} '
          f'({os.cpu_count()} CPUs)')
    results = [soak(m, args, ck, target, rgb, depth_mm, K) for m in args.modes]
    print(f'# load average at the end {os.getloadavg()[0]:.2f}')
    print('\n| mode | processed frames/s (min-max of 5 s windows) | mean frame age ms '
          '| max frame age ms | mean lag (frames) | VmRSS MB after warm-up -> last (max) '
          '| load average |')
    print('|---|---|---|---|---|---|---|')
    for r in results:
        if 'proc_min' not in r:
            print(f"| {r['mode']} | no output (exit codes {r['exit']}) | | | | | |")
            continue
        print(f"| {r['mode']} | {r['proc_min']:.1f}-{r['proc_max']:.1f} | {r['age_mean']:.0f} | "
              f"{r['age_max']:.0f} | {r['lag_mean']:.1f} | "
              f"{r['rss_first']:.0f} -> {r['rss_last']:.0f} ({r['rss_max']:.0f}) | "
              f"{r['load_min']:.1f}-{r['load_max']:.1f} |")
    return 0 if all('proc_min' in r for r in results) else 1


if __name__ == '__main__':
    raise SystemExit(main())
