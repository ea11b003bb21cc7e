"""Soak test of the grasp planner node: 30 Hz RGB-D input for a given time.

Starts the planner in its own process (so its VmRSS is its own), publishes synthetic
RGB-D + camera_info at ``--rate`` Hz with a frame counter in the stamp, and prints every
``--every`` seconds: the planner's VmRSS, output rate, frame age (receive time - input
stamp) and lag (frames published after the one an output was computed on, at the time
the output arrived: about processing time x rate when working on the newest frame,
growing = backlog). Age and lag are read from the ``~/heatmap`` image, which the planner
publishes for every processed frame (pose or not) with the input header.

    python training/soak_planner.py --duration 60
    python training/soak_planner.py --checkpoint runs/ccl/model.pt --target targets/mug.npz --duration 600

Without ``--checkpoint`` a random resnet18 DescriptorNet (D=64) is saved to a temporary
folder and a target is made from the synthetic frame itself, so every frame yields a pose.
Not a test: it prints numbers for the README / the lead's benchmark notes.
"""

import argparse
import os
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


def make_assets(width: int, height: int, out_dir: str, backbone: str = 'resnet18', checkpoint: str = None):
    """Synthetic blocks image, planar depth 0.5 m, and a target made from that image with
    ``checkpoint`` (default: a random model of ``backbone`` saved in ``out_dir``)."""
    import torch

    from ccl_perception import geometry, targets
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = checkpoint or save_checkpoint(os.path.join(out_dir, 'soak.pt'), DescriptorNet(backbone, 64, pretrained=False))
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (height // 8, width // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    depth_mm = np.full((height, width), 500, np.uint16)
    K = geometry.intrinsics_matrix(500.0, 500.0, (width - 1) / 2, (height - 1) / 2)
    cx, cy = width // 2, height // 2
    pts = [(8 * (cx // 8 - 3) + 3.5, 8 * (cy // 8) + 3.5), (8 * (cx // 8 + 3) + 3.5, 8 * (cy // 8) + 3.5)]
    t = targets.make_target(DescriptorExtractor(ck), rgb, pts, 'soak', depth=depth_mm / 1000.0, K=K)
    path = os.path.join(out_dir, 'soak.npz')
    targets.save_target(path, t)
    return ck, path, rgb, depth_mm, K


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--duration', type=float, default=60.0, help='seconds of input')
    p.add_argument('--rate', type=float, default=30.0, help='input frames per second')
    p.add_argument('--every', type=float, default=5.0, help='report period, seconds')
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--checkpoint', help='trained checkpoint (default: a random one, see --backbone)')
    p.add_argument('--backbone', default='resnet18', help='backbone of the random default model')
    p.add_argument('--target', help='target .npz (default: made from the synthetic frame)')
    p.add_argument('--max-rate-hz', type=float, default=30.0, help="planner's max_rate_hz parameter")
    args = p.parse_args(argv)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String

    from ccl_perception import image_conversion as ic
    from ccl_perception.nodes import SENSOR_QOS

    tmp = tempfile.mkdtemp(prefix='ccl_soak_')
    ck, target, rgb, depth_mm, K = make_assets(args.width, args.height, tmp, args.backbone, args.checkpoint)
    target = args.target or target
    name = f'soak_planner_{os.getpid()}'
    cmd = [sys.executable, '-m', 'ccl_perception.nodes.grasp_planner_node', '--ros-args', '-r', f'__node:={name}',
           '-p', f'checkpoint:={ck}', '-p', f'target:={target}', '-p', f'max_rate_hz:={args.max_rate_hz}',
           '-p', 'tau:=0.003', '-p', 'max_width:=0.2', '--log-level', 'error']
    planner = subprocess.Popen(cmd)
    rclpy.init()
    node = rclpy.create_node(f'soak_feeder_{os.getpid()}')
    pubs = (node.create_publisher(Image, 'camera/color/image_raw', SENSOR_QOS),
            node.create_publisher(Image, 'camera/aligned_depth_to_color/image_raw', SENSOR_QOS),
            node.create_publisher(CameraInfo, 'camera/color/camera_info', SENSOR_QOS))
    lock = threading.Lock()
    state = {'seq': 0, 'ages': [], 'lags': [], 'poses': 0, 'abstain': 0}
    t0 = time.time()

    def on_output(msg):
        """The heatmap image is published for every processed frame, with its header."""
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

    node.create_subscription(PoseStamped, 'grasp_pose', on_pose, 10)
    node.create_subscription(Image, f'{name}/heatmap', on_output, 10)
    node.create_subscription(String, f'{name}/status', on_status, 10)
    color_msg = ic.numpy_to_image(rgb, 'rgb8')
    depth_msg = ic.numpy_to_image(depth_mm, '16UC1')
    info = CameraInfo(width=args.width, height=args.height, k=[float(v) for v in K.reshape(9)])

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
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    print(f'# planner pid {planner.pid}, {args.width}x{args.height} input at {args.rate:.0f} Hz for '
          f'{args.duration:.0f} s, checkpoint {ck}')
    print(f'{"t[s]":>6} {"VmRSS[MB]":>10} {"in[Hz]":>7} {"proc[Hz]":>8} {"pose[Hz]":>8} {"age_ms_mean":>12} '
          f'{"age_ms_max":>11} '
          f'{"lag_mean":>9} {"lag_max":>8} {"abstain":>8}')
    rss = []
    next_report = time.time() + args.every
    last_seq = 0
    try:
        while time.time() - t0 < args.duration and planner.poll() is None:
            ex.spin_once(timeout_sec=0.005)
            if time.time() >= next_report:
                with lock:
                    ages, lags, n = state['ages'], state['lags'], state['poses']
                    ab, seq = state['abstain'], state['seq']
                    state['ages'], state['lags'], state['poses'], state['abstain'] = [], [], 0, 0
                r = vm_rss_mb(planner.pid)
                rss.append((time.time() - t0, r))
                a = np.array(ages) * 1000 if ages else np.array([-1.0])
                lg = np.array(lags) if lags else np.array([-1.0])
                print(f'{time.time() - t0:6.1f} {r:10.1f} {(seq - last_seq) / args.every:7.1f} '
                      f'{len(ages) / args.every:8.2f} {n / args.every:8.2f} '
                      f'{a.mean():12.1f} {a.max():11.1f} {lg.mean():9.2f} {lg.max():8.0f} '
                      f'{ab:8d}', flush=True)
                last_seq = seq
                next_report += args.every
    finally:
        planner.send_signal(2)
        try:
            planner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            planner.kill()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    if len(rss) >= 4:
        t, r = np.array(rss[2:]).T  # skip two windows of warm-up; least-squares slope
        slope = np.polyfit(t, r, 1)[0] * 60
        print(f'# VmRSS {rss[0][1]:.1f} -> {rss[-1][1]:.1f} MB (after warm-up min {r.min():.1f}, max {r.max():.1f}, '
              f'trend {slope:+.2f} MB/min)')
    return 0 if planner.returncode in (0, -2, None) or planner.returncode == 130 else 1


if __name__ == '__main__':
    raise SystemExit(main())
