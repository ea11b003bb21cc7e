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
What a run is besides its weights: RNG states, resume, ``init_from``, checkpoint extras.

A checkpoint (``ccl_perception.checkpoint.save_checkpoint``, atomic) holds the model, the
optimiser, the step and :meth:`RunState.extra`: every rank's RNG states, the config (with
``tau``, written once by :func:`model_extra`), the gradient scaler, the run's histories and
its best validation. Resuming restores all of it, so 3 + 3 steps equal 6 steps bit for bit.
A checkpoint that cannot be written (disk full) is a one-line :class:`TrainingError`; the
write is atomic, so the previous file stays intact. Ctrl-C (:class:`StopRequest`) lets the
step finish, saves a checkpoint and raises :class:`TrainingInterrupted`.
"""

from dataclasses import dataclass, field
import logging
from pathlib import Path
import random
import shutil
import signal
import threading

import numpy as np
import torch

from . import distributed

LOG = logging.getLogger(__name__)

CHECKPOINT_NAME = 'checkpoint.pt'
#: Model config keys that must agree between a run and the checkpoint it starts from.
ARCHITECTURE_KEYS = ('backbone', 'descriptor_dim', 'trunk', 'head', 'head_hidden')


class TrainingError(RuntimeError):
    """A run cannot start or continue (e.g. nothing to resume, output folder already used)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after a whole step; ``checkpoint`` holds that step."""

    def __init__(self, step: int, total: int, checkpoint):
        super().__init__(f'interrupted at step {step} of {total}; saved {checkpoint}')
        self.step, self.total, self.checkpoint = step, total, Path(checkpoint)


class StopRequest:
    """
    Ctrl-C (SIGINT) during the training loop: finish the step, then stop (context manager).

    A second Ctrl-C interrupts at once (``KeyboardInterrupt``). Only the main thread can own
    the signal; elsewhere Ctrl-C keeps Python's default behaviour.
    """

    def __init__(self, ctx):
        self.ctx, self.flag, self.previous = ctx, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def requested(self) -> bool:
        """Return True once any rank got Ctrl-C (collective under DDP: every rank asks)."""
        return distributed.any_rank(self.ctx, self.flag)


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


def model_extra(cfg: dict) -> dict:
    """Return what every saved model carries about its training: config, method and ``tau``."""
    return {'config': cfg, 'method': cfg['method'], 'tau': float(cfg['loss']['tau'])}


def write_checkpoint(path, model, optimizer=None, step: int = 0, extra: dict = None) -> None:
    """
    ``save_checkpoint`` with a failed write (disk full) as a one-line :class:`TrainingError`.

    torch's zip writer reports a short write as a ``RuntimeError`` (``unexpected pos``), a
    Python file as an ``OSError``; either way the temporary file is gone and the previous
    ``path`` is unchanged.
    """
    from ..checkpoint import save_checkpoint
    try:
        save_checkpoint(str(path), model, optimizer=optimizer, step=step, extra=extra)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not any(
                s in str(exc) for s in ('inline_container', 'PytorchStreamWriter', 'write')):
            raise
        try:
            free = f'{shutil.disk_usage(Path(path).parent).free / 2 ** 20:.0f} MiB free'
        except OSError:
            free = 'free space unknown'
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else 'write failed'
        raise TrainingError(f'cannot write checkpoint {path}: {reason} ({free} on its disk); '
                            'the previous checkpoint there, if any, is intact') from None


def resume_path(out: Path, resume):
    """Return the checkpoint a run resumes from (``'auto'``/True: ``<out>/checkpoint.pt``)."""
    ckpt = Path(out) / CHECKPOINT_NAME
    if resume is None:
        if ckpt.exists():
            raise TrainingError(f'{out} already holds a run ({ckpt}); pass --resume to '
                                'continue it or choose another --out')
        return None
    path = ckpt if resume in (True, 'auto') else Path(resume)
    if not path.exists():
        raise TrainingError(
            f'--resume: no checkpoint at {path} (run without --resume to start fresh)')
    return path


def resume_config(out: Path, resume, overrides=()) -> dict:
    """Return the config stored in the checkpoint a run resumes from, ``overrides`` merged."""
    from ..checkpoint import load_checkpoint
    from .config import DEFAULT_CONFIG_PATH, merge, parse_override, read_yaml, validate
    path = resume_path(out, resume)
    cfg = (load_checkpoint(str(path)).get('extra') or {}).get('config')
    if not cfg:
        raise TrainingError(f'--resume: {path} stores no config; pass --config')
    cfg = merge(read_yaml(DEFAULT_CONFIG_PATH), cfg)  # keys added since get their defaults
    for text in overrides:
        cfg = merge(cfg, parse_override(text))
    validate(cfg)
    return cfg


def init_from(path, model, log: bool = True) -> None:
    """Copy model weights from a checkpoint (paper: CCL starts from an identical-view one)."""
    from ..checkpoint import load_model
    source = load_model(str(path), device='cpu')
    theirs, ours = getattr(source, 'config', {}), getattr(model, 'config', {})
    for key in ARCHITECTURE_KEYS:
        if key in theirs and key in ours and theirs[key] != ours[key]:
            raise TrainingError(f'init_from {path}: {key} is {theirs[key]!r} there but '
                                f'{ours[key]!r} in this config')
    model.load_state_dict(source.state_dict())
    if log:
        LOG.info('initialised model weights from %s', path)


@dataclass
class RunState:
    """
    The step and the run's histories: what a resume restores besides weights and optimiser.

    Attributes:
        step: optimiser steps done.
        skipped_lazy: images that failed to decode after the scan.
        best: ``{'step', 'score'}`` of the best validation so far (step None: none yet).
        validation_history, instrument_history, loss_history: lists of ``{'step', ...}``.
        head_init: the PCA head start's summary, or None.
    """

    step: int = 0
    skipped_lazy: int = 0
    best: dict = field(default_factory=lambda: {'step': None, 'score': float('-inf')})
    validation_history: list = field(default_factory=list)
    instrument_history: list = field(default_factory=list)
    loss_history: list = field(default_factory=list)
    head_init: dict = None

    def extra(self, ctx, cfg: dict, model, scaler, skipped_images: int) -> dict:
        """Return the checkpoint's ``extra`` (collective: every rank must call it)."""
        rng = distributed.all_gather_objects(ctx, get_rng_state())
        # Sum of every weight per rank: equal on all ranks iff DDP kept the replicas in sync.
        with torch.no_grad():
            checksum = float(sum(p.double().sum() for p in model.parameters()))
        return {
            **model_extra(cfg),
            'rank_weight_checksums': distributed.all_gather_objects(ctx, checksum),
            'rng': rng,
            'scaler': scaler.state_dict() if scaler.is_enabled() else None,
            'skipped_images': int(skipped_images),
            'skipped_lazy': self.skipped_lazy,
            'world_size': ctx.world_size,
            'best': dict(self.best) if self.best['step'] is not None else None,
            'validation_history': self.validation_history,
            'instrument_history': self.instrument_history,
            'loss_history': self.loss_history,
            'head_init': self.head_init,
        }

    def restore(self, path, ctx, cfg: dict, model, optimizer, scaler) -> None:
        """Load a checkpoint's weights, optimiser, scaler, step, histories and RNG states."""
        from ..checkpoint import load_checkpoint
        ckpt = load_checkpoint(str(path))
        extra = ckpt.get('extra') or {}
        stored = (extra.get('config') or {}).get('method')
        if stored not in (None, cfg['method']):
            raise TrainingError(f'--resume {path}: checkpoint was trained with method='
                                f'{stored!r}, config says {cfg["method"]!r}')
        if ckpt.get('optimizer_state') is None:
            raise TrainingError(
                f'--resume {path}: checkpoint has no optimiser state (a final model.pt?)')
        ours = {k: model.config.get(k) for k in ARCHITECTURE_KEYS}
        theirs = {k: ckpt['model_config'].get(k) for k in ours}
        if ours != theirs:
            raise TrainingError(
                f'--resume {path}: checkpoint model {theirs} differs from the config {ours}')
        model.load_state_dict(ckpt['model_state'])
        optimizer.load_state_dict(ckpt['optimizer_state'])
        if extra.get('scaler'):
            scaler.load_state_dict(extra['scaler'])
        self.step = int(ckpt['step'])
        self.skipped_lazy = int(extra.get('skipped_lazy', 0))
        best = extra.get('best') or {}
        if best.get('step') is not None:
            self.best = {'step': int(best['step']), 'score': float(best['score'])}
        for key in ('validation_history', 'instrument_history', 'loss_history'):
            setattr(self, key, list(extra.get(key) or []))
        states = extra.get('rng') or []
        if len(states) == ctx.world_size:
            set_rng_state(states[ctx.rank])
        else:
            LOG.warning('checkpoint holds RNG states of %d ranks, this run has %d: reseeding',
                        len(states), ctx.world_size)
            seed_everything(int(cfg['seed']) + ctx.rank + 7919 * self.step)
        if ctx.is_main:
            LOG.info('resumed %s at step %d', path, self.step)
