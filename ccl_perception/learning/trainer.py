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
The training loop of every method.

Identical view (Eq. 10), CCL (Eq. 9), CCL + identical view, supervised.

One step (methods other than ``supervised``):

1. a batch of pairs ``(I_A, I_B)`` (:class:`~ccl_perception.learning.dataset.ImagePairs`) and
   keypoints ``k_A`` on the 1/8 grid (uniform, or on the label-free foreground);
2. ``Î_A`` = augmented ``I_A`` with the exact homography ``H`` (``ccl_perception.augment``);
   ``k_Â = full_to_grid(warp(grid_to_full(k_A), H))``, points leaving ``Î_A`` are masked.
   ``train.augment_a`` augments ``I_A`` too, with its own draw (the paper's protocol);
   ``loss.sanity_b_from_a`` replaces ``I_B`` by a third augmented copy of ``I_A`` (the sanity
   bound: every cycle then has a true correspondence);
3. one forward pass of ``[I_A, Î_A, (I_B)]`` through the (DDP-wrapped) model, optionally under
   autocast (bf16 on CPU, fp16 + GradScaler on CUDA); the loss itself runs in float32. With a
   frozen trunk (``optim.trunk: frozen``) the trunk features of un-augmented images are
   computed once per image and cached (``train.cache_trunk_features``);
4. :class:`~ccl_perception.losses.CorrespondenceLoss`; AdamW step (head at ``optim.lr``,
   trainable trunk weights at ``optim.lr * optim.trunk_lr_scale``).

A fresh run starts its head from a label-free PCA of the trunk features (``model.head_init``).
With ``val_pairs`` and ``train.keep_best`` the model is validated at step 0 and every
``train.eval_every`` steps, and ``model.pt`` holds the best of them (step 0 included), so no
run ships worse than its start; the last weights are in ``last.pt``.

``supervised`` replaces ``Î_A`` by a second rendered view ``I_B`` whose exact correspondences
come from depth and camera poses (:mod:`~ccl_perception.learning.supervised`).

Rank 0 writes ``<out>/checkpoint.pt`` every ``train.checkpoint_every`` steps (atomic; model,
optimiser, scaler, step, every rank's RNG states, config), TensorBoard logs in ``<out>/tb``,
``<out>/step0.pt`` (the untrained start), ``<out>/best.pt`` whenever validation improves, and
at the end ``<out>/model.pt``, ``<out>/last.pt`` and ``<out>/metrics.json``. On rendered
training data with ground truth the CCL instruments
(:mod:`~ccl_perception.learning.instruments`) are logged too.
"""

from dataclasses import dataclass
import json
import logging
import math
from pathlib import Path
import random
import time

import numpy as np
import torch

from . import distributed
from .config import dump_config
from .dataset import DatasetError, ImagePairs
from ..correspondence import (cosine_heatmap, full_to_grid, grid_to_full, heatmap_softmax,
                              sample_descriptors)
from ..losses import CorrespondenceLoss

LOG = logging.getLogger(__name__)

CHECKPOINT_NAME = 'checkpoint.pt'
FINAL_NAME = 'model.pt'
BEST_NAME = 'best.pt'
LAST_NAME = 'last.pt'
STEP0_NAME = 'step0.pt'
#: Validation score that ``train.keep_best`` maximises (a key of ``evaluate_model``'s result).
SELECTION_METRIC = 'auc'


class TrainingError(RuntimeError):
    """A run cannot start or continue (e.g. nothing to resume, output folder already used)."""


# ----------------------------------------------------------------------------- small helpers
def peak_memory_mib() -> float:
    """Return the peak resident memory (``VmHWM`` of /proc/self/status) in MiB; NaN if unknown."""
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def finished_metrics(out: Path, step: int) -> dict:
    """Return a finished run's ``<out>/metrics.json``, or ``{'final_step': step}``."""
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


def _json_safe(value):
    """``value`` with NaN/inf floats as None (``json.dumps`` would write invalid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Return the model inside a DDP wrapper."""
    return model.module if hasattr(model, 'module') else model


#: Model config keys that must agree between a run and the checkpoint it starts from.
ARCHITECTURE_KEYS = ('backbone', 'descriptor_dim', 'trunk', 'head', 'head_hidden')


def _model_config(cfg: dict) -> dict:
    m = cfg['model']
    return {'backbone': m['backbone'], 'descriptor_dim': m['descriptor_dim'],
            'pretrained': m['pretrained'], 'trunk': m.get('trunk'), 'head': m['head'],
            'head_hidden': m['head_hidden']}


def _augment_seeds(aug_seed: int):
    """Seeds of ``Î_A`` (the step's ``aug_seed`` itself), of ``I_A`` and of the sanity ``I_B``."""
    return [int(aug_seed), (int(aug_seed) + 1) % 2 ** 62, (int(aug_seed) + 2) % 2 ** 62]


def heatmap_figure(image_a: torch.Tensor, kp: torch.Tensor, target: torch.Tensor,
                   prob: torch.Tensor, stride: int) -> torch.Tensor:
    """
    Draw a TensorBoard image: ``I_A`` with the query point next to the target with its heatmap.

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
    right = target.clone() * (1.0 - 0.6 * heat) + 0.6 * heat * \
        torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    return torch.cat([left, right], dim=2).clamp(0.0, 1.0)


@dataclass
class Views:
    """
    The views and keypoints of one step (:meth:`Trainer.prepare`).

    Attributes:
        images: list of ``(B, 3, H, W)`` float [0, 1] views
            ``[I_A, Î_A (or I_B supervised), I_B (CCL)]``.
        kp_a: ``(B, N, 2)`` query keypoints on ``images[0]``'s grid.
        kp_a_hat: ``(B, N, 2)`` their true positions in ``images[1]``.
        valid: ``(B, N)`` bool.
        kp_orig: ``(B, N, 2)`` the keypoints on the un-augmented ``I_A`` grid (== ``kp_a``
            unless ``train.augment_a``).
        indices: per view, the dataset image index of each batch item when the view is an
            un-augmented dataset image (its trunk features may be cached), else None (for the
            whole view or, as a list entry, for one item).
        kp_b_true: ``(B, N, 2)`` true positions in the sanity-bound ``I_B``, else None.
    """

    images: list
    kp_a: torch.Tensor
    kp_a_hat: torch.Tensor
    valid: torch.Tensor
    kp_orig: torch.Tensor
    indices: list
    kp_b_true: torch.Tensor = None


# ----------------------------------------------------------------------------------- trainer
class Trainer:
    """
    Trains one method from a merged config (see ``training/configs/default.yaml``).

    Args:
        cfg: merged config dict (:func:`~ccl_perception.learning.config.load_config`).
        out_dir: run folder for checkpoints, TensorBoard logs and metrics.
        resume: a checkpoint path to continue from, ``'auto'`` for ``<out>/checkpoint.pt``, or
            None.
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
            # weights come from a checkpoint: skip the ImageNet load
            model_cfg['pretrained'] = False
        self.model = build_model(model_cfg).to(self.device)
        # channels_last: the depthwise-conv backward of efficientnet_lite0 is ~5x
        # faster on the CPU.
        self.memory_format = (torch.channels_last if tcfg['channels_last']
                              else torch.contiguous_format)
        self.model = self.model.to(memory_format=self.memory_format)
        self.stride = int(getattr(self.model, 'stride', 8))
        self.model.set_trunk_mode(cfg['optim']['trunk'])
        if cfg['init_from'] and resume_path is None:
            self._init_from(cfg['init_from'])
        lr = float(cfg['optim']['lr'])
        groups = [{'params': self.model.head_parameters(), 'lr': lr}]
        if self.model.trunk_parameters():
            groups.append({'params': self.model.trunk_parameters(),
                           'lr': lr * float(cfg['optim']['trunk_lr_scale'])})
        self.optimizer = torch.optim.AdamW(
            groups, lr=lr, weight_decay=float(
                cfg['optim']['weight_decay']))
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
        self.head_init = None
        if resume_path is None and not cfg['init_from'] and cfg['model']['head_init'] == 'pca':
            self.head_init = self._init_head_pca()
        self.trunk_cache = {} if (tcfg['cache_trunk_features']
                                  and self.model.trunk_mode == 'frozen') else None
        self.instruments = None
        if tcfg['instruments'] and self.criterion.needs_second_image:
            from .instruments import maybe_instruments
            self.instruments = maybe_instruments(cfg['data']['root'], self.dataset.paths,
                                                 (cfg['data']['width'], cfg['data']['height']))
        self.instrument_history = []
        self.validation_history = []
        self.best = {'step': None, 'score': float('-inf')}
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
                raise TrainingError(f'{self.out} already holds a run ({ckpt}); pass --resume to '
                                    'continue it or choose another --out')
            return None
        path = ckpt if resume in (True, 'auto') else Path(resume)
        if not path.exists():
            raise TrainingError(
                f'--resume: no checkpoint at {path} (run without --resume to start fresh)')
        return path

    def _build_dataset(self):
        dcfg, tcfg = self.cfg['data'], self.cfg['train']
        common = dict(height=dcfg['height'], width=dcfg['width'],  # noqa: C408
                      batch_size=tcfg['batch_size'], num_keypoints=dcfg['num_keypoints'],
                      seed=int(self.cfg['seed']), rank=self.ctx.rank)
        if self.method == 'supervised':
            from .supervised import RenderedPairs
            return RenderedPairs(dcfg['root'], **common)
        load_b = self.criterion.needs_second_image and not self.cfg['loss']['sanity_b_from_a']
        ds = ImagePairs(dcfg['root'], verify=bool(dcfg['verify_images']), load_b=load_b,
                        keypoints=dcfg['keypoints'], foreground=dict(dcfg['foreground']), **common)
        if self.criterion.needs_second_image and len(ds.paths) < 2:
            raise DatasetError(f'method {self.method} needs pairs of different images, but '
                               f'{dcfg["root"]} has only one usable image')
        if ds.skipped and self.ctx.is_main:
            LOG.warning('%d corrupt images skipped under %s', len(ds.skipped), dcfg['root'])
        return ds

    def _init_head_pca(self) -> dict:
        """Start the head's projection from a PCA of the trunk features (model.head_init: pca)."""
        from .dataset import read_rgb
        from .head_init import init_head_pca
        n = int(self.cfg['model']['head_init_images'])
        paths = self.dataset.paths
        picks = np.unique(np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int))
        size = (self.cfg['data']['width'], self.cfg['data']['height'])

        def batches(chunk=8):
            for s in range(0, len(picks), chunk):
                images = [read_rgb(paths[i], size) for i in picks[s:s + chunk]]
                yield torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        info = init_head_pca(self.model, batches(), max_images=len(picks))
        if self.ctx.is_main:
            LOG.info('head initialised by PCA of the trunk features on %d frames '
                     '(%.1f %% variance)', info['images'], 100 * info['explained_variance'])
        return info

    def _init_from(self, path) -> None:
        """Copy model weights from a checkpoint (paper: CCL starts from an identical-view one)."""
        from ..checkpoint import load_model
        source = load_model(str(path), device='cpu')
        theirs, ours = getattr(source, 'config', {}), getattr(self.model, 'config', {})
        for key in ARCHITECTURE_KEYS:
            if key in theirs and key in ours and theirs[key] != ours[key]:
                raise TrainingError(f'init_from {path}: {key} is {theirs[key]!r} there but '
                                    f'{ours[key]!r} in this config')
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
            raise TrainingError(
                f'--resume {path}: checkpoint has no optimiser state (a final model.pt?)')
        ours = {k: self.model.config.get(k) for k in ARCHITECTURE_KEYS}
        theirs = {k: ckpt['model_config'].get(k) for k in ours}
        if ours != theirs:
            raise TrainingError(
                f'--resume {path}: checkpoint model {theirs} differs from the config {ours}')
        self.model.load_state_dict(ckpt['model_state'])
        self.optimizer.load_state_dict(ckpt['optimizer_state'])
        if extra.get('scaler'):
            self.scaler.load_state_dict(extra['scaler'])
        self.step = int(ckpt['step'])
        self.skipped_lazy = int(extra.get('skipped_lazy', 0))
        best = extra.get('best') or {}
        if best.get('step') is not None:
            self.best = {'step': int(best['step']), 'score': float(best['score'])}
        self.validation_history = list(extra.get('validation_history') or [])
        self.instrument_history = list(extra.get('instrument_history') or [])
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
            LOG.warning('val_pairs is set but ccl_perception.evaluation.evaluate is unavailable '
                        '(%s): no evaluation', exc)
            return None
        return evaluate_model

    # -------------------------------------------------------------------- step
    def prepare(self, batch: dict) -> 'Views':
        """Move a batch to the device; build the views and keypoints of one step (a ``Views``)."""
        a = batch['image_a'].to(self.device, non_blocking=True).float() / 255.0
        kp_grid = batch['kp_a'].to(self.device)
        index_a = batch['index_a'].tolist()
        if self.method == 'supervised':
            b = batch['image_b'].to(self.device).float() / 255.0
            return Views([a, b], kp_grid, batch['kp_b'].to(self.device),
                         batch['valid'].to(self.device), kp_grid,
                         [index_a, batch['index_b'].tolist()])
        height, width = a.shape[-2:]
        seed_hat, seed_a, seed_b = _augment_seeds(batch['aug_seed'])
        full = grid_to_full(kp_grid, self.stride)
        # Î_A is augmented from I_A, or from I_A on a random background
        # (data.foreground.paste_background)
        source_hat = a
        if 'image_a_hat_source' in batch:
            source_hat = (batch['image_a_hat_source'].to(self.device, non_blocking=True).float()
                          / 255.0)
        a_hat, hom = self.augment(source_hat, seed=seed_hat)
        full_hat, valid = self._warp(full, hom, (height, width))
        if 'kp_valid' in batch:  # empty foreground slots
            valid = valid & batch['kp_valid'].to(self.device)
        kp_a_hat = self._grid(full_hat, valid)
        view_a, kp_a, index_views = a, kp_grid, [index_a, None]
        if self.cfg['train']['augment_a']:  # I_A gets its own augmentation, as in the paper
            view_a, hom_a = self.augment(a, seed=seed_a)
            full_a, valid_a = self._warp(full, hom_a, (height, width))
            valid = valid & valid_a
            kp_a, index_views[0] = self._grid(full_a, valid), None
        views = [view_a, a_hat.to(a.dtype)]
        kp_b_true = None
        if self.criterion.needs_second_image:
            if self.cfg['loss']['sanity_b_from_a']:  # sanity bound: I_B is a third copy of I_A
                b, hom_b = self.augment(a, seed=seed_b)
                full_b, valid_b = self._warp(full, hom_b, (height, width))
                valid = valid & valid_b
                kp_b_true = self._grid(full_b, valid)
                index_views.append(None)
            else:
                b = batch['image_b'].to(self.device, non_blocking=True).float() / 255.0
                pasted = batch.get('pasted_b', torch.zeros(len(b), dtype=torch.bool)).tolist()
                index_views.append([None if p else i
                                    for i, p in zip(batch['index_b'].tolist(), pasted)])
            views.append(b.to(a.dtype))
        return Views(views, kp_a, kp_a_hat, valid, kp_grid, index_views, kp_b_true)

    @staticmethod
    def _warp(points, hom, size):
        from ..augment import warp_points
        kp_hat, valid = warp_points(points, hom, size)
        return kp_hat, valid & torch.isfinite(kp_hat).all(dim=-1)

    def _grid(self, full, valid):
        """
        Full-resolution points -> grid coordinates.

        Masked points are set to 0 (no NaN/inf in the graph).
        """
        grid = full_to_grid(full, self.stride)
        return torch.where(valid.unsqueeze(-1), grid, torch.zeros_like(grid))

    def _trunk_features(self, images: torch.Tensor, indices) -> torch.Tensor:
        """Trunk features of one view; cached per image index when the trunk is frozen."""
        images = images.contiguous(memory_format=self.memory_format)
        model = unwrap(self.model)
        if self.trunk_cache is None or indices is None:
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                return model.trunk_features(images)
        missing = [k for k, i in enumerate(indices) if i is None or i not in self.trunk_cache]
        fresh = {}
        if missing:
            with torch.no_grad(), torch.autocast(self.device.type, dtype=self.amp_dtype,
                                                 enabled=self.amp):
                computed = model.trunk_features(images[missing])
            for k, feat in zip(missing, computed):
                fresh[k] = feat.detach().clone()
                if indices[k] is not None:  # an un-augmented dataset image: keep it
                    self.trunk_cache[indices[k]] = fresh[k]
        return torch.stack([fresh[k] if k in fresh else self.trunk_cache[i]
                            for k, i in enumerate(indices)])

    def _describe(self, views: 'Views', model=None) -> list:
        """Descriptor maps ``(B, D, h, w)`` float32 of every view."""
        images = torch.cat(views.images).contiguous(memory_format=self.memory_format)
        model = model or self.ddp
        if unwrap(self.model).trunk_mode == 'frozen':
            # No gradient reaches a frozen trunk: run it without a graph (and from the cache),
            # and only the head through the (DDP) model.
            with torch.no_grad():
                feats = torch.cat([self._trunk_features(v, idx)
                                  for v, idx in zip(views.images, views.indices)])
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                desc = model(features=feats.contiguous(memory_format=self.memory_format))
        else:
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                desc = model(images)
        return list(desc.float().chunk(len(views.images)))

    def compute_loss(self, batch: dict, return_maps: bool = False,
                     model=None, details: dict = None):
        """
        Forward pass and loss of one batch. Returns ``(loss, stats)`` (+ ``(views, maps)``).

        ``model`` defaults to the DDP-wrapped training model; pass the bare model for
        rank-0-only passes (DDP forwards are collective). ``details``: see
        :func:`~ccl_perception.losses.cycle_correspondence_loss`.
        """
        views = self.prepare(batch)
        maps = self._describe(views, model)
        desc_b = maps[2] if len(maps) == 3 else None
        loss, stats = self.criterion(maps[0], maps[1], views.kp_a, views.kp_a_hat, views.valid,
                                     desc_b=desc_b, details=details)
        stats = dict(stats)
        stats['valid_fraction'] = float(views.valid.float().mean())
        if details is not None:
            details['views'] = views
        if return_maps:
            return loss, stats, (views, maps)
        return loss, stats

    def train_step(self, batch: dict, instrument: bool = False) -> dict:
        """
        One optimiser step; returns the logged scalars (floats).

        ``instrument``: also measure the CCL instruments on this batch (``instruments/*`` keys).
        """
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)
        details = {} if (instrument and self.instruments is not None) else None
        loss, stats = self.compute_loss(batch, details=details)
        if details:
            views = details['views']
            values = self.instruments.measure(
                batch['index_a'].tolist(), batch['index_b'].tolist(), views.kp_orig.cpu().numpy(),
                views.valid.cpu().numpy(), details['keep'].cpu(
                ).numpy(), details['kp_b_star'].cpu().numpy(),
                None if views.kp_b_true is None else views.kp_b_true.cpu().numpy())
            stats.update({f'instruments/{k}': v for k, v in values.items()})
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
        """Return what besides model/optimiser/step a resume needs (gathered from all ranks)."""
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
            'best': dict(self.best) if self.best['step'] is not None else None,
            'validation_history': self.validation_history,
            'instrument_history': self.instrument_history,
            'head_init': self.head_init,
            'tau': float(self.cfg['loss']['tau']),
        }

    def save(self, name: str = CHECKPOINT_NAME, with_optimizer: bool = True, step: int = None,
             validation: dict = None) -> None:
        """
        Atomic checkpoint (``ccl_perception.checkpoint.save_checkpoint``); rank 0 writes.

        ``step`` / ``validation``: the step the weights are from and their validation scores,
        when that is not the current step (``model.pt`` holding the best validated weights).
        """
        from ..checkpoint import save_checkpoint
        extra = self.checkpoint_extra()  # collective: every rank must call it
        if validation is not None:
            extra['validation'] = validation
        if self.ctx.is_main:
            save_checkpoint(str(self.out / name), self.model,
                            optimizer=self.optimizer if with_optimizer else None,
                            step=self.step if step is None else int(step), extra=extra)
        distributed.barrier(self.ctx)

    def _log_image(self, batch: dict) -> None:
        devices = [self.device] if self.device.type == 'cuda' else []
        # fork_rng: the extra augmentation draw must not shift the training RNG stream.
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            _, _, (views, maps) = self.compute_loss(batch, return_maps=True, model=self.model)
            kp_a, valid = views.kp_a, views.valid
            index = int(torch.nonzero(valid[0])[0]) if bool(valid[0].any()) else 0
            query = sample_descriptors(maps[0][:1], kp_a[:1, index:index + 1])
            prob = heatmap_softmax(cosine_heatmap(
                query, maps[-1][:1]), float(self.cfg['loss']['tau']))
            fig = heatmap_figure(views.images[0][0].float().cpu(), kp_a[0, index].cpu(),
                                 views.images[-1][0].float().cpu(), prob[0, 0].cpu(), self.stride)
        self.writer.add_image('heatmap', fig, self.step)

    def _evaluate(self) -> dict:
        """
        Keypoint transfer on ``val_pairs`` (``evaluation.evaluate.evaluate_model``).

        Logs ``val/*`` scalars.
        """
        was_training = self.model.training
        try:
            result = self.evaluate_fn(self.model, str(self.cfg['val_pairs']),
                                      device=str(self.device),
                                      max_pairs=self.cfg['train']['eval_max_pairs'] or None,
                                      progress=False,
                                      input_size=self.working_size())
        finally:
            self.model.train(was_training)
        scalars = {}
        for key, value in result.items():
            if key == 'pck' and isinstance(value, dict):
                scalars.update({f'pck@{t}': float(v) for t, v in value.items()})
            elif (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value)):
                scalars[key] = float(value)
        for key, value in scalars.items():
            self.writer.add_scalar(f'val/{key}', value, self.step)
        LOG.info('step %d evaluation: %s', self.step, scalars)
        return scalars

    def working_size(self):
        """(W, H) validation runs at: the training resolution times ``train.eval_scale``."""
        scale = float(self.cfg['train'].get('eval_scale', 1.0))
        return (int(round(self.cfg['data']['width'] * scale)),
                int(round(self.cfg['data']['height'] * scale)))

    # --------------------------------------------------------------------- run
    def _validate(self) -> dict:
        """Evaluate on ``val_pairs``; with ``train.keep_best`` remember the best model (rank 0)."""
        scalars = self._evaluate()
        score = scalars.get(SELECTION_METRIC)
        self.validation_history.append({'step': self.step, **scalars})
        if self.cfg['train']['keep_best'] and score is not None and score > self.best['score']:
            from ..checkpoint import save_checkpoint
            self.best = {'step': self.step, 'score': float(score)}
            save_checkpoint(str(self.out / BEST_NAME), self.model, step=self.step,
                            extra={'config': self.cfg, 'method': self.method,
                                   'validation': scalars,
                                   'tau': float(self.cfg['loss']['tau'])})
            LOG.info('step %d: best validation %s so far (%.4f) -> %s', self.step,
                     SELECTION_METRIC, score, self.out / BEST_NAME)
        return scalars

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
        last_eval = {}
        if start == 0:  # step 0: the start every run must beat (the results tables' step-0 row)
            self.save(STEP0_NAME, with_optimizer=False)
            if self.evaluate_fn and main:
                last_eval = self._validate()
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=None, sampler=range(start, total),
            num_workers=int(self.cfg['data']['num_workers']),
            pin_memory=self.device.type == 'cuda',
            # Own generator: creating the iterator must not draw from the global RNG
            # (resume exactness).
            generator=torch.Generator().manual_seed(int(self.cfg['seed']) + self.ctx.rank))
        progress = None
        if main and tcfg['progress']:
            from tqdm import tqdm
            progress = tqdm(
                total=total,
                initial=start,
                desc=self.method,
                unit='step',
                dynamic_ncols=True)
        step_times, iter_times, losses = [], [], []
        t_loop = t_prev = time.perf_counter()
        for batch in loader:
            t0 = time.perf_counter()
            log_now = (self.step + 1) % tcfg['log_every'] == 0 or self.step + 1 == total
            stats = self.train_step(batch, instrument=log_now and main)
            if self.device.type == 'cuda':
                torch.cuda.synchronize(self.device)
            step_times.append(time.perf_counter() - t0)
            self.step += 1
            losses.append(stats['loss'])
            instruments = {k: stats.pop(k) for k in list(stats) if k.startswith('instruments/')}
            if log_now:
                stats = distributed.mean_across_ranks(self.ctx, stats)
                if main:
                    for key, value in stats.items():
                        self.writer.add_scalar(f'train/{key}', value, self.step)
                    for key, value in instruments.items():
                        if math.isfinite(value):
                            self.writer.add_scalar(key, value, self.step)
                    if instruments:
                        self.instrument_history.append(
                            {'step': self.step,
                             **{k.split('/', 1)[1]: v for k, v in instruments.items()}})
            if main and tcfg['image_every'] and self.step % tcfg['image_every'] == 0:
                self._log_image(batch)
            if self.evaluate_fn and self.step % tcfg['eval_every'] == 0 and main:
                last_eval = self._validate()
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
            last_eval = self._validate()
        self.save(CHECKPOINT_NAME)
        self.save(LAST_NAME, with_optimizer=False)
        final_step, final_validation = None, None
        if tcfg['keep_best'] and self.best['step'] is not None and main:
            from ..checkpoint import load_checkpoint
            best = load_checkpoint(str(self.out / BEST_NAME))
            self.model.load_state_dict(best['model_state'])
            final_step, final_validation = (self.best['step'],
                                            (best.get('extra') or {}).get('validation'))
            LOG.info('model.pt = the best validated model (step %d of %d, %s %.4f)',
                     self.best['step'], self.step, SELECTION_METRIC, self.best['score'])
        self.save(FINAL_NAME, with_optimizer=False, step=final_step, validation=final_validation)
        metrics = self._metrics(start, step_times, iter_times, wall, losses, last_eval)
        if main:
            (self.out / 'metrics.json').write_text(
                json.dumps(_json_safe(metrics), indent=2, allow_nan=False), encoding='utf-8')
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
            'best_step': self.best['step'],
            'best_validation': self.best['score'] if self.best['step'] is not None else None,
            'validation_history': self.validation_history,
            'instruments': self.instrument_history,
            'head_init': self.head_init,
            'trunk_mode': unwrap(self.model).trunk_mode,
            'trunk_cache_images': len(self.trunk_cache) if self.trunk_cache is not None else 0,
        }
        if self.device.type == 'cuda':
            metrics['cuda_peak_allocated_mib'] = torch.cuda.max_memory_allocated(
                self.device) / 2 ** 20
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

    parser = ArgumentParser(
        prog='train',
        description='Train the dense descriptor network (CCL paper methods).')
    parser.add_argument('--config', help='YAML config merged over training/configs/default.yaml '
                        '(with --resume and no --config: the config stored in the checkpoint)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a config key, e.g. --set train.steps=100 (repeatable)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='continue from <out>/checkpoint.pt (or the given checkpoint)')
    parser.add_argument('--out', help='run folder (default runs/<config name>)')
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')

    out = Path(args.out) if args.out else Path('runs') / \
        (Path(args.config).stem if args.config else 'default')
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
            LOG.info('run %s is already complete (step %d of %d): nothing to do; raise '
                     'train.steps to continue it', out, trainer.step, cfg['train']['steps'])
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
