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
The training loop of every method: build, step, loop.

One step: loader (``ImagePairs`` | ``RenderedPairs``) -> :mod:`~.views` (``I_A``, ``Î_A``,
``I_B`` and their correspondences) -> :mod:`~.features` (trunk cache, head under the run's
:mod:`~.precision`) -> the :mod:`~.methods` objective -> AdamW step -> :mod:`~.logbook` ->
:mod:`~.selection` (validate, keep best) and :mod:`~.run_state` (checkpoints, resume).
A fresh run starts its head from a label-free PCA of the trunk features. Rank 0 writes
``<out>/checkpoint.pt`` every ``train.checkpoint_every`` steps and on Ctrl-C, ``step0.pt`` (the
untrained start) and at the end ``model.pt`` (the best validated weights with
``train.keep_best``, else the last), ``last.pt``, ``metrics.json`` and ``loss.png``.
The CLI is ``training/train.py``.
"""

import logging
from pathlib import Path
import time

import torch

from . import distributed
from .config import View
from .dataset import DatasetError, ImagePairs
from .features import Describer
from .logbook import finished_metrics, Logbook, Timing
from .methods import CorrespondenceLoss, get_method, loss_params
from .precision import resolve_precision
from .run_state import (CHECKPOINT_NAME, init_from, resume_path, RunState, seed_everything,
                        StopRequest, TrainingError, TrainingInterrupted, write_checkpoint)
from .selection import Selection
from .views import ViewMaker

LOG = logging.getLogger(__name__)

FINAL_NAME = 'model.pt'
LAST_NAME = 'last.pt'
STEP0_NAME = 'step0.pt'
#: Keys of the config's ``model`` section that steer training, not the network; every other
#: key goes to ``build_model`` as it is.
TRAINING_MODEL_KEYS = ('head_init', 'head_init_images')


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
        self.cfg, self.c = cfg, View(cfg)
        c = self.c
        self.out = Path(out_dir)
        self.ctx = ctx or distributed.init_distributed(c.train.device)
        self.device = self.ctx.device
        if c.train.threads:
            torch.set_num_threads(int(c.train.threads))
        self.method = get_method(c.method)
        self.state = RunState()
        start_from = resume_path(self.out, resume)
        # Fresh runs start from (seed + rank); a resumed run overwrites this from the checkpoint.
        seed_everything(int(c.seed) + self.ctx.rank)
        self.model = self._build_model(weights_follow=start_from is not None or c.init_from)
        if c.init_from and start_from is None:
            init_from(c.init_from, self.model, log=self.ctx.is_main)
        self.optimizer = self._build_optimizer(c.optim)
        self.precision = resolve_precision(c.train.amp, self.device.type)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.precision.name == 'fp16')
        self.criterion = CorrespondenceLoss(self.method, loss_params(cfg['loss']))
        self.augment = None
        if not self.method.rendered_pairs:
            from ..augment import CorrespondenceAugmentation
            self.augment = CorrespondenceAugmentation(dict(c.augment))
        self.dataset = self._build_dataset(c)
        if start_from is None and not c.init_from and c.model.head_init == 'pca':
            from .head_init import init_head_from_frames
            self.state.head_init = init_head_from_frames(
                self.model, self.dataset.paths, (c.data.width, c.data.height),
                int(c.model.head_init_images))
        self.describe = Describer(self.model, self.precision, self.device.type,
                                  self.memory_format, c.train.cache_trunk_features)
        self.views = ViewMaker(self.method, self.augment, self.stride, self.device,
                               c.train.augment_a, c.loss.sanity_b_from_a)
        self.instruments = None
        if c.train.instruments and self.method.second_image:
            from .instruments import maybe_instruments
            self.instruments = maybe_instruments(c.data.root, self.dataset.paths,
                                                 (c.data.width, c.data.height))
        if start_from is not None:
            self.state.restore(start_from, self.ctx, cfg, self.model, self.optimizer, self.scaler)
        self.ddp = distributed.wrap(self.model, self.ctx)
        self.logbook = Logbook(self.out, cfg, self.ctx)
        self.selection = Selection(cfg, self.out, self.state, self.device)

    # ------------------------------------------------------------------ build
    def _build_model(self, weights_follow: bool):
        from ..model import build_model
        model_cfg = {k: v for k, v in self.cfg['model'].items() if k not in TRAINING_MODEL_KEYS}
        if weights_follow:  # weights come from a checkpoint: skip the ImageNet load
            model_cfg['pretrained'] = False
        model = build_model(model_cfg).to(self.device)
        # channels_last: the depthwise-conv backward of efficientnet_lite0 is ~5x faster on CPU.
        self.memory_format = (torch.channels_last if self.c.train.channels_last
                              else torch.contiguous_format)
        model = model.to(memory_format=self.memory_format)
        self.stride = int(getattr(model, 'stride', 8))
        model.set_trunk_mode(self.c.optim.trunk)
        return model

    def _build_optimizer(self, optim):
        lr = float(optim.lr)
        groups = [{'params': self.model.head_parameters(), 'lr': lr}]
        if self.model.trunk_parameters():
            groups.append({'params': self.model.trunk_parameters(),
                           'lr': lr * float(optim.trunk_lr_scale)})
        return torch.optim.AdamW(groups, lr=lr, weight_decay=float(optim.weight_decay))

    def _build_dataset(self, c):
        common = dict(height=c.data.height, width=c.data.width,  # noqa: C408
                      batch_size=c.train.batch_size, num_keypoints=c.data.num_keypoints,
                      seed=int(c.seed), rank=self.ctx.rank)
        if self.method.rendered_pairs:
            from .supervised import RenderedPairs
            return RenderedPairs(c.data.root, **common)
        second = self.method.second_image
        ds = ImagePairs(c.data.root, verify=bool(c.data.verify_images),
                        load_b=second and not c.loss.sanity_b_from_a, keypoints=c.data.keypoints,
                        foreground=dict(c.data.foreground), **common)
        if second and len(ds.paths) < 2:
            raise DatasetError(f'method {self.method.name} needs pairs of different images, but '
                               f'{c.data.root} has only one usable image')
        if ds.skipped and self.ctx.is_main:
            LOG.warning('%d corrupt images skipped under %s', len(ds.skipped), c.data.root)
        return ds

    @property
    def step(self) -> int:
        """Optimiser steps done."""
        return self.state.step

    # ------------------------------------------------------------------- step
    def compute_loss(self, batch: dict, model=None, details: dict = None):
        """Return ``(loss, stats)`` of one batch (:meth:`forward` without views and maps)."""
        return self.forward(batch, model, details)[:2]

    def forward(self, batch: dict, model=None, details: dict = None):
        """
        Forward pass and loss of one batch; returns ``(loss, stats, views, maps)``.

        ``model`` defaults to the DDP-wrapped training model; pass the bare model for
        rank-0-only passes (DDP forwards are collective). ``details``: see
        :func:`~ccl_perception.losses.cycle_correspondence_loss`.
        """
        views = self.views(batch)
        maps = self.describe(views, model or self.ddp)
        desc_b = maps[2] if len(maps) == 3 else None
        loss, stats = self.criterion(maps[0], maps[1], views.kp_a, views.kp_a_hat, views.valid,
                                     desc_b=desc_b, details=details)
        stats = dict(stats)
        stats['valid_fraction'] = float(views.valid.float().mean())
        return loss, stats, views, maps

    def train_step(self, batch: dict, instrument: bool = False) -> dict:
        """
        One optimiser step; returns the logged scalars (floats).

        ``instrument``: also measure the CCL instruments on this batch (``instruments/*`` keys).
        """
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)
        details = {} if (instrument and self.instruments is not None) else None
        loss, stats, views, _ = self.forward(batch, details=details)
        if details:
            values = self.instruments.measure_step(batch, views, details)
            stats.update({f'instruments/{k}': v for k, v in values.items()})
        if not torch.isfinite(loss):
            raise TrainingError(f'loss is {float(loss)} at step {self.step}')
        self.scaler.scale(loss).backward()
        clip = float(self.c.optim.grad_clip)
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        stats['loss'] = float(loss.detach())
        stats['lr'] = self.optimizer.param_groups[0]['lr']
        self.state.skipped_lazy += int(batch.get('skipped', 0))
        return stats

    # ---------------------------------------------------------------- outputs
    def save(self, name: str = CHECKPOINT_NAME, with_optimizer: bool = True, step: int = None,
             validation: dict = None) -> None:
        """
        Atomic checkpoint ``<out>/<name>`` (collective; rank 0 writes).

        ``step`` / ``validation``: the step the weights are from and their validation scores,
        when that is not the current step (``model.pt`` holding the best validated weights).
        """
        extra = self.state.extra(self.ctx, self.cfg, self.model, self.scaler,
                                 len(getattr(self.dataset, 'skipped', [])))
        if validation is not None:
            extra['validation'] = validation
        if self.ctx.is_main:
            write_checkpoint(self.out / name, self.model,
                             optimizer=self.optimizer if with_optimizer else None,
                             step=self.step if step is None else int(step), extra=extra)
        distributed.barrier(self.ctx)

    def _log_image(self, batch: dict) -> None:
        devices = [self.device] if self.device.type == 'cuda' else []
        # fork_rng: the extra augmentation draw must not shift the training RNG stream.
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            _, _, views, maps = self.forward(batch, model=self.model)
            self.logbook.log_heatmap(views, maps, float(self.c.loss.tau), self.stride,
                                     self.step)

    # ------------------------------------------------------------------- loop
    def run(self) -> dict:
        """Train until ``train.steps``; returns the metrics written to ``metrics.json``."""
        c = self.c.train
        total, start, main = int(c.steps), self.step, self.ctx.is_main
        if start >= total:  # --resume of a finished run: a no-op, its outputs stay untouched
            LOG.info('run %s is complete (step %d of %d): nothing to do', self.out, start, total)
            return finished_metrics(self.out, start)
        self.logbook.start(start, total, self.method.name, main and c.progress)
        validating = self.selection.active and main
        last_eval = {}
        if start == 0:  # step 0: the start every run must beat (the results tables' step-0 row)
            self.save(STEP0_NAME, with_optimizer=False)
            if validating:
                last_eval = self.selection.validate(self.model, self.logbook)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=None, sampler=range(start, total),
            num_workers=int(self.c.data.num_workers),
            pin_memory=self.device.type == 'cuda',
            # Own generator: creating the iterator must not draw from the global RNG (resume).
            generator=torch.Generator().manual_seed(int(self.c.seed) + self.ctx.rank))
        timing = Timing()
        with StopRequest(self.ctx) as stop:
            for batch in loader:
                t0 = time.perf_counter()
                log_now = (self.step + 1) % c.log_every == 0 or self.step + 1 == total
                stats = self.train_step(batch, instrument=log_now and main)
                if self.device.type == 'cuda':
                    torch.cuda.synchronize(self.device)
                timing.step_done(t0, stats['loss'])
                self.state.step += 1
                self.logbook.log_step(self.state, stats, log_now)
                if main and c.image_every and self.step % c.image_every == 0:
                    self._log_image(batch)
                if validating and self.step % c.eval_every == 0:
                    last_eval = self.selection.validate(self.model, self.logbook)
                if self.step % c.checkpoint_every == 0 and self.step < total:
                    self.save(CHECKPOINT_NAME)
                timing.iteration_done()
                if self.step < total and stop.requested():
                    self._stop(total)
        timing.finish()
        self.logbook.close_progress()
        if validating and self.step > start and self.step % c.eval_every != 0:
            last_eval = self.selection.validate(self.model, self.logbook)
        self.save(CHECKPOINT_NAME)
        self.save(LAST_NAME, with_optimizer=False)
        best_step, best_validation = self.selection.load_best(self.model) if main else (None,) * 2
        self.save(FINAL_NAME, with_optimizer=False, step=best_step, validation=best_validation)
        metrics = self.logbook.metrics(self, start, timing, last_eval)
        self.logbook.write_metrics(metrics)
        self.logbook.close()
        return metrics

    def _stop(self, total: int) -> None:
        """Ctrl-C: save the finished step's checkpoint and raise ``TrainingInterrupted``."""
        self.logbook.close_progress()
        if self.step % int(self.c.train.checkpoint_every):  # else just saved
            self.save(CHECKPOINT_NAME)
        self.logbook.close()
        raise TrainingInterrupted(self.step, total, self.out / CHECKPOINT_NAME)

    def close(self) -> None:
        """Leave the process group."""
        distributed.cleanup(self.ctx)
