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
Speed and memory of the descriptor model, the planner and the Cycle-Correspondence Loss here.

    python training/benchmark.py --threads 2          # every table (several minutes, 2 cores)
    python training/benchmark.py --quick              # fewer repetitions, default backbone only
    python training/benchmark.py --planner --threads 2   # frame -> pose at the operating point
    python training/benchmark.py --planner --threads 2 --checkpoint runs/x/model.pt --downscales 1
    python training/benchmark.py --training --train-steps 4   # training speed, fp32 | bf16
    python training/benchmark.py --training --isa avx2        # ... as on a CPU without bf16
    python training/benchmark.py --trunks --threads 2   # dilated vs fpn trunk, NCHW vs NHWC

Every number is the median of several timed repetitions after warm-up, measured side by side
in one run (candidates interleaved where it matters, so load changes hit them alike). Every
table starts with the hardware line of :func:`ccl_perception.hardware.describe`: the CPU, its
vector instructions (AVX2 / AVX-512 / AMX, bf16), PyTorch's dispatch level, the dtype and the
thread count. ``--isa avx2`` re-runs the benchmark with PyTorch and oneDNN capped at AVX2
(``hardware.AVX2_ENV``): how a CPU without native bf16 trains.
Targets (issues): CCL loss forward+backward <= 10 % of the backbone's forward+backward
(batch 4, 240x320, N=500, D=64); frame -> pose <= 30 ms at the planner's operating point
(640x480 camera, downscale 2, ONNX Runtime, 2 threads), its depth refinement <= 10 ms,
ONNX Runtime >= 2x eager PyTorch.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ccl_perception import cli, hardware
from ccl_perception.learning.logbook import peak_memory_mib
from ccl_perception.learning.methods import method_names
from ccl_perception.losses import cycle_correspondence_loss
from ccl_perception.model import DescriptorNet
from ccl_perception.validation import integer
import numpy as np
import torch


