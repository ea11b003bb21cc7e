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
The GPU path, run once: training, DDP and inference on a CUDA GPU, written to one JSON.

    bash training/gpu_check.sh --out gpu_check.json          # a CUDA machine, <= 10 min
    bash training/gpu_check.sh --dry-run --out dry.json      # the same code on the CPU, seconds

Sections (each one's result or its one-line error goes into the JSON, written after every
section, so a run cut short still reports what it measured):

``env``         torch, CUDA and the device, the hardware line, ONNX Runtime's providers.
``train_step``  the recipe's training step (training/configs/ccl_iv.yaml: frozen trunk, conv
                head, 320x240, batch 4, N = 500) through ``Trainer``, with ``train.amp``
                false (fp32) and true (fp16 + GradScaler on CUDA, bf16 on the CPU); and one
                model + CCL loss forward/backward under fp32, fp16 and bf16 autocast.
``ddp``         the trainer's DDP path with a process group of world size 1 (NCCL on CUDA,
                gloo on the CPU): a few steps, the replica checksum.
``train_full``  a short full training of the shipped recipe (ccl_iv on ``--train-root`` with
                ``--val-pairs``, ``training/train.py``), then its evaluation on
                ``--eval-pairs`` (``training/evaluate.py``): AUC, PCK, wall times.
``inference``   one 640x480 image -> descriptors: torch fp32 and fp16 (channels_last,
                inference mode), ONNX Runtime with the CUDA execution provider when it is
                available (else the reason), medians of timed runs after warm-up.

