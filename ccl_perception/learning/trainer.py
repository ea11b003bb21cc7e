"""The training loop of every method: identical view (Eq. 10), CCL (Eq. 9), CCL + identical view, supervised.

One step (methods other than ``supervised``):

1. a batch of pairs ``(I_A, I_B)`` (:class:`~ccl_perception.learning.dataset.ImagePairs`) and
   keypoints ``k_A`` on the 1/8 grid;
2. ``Î_A`` = augmented ``I_A`` with the exact homography ``H`` (``ccl_perception.augment``);
   ``k_Â = full_to_grid(warp(grid_to_full(k_A), H))``, points leaving ``Î_A`` are masked;
3. one forward pass of ``[I_A, Î_A, (I_B)]`` through the (DDP-wrapped) model, optionally under
   autocast (bf16 on CPU, fp16 + GradScaler on CUDA); the loss itself runs in float32;
4. :class:`~ccl_perception.losses.CorrespondenceLoss`; AdamW step.

``supervised`` replaces ``Î_A`` by a second rendered view ``I_B`` whose exact correspondences
come from depth and camera poses (:mod:`~ccl_perception.learning.supervised`).

Rank 0 writes ``<out>/checkpoint.pt`` every ``train.checkpoint_every`` steps (atomic; model,
optimiser, scaler, step, every rank's RNG states, config), TensorBoard logs in ``<out>/tb``,
and at the end ``<out>/model.pt`` and ``<out>/metrics.json``.
"""

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from ..correspondence import full_to_grid, grid_to_full, heatmap_softmax, cosine_heatmap, sample_descriptors
from ..losses import CorrespondenceLoss
from . import distributed
from .config import dump_config
from .dataset import DatasetError, ImagePairs

LOG = logging.getLogger(__name__)

CHECKPOINT_NAME = 'checkpoint.pt'
FINAL_NAME = 'model.pt'


class TrainingError(RuntimeError):
    """A run cannot start or continue (e.g. nothing to resume, output folder already used)."""