def table_header(title: str, detail: str = '', device: str = 'cpu', dtype: str = 'fp32',
                 threads=None) -> None:
    """Print a table's title and the hardware line (CPU and ISA, dtype, threads, load)."""
    print(f'\n[{title}] {detail}\n  {hardware.describe(device, dtype, threads)}; load average '
          f'{os.getloadavg()[0]:.1f} (a shared machine: compare within a table)')


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
    table_header('trunk modes', f'{backbone}: eval fwd 1x640x480 | train fwd+bwd 4x240x320; '
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


def interleaved(candidates: dict, warmup: int, reps: int, cpu: dict = None) -> dict:
    """
    Median wall time (ms) of each ``candidates[name]()``, timed in turns within each repetition.

    On a shared machine the load changes during a run; timing the candidates in turns makes
    every candidate see the same load, so their ratios hold even when the absolute times do not.
    ``cpu``: a dict that receives each candidate's median CPU time of this process (ms, all its
    threads): what the work costs, whatever the wait for a core on a loaded machine.
    """
    times = {name: [] for name in candidates}
    cpu_times = {name: [] for name in candidates}
    for rep in range(warmup + reps):
        for name, fn in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if rep >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
                cpu_times[name].append((time.process_time() - start_cpu) * 1e3)
    if cpu is not None:
        cpu.update({name: statistics.median(t) for name, t in cpu_times.items()})
    return {name: statistics.median(t) for name, t in times.items()}


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
        t = interleaved({'eager': eager, 'onnx': lambda: session.run([OUTPUT_NAME], feed)},
                        warmup, reps)
    return {'backbone': backbone, 'eager_ms': t['eager'], 'onnx_ms': t['onnx'],
            'speedup': t['eager'] / t['onnx']}


def model_label(checkpoint: str = None) -> str:
    """``'shipped model (<backbone>, <trunk> trunk)'``, or the checkpoint's path instead."""
    from ccl_perception.checkpoint import load_checkpoint
    from ccl_perception.model_zoo import default_model_path
    config = load_checkpoint(checkpoint or default_model_path())['model_config']
    name = checkpoint or 'shipped model'
    return f'{name} ({config["backbone"]}, {config.get("trunk") or "dilated"} trunk)'


def bench_onnx_variants(height: int, width: int, warmup: int = 2, reps: int = 7,
                        checkpoint: str = None) -> list:
    """
    Time the shipped model (or ``checkpoint``) at ``height`` x ``width``, eager against ONNX.

    Export with dynamic height/width (what ``export_onnx`` writes) or static shapes; the graph
    optimisation level; intra-op spinning (threads that busy-wait for work between runs take
    CPU from the rest of the planner process). Timed in turns.

    Returns:
        rows ``{'variant', 'ms', 'nodes'}`` (nodes: ONNX graph nodes after ORT's optimisation;
        None for eager), the first row eager as ``DescriptorExtractor`` runs it.
    """
    import onnx
    import onnxruntime as ort

    from ccl_perception.checkpoint import load_model
    from ccl_perception.inference import export_onnx, INPUT_NAME, OUTPUT_NAME
    from ccl_perception.model_zoo import default_model_path
    model = load_model(checkpoint or default_model_path()).eval()
    image = torch.rand(1, 3, height, width)
    threads = torch.get_num_threads()
    levels = ort.GraphOptimizationLevel
    with tempfile.TemporaryDirectory() as folder:
        dynamic = export_onnx(model, os.path.join(folder, 'dynamic.onnx'), height, width)
        static = os.path.join(folder, 'static.onnx')
        with torch.no_grad():
            torch.onnx.export(model, (image,), static, dynamo=False, opset_version=17,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])

        def session(path, level=levels.ORT_ENABLE_ALL, spin=True):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.graph_optimization_level = level
            options.add_session_config_entry('session.intra_op.allow_spinning', str(int(spin)))
            options.optimized_model_filepath = path + f'.{int(level)}.{int(spin)}.opt'
            sess = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            return sess, len(onnx.load(options.optimized_model_filepath).graph.node)

        variants = {
            'onnx dynamic shapes (export_onnx), all optimisations': session(dynamic),
            'onnx dynamic, all optimisations, no spinning': session(dynamic, spin=False),
            'onnx static shapes, all optimisations': session(static),
            'onnx static, all optimisations, no spinning': session(static, spin=False),
            'onnx dynamic, extended (no NCHWc layout)':
                session(dynamic, levels.ORT_ENABLE_EXTENDED),
            'onnx dynamic, basic': session(dynamic, levels.ORT_ENABLE_BASIC),
        }
        model_cl = model.to(memory_format=torch.channels_last)
        image_cl = image.contiguous(memory_format=torch.channels_last)
        feed = {INPUT_NAME: image.numpy()}

        def eager():
            with torch.inference_mode():
                model_cl(image_cl)

        candidates = {'eager PyTorch, channels_last (DescriptorExtractor)': eager}
        for name, (sess, _) in variants.items():
            candidates[name] = lambda sess=sess: sess.run([OUTPUT_NAME], feed)
        times = interleaved(candidates, warmup, reps)
    return [{'variant': name, 'ms': ms, 'nodes': variants[name][1] if name in variants else None}
            for name, ms in times.items()]


def print_onnx_variants(rows: list, height: int, width: int, label: str) -> None:
    """Print the ONNX Runtime set-ups with eager/this ratios (``label``: the model)."""
    table_header('ONNX Runtime set-ups', f'{label}, 1 image {width}x{height}, medians, '
                 'timed in turns')
    eager = rows[0]['ms']
    print(f'{"variant":<56}{"ms":>8}{"eager/this":>12}{"graph nodes":>13}')
    for r in rows:
        nodes = '' if r['nodes'] is None else str(r['nodes'])
        print(f'{r["variant"]:<56}{r["ms"]:>8.1f}{eager / r["ms"]:>11.2f}x{nodes:>13}')


#: The planner's camera (a D435 at 640x480) and its operating point (issue "fast on every CPU").
CAMERA = (480, 640)
OPERATING_DOWNSCALE = 2


