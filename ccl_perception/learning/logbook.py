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
What a run writes about itself (rank 0): TensorBoard, ``metrics.json``, the loss curve.

``<out>/config.yaml`` (the merged config), TensorBoard logs in ``<out>/tb`` (``train/*``
scalars every ``train.log_every`` steps, the CCL instruments, ``val/*``, a heatmap image every
``train.image_every`` steps), a tqdm bar, and at the end ``<out>/metrics.json`` (timing,
memory, precision, histories) and ``<out>/loss.png`` (``ccl_perception.learning.loss_curve``).
:func:`peak_memory_mib` is the package's one reader of the peak resident memory.
"""

import json
import logging
import math
from pathlib import Path
import time

import numpy as np
import torch

from . import distributed
from .config import dump_config
from .precision import cpu_description
from ..correspondence import cosine_heatmap, grid_to_full, heatmap_softmax, sample_descriptors

LOG = logging.getLogger(__name__)

METRICS_NAME = 'metrics.json'
LOSS_CURVE_NAME = 'loss.png'


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


def json_safe(value):
    """``value`` with NaN/inf floats as None (``json.dumps`` would write invalid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def finished_metrics(out: Path, step: int) -> dict:
    """Return a finished run's ``<out>/metrics.json``, or ``{'final_step': step}``."""
    try:
        return json.loads((Path(out) / METRICS_NAME).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {'final_step': step}


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


class Timing:
    """Per-step times (forward + backward + optimiser step), per-iteration times and losses."""

    def __init__(self):
        self.steps, self.iterations, self.losses = [], [], []
        self.t_start = self.t_prev = time.perf_counter()
        self.wall = float('nan')

    def step_done(self, t0: float, loss: float) -> None:
        """Record a step that began at ``t0`` (``time.perf_counter``) and its loss."""
        self.steps.append(time.perf_counter() - t0)
        self.losses.append(loss)

    def iteration_done(self) -> None:
        """Record the iteration (data loading + step + logging) that ends now."""
        self.iterations.append(time.perf_counter() - self.t_prev)
        self.t_prev = time.perf_counter()

    def finish(self) -> None:
        """Record the wall time of the loop, which ends now."""
        self.wall = time.perf_counter() - self.t_start

    @staticmethod
    def mean_after_warmup(times) -> float:
        """Mean without the first entry (allocations, lazy init); NaN when empty."""
        timed = times[1:] if len(times) > 1 else times
        return float(np.mean(timed)) if timed else float('nan')


class Logbook:
    """
    Rank 0's outputs of a run (a no-op on the other ranks).

    Args:
        out: run folder.
        cfg: the merged config dict.
        ctx: the distributed context.
    """

    def __init__(self, out: Path, cfg: dict, ctx):
        self.out, self.cfg, self.ctx = Path(out), cfg, ctx
        self.main = ctx.is_main
        self.writer = None
        self.progress = None

    def start(self, start: int, total: int, desc: str, progress: bool) -> None:
        """Create the run folder, ``config.yaml``, the TensorBoard writer and the bar."""
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / 'config.yaml').write_text(dump_config(self.cfg), encoding='utf-8')
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(self.out / 'tb'))
        if start == 0:
            self.writer.add_text('config', '```\n' + dump_config(self.cfg) + '\n```', 0)
        if progress:
            from tqdm import tqdm
            self.progress = tqdm(total=total, initial=start, desc=desc, unit='step',
                                 dynamic_ncols=True)

    def log_step(self, state, stats: dict, log_now: bool) -> dict:
        """
        Log one step's scalars (``train/*``, ``instruments/*``) and keep their histories.

        Returns the step's stats without the instruments (averaged over ranks when logged).
        """
        instruments = {k: stats.pop(k) for k in list(stats) if k.startswith('instruments/')}
        if log_now:
            stats = distributed.mean_across_ranks(self.ctx, stats)
            if self.main:
                for key, value in stats.items():
                    self.writer.add_scalar(f'train/{key}', value, state.step)
                for key, value in instruments.items():
                    if math.isfinite(value):
                        self.writer.add_scalar(key, value, state.step)
                if instruments:
                    state.instrument_history.append(
                        {'step': state.step,
                         **{k.split('/', 1)[1]: v for k, v in instruments.items()}})
                state.loss_history.append({'step': state.step, **{
                    k: v for k, v in stats.items() if k == 'loss' or k.startswith('loss_')}})
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(loss=f'{stats["loss"]:.3f}')
        return stats

    def log_heatmap(self, views, maps, tau: float, stride: int, step: int) -> None:
        """Log the first valid query of the batch and its heatmap as a TensorBoard image."""
        kp_a, valid = views.kp_a, views.valid
        index = int(torch.nonzero(valid[0])[0]) if bool(valid[0].any()) else 0
        query = sample_descriptors(maps[0][:1], kp_a[:1, index:index + 1])
        prob = heatmap_softmax(cosine_heatmap(query, maps[-1][:1]), tau)
        fig = heatmap_figure(views.images[0][0].float().cpu(), kp_a[0, index].cpu(),
                             views.images[-1][0].float().cpu(), prob[0, 0].cpu(), stride)
        self.writer.add_image('heatmap', fig, step)

    def log_validation(self, scalars: dict, step: int) -> None:
        """``val/*`` scalars."""
        for key, value in scalars.items():
            self.writer.add_scalar(f'val/{key}', value, step)
        LOG.info('step %d evaluation: %s', step, scalars)

    def close_progress(self) -> None:
        """Close the progress bar (the loop is over)."""
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def close(self) -> None:
        """Close the bar and the TensorBoard writer."""
        self.close_progress()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def metrics(self, trainer, start: int, timing: Timing, last_eval: dict) -> dict:
        """Return the run's ``metrics.json`` content (collective: gathers every rank's memory)."""
        state, batch = trainer.state, int(trainer.c.train.batch_size)
        per_step = Timing.mean_after_warmup(timing.steps)
        per_iter = Timing.mean_after_warmup(timing.iterations)
        samples_per_s = batch * self.ctx.world_size / per_iter
        n_views = 3 if trainer.criterion.needs_second_image else 2
        mem = distributed.all_gather_objects(self.ctx, peak_memory_mib())
        metrics = {
            'method': trainer.method.name, 'start_step': start, 'final_step': state.step,
            'world_size': self.ctx.world_size, 'device': str(trainer.device),
            'amp': trainer.precision.autocast_enabled, 'precision': trainer.precision.name,
            'precision_reason': trainer.precision.reason, 'cpu': cpu_description(),
            'resolution': [trainer.c.data.width, trainer.c.data.height],
            'batch_size_per_rank': batch,
            'step_time_s': per_step,          # forward + backward + optimiser step
            'iteration_time_s': per_iter,     # + data loading and logging
            # images/s = training samples I_A per second over all ranks (each sample forwards
            # n_views images: I_A, Î_A and, for CCL, I_B).
            'images_per_s': samples_per_s,
            'forwarded_images_per_s': samples_per_s * n_views,
            'wall_time_s': timing.wall,
            'peak_memory_mib': max(mem), 'peak_memory_mib_per_rank': mem,
            'loss_first': timing.losses[0] if timing.losses else None,
            'loss_last': timing.losses[-1] if timing.losses else None,
            'skipped_images': len(getattr(trainer.dataset, 'skipped', [])) + state.skipped_lazy,
            'validation': last_eval,
            'best_step': state.best['step'],
            'best_validation': state.best['score'] if state.best['step'] is not None else None,
            'validation_history': state.validation_history,
            'instruments': state.instrument_history,
            'loss_history': state.loss_history,
            'head_init': state.head_init,
            'trunk_mode': trainer.model.trunk_mode,
            'trunk_cache_images': len(trainer.describe.cache or {}),
        }
        if trainer.device.type == 'cuda':
            metrics['cuda_peak_allocated_mib'] = torch.cuda.max_memory_allocated(
                trainer.device) / 2 ** 20
        return metrics

    def write_metrics(self, metrics: dict) -> None:
        """Write ``metrics.json`` and the loss curve ``loss.png`` (rank 0)."""
        if not self.main:
            return
        (self.out / METRICS_NAME).write_text(
            json.dumps(json_safe(metrics), indent=2, allow_nan=False), encoding='utf-8')
        try:
            from .loss_curve import plot_loss_curves
            plot_loss_curves([(self.out.name, metrics)], self.out / LOSS_CURVE_NAME)
        except (ImportError, OSError, ValueError) as exc:  # a picture never fails a run
            LOG.warning('no loss curve written: %s', exc)
