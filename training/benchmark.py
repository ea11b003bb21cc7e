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
Speed and memory of the descriptor model and the Cycle-Correspondence Loss on this machine.

    python training/benchmark.py            # full run (several minutes on 2 CPU cores)
    python training/benchmark.py --quick    # fewer repetitions, default backbone only
    python training/benchmark.py --trunks --threads 2   # dilated vs fpn trunk, NCHW vs NHWC

Every number is the median of several timed repetitions after warm-up, measured side by side
in one run; the device, torch threads and resolution are printed with the table.
Targets (issue): CCL loss forward+backward <= 10 % of the backbone's forward+backward
(batch 4, 240x320, N=500, D=64); ONNX Runtime vs eager PyTorch at 640x480.
"""
import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from ccl_perception.learning.logbook import peak_memory_mib
from ccl_perception.learning.methods import method_names
from ccl_perception.losses import cycle_correspondence_loss
from ccl_perception.model import DescriptorNet
import numpy as np
import torch


def device_name(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip() + f' ({os.cpu_count()} cores)'
    except OSError:
        pass
    return platform.processor() or 'cpu'


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def median_time(fn, device: str = 'cpu', warmup: int = 2, reps: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _make_model(backbone: str, dim: int, device: str, trunk: str = None) -> DescriptorNet:
    # Timing does not depend on the weights; only lite0's ImageNet file is available offline.
    kwargs = {} if trunk is None else {'trunk': trunk}
    return DescriptorNet(backbone, dim, pretrained=backbone == 'efficientnet_lite0',
                         **kwargs).to(device)


def bench_trunks(backbone='efficientnet_lite0', trunks=('dilated', 'fpn'),
                 formats=('contiguous', 'channels_last'), dim=64, device='cpu', warmup=2,
                 reps=7) -> list:
    """
    Stride-8 trunk modes side by side (same process, interleaved per repetition).

    For every (trunk, memory format): eval forward of one 640x480 image (inference mode) and
    a training forward+backward of a batch of 4 at 240x320. The candidates are timed in turns
    within each repetition, so load changes on a shared machine hit all of them alike.

    Returns:
        list of dicts ``{'trunk', 'format', 'fwd_640x480_ms', 'train_240x320_b4_ms'}``
        (medians in milliseconds).
    """
    image = torch.rand(1, 3, 480, 640, device=device)
    batch = torch.rand(4, 3, 240, 320, device=device)
    candidates = []
    for trunk in trunks:
        for fmt in formats:
            memory_format = (torch.channels_last if fmt == 'channels_last'
                             else torch.contiguous_format)
            torch.manual_seed(0)
            model = _make_model(backbone, dim, device, trunk).to(memory_format=memory_format)
            candidates.append((trunk, fmt, model, image.contiguous(memory_format=memory_format),
                               batch.contiguous(memory_format=memory_format)))

    def forward(model, x):
        model.eval()
        with torch.inference_mode():
            model(x)

    def train_step(model, x):
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    times = {(c[0], c[1], kind): [] for c in candidates for kind in ('fwd', 'train')}
    for rep in range(warmup + reps):
        for trunk, fmt, model, x_fwd, x_train in candidates:
            for kind, fn, x in (('fwd', forward, x_fwd), ('train', train_step, x_train)):
                _sync(device)
                start = time.perf_counter()
                fn(model, x)
                _sync(device)
                if rep >= warmup:
                    times[(trunk, fmt, kind)].append((time.perf_counter() - start) * 1e3)
    return [{'trunk': trunk, 'format': fmt,
             'fwd_640x480_ms': statistics.median(times[(trunk, fmt, 'fwd')]),
             'train_240x320_b4_ms': statistics.median(times[(trunk, fmt, 'train')])}
            for trunk, fmt, *_ in candidates]


def print_trunks(backbone: str, rows: list) -> None:
    """Table of ``bench_trunks`` rows with ratios against the first row (dilated, contiguous)."""
    base = rows[0]
    print(f'\n[trunk modes] {backbone}: eval fwd 1x640x480 | train fwd+bwd 4x240x320; '
          f'ratio = {base["trunk"]}/{base["format"]} time / this time')
    print(f'{"trunk":<10}{"format":<15}{"fwd ms":>10}{"ratio":>8}{"train ms":>11}{"ratio":>8}')
    for r in rows:
        print(f'{r["trunk"]:<10}{r["format"]:<15}{r["fwd_640x480_ms"]:>10.1f}'
              f'{base["fwd_640x480_ms"] / r["fwd_640x480_ms"]:>7.2f}x'
              f'{r["train_240x320_b4_ms"]:>11.1f}'
              f'{base["train_240x320_b4_ms"] / r["train_240x320_b4_ms"]:>7.2f}x')


def _loss_inputs(batch, dim, grid_h, grid_w, n, device, generator):
    maps = [torch.nn.functional.normalize(
        torch.randn(batch, dim, grid_h, grid_w, generator=generator), dim=1).to(device)
        .requires_grad_(True) for _ in range(3)]
    scale = torch.tensor([grid_w - 1.0, grid_h - 1.0])
    kp_a = (torch.rand(batch, n, 2, generator=generator) * scale).to(device)
    kp_a_hat = (kp_a.cpu() + torch.randn(batch, n, 2, generator=generator)).clamp(
        torch.zeros(2), scale).to(device)
    valid = torch.ones(batch, n, dtype=torch.bool, device=device)
    return maps, kp_a, kp_a_hat, valid


def bench_loss_vs_backbone(backbone='efficientnet_lite0', batch=4, height=240, width=320,
                           n=500, dim=64, device='cpu', warmup=2, reps=5) -> dict:
    """
    Backbone forward+backward (one batch of ``batch`` images) vs CCL forward+backward.

    The loss runs on three 1/8 maps (I_A, I_B, Î_A) of ``batch`` images each with N points;
    a CCL training step runs the network on those three batches, so the backbone share of
    a real step is about 3x the backbone time reported here (the ratio is the strict one).
    """
    model = _make_model(backbone, dim, device).train()
    images = torch.rand(batch, 3, height, width, device=device)

    def backbone_step():
        model.zero_grad(set_to_none=True)
        model(images).sum().backward()

    generator = torch.Generator().manual_seed(0)
    grid_h, grid_w = -(-height // 8), -(-width // 8)
    maps, kp_a, kp_a_hat, valid = _loss_inputs(batch, dim, grid_h, grid_w, n, device, generator)

    def loss_step():
        for m in maps:
            m.grad = None
        loss, _ = cycle_correspondence_loss(maps[0], maps[1], maps[2], kp_a, kp_a_hat, valid)
        loss.backward()

    backbone_ms = median_time(backbone_step, device, warmup, reps)
    loss_ms = median_time(loss_step, device, warmup, reps)
    return {'backbone': backbone, 'backbone_ms': backbone_ms, 'loss_ms': loss_ms,
            'ratio': loss_ms / backbone_ms}


def bench_onnx_vs_eager(backbone='efficientnet_lite0', height=480, width=640, dim=64,
                        warmup=2, reps=5) -> dict:
    """Descriptor inference on one (1, 3, H, W) image: eager PyTorch vs ONNX Runtime (CPU)."""
    from ccl_perception.inference import INPUT_NAME, OUTPUT_NAME, export_onnx, onnx_session

    model = _make_model(backbone, dim, 'cpu').eval()
    image = torch.rand(1, 3, height, width)
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, os.path.join(folder, 'model.onnx'), height, width)
        session = onnx_session(path, threads=torch.get_num_threads())
        # eager as shipped by DescriptorExtractor: channels_last model and input
        model_cl = model.to(memory_format=torch.channels_last)
        image_cl = image.contiguous(memory_format=torch.channels_last)

        def eager():
            with torch.inference_mode():
                model_cl(image_cl)

        feed = {INPUT_NAME: image.numpy()}
        eager_ms = median_time(eager, 'cpu', warmup, reps)
        onnx_ms = median_time(lambda: session.run([OUTPUT_NAME], feed), 'cpu', warmup, reps)
    return {'backbone': backbone, 'eager_ms': eager_ms, 'onnx_ms': onnx_ms,
            'speedup': eager_ms / onnx_ms}


def _textured_frame(height: int, width: int, seed: int = 0):
    """Make a smooth random-texture RGB image, a plane 0.5 m away with a box on it, and K."""
    import cv2
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 8, width // 8, 3)).astype(np.float32)
    rgb = (
        cv2.resize(
            noise,
            (width,
             height),
            interpolation=cv2.INTER_CUBIC).clip(
            0,
            1) *
        255).astype(
        np.uint8)
    depth = np.full((height, width), 0.5, np.float32)
    # a 3 cm high box under the grasp axis, for the planner's depth refinement to measure
    depth[int(0.35 * height):int(0.65 * height), int(0.42 * width):int(0.58 * width)] = 0.47
    f = 0.9 * width
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    return rgb, depth, K


def bench_frame_to_pose(backbone='efficientnet_lite0', height=480, width=640, dim=64,
                        warmup=2, reps=5) -> dict:
    """
    Planner latency, one RGB-D frame -> 6D grasp pose (GraspPipeline.frame_to_pose, no ROS).

    The target is made from the frame itself (identical view), so every stage runs to a pose.
    Returns median total seconds and per-stage medians for the torch and onnx backends.
    """
    from ccl_perception.grasp_pipeline import GraspPipeline
    from ccl_perception.inference import DescriptorExtractor, export_onnx
    from ccl_perception.targets import make_target

    rgb, depth, K = _textured_frame(height, width)
    model = _make_model(backbone, dim, 'cpu').eval()
    points = [(width * 0.45, height * 0.5), (width * 0.55,
                                             height * 0.5), (width * 0.5, height * 0.4)]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_onnx(model, os.path.join(folder, 'model.onnx'), height, width)
        for backend in ('torch', 'onnx'):
            extractor = DescriptorExtractor(model, backend=backend,
                                            onnx_path=onnx_path if backend == 'onnx' else None)
            target = make_target(extractor, rgb, points, 'bench', depth=depth, K=K)
            # An untrained head matches only roughly: open every gate so all stages always run
            # (the defaults otherwise, depth refinement included).
            pipeline = GraspPipeline(extractor, {'min_similarity': -1.0, 'min_confidence': 0.0,
                                                 'axis_length_tolerance': 1e6,
                                                 'ransac_threshold': 1.0, 'max_width': 1.0})
            stages = []

            def run():
                result = pipeline.frame_to_pose(rgb, depth, K, target)
                if not result.ok:
                    raise RuntimeError(f'benchmark frame abstained: {result.reason}')
                stages.append(result.timings)

            total = median_time(run, 'cpu', warmup, reps)
            per_stage = {
                k: float(np.median([t[k] for t in stages[warmup:]])) * 1000 for k in stages[-1]}
            results[backend] = {'total_ms': total, **{f'{k}_ms': v for k, v in per_stage.items()}}
    return results


def _memory_worker(backbone, batch, height, width, n, dim, step: bool) -> None:
    """In a fresh process: optionally run one CCL training step; print VmHWM in MiB."""
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '1')))
    model = _make_model(backbone, dim, 'cpu').train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if step:
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(3 * batch, 3, height, width, generator=generator)
        desc = model(images)
        desc_a, desc_b, desc_a_hat = desc.split(batch)
        grid_h, grid_w = desc.shape[-2:]
        _, kp_a, kp_a_hat, valid = _loss_inputs(batch, 1, grid_h, grid_w, n, 'cpu', generator)
        loss, _ = cycle_correspondence_loss(desc_a, desc_b, desc_a_hat, kp_a, kp_a_hat, valid)
        loss.backward()
        optimizer.step()
    peak = peak_memory_mib()
    if math.isnan(peak):
        raise RuntimeError('VmHWM not found in /proc/self/status (Linux only)')
    print(peak)


def bench_train_memory(backbone='efficientnet_lite0', batch=4, height=240, width=320, n=500,
                       dim=64) -> dict:
    """
    Peak resident memory (VmHWM, MiB) of one CCL training step, each in its own process.

    ``base_mib``: process with the model built but no step; ``step_mib``: after one step
    (3 x batch images forward, CCL loss, backward, Adam); ``step_extra_mib``: the difference.
    """
    results = {}
    for step in (False, True):
        cmd = [sys.executable, os.path.abspath(__file__), '--memory-worker', backbone,
               str(batch), str(height), str(width), str(n), str(dim), str(int(step))]
        env = dict(os.environ, BENCH_THREADS=str(torch.get_num_threads()))
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        results['step_mib' if step else 'base_mib'] = float(out.stdout.strip().splitlines()[-1])
    results['step_extra_mib'] = results['step_mib'] - results['base_mib']
    results['backbone'] = backbone
    return results


#: (method, trunk mode) pairs of the training-speed table.
TRAIN_CASES = [(m, t) for m in method_names() for t in ('frozen', 'full')]


def _train_worker(method: str, trunk: str, steps: int) -> None:
    """
    In a fresh process: train ``steps`` steps of the package recipe; print s/step and VmHWM.

    320x240, batch 4, N = 500, the default config (conv head, PCA start, foreground keypoints
    and pasted backgrounds, ``train.amp: auto``; a synthetic fixed-camera capture of 24
    frames), ``optim.trunk=<trunk>``. Methods on rendered pairs train on a rendered plane
    scene instead.
    """
    import json
    import tempfile

    from ccl_perception.learning.config import load_config
    from ccl_perception.learning.methods import get_method
    from ccl_perception.learning.synthetic import write_plane_scene, write_static_scene
    from ccl_perception.learning.trainer import Trainer
    threads = int(os.environ.get('BENCH_THREADS', '1'))
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, 'data')
        if get_method(method).rendered_pairs:
            write_plane_scene(root, 6, height=240, width=320)
        else:
            write_static_scene(root, 24, height=240, width=320, squares=4)
        cfg = load_config(None, [f'method={method}', f'data.root={root}', f'optim.trunk={trunk}',
                                 f'train.steps={steps}', f'train.threads={threads}',
                                 'train.progress=false', 'train.image_every=0', 'init_from=null',
                                 'model.head_init_images=8', f'train.checkpoint_every={steps}',
                                 'train.device=cpu'])
        metrics = Trainer(cfg, os.path.join(tmp, 'run')).run()
    print(json.dumps({'step_s': metrics['step_time_s'], 'peak_mib': metrics['peak_memory_mib'],
                      'precision': metrics['precision']}))


def bench_training(steps: int = 8) -> list:
    """s/step and peak RSS of every :data:`TRAIN_CASES` entry, each in its own process."""
    import json
    rows = []
    for method, trunk in TRAIN_CASES:
        cmd = [sys.executable, os.path.abspath(__file__), '--train-worker', method, trunk,
               str(steps)]
        env = dict(os.environ, BENCH_THREADS=str(torch.get_num_threads()))
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        rows.append({'method': method, 'trunk': trunk,
                     **json.loads(out.stdout.strip().splitlines()[-1])})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='descriptor model / CCL benchmarks')
    parser.add_argument('--quick', action='store_true', help='fewer repetitions, one backbone')
    parser.add_argument('--backbones', nargs='+', default=None,
                        help='default: all four (efficientnet_lite0 only with --quick)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (loss/backbone timing)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: as is)')
    parser.add_argument('--trunks', action='store_true',
                        help='only the trunk-mode comparison (dilated vs fpn, contiguous vs '
                             'channels_last) for --backbones (default efficientnet_lite0)')
    parser.add_argument('--reps', type=int, default=None, help='timed repetitions (median)')
    parser.add_argument('--training', action='store_true',
                        help='only the training-speed table (every method, frozen vs full trunk)')
    parser.add_argument('--memory-worker', nargs=7, help=argparse.SUPPRESS)
    parser.add_argument('--train-worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_worker:
        method, trunk, steps = args.train_worker
        _train_worker(method, trunk, int(steps))
        return 0
    if args.memory_worker:
        b, batch, h, w, n, dim, step = args.memory_worker
        _memory_worker(b, int(batch), int(h), int(w), int(n), int(dim), bool(int(step)))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    backbones = args.backbones or (['efficientnet_lite0'] if args.quick else
                                   ['efficientnet_lite0', 'resnet18', 'resnet34', 'resnet50'])
    warmup, reps = (1, 3) if args.quick else (2, 7)
    reps = args.reps or reps
    print(f'device: {device_name(args.device)} | torch {torch.__version__} | '
          f'threads: {torch.get_num_threads()} | warm-up {warmup}, median of {reps}')
    if args.trunks:
        for name in args.backbones or ['efficientnet_lite0']:
            print_trunks(name, bench_trunks(name, device=args.device, warmup=warmup, reps=reps))
        return 0
    if args.training:
        print_training(bench_training())
        return 0

    print('\n[loss vs backbone] batch 4, 240x320 (1/8 map 30x40), N=500, D=64, fwd+bwd')
    print(f'{"backbone":<20}{"backbone ms":>13}{"CCL loss ms":>13}{"loss/backbone":>15}')
    for name in backbones:
        r = bench_loss_vs_backbone(name, device=args.device, warmup=warmup, reps=reps)
        print(
            f'{name:<20}{r["backbone_ms"]:>13.1f}{r["loss_ms"]:>13.1f}{100 * r["ratio"]:>14.1f}%')

    print('\n[ONNX Runtime vs eager PyTorch] 1 image 640x480, CPU, descriptors at 1/8')
    print(f'{"backbone":<20}{"eager ms":>13}{"onnx ms":>13}{"eager/onnx":>15}')
    for name in backbones:
        r = bench_onnx_vs_eager(name, warmup=warmup, reps=reps)
        print(f'{name:<20}{r["eager_ms"]:>13.1f}{r["onnx_ms"]:>13.1f}{r["speedup"]:>14.2f}x')

    print('\n[frame -> pose latency] GraspPipeline.frame_to_pose, 640x480 RGB-D, '
          '3 target keypoints')
    print(f'{"backbone":<20}{"backend":>8}{"total ms":>11}{"descr. ms":>11}{"match ms":>10}'
          f'{"geom. ms":>10}')
    for name in backbones:
        for backend, r in bench_frame_to_pose(name, warmup=warmup, reps=reps).items():
            print(f'{name:<20}{backend:>8}{r["total_ms"]:>11.1f}'
                  f'{r.get("descriptors_ms", float("nan")):>11.1f}'
                  f'{r.get("match_ms", float("nan")):>10.1f}'
                  f'{r.get("geometry_ms", float("nan")):>10.1f}')

    print('\n[training step peak memory] CPU, batch 4 x 3 images, 240x320, N=500 (VmHWM)')
    print(f'{"backbone":<20}{"base MiB":>13}{"step MiB":>13}{"step extra":>15}')
    for name in backbones:
        r = bench_train_memory(name)
        print(
            f'{name:<20}{r["base_mib"]:>13.0f}{r["step_mib"]:>13.0f}{r["step_extra_mib"]:>14.0f}M')
    print_training(bench_training())
    return 0


def print_training(rows: list) -> None:
    """Print the training-speed table: s/step, steps/s, frozen/full speed-up and peak RSS."""
    print('\n[training speed] the package recipe (train.py defaults), efficientnet_lite0, '
          f'320x240, batch 4, N=500, {"/".join(sorted({r["precision"] for r in rows}))} '
          '(train.amp: auto), mean s/step after the first of 8 steps, peak RSS (VmHWM) per '
          'process')
    print(f'{"method":<16}{"trunk":<8}{"s/step":>9}{"steps/s":>9}{"full/frozen":>13}'
          f'{"peak MiB":>10}')
    by = {(r['method'], r['trunk']): r for r in rows}
    for r in rows:
        ratio = (by[(r['method'], 'full')]['step_s'] / r['step_s'] if r['trunk'] == 'frozen'
                 else 1.0)
        print(f'{r["method"]:<16}{r["trunk"]:<8}{r["step_s"]:>9.3f}{1 / r["step_s"]:>9.2f}'
              f'{ratio:>12.2f}x{r["peak_mib"]:>10.0f}')


if __name__ == '__main__':
    sys.exit(main())