def planner_frame(height: int = CAMERA[0], width: int = CAMERA[1], seed: int = 0):
    """
    Make a smooth random-texture RGB-D frame: a table 0.5 m away, a box 3 cm high on it, K.

    Returns ``(rgb (H, W, 3) uint8, depth (H, W) float32 metres, K (3, 3), points (10, 2))``;
    ``points`` are 10 target keypoints on the box top (the first two: its grasp axis), as the
    shipped targets have (``sim/auto_targets.py``).
    """
    import cv2
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 8, width // 8, 3)).astype(np.float32)
    rgb = (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
           * 255).astype(np.uint8)
    depth = np.full((height, width), 0.5, np.float32)
    depth[int(0.40 * height):int(0.60 * height), int(0.45 * width):int(0.55 * width)] = 0.47
    f = 0.9 * width
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    spots = [(0.47, 0.5), (0.53, 0.5),                    # the grasp axis, across the box
             (0.47, 0.43), (0.5, 0.43), (0.53, 0.43), (0.47, 0.57), (0.5, 0.57), (0.53, 0.57),
             (0.5, 0.46), (0.5, 0.54)]
    return rgb, depth, K, np.array([(x * width, y * height) for x, y in spots])


def bench_frame_to_pose(checkpoint: str = None, downscales=(OPERATING_DOWNSCALE, 1),
                        backends=('torch', 'onnx'), warmup=2, reps=5) -> list:
    """
    Planner latency, one 640x480 RGB-D frame -> 6D grasp pose (``GraspPipeline``, no ROS).

    The shipped model (or ``checkpoint``) at each ``downscale`` with each backend, timed in
    turns; the target (10 keypoints with their 3D reference) is made from the frame itself, so
    every stage runs to a pose: descriptors, match, geometry (robust depth, RANSAC + Kabsch of
    the reference shape, the depth refinement: ``refine``, the grasp).

    Returns:
        rows ``{'downscale', 'backend', 'total_ms', 'cpu_ms', 'descriptors_ms', 'match_ms',
        'geometry_ms', 'refine_ms', 'descriptors_cpu_ms', 'after_cpu_ms'}`` (medians; wall
        times, and CPU times: ``cpu_ms`` of the process per frame, every thread, spinning
        ones included; ``descriptors_cpu_ms`` the same for the descriptors; ``after_cpu_ms``
        match + geometry on the calling thread). On a loaded machine the CPU times are what
        the work costs, the wall times also the wait for a core.
    """
    from ccl_perception.checkpoint import load_model
    from ccl_perception.grasp_pipeline import GraspPipeline
    from ccl_perception.inference import DescriptorExtractor, export_onnx
    from ccl_perception.model_zoo import default_model_path
    from ccl_perception.targets import make_target

    rgb, depth, K, points = planner_frame()
    model = load_model(checkpoint or default_model_path()).eval()
    cases, stages = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for s in downscales:
            onnx_path = export_onnx(model, os.path.join(folder, f'model{s}.onnx'),
                                    CAMERA[0] // s, CAMERA[1] // s)
            for backend in backends:
                extractor = DescriptorExtractor(
                    model, backend=backend, downscale=s, onnx_threads=torch.get_num_threads(),
                    onnx_path=onnx_path if backend == 'onnx' else None)
                target = make_target(extractor, rgb, points, 'bench', depth=depth, K=K,
                                     calibrate=False)
                # open the similarity and confidence gates (a random-texture frame: every stage
                # must run to a pose); the defaults otherwise
                pipeline = GraspPipeline(extractor, {'min_similarity': -1.0, 'min_confidence': 0.0,
                                                     'per_target_gates': False, 'max_width': 1.0})
                key = (s, backend)
                stages[key] = []

                def run(pipeline=pipeline, target=target, key=key):
                    # frame_to_pose's two halves, to read their CPU times apart: the
                    # descriptors (every thread of the process: ONNX Runtime's and torch's
                    # pools) and the rest (this thread: match + geometry run on it alone)
                    cpu0, start = time.process_time(), time.perf_counter()
                    desc = pipeline.extractor(rgb)
                    cpu1, wall1, thread1 = (time.process_time(), time.perf_counter(),
                                            time.thread_time())
                    result = pipeline.pose_from_descriptors(desc, depth, K, target)
                    if not result.ok:
                        raise RuntimeError(f'benchmark frame abstained: {result.reason}')
                    stages[key].append({**result.timings, 'descriptors': wall1 - start,
                                        'descriptors_cpu': cpu1 - cpu0,
                                        'after_cpu': time.thread_time() - thread1})

                cases[key] = run
        cpu = {}
        totals = interleaved(cases, warmup, reps, cpu)
    rows = []
    for (s, backend), total in totals.items():
        timed = stages[(s, backend)][warmup:]
        rows.append({'downscale': s, 'backend': backend, 'total_ms': total,
                     'cpu_ms': cpu[(s, backend)],
                     **{f'{k}_ms': float(np.median([t[k] for t in timed])) * 1000
                        for k in ('descriptors', 'match', 'geometry', 'refine',
                                  'descriptors_cpu', 'after_cpu')}})
    return rows


def print_frame_to_pose(rows: list, label: str) -> None:
    """Print the frame -> pose table, with torch/onnx ratios per downscale (``label``: model)."""
    table_header('frame -> pose', f'GraspPipeline.frame_to_pose, {label}, 640x480 RGB-D '
                 'camera, 10 target keypoints; medians in ms; operating point downscale 2 + '
                 'onnx: target <= 30 ms total, refine <= 10 ms')
    print(f'{"downscale":>9} {"model input":>11} {"backend":>8} {"total":>8} {"CPU":>7} '
          f'{"descr.":>8} {"CPU":>7} {"match":>7} {"geometry":>9} {"refine":>7} '
          f'{"match+geom. CPU":>16} {"torch/this descr.":>18}')
    by = {(r['downscale'], r['backend']): r for r in rows}
    for r in rows:
        eager = by.get((r['downscale'], 'torch'))
        ratio = eager['descriptors_ms'] / r['descriptors_ms'] if eager else float('nan')
        size = f'{CAMERA[1] // r["downscale"]}x{CAMERA[0] // r["downscale"]}'
        print(f'{r["downscale"]:>9} {size:>11} {r["backend"]:>8} {r["total_ms"]:>8.1f} '
              f'{r["cpu_ms"]:>7.1f} {r["descriptors_ms"]:>8.1f} {r["descriptors_cpu_ms"]:>7.1f} '
              f'{r["match_ms"]:>7.1f} {r["geometry_ms"]:>9.1f} {r["refine_ms"]:>7.1f} '
              f'{r["after_cpu_ms"]:>16.1f} {ratio:>17.2f}x')
    print('  total/descr./match/geometry/refine: wall times; CPU: every thread of the process '
          '(spinning included); match+geom. CPU: the calling thread')


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
#: Precisions of the training-speed table: ``train.amp`` false (fp32) and true (bf16 autocast).
TRAIN_DTYPES = {'fp32': 'false', 'bf16': 'true'}


def _train_worker(method: str, trunk: str, steps: int, dtype: str) -> None:
    """
    In a fresh process: train ``steps`` steps of the package recipe; print s/step and VmHWM.

    320x240, batch 4, N = 500, ``dtype`` (fp32, or bf16 autocast), the default config (conv
    head, PCA start, foreground keypoints and pasted backgrounds; a synthetic fixed-camera
    capture of 24 frames), ``optim.trunk=<trunk>``. Methods on rendered pairs (supervised)
    train on a rendered plane scene instead.
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
                                 f'train.steps={steps}', f'train.amp={TRAIN_DTYPES[dtype]}',
                                 f'train.threads={threads}',
                                 'train.progress=false', 'train.image_every=0', 'init_from=null',
                                 'model.head_init_images=8', f'train.checkpoint_every={steps}',
                                 'train.device=cpu'])
        metrics = Trainer(cfg, os.path.join(tmp, 'run')).run()
    print(json.dumps({'step_s': metrics['step_time_s'], 'peak_mib': metrics['peak_memory_mib'],
                      'precision': metrics['precision']}))


def bench_training(steps: int = 8, dtypes=tuple(TRAIN_DTYPES), cases=None) -> list:
    """
    s/step and peak RSS of every :data:`TRAIN_CASES` entry in every dtype, each in its process.

    The dtypes of a case run one after the other, so a load change hits the pair alike.
    """
    import json
    rows = []
    for method, trunk in cases or TRAIN_CASES:
        row = {'method': method, 'trunk': trunk}
        for dtype in dtypes:
            cmd = [sys.executable, os.path.abspath(__file__), '--train-worker', method, trunk,
                   str(steps), dtype]
            env = dict(os.environ, BENCH_THREADS=str(torch.get_num_threads()))
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            row.update({f'{dtype}_step_s': result['step_s'], f'{dtype}_peak_mib':
                        result['peak_mib']})
        rows.append(row)
    return rows


def print_training(rows: list, steps: int, dtypes=tuple(TRAIN_DTYPES)) -> None:
    """Print the training-speed table: s/step per dtype side by side, ratios, peak RSS."""
    table_header('training speed', f'the package recipe (train.py defaults), efficientnet_lite0, '
                 f'320x240, batch 4, N=500; mean s/step after the first of {steps} steps, peak '
                 'RSS (VmHWM) per process', dtype=' | '.join(dtypes))
    head = ''.join(f'{d + " s/step":>13}' for d in dtypes)
    ratio = f'{dtypes[-1] + "/" + dtypes[0]:>11}' if len(dtypes) > 1 else ''
    print(f'{"method":<16}{"trunk":<8}{head}{ratio}{"full/frozen":>13}{"peak MiB":>16}')
    by = {(r['method'], r['trunk']): r for r in rows}
    for r in rows:
        first = f'{dtypes[0]}_step_s'
        full = by.get((r['method'], 'full'))
        speedup = (f'{full[first] / r[first]:>12.2f}x' if r['trunk'] == 'frozen' and full
                   else f'{"":>13}')
        times = ''.join(f'{r[f"{d}_step_s"]:>13.3f}' for d in dtypes)
        slower = (f'{r[f"{dtypes[-1]}_step_s"] / r[first]:>10.2f}x' if len(dtypes) > 1
                  else '')
        peaks = ' / '.join(f'{r[f"{d}_peak_mib"]:.0f}' for d in dtypes)
        print(f'{r["method"]:<16}{r["trunk"]:<8}{times}{slower}{speedup}{peaks:>16}')


#: The tables in the order a run prints them (``--only``; the default: all but the last two).
TABLES = ('loss', 'onnx', 'planner', 'memory', 'training', 'onnx-variants', 'trunks')


def run_table(table: str, args, backbones: list, cases: list, warmup: int, reps: int) -> None:
    """Measure and print one of :data:`TABLES`."""
    if table == 'loss':
        table_header('loss vs backbone', 'batch 4, 240x320 (1/8 map 30x40), N=500, D=64, '
                     'fwd+bwd', args.device)
        print(f'{"backbone":<20}{"backbone ms":>13}{"CCL loss ms":>13}{"loss/backbone":>15}')
        for name in backbones:
            r = bench_loss_vs_backbone(name, device=args.device, warmup=warmup, reps=reps)
            print(f'{name:<20}{r["backbone_ms"]:>13.1f}{r["loss_ms"]:>13.1f}'
                  f'{100 * r["ratio"]:>14.1f}%')
    elif table == 'onnx':
        table_header('ONNX Runtime vs eager PyTorch', '1 image 640x480, CPU, descriptors at '
                     '1/8, timed in turns')
        print(f'{"backbone":<20}{"eager ms":>13}{"onnx ms":>13}{"eager/onnx":>15}')
        for name in backbones:
            r = bench_onnx_vs_eager(name, warmup=warmup, reps=reps)
            print(f'{name:<20}{r["eager_ms"]:>13.1f}{r["onnx_ms"]:>13.1f}'
                  f'{r["speedup"]:>14.2f}x')
    elif table == 'planner':
        print_frame_to_pose(bench_frame_to_pose(args.checkpoint, tuple(args.downscales),
                                                warmup=warmup, reps=reps),
                            model_label(args.checkpoint))
    elif table == 'memory':
        table_header('training step peak memory', 'CPU, batch 4 x 3 images, 240x320, N=500 '
                     '(VmHWM)')
        print(f'{"backbone":<20}{"base MiB":>13}{"step MiB":>13}{"step extra":>15}')
        for name in backbones:
            r = bench_train_memory(name)
            print(f'{name:<20}{r["base_mib"]:>13.0f}{r["step_mib"]:>13.0f}'
                  f'{r["step_extra_mib"]:>14.0f}M')
    elif table == 'training':
        print_training(bench_training(args.train_steps, tuple(args.dtypes), cases),
                       args.train_steps, tuple(args.dtypes))
    elif table == 'onnx-variants':
        for s in args.downscales:
            size = (CAMERA[0] // s, CAMERA[1] // s)
            print_onnx_variants(bench_onnx_variants(*size, warmup, reps, args.checkpoint), *size,
                                model_label(args.checkpoint))
    elif table == 'trunks':
        for name in args.backbones or ['efficientnet_lite0']:
            print_trunks(name, bench_trunks(name, device=args.device, warmup=warmup, reps=reps))


def main(argv=None) -> int:
    parser = cli.ArgumentParser(prog='benchmark', description='descriptor model / CCL benchmarks')
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
                        help='only the training-speed table (every method, frozen vs full trunk, '
                             'fp32 and bf16)')
    parser.add_argument('--train-steps', type=int, default=8,
                        help='steps per training-speed case (the first is not timed)')
    parser.add_argument('--dtypes', nargs='+', choices=list(TRAIN_DTYPES),
                        default=list(TRAIN_DTYPES), help='precisions of the training table')
    parser.add_argument('--methods', nargs='+', default=None,
                        help='training table: only these methods (default: all four)')
    parser.add_argument('--trunk-modes', nargs='+', choices=['frozen', 'full'],
                        default=['frozen', 'full'], help='training table: only these trunk modes')
    parser.add_argument('--planner', action='store_true',
                        help='only the frame -> pose table (operating point and downscale 1)')
    parser.add_argument('--checkpoint', default=None,
                        help='model of the planner and onnx-variants tables (default: the '
                             'shipped model)')
    parser.add_argument('--downscales', nargs='+', type=cli.arg_type(integer(1, 8)),
                        default=[OPERATING_DOWNSCALE, 1],
                        help='planner and onnx-variants tables: camera -> model shrink factors '
                             f'of the {CAMERA[1]}x{CAMERA[0]} camera (default: 2 1)')
    parser.add_argument('--onnx-variants', action='store_true',
                        help='only the ONNX Runtime set-ups against eager, 320x240 and 640x480')
    parser.add_argument('--isa', choices=['native', 'avx2'], default='native',
                        help='avx2: run everything with PyTorch and oneDNN capped at AVX2 (how '
                             'a CPU without bf16 instructions behaves)')
    parser.add_argument('--only', nargs='+', choices=TABLES, default=None,
                        help='only these tables (default: all but onnx-variants and trunks)')
    parser.add_argument('--memory-worker', nargs=7, help=argparse.SUPPRESS)
    parser.add_argument('--train-worker', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_worker:
        method, trunk, steps, dtype = args.train_worker
        _train_worker(method, trunk, int(steps), dtype)
        return 0
    if args.memory_worker:
        b, batch, h, w, n, dim, step = args.memory_worker
        _memory_worker(b, int(batch), int(h), int(w), int(n), int(dim), bool(int(step)))
        return 0
    if args.checkpoint:
        from ccl_perception.checkpoint import CheckpointError
        try:  # missing / corrupt: one line, before anything is measured
            model_label(args.checkpoint)
        except (CheckpointError, ValueError, OSError) as exc:
            return cli.fail('benchmark', exc)
    if args.isa == 'avx2' and any(os.environ.get(k) != v for k, v in hardware.AVX2_ENV.items()):
        # the caps are read when torch loads: start again with them
        argv = sys.argv if argv is None else [sys.argv[0]] + list(argv)
        os.execve(sys.executable, [sys.executable] + argv, {**os.environ, **hardware.AVX2_ENV})
    if args.threads:
        torch.set_num_threads(args.threads)
    backbones = args.backbones or (['efficientnet_lite0'] if args.quick else
                                   ['efficientnet_lite0', 'resnet18', 'resnet34', 'resnet50'])
    warmup, reps = (1, 3) if args.quick else (2, 7)
    reps = args.reps or reps
    print(f'torch {torch.__version__} | warm-up {warmup}, median of {reps} | '
          f'{hardware.describe(args.device)}')
    cases = [c for c in TRAIN_CASES if (args.methods is None or c[0] in args.methods)
             and c[1] in args.trunk_modes]
    only = set(args.only or [])
    only |= {name for name, flag in (('trunks', args.trunks), ('training', args.training),
                                     ('planner', args.planner),
                                     ('onnx-variants', args.onnx_variants)) if flag}
    tables = only or set(TABLES) - {'trunks', 'onnx-variants'}
    for table in TABLES:
        if table in tables:
            run_table(table, args, backbones, cases, warmup, reps)
    return 0


if __name__ == '__main__':
    sys.exit(main())