# ----------------------------------------------------------------------------- small helpers
def peak_memory_mib() -> float:
    """Peak resident memory of this process (``VmHWM`` of /proc/self/status) in MiB; NaN if unknown."""
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def json_safe(value):
    """``value`` with NaN / inf floats replaced by None (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def finished_metrics(out: Path, step: int) -> dict:
    """The metrics a finished run wrote (``<out>/metrics.json``), or ``{'final_step': step}``."""
    try:
        return json.loads((Path(out) / 'metrics.json').read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {'final_step': step}


def get_rng_state() -> dict:
    """Python, numpy and torch (CPU and CUDA) RNG states in a ``weights_only``-loadable form."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        'python': [py[0], list(py[1]), py[2]],
        'numpy': {'keys': torch.from_numpy(np_state[1].astype(np.int64)), 'pos': int(np_state[2]),
                  'has_gauss': int(np_state[3]), 'cached_gaussian': float(np_state[4])},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    n = state['numpy']
    np.random.set_state(('MT19937', n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'],
                         n['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper."""
    return model.module if hasattr(model, 'module') else model


def _model_config(cfg: dict) -> dict:
    return {'backbone': cfg['model']['backbone'], 'descriptor_dim': cfg['model']['descriptor_dim'],
            'pretrained': cfg['model']['pretrained'], 'trunk': cfg['model'].get('trunk')}


def heatmap_figure(image_a: torch.Tensor, kp: torch.Tensor, target: torch.Tensor,
                   prob: torch.Tensor, stride: int) -> torch.Tensor:
    """A TensorBoard image: ``I_A`` with the query point next to the target with its heatmap.

    Args:
        image_a, target: ``(3, H, W)`` float in [0, 1].
        kp: ``(2,)`` query point in grid coordinates of ``image_a``'s map.
        prob: ``(h, w)`` heatmap over ``target``'s map.
        stride: model stride.

    Returns:
        ``(3, H, 2W)`` float image in [0, 1].
    """
    _, height, width = image_a.shape
    left = image_a.clone()
    x, y = (grid_to_full(kp.float(), stride)).round().long().tolist()
    x0, x1 = max(0, x - 2), min(width, x + 3)
    y0, y1 = max(0, y - 2), min(height, y + 3)
    left[:, y0:y1, x0:x1] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    heat = torch.nn.functional.interpolate(prob[None, None].float(), size=(height, width),
                                           mode='bilinear', align_corners=False)[0, 0]
    heat = heat / heat.max().clamp(min=1e-12)
    right = target.clone() * (1.0 - 0.6 * heat) + 0.6 * heat * torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    return torch.cat([left, right], dim=2).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------------- trainer
class Trainer:
    """Trains one method from a merged config (see ``training/configs/default.yaml``).

    Args:
        cfg: merged config dict (:func:`~ccl_perception.learning.config.load_config`).
        out_dir: run folder for checkpoints, TensorBoard logs and metrics.
        resume: a checkpoint path to continue from, ``'auto'`` for ``<out>/checkpoint.pt``, or None.
        ctx: distributed context; :func:`distributed.init_distributed` when None.
    """

    def __init__(self, cfg: dict, out_dir, resume=None, ctx: distributed.DistContext = None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.ctx = ctx or distributed.init_distributed(cfg['train']['device'])
        self.device = self.ctx.device
        tcfg = cfg['train']
        if tcfg['threads']:
            torch.set_num_threads(int(tcfg['threads']))
        self.method = cfg['method']
        self.step = 0
        self.skipped_lazy = 0

        resume_path = self._resume_path(resume)
        # Fresh runs start from (seed + rank); a resumed run overwrites this from the checkpoint.
        seed_everything(int(cfg['seed']) + self.ctx.rank)

        from ..model import build_model  # model engineer's module
        model_cfg = _model_config(cfg)
        if resume_path is not None or cfg['init_from']:
            model_cfg['pretrained'] = False  # weights come from a checkpoint: skip the ImageNet load
        self.model = build_model(model_cfg).to(self.device)
        # channels_last: the depthwise-conv backward of efficientnet_lite0 is ~5x faster on the CPU.
        self.memory_format = torch.channels_last if tcfg['channels_last'] else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.stride = int(getattr(self.model, 'stride', 8))
        if cfg['init_from'] and resume_path is None:
            self._init_from(cfg['init_from'])
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=float(cfg['optim']['lr']),
                                           weight_decay=float(cfg['optim']['weight_decay']))
        self.amp = bool(tcfg['amp'])
        self.amp_dtype = torch.float16 if self.device.type == 'cuda' else torch.bfloat16
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp and self.device.type == 'cuda')
        lcfg = cfg['loss']
        self.criterion = CorrespondenceLoss(
            self.method, tau=float(lcfg['tau']), quantile=float(lcfg['quantile']),
            lambda_iv=float(lcfg['lambda_iv']), use_quantile_drop=bool(lcfg['use_quantile_drop']),
            use_variance_scaling=bool(lcfg['use_variance_scaling']))
        self.augment = None
        if self.method != 'supervised':
            from ..augment import CorrespondenceAugmentation
            self.augment = CorrespondenceAugmentation(dict(cfg['augment']))

        self.dataset = self._build_dataset()
        if resume_path is not None:
            self._load_resume(resume_path)
        if self.ctx.initialized:
            ddp_kwargs = {'device_ids': [self.device.index]} if self.device.type == 'cuda' else {}
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, **ddp_kwargs)
        else:
            self.ddp = self.model
        self.writer = None
        self.evaluate_fn = self._find_evaluator() if cfg['val_pairs'] else None

    # ------------------------------------------------------------------ set-up
    def _resume_path(self, resume):
        ckpt = self.out / CHECKPOINT_NAME
        if resume is None:
            if ckpt.exists():
                raise TrainingError(f'{self.out} already holds a run ({ckpt}); pass --resume to continue '
                                    'it or choose another --out')
            return None
        path = ckpt if resume in (True, 'auto') else Path(resume)
        if not path.exists():
            raise TrainingError(f'--resume: no checkpoint at {path} (run without --resume to start fresh)')
        return path

    def _build_dataset(self):
        dcfg, tcfg = self.cfg['data'], self.cfg['train']
        common = dict(height=dcfg['height'], width=dcfg['width'], batch_size=tcfg['batch_size'],
                      num_keypoints=dcfg['num_keypoints'], seed=int(self.cfg['seed']), rank=self.ctx.rank)
        if self.method == 'supervised':
            from .supervised import RenderedPairs
            return RenderedPairs(dcfg['root'], **common)
        ds = ImagePairs(dcfg['root'], verify=bool(dcfg['verify_images']),
                        load_b=self.criterion.needs_second_image, **common)
        if self.criterion.needs_second_image and len(ds.paths) < 2:
            raise DatasetError(f'method {self.method} needs pairs of different images, but {dcfg["root"]} '
                               'has only one usable image')
        if ds.skipped and self.ctx.is_main:
            LOG.warning('%d corrupt images skipped under %s', len(ds.skipped), dcfg['root'])
        return ds

    def _init_from(self, path) -> None:
        """Copy model weights from a checkpoint (paper: CCL starts from an identical-view model)."""
        from ..checkpoint import load_model
        source = load_model(str(path), device='cpu')
        theirs, ours = getattr(source, 'config', {}), getattr(self.model, 'config', {})
        for key in ('backbone', 'descriptor_dim', 'trunk'):
            if key in theirs and key in ours and theirs[key] != ours[key]:
                raise TrainingError(f'init_from {path}: {key} is {theirs[key]!r} there but {ours[key]!r} in '
                                    'this config')
        self.model.load_state_dict(source.state_dict())
        if self.ctx.is_main:
            LOG.info('initialised model weights from %s', path)

    def _load_resume(self, path) -> None:
        from ..checkpoint import load_checkpoint
        ckpt = load_checkpoint(str(path))
        extra = ckpt.get('extra') or {}
        for key in ('method',):
            if extra.get('config', {}).get(key) not in (None, self.cfg[key]):
                raise TrainingError(f'--resume {path}: checkpoint was trained with {key}='
                                    f'{extra["config"][key]!r}, config says {self.cfg[key]!r}')
        if ckpt.get('optimizer_state') is None:
            raise TrainingError(f'--resume {path}: checkpoint has no optimiser state (a final model.pt?)')
        ours = {k: self.model.config.get(k) for k in ('backbone', 'descriptor_dim', 'trunk')}
        theirs = {k: ckpt['model_config'].get(k) for k in ours}
        if ours != theirs:
            raise TrainingError(f'--resume {path}: checkpoint model {theirs} differs from the config {ours}')
        self.model.load_state_dict(ckpt['model_state'])
        self.optimizer.load_state_dict(ckpt['optimizer_state'])
        if extra.get('scaler'):
            self.scaler.load_state_dict(extra['scaler'])
        self.step = int(ckpt['step'])
        self.skipped_lazy = int(extra.get('skipped_lazy', 0))
        states = extra.get('rng') or []
        if len(states) == self.ctx.world_size:
            set_rng_state(states[self.ctx.rank])
        else:
            LOG.warning('checkpoint holds RNG states of %d ranks, this run has %d: reseeding',
                        len(states), self.ctx.world_size)
            seed_everything(int(self.cfg['seed']) + self.ctx.rank + 7919 * self.step)
        if self.ctx.is_main:
            LOG.info('resumed %s at step %d', path, self.step)

    def _find_evaluator(self):
        try:
            from ..evaluation.evaluate import evaluate_model
        except ImportError as exc:
            LOG.warning('val_pairs is set but ccl_perception.evaluation.evaluate is unavailable (%s): '
                        'no evaluation', exc)
            return None
        return evaluate_model

    # -------------------------------------------------------------------- step
    def prepare(self, batch: dict):
        """Move a batch to the device and build the views and keypoints of one step.

        Returns:
            ``(images, kp_a, kp_a_hat, valid, n_maps)``: images ``(n_maps*B, 3, H, W)`` float
            [0, 1] in the order ``[I_A, Î_A or I_B(sup.), I_B(ccl)]``; keypoints ``(B, N, 2)`` grid
            coordinates; ``valid`` ``(B, N)`` bool.
        """
        a = batch['image_a'].to(self.device, non_blocking=True).float() / 255.0
        kp_a = batch['kp_a'].to(self.device)
        if self.method == 'supervised':
            b = batch['image_b'].to(self.device).float() / 255.0
            kp_b = batch['kp_b'].to(self.device)
            valid = batch['valid'].to(self.device)
            return torch.cat([a, b]), kp_a, kp_b, valid, 2
        height, width = a.shape[-2:]
        a_hat, hom = self.augment(a, seed=int(batch['aug_seed']))
        full_hat, valid = self._warp(grid_to_full(kp_a, self.stride), hom, (height, width))
        kp_a_hat = full_to_grid(full_hat, self.stride)
        # Masked points must not carry NaN/inf into the loss graph.
        kp_a_hat = torch.where(valid.unsqueeze(-1), kp_a_hat, torch.zeros_like(kp_a_hat))
        views = [a, a_hat.to(a.dtype)]
        if self.criterion.needs_second_image:
            views.append(batch['image_b'].to(self.device, non_blocking=True).float() / 255.0)
        return torch.cat(views), kp_a, kp_a_hat, valid, len(views)

    @staticmethod
    def _warp(points, hom, size):
        from ..augment import warp_points
        kp_hat, valid = warp_points(points, hom, size)
        return kp_hat, valid & torch.isfinite(kp_hat).all(dim=-1)

    def compute_loss(self, batch: dict, return_maps: bool = False, model=None):
        """Forward pass and loss of one batch. Returns ``(loss, stats)`` (+ ``(images, maps, kp_a, valid)``).

        ``model`` defaults to the DDP-wrapped training model; pass the bare model for
        rank-0-only passes (DDP forwards are collective).
        """
        images, kp_a, kp_a_hat, valid, n_maps = self.prepare(batch)
        images = images.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            desc = (model or self.ddp)(images)
        maps = desc.float().chunk(n_maps)
        desc_b = maps[2] if n_maps == 3 else None
        loss, stats = self.criterion(maps[0], maps[1], kp_a, kp_a_hat, valid, desc_b=desc_b)
        stats = dict(stats)
        stats['valid_fraction'] = float(valid.float().mean())
        if return_maps:
            return loss, stats, (images, maps, kp_a, valid)
        return loss, stats

    def train_step(self, batch: dict) -> dict:
        """One optimiser step; returns the logged scalars (floats)."""
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, stats = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise TrainingError(f'loss is {float(loss)} at step {self.step}')
        self.scaler.scale(loss).backward()
        clip = float(self.cfg['optim']['grad_clip'])
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        stats['loss'] = float(loss.detach())
        stats['lr'] = self.optimizer.param_groups[0]['lr']
        self.skipped_lazy += int(batch.get('skipped', 0))
        return stats

    # ----------------------------------------------------------------- outputs
    def checkpoint_extra(self) -> dict:
        """Everything besides model/optimiser/step that a resume needs (gathered from all ranks)."""
        rng = distributed.all_gather_objects(self.ctx, get_rng_state())
        # Sum of every weight per rank: equal on all ranks iff DDP kept the replicas in sync.
        with torch.no_grad():
            checksum = float(sum(p.double().sum() for p in self.model.parameters()))
        checksums = distributed.all_gather_objects(self.ctx, checksum)
        return {
            'rank_weight_checksums': checksums,
            'config': self.cfg,
            'method': self.method,
            'rng': rng,
            'scaler': self.scaler.state_dict() if self.scaler.is_enabled() else None,
            'skipped_images': len(getattr(self.dataset, 'skipped', [])),
            'skipped_lazy': self.skipped_lazy,
            'world_size': self.ctx.world_size,
        }

    def save(self, name: str = CHECKPOINT_NAME, with_optimizer: bool = True) -> None:
        """Atomic checkpoint (``ccl_perception.checkpoint.save_checkpoint``); rank 0 writes."""
        from ..checkpoint import save_checkpoint
        extra = self.checkpoint_extra()  # collective: every rank must call it
        if self.ctx.is_main:
            save_checkpoint(str(self.out / name), self.model,
                            optimizer=self.optimizer if with_optimizer else None, step=self.step, extra=extra)
        distributed.barrier(self.ctx)

    def _log_image(self, batch: dict) -> None:
        devices = [self.device] if self.device.type == 'cuda' else []
        # fork_rng: the extra augmentation draw must not shift the training RNG stream.
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            _, _, (images, maps, kp_a, valid) = self.compute_loss(batch, return_maps=True, model=self.model)
            b = kp_a.shape[0]
            index = int(torch.nonzero(valid[0])[0]) if bool(valid[0].any()) else 0
            query = sample_descriptors(maps[0][:1], kp_a[:1, index:index + 1])
            target_map = maps[2] if len(maps) == 3 else maps[1]
            prob = heatmap_softmax(cosine_heatmap(query, target_map[:1]), float(self.cfg['loss']['tau']))
            target_image = images[(len(maps) - 1) * b]
            fig = heatmap_figure(images[0].float().cpu(), kp_a[0, index].cpu(), target_image.float().cpu(),
                                 prob[0, 0].cpu(), self.stride)
        self.writer.add_image('heatmap', fig, self.step)

    def _evaluate(self) -> dict:
        """Keypoint transfer on ``val_pairs`` (``evaluation.evaluate.evaluate_model``); logs ``val/*`` scalars."""
        was_training = self.model.training
        try:
            result = self.evaluate_fn(self.model, str(self.cfg['val_pairs']), device=str(self.device),
                                      max_pairs=self.cfg['train']['eval_max_pairs'] or None, progress=False)
        finally:
            self.model.train(was_training)
        scalars = {}
        for key, value in result.items():
            if key == 'pck' and isinstance(value, dict):
                scalars.update({f'pck@{t}': float(v) for t, v in value.items()})
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                scalars[key] = float(value)
        for key, value in scalars.items():
            self.writer.add_scalar(f'val/{key}', value, self.step)
        LOG.info('step %d evaluation: %s', self.step, scalars)
        return scalars

    # --------------------------------------------------------------------- run
    def run(self) -> dict:
        """Train until ``train.steps``; returns the metrics written to ``metrics.json``."""
        tcfg = self.cfg['train']
        total = int(tcfg['steps'])
        start = self.step
        main = self.ctx.is_main
        if start >= total:  # --resume of a finished run: a no-op, its outputs stay untouched
            LOG.info('run %s is complete (step %d of %d): nothing to do', self.out, start, total)
            return finished_metrics(self.out, start)
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / 'config.yaml').write_text(dump_config(self.cfg), encoding='utf-8')
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out / 'tb'))
            if start == 0:
                self.writer.add_text('config', '```\n' + dump_config(self.cfg) + '\n```', 0)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=None, sampler=range(start, total),
            num_workers=int(self.cfg['data']['num_workers']),
            pin_memory=self.device.type == 'cuda',
            # Own generator: creating the iterator must not draw from the global RNG (resume exactness).
            generator=torch.Generator().manual_seed(int(self.cfg['seed']) + self.ctx.rank))
        progress = None
        if main and tcfg['progress']:
            from tqdm import tqdm
            progress = tqdm(total=total, initial=start, desc=self.method, unit='step', dynamic_ncols=True)
        last_eval, step_times, iter_times, losses = {}, [], [], []
        t_loop = t_prev = time.perf_counter()
        for batch in loader:
            t0 = time.perf_counter()
            stats = self.train_step(batch)
            if self.device.type == 'cuda':
                torch.cuda.synchronize(self.device)
            step_times.append(time.perf_counter() - t0)
            self.step += 1
            losses.append(stats['loss'])
            if self.step % tcfg['log_every'] == 0 or self.step == total:
                stats = distributed.mean_across_ranks(self.ctx, stats)
                if main:
                    for key, value in stats.items():
                        self.writer.add_scalar(f'train/{key}', value, self.step)
            if main and tcfg['image_every'] and self.step % tcfg['image_every'] == 0:
                self._log_image(batch)
            if self.evaluate_fn and self.step % tcfg['eval_every'] == 0 and main:
                last_eval = self._evaluate()
            if self.step % tcfg['checkpoint_every'] == 0 and self.step < total:
                self.save(CHECKPOINT_NAME)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f'{stats["loss"]:.3f}')
            iter_times.append(time.perf_counter() - t_prev)  # data loading + step + logging
            t_prev = time.perf_counter()
        wall = time.perf_counter() - t_loop
        if progress is not None:
            progress.close()
        if self.evaluate_fn and main and self.step > start and self.step % tcfg['eval_every'] != 0:
            last_eval = self._evaluate()
        self.save(CHECKPOINT_NAME)
        self.save(FINAL_NAME, with_optimizer=False)
        metrics = self._metrics(start, step_times, iter_times, wall, losses, last_eval)
        if main:
            (self.out / 'metrics.json').write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False),
                                                   encoding='utf-8')
            self.writer.close()
        return metrics

    def _metrics(self, start, step_times, iter_times, wall, losses, last_eval) -> dict:
        batch = int(self.cfg['train']['batch_size'])

        def mean_after_warmup(times):  # the first step (allocations, lazy init) is left out
            timed = times[1:] if len(times) > 1 else times
            return float(np.mean(timed)) if timed else float('nan')

        per_step = mean_after_warmup(step_times)
        per_iter = mean_after_warmup(iter_times)
        samples_per_s = batch * self.ctx.world_size / per_iter
        n_views = 3 if self.criterion.needs_second_image else 2
        mem = distributed.all_gather_objects(self.ctx, peak_memory_mib())
        metrics = {
            'method': self.method,
            'start_step': start,
            'final_step': self.step,
            'world_size': self.ctx.world_size,
            'device': str(self.device),
            'amp': self.amp,
            'resolution': [self.cfg['data']['width'], self.cfg['data']['height']],
            'batch_size_per_rank': batch,
            'step_time_s': per_step,          # forward + backward + optimiser step
            'iteration_time_s': per_iter,     # + data loading and logging
            # images/s = training samples I_A per second over all ranks (each sample forwards
            # n_views images: I_A, Î_A and, for CCL, I_B).
            'images_per_s': samples_per_s,
            'forwarded_images_per_s': samples_per_s * n_views,
            'wall_time_s': wall,
            'peak_memory_mib': max(mem),
            'peak_memory_mib_per_rank': mem,
            'loss_first': losses[0] if losses else None,
            'loss_last': losses[-1] if losses else None,
            'skipped_images': len(getattr(self.dataset, 'skipped', [])) + self.skipped_lazy,
            'validation': last_eval,
        }
        if self.device.type == 'cuda':
            metrics['cuda_peak_allocated_mib'] = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        return metrics

    def close(self) -> None:
        """Leave the process group."""
        distributed.cleanup(self.ctx)


