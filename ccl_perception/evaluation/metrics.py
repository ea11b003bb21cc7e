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
Keypoint-transfer metrics: PCK, AUC of the PCK curve, normalised mean pixel error.

All errors are Euclidean distances in full-resolution pixels between a predicted match and
the annotated keypoint (never in descriptor-grid units).

- ``PCK@t`` = fraction of keypoints with error ``<= t`` pixels.
- ``AUC`` = mean of PCK@t over the integer thresholds ``t = 1 .. 50`` (the area under the
  PCK curve on [1, 50] divided by its width, so a perfect matcher scores 1.0).
- ``norm_mean_px_error`` = mean error divided by the image diagonal ``sqrt(W^2 + H^2)``
  (resolution-independent; 0 = perfect).

Per-pair values are aggregated as mean and standard deviation over pairs (paper Table I).
"""
from __future__ import annotations

import numpy as np

PCK_THRESHOLDS = (3, 5, 10, 25, 50)
AUC_THRESHOLDS = tuple(range(1, 51))


def pixel_errors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N,)`` between ``(N, 2)`` predicted and target pixels."""
    pred, target = np.asarray(pred, dtype=float), np.asarray(target, dtype=float)
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] != 2:
        raise ValueError(
            f'pred and target must both be (N, 2), got {pred.shape} and {target.shape}')
    return np.linalg.norm(pred - target, axis=1)


def pck(errors, threshold: float) -> float:
    """Fraction of ``errors`` (pixels) that are ``<= threshold``; NaN for no errors."""
    e = np.asarray(errors, dtype=float).reshape(-1)
    if threshold < 0:
        raise ValueError(f'threshold must be >= 0, got {threshold}')
    return float(np.mean(e <= threshold)) if e.size else float('nan')


def pck_curve(errors, thresholds=AUC_THRESHOLDS) -> np.ndarray:
    """PCK at each threshold, ``(T,)``."""
    return np.array([pck(errors, t) for t in thresholds])


def auc(errors, thresholds=AUC_THRESHOLDS) -> float:
    """Mean PCK over ``thresholds`` (default 1..50 px): normalised area under the PCK curve."""
    return float(np.mean(pck_curve(errors, thresholds)))


def normalised_mean_error(errors, width: int, height: int) -> float:
    """Mean pixel error divided by the image diagonal ``sqrt(W^2 + H^2)``."""
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    e = np.asarray(errors, dtype=float).reshape(-1)
    return float(e.mean() / np.hypot(width, height)) if e.size else float('nan')


def summarise(errors, width: int, height: int) -> dict:
    """
    Compute all metrics of one set of errors.

    Returns ``{'pck': {'3': ..}, 'auc', 'norm_mean_px_error', 'mean_px_error', 'n'}``.
    """
    e = np.asarray(errors, dtype=float).reshape(-1)
    return {'pck': {str(t): pck(e, t) for t in PCK_THRESHOLDS}, 'auc': auc(e),
            'norm_mean_px_error': normalised_mean_error(e, width, height),
            'mean_px_error': float(e.mean()) if e.size else float('nan'), 'n': int(e.size)}


def aggregate(summaries: list) -> dict:
    """
    Mean and std (population, ddof=0) over a list of :func:`summarise` dicts.

    Returns:
        ``{'pck': {t: mean}, 'pck_std': {t: std}, 'auc', 'auc_std', 'norm_mean_px_error',
        'norm_mean_px_error_std', 'mean_px_error', 'num': len}``; NaN entries are skipped.
    """
    def stats(values):
        v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
        return (float(v.mean()), float(v.std())) if v.size else (float('nan'), float('nan'))

    out = {'pck': {}, 'pck_std': {}, 'num': len(summaries)}
    for t in PCK_THRESHOLDS:
        out['pck'][str(t)], out['pck_std'][str(t)] = stats([s['pck'][str(t)] for s in summaries])
    for key in ('auc', 'norm_mean_px_error', 'mean_px_error'):
        out[key], out[key + '_std'] = stats([s[key] for s in summaries])
    return out