``--dry-run`` runs every section on the CPU with tiny sizes, a few steps and synthetic data
(a static scene for training, a textured plane seen from shifted cameras for the pairs), so
a test can run the whole script in seconds (test/test_gpu_check.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Sizes of a real run and of the dry run.
PROFILES = {
    'gpu': {'device': 'cuda', 'height': 240, 'width': 320, 'batch': 4, 'keypoints': 500,
            'step_repeats': 20, 'ddp_steps': 10, 'train_steps': 500, 'eval_every': 125,
            'infer_height': 480, 'infer_width': 640, 'infer_reps': 50, 'warmup': 5,
            'train_timeout_s': 330, 'frames': 24},
    'dry': {'device': 'cpu', 'height': 48, 'width': 64, 'batch': 2, 'keypoints': 32,
            'step_repeats': 3, 'ddp_steps': 2, 'train_steps': 2, 'eval_every': 1,
            'infer_height': 48, 'infer_width': 64, 'infer_reps': 2, 'warmup': 1,
            'train_timeout_s': 120, 'frames': 6},
}


def _sync(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def median_ms(fn, device: str, warmup: int, reps: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (the device synchronised around each)."""
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


def recipe_config(p: dict, root: str, steps: int, amp: bool, extra=()) -> dict:
    """Return the shipped recipe's config (ccl_iv over default.yaml) at ``p``'s sizes."""
    from ccl_perception.learning.config import load_config
    overrides = [f'data.root={root}', f'data.height={p["height"]}', f'data.width={p["width"]}',
                 f'data.num_keypoints={p["keypoints"]}', f'train.batch_size={p["batch"]}',
                 f'train.steps={steps}', f'train.amp={str(amp).lower()}',
                 f'train.device={p["device"]}', 'train.progress=false', 'train.image_every=0',
                 f'train.checkpoint_every={steps}', 'init_from=null',
                 f'model.head_init_images={min(8, p["frames"])}', *extra]
    if p['device'] == 'cpu':   # the dry run: no weights file, one thread
        overrides += ['model.pretrained=false', 'train.threads=1']
    return load_config(os.path.join(ROOT, 'training', 'configs', 'ccl_iv.yaml'), overrides)


def section_env(p: dict) -> dict:
    """Name the software and the hardware: torch, CUDA, the device, ONNX Runtime's providers."""
    import torch

    from ccl_perception import hardware
    out = {'torch': torch.__version__, 'cuda_available': torch.cuda.is_available(),
           'hardware': hardware.describe(p['device'])}
    if p['device'] == 'cuda':
        out.update(cuda=torch.version.cuda, device_name=torch.cuda.get_device_name(0),
                   memory_gib=torch.cuda.get_device_properties(0).total_memory / 2 ** 30,
                   bf16_supported=torch.cuda.is_bf16_supported(),
                   nccl_available=torch.distributed.is_nccl_available())
    try:
        import onnxruntime as ort
        out['onnxruntime'] = {'version': ort.__version__,
                              'providers': ort.get_available_providers()}
    except ImportError as exc:
        out['onnxruntime'] = f'not installed: {exc}'
    return out


def section_train_step(p: dict, work: str) -> dict:
    """Time the recipe's step (Trainer, amp off / on) and model + loss per autocast dtype."""
    import torch

    from ccl_perception.learning.synthetic import write_static_scene
    from ccl_perception.learning.trainer import Trainer
    from ccl_perception.losses import cycle_correspondence_loss
    from ccl_perception.model import build_model
    root = os.path.join(work, 'static')
    write_static_scene(root, p['frames'], height=p['height'], width=p['width'], squares=4)
    out = {'trainer': {}}
    for amp in (False, True):
        cfg = recipe_config(p, root, p['step_repeats'], amp)
        metrics = Trainer(cfg, os.path.join(work, f'step_amp{int(amp)}')).run()
        out['trainer']['amp' if amp else 'fp32'] = {
            'step_s': metrics['step_time_s'], 'peak_memory_mib': metrics.get('peak_memory_mib')}
    device = p['device']
    model = build_model({'pretrained': device != 'cpu'}).to(device).train()
    model.set_trunk_mode('frozen')
    images = torch.rand(3 * p['batch'], 3, p['height'], p['width'], device=device)
    h, w = -(-p['height'] // 8), -(-p['width'] // 8)
    g = torch.Generator().manual_seed(0)
    kp = (torch.rand(p['batch'], p['keypoints'], 2, generator=g)
          * torch.tensor([w - 1.0, h - 1.0])).to(device)
    valid = torch.ones(p['batch'], p['keypoints'], dtype=torch.bool, device=device)
    dtypes = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
    out['model_and_loss_ms'] = {}
    for name, dtype in dtypes.items():
        if dtype == torch.float16 and device == 'cpu':
            out['model_and_loss_ms'][name] = 'skipped: fp16 autocast is a GPU path'
            continue

        def step():
            model.zero_grad(set_to_none=True)
            with torch.autocast(device.split(':')[0], dtype=dtype or torch.float32,
                                enabled=dtype is not None):
                desc = model(images)
            a, b, a_hat = desc.float().split(p['batch'])
            loss, _ = cycle_correspondence_loss(a, b, a_hat, kp, kp, valid)
            loss.backward()
        try:
            out['model_and_loss_ms'][name] = median_ms(step, device, p['warmup'],
                                                       p['step_repeats'])
        except RuntimeError as exc:          # e.g. an autocast dtype this device lacks
            out['model_and_loss_ms'][name] = f'failed: {str(exc).splitlines()[0]}'
    return out


def section_ddp(p: dict, work: str) -> dict:
    """Run the trainer's DDP path at world size 1 (NCCL on CUDA, gloo on the CPU)."""
    import socket

    import torch
    import torch.distributed as dist

    from ccl_perception.learning.distributed import DistContext
    from ccl_perception.learning.trainer import Trainer
    backend = 'nccl' if p['device'] == 'cuda' else 'gloo'
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    device = torch.device('cuda', 0) if p['device'] == 'cuda' else torch.device('cpu')
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{port}', rank=0,
                            world_size=1)
    try:
        probe = torch.arange(4.0, device=device)
        dist.all_reduce(probe)
        ctx = DistContext(rank=0, world_size=1, local_rank=0, device=device, initialized=True)
        root = os.path.join(work, 'static')
        cfg = recipe_config(p, root, p['ddp_steps'], p['device'] == 'cuda')
        trainer = Trainer(cfg, os.path.join(work, 'ddp'), ctx=ctx)
        wrapped = type(getattr(trainer, 'ddp', None)).__name__
        metrics = trainer.run()
    finally:
        dist.destroy_process_group()
    return {'backend': backend, 'world_size': 1, 'all_reduce_ok': probe.tolist() == [0, 1, 2, 3],
            'model_wrapper': wrapped, 'step_s': metrics['step_time_s'],
            'final_step': metrics.get('final_step')}


def _plane_pairs(folder: str, count: int, height: int, width: int) -> str:
    """Write a pairs file over a plane seen from shifted cameras (the dry run's eval set)."""
    import numpy as np

    from ccl_perception.evaluation.pairs import save_pairs
    from ccl_perception.learning.synthetic import write_plane_scene
    from ccl_perception.sim.camera import Camera
    metas = write_plane_scene(folder, count, height=height, width=width)
    xs, ys = np.meshgrid(np.linspace(-0.12, 0.12, 5), np.linspace(-0.1, 0.1, 4))
    world = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1)
    images = []
    for meta in metas:
        cam = Camera.from_dict(meta['camera'])
        uv, _ = cam.project(world)
        images.append({'file': meta['image'], 'objects': {'plane': {
            'keypoints': uv.tolist(), 'visible': [bool(v) for v in cam.in_image(uv)]}}})
    path = os.path.join(folder, 'pairs.json')
    save_pairs(path, images, [{'image_1': i, 'image_2': i + 1} for i in range(count - 1)])
    return path


def _run(cmd: list, timeout: float) -> dict:
    """Run ``cmd`` in the repository; its wall time, exit code and last stderr line."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {'wall_s': time.perf_counter() - start, 'error': f'timed out after {timeout} s'}
    out = {'wall_s': time.perf_counter() - start, 'exit': done.returncode}
    if done.returncode:
        out['error'] = (done.stderr.strip().splitlines() or ['(no stderr)'])[-1]
    return out


def section_train_full(p: dict, work: str, args) -> dict:
    """``training/train.py`` on the shipped recipe, then ``training/evaluate.py``."""
    if args.dry_run:
        train_root = os.path.join(work, 'static')
        val_pairs = _plane_pairs(os.path.join(work, 'plane'), 3, p['height'], p['width'])
        eval_pairs = val_pairs
    else:
        train_root, val_pairs, eval_pairs = args.train_root, args.val_pairs, args.eval_pairs
        for path in (train_root, val_pairs, eval_pairs):
            if not os.path.exists(path):
                raise FileNotFoundError(f'{path} is missing (make data, or gpu_check.sh --pack)')
    run = os.path.join(work, 'train_full')
    steps = args.train_steps or p['train_steps']
    sets = [f'data.root={train_root}', f'val_pairs={val_pairs}', f'train.steps={steps}',
            f'train.device={p["device"]}', f'train.amp={str(p["device"] == "cuda").lower()}',
            f'train.eval_every={p["eval_every"]}', f'train.checkpoint_every={steps}',
            'train.eval_max_pairs=0', 'train.progress=false', 'init_from=null', 'seed=0']
    if args.dry_run:
        sets += [f'data.height={p["height"]}', f'data.width={p["width"]}',
                 f'data.num_keypoints={p["keypoints"]}', f'train.batch_size={p["batch"]}',
                 'model.pretrained=false', f'model.head_init_images={p["frames"]}',
                 'train.threads=1']
    cmd = [sys.executable, 'training/train.py', '--config', 'training/configs/ccl_iv.yaml',
           '--out', run] + [a for s in sets for a in ('--set', s)]
    out = {'steps': steps, 'train_root': train_root, 'train': _run(cmd, p['train_timeout_s'])}
    metrics_path = os.path.join(run, 'metrics.json')
    if os.path.isfile(metrics_path):
        with open(metrics_path) as handle:
            metrics = json.load(handle)
        out['train'].update(step_s=metrics.get('step_time_s'), best_step=metrics.get('best_step'),
                            val_auc=(metrics.get('validation') or {}).get('auc'))
    model = os.path.join(run, 'model.pt')
    if os.path.isfile(model):
        result = os.path.join(work, 'eval.json')
        out['eval'] = _run([sys.executable, 'training/evaluate.py', '--checkpoint', model,
                            '--pairs', eval_pairs, '--json', result, '--device',
                            p['device']], p['train_timeout_s'])
        if os.path.isfile(result):
            with open(result) as handle:
                ev = json.load(handle)
            out['eval'].update(pairs=eval_pairs, auc=ev.get('auc'), pck=ev.get('pck'),
                               num_pairs=ev.get('num_pairs'))
    return out


def section_inference(p: dict, work: str) -> dict:
    """One image -> descriptors: torch fp32 / fp16 and ONNX Runtime (CUDA EP when there)."""
    import torch

    from ccl_perception.checkpoint import load_model
    from ccl_perception.inference import export_onnx, INPUT_NAME, OUTPUT_NAME
    from ccl_perception.model_zoo import default_model_path
    device, h, w = p['device'], p['infer_height'], p['infer_width']
    model = load_model(default_model_path()).eval().to(device).to(
        memory_format=torch.channels_last)
    image = torch.rand(1, 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
    out = {'size': f'{w}x{h}', 'torch_ms': {}}
    for name, dtype in (('fp32', torch.float32), ('fp16', torch.float16)):
        if dtype == torch.float16 and device == 'cpu':
            out['torch_ms'][name] = 'skipped: fp16 inference is a GPU path'
            continue
        net, x = model.to(dtype), image.to(dtype)
        with torch.inference_mode():
            out['torch_ms'][name] = median_ms(lambda: net(x), device, p['warmup'],
                                              p['infer_reps'])
    model.float()
    try:
        import onnxruntime as ort
    except ImportError as exc:
        out['onnx'] = f'onnxruntime not installed: {exc}'
        return out
    provider = 'CUDAExecutionProvider' if device == 'cuda' else 'CPUExecutionProvider'
    if provider not in ort.get_available_providers():
        out['onnx'] = (f'{provider} not available (providers: '
                       f'{", ".join(ort.get_available_providers())})')
        return out
    path = export_onnx(model.cpu(), os.path.join(work, 'model.onnx'), h, w)
    session = ort.InferenceSession(path, providers=[provider])
    feed = {INPUT_NAME: image.float().cpu().contiguous().numpy()}
    out['onnx'] = {'provider': session.get_providers()[0], 'ms': median_ms(
        lambda: session.run([OUTPUT_NAME], feed), 'cpu', p['warmup'], p['infer_reps'])}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', required=True, help='the JSON to write')
    parser.add_argument('--dry-run', action='store_true',
                        help='the CPU, tiny sizes, synthetic data (seconds)')
    parser.add_argument('--train-root', default='data/v2/train')
    parser.add_argument('--val-pairs', default='data/v2/val/pairs.json')
    parser.add_argument('--eval-pairs', default='data/v2/eval/pairs.json')
    parser.add_argument('--train-steps', type=int, default=None,
                        help='steps of train_full (default: 500 on a GPU, 2 dry)')
    parser.add_argument('--sections', nargs='+',
                        default=['env', 'train_step', 'ddp', 'train_full', 'inference'])
    args = parser.parse_args(argv)
    p = PROFILES['dry' if args.dry_run else 'gpu']
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print('gpu_check: no CUDA device here (use --dry-run for the CPU path)', file=sys.stderr)
        return 2
    if args.dry_run:
        torch.set_num_threads(1)
    report = {'profile': 'dry-run (CPU)' if args.dry_run else 'gpu', 'started':
              time.strftime('%Y-%m-%d %H:%M:%S'), 'sections': {}}
    functions = {'env': lambda w: section_env(p), 'train_step': lambda w: section_train_step(p, w),
                 'ddp': lambda w: section_ddp(p, w),
                 'train_full': lambda w: section_train_full(p, w, args),
                 'inference': lambda w: section_inference(p, w)}
    failed = 0
    with tempfile.TemporaryDirectory(prefix='ccl_gpu_check_') as work:
        for name in args.sections:
            start = time.perf_counter()
            try:
                result = functions[name](work)
            except Exception as exc:  # noqa: BLE001 - one section's failure is its result
                result, failed = {'error': f'{type(exc).__name__}: {exc}'}, failed + 1
            result['section_s'] = round(time.perf_counter() - start, 2)
            report['sections'][name] = result
            print(f'gpu_check: {name} done in {result["section_s"]} s'
                  + (f' ({result["error"]})' if 'error' in result else ''), flush=True)
            with open(args.out, 'w') as handle:
                json.dump(report, handle, indent=1)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