def main(argv=None) -> int:
    """``training/train.py``: parse arguments, merge the config, train. Returns an exit code."""
    from ..checkpoint import CheckpointError
    from ..cli import ArgumentParser
    from .config import ConfigError, load_config
    from .dataset import DatasetError

    parser = ArgumentParser(prog='train', description='Train the dense descriptor network (CCL paper methods).')
    parser.add_argument('--config', help='YAML config merged over training/configs/default.yaml '
                        '(with --resume and no --config: the config stored in the checkpoint)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key, e.g. --set train.steps=100 (repeatable)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='continue from <out>/checkpoint.pt (or the given checkpoint)')
    parser.add_argument('--out', help='run folder (default runs/<config name>)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')

    out = Path(args.out) if args.out else Path('runs') / (Path(args.config).stem if args.config else 'default')
    ctx = None
    try:
        if args.config is None and args.resume is not None:
            from ..checkpoint import load_checkpoint
            from .config import merge, parse_override, validate
            path = out / CHECKPOINT_NAME if args.resume == 'auto' else Path(args.resume)
            if not path.exists():
                raise TrainingError(f'--resume: no checkpoint at {path}')
            cfg = (load_checkpoint(str(path)).get('extra') or {}).get('config')
            if not cfg:
                raise TrainingError(f'--resume: {path} stores no config; pass --config')
            for text in args.overrides:
                cfg = merge(cfg, parse_override(text))
            validate(cfg)
        else:
            cfg = load_config(args.config, args.overrides)
        ctx = distributed.init_distributed(cfg['train']['device'])
        if ctx.rank != 0:
            logging.getLogger().setLevel(logging.WARNING)
        trainer = Trainer(cfg, out, resume=args.resume, ctx=ctx)
        if trainer.step >= int(cfg['train']['steps']):
            LOG.info('run %s is already complete (step %d of %d): nothing to do; raise train.steps to '
                     'continue it', out, trainer.step, cfg['train']['steps'])
            distributed.cleanup(ctx)
            return 0
        metrics = trainer.run()
    except (ConfigError, DatasetError, CheckpointError, TrainingError, ValueError, OSError) as exc:
        LOG.error('%s', ' '.join(str(exc).split()))  # one line
        if ctx is not None:
            distributed.cleanup(ctx)
        return 2
    if ctx.is_main:
        LOG.info('done: step %d, %.2f images/s, peak memory %.0f MiB -> %s', metrics['final_step'],
                 metrics['images_per_s'], metrics['peak_memory_mib'], out)
    distributed.cleanup(ctx)
    return 0
