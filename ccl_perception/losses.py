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
Losses of the Cycle-Correspondence Loss paper (Adrian et al.).

All keypoints are ``(x, y)`` in the pixel coordinates of the 1/8-resolution descriptor
maps the losses are computed on (grid cells; see ``correspondence.full_to_grid``).

- :func:`distributional_loss` (Eq. 5): ``|| k* - k ||_2`` of the spatial expectation.
- :func:`identical_view_loss` (Eq. 10): Eq. 5 between an image and an augmented copy.
- :func:`cycle_correspondence_loss` (Eq. 6-9): A -> B -> A_hat through the expected
  descriptor, with the quantile drop and the variance scaling ``1 / (1 + X_i)``.
- The objectives of the training methods, one function each with one signature
  (:data:`Objective`): :func:`identical_view_objective`, :func:`cycle_objective` and
  :func:`cycle_plus_identical_view_objective`, with their hyper-parameters in
  :class:`LossParams`. Which method uses which objective is the table of
  ``ccl_perception.learning.methods`` (the only place a method is named).
"""

from dataclasses import dataclass
from typing import Callable

import torch

from .correspondence import (
    DEFAULT_TAU, expected_descriptor, heatmap_probabilities, sample_descriptors,
    spatial_expectation, spatial_variance,
)


def _check_valid(valid: torch.Tensor, kp: torch.Tensor) -> torch.Tensor:
    if valid is None:
        return torch.ones(kp.shape[:2], dtype=torch.bool, device=kp.device)
    if valid.shape != kp.shape[:2]:
        raise ValueError(f'valid must be (B, N) = {tuple(kp.shape[:2])}, got {tuple(valid.shape)}')
    return valid.bool()


def distributional_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor = None,
                        weight: torch.Tensor = None) -> torch.Tensor:
    """
    Mean Euclidean distance between predicted and true keypoints (Eq. 5).

    Args:
        pred: ``(B, N, 2)`` predicted keypoints (spatial expectations).
        target: ``(B, N, 2)`` true keypoints.
        valid: ``(B, N)`` bool; only these points count. ``None`` = all.
        weight: ``(B, N)`` optional per-point factors (e.g. ``1 / (1 + X_i)``).

    Returns:
        Scalar ``sum(w_i * ||pred_i - target_i||) / #valid``; exactly ``0`` (still
        differentiable) when no point is valid.
    """
    if pred.shape != target.shape or pred.dim() != 3 or pred.shape[-1] != 2:
        raise ValueError(f'pred and target must both be (B, N, 2), got {tuple(pred.shape)} '
                         f'and {tuple(target.shape)}')
    valid = _check_valid(valid, pred)
    # eps keeps the gradient finite where pred == target exactly.
    err = torch.sqrt(((pred.float() - target.float()) ** 2).sum(dim=-1) + 1e-12)
    if weight is not None:
        err = err * weight
    err = torch.where(valid, err, torch.zeros_like(err))
    return err.sum() / valid.sum().clamp(min=1)


def identical_view_loss(desc_a: torch.Tensor, desc_a_hat: torch.Tensor, kp_a: torch.Tensor,
                        kp_a_hat: torch.Tensor, valid: torch.Tensor = None,
                        tau: float = DEFAULT_TAU) -> torch.Tensor:
    """
    Identical-view loss (Eq. 10): match ``d_A(k_A)`` over ``D_Â`` and apply Eq. 5.

    Also the supervised loss, with ``desc_a_hat`` / ``kp_a_hat`` the second image's
    descriptors and its exactly known correspondences.

    Args:
        desc_a: ``(B, D, h, w)`` descriptor map of I_A.
        desc_a_hat: ``(B, D, h, w)`` descriptor map of its augmented copy Î_A.
        kp_a: ``(B, N, 2)`` keypoints in I_A (inside the map).
        kp_a_hat: ``(B, N, 2)`` where they land in Î_A.
        valid: ``(B, N)`` bool, False where a point left Î_A.
        tau: softmax temperature.
    """
    valid = _check_valid(valid, kp_a)
    prob = heatmap_probabilities(sample_descriptors(desc_a, kp_a), desc_a_hat, tau)
    return distributional_loss(spatial_expectation(prob), kp_a_hat, valid)


def quantile_drop(x: torch.Tensor, valid: torch.Tensor, quantile: float) -> torch.Tensor:
    """
    Keep the ``quantile`` fraction of valid points with the smallest uncertainty ``X_i``.

    Per image, ``ceil(quantile * n_valid)`` points are kept (ties broken by index).

    Args:
        x: ``(B, N)`` uncertainties (summed variances).
        valid: ``(B, N)`` bool.
        quantile: fraction in ``(0, 1]`` (paper: q = 0.35).

    Returns:
        ``(B, N)`` bool mask, a subset of ``valid``.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f'quantile must be in (0, 1], got {quantile}')
    if x.shape != valid.shape:
        raise ValueError(f'x {tuple(x.shape)} and valid {tuple(valid.shape)} differ')
    if x.shape[1] == 0:
        return valid.clone()
    keyed = torch.where(valid, x.float(), torch.full_like(x, float('inf'), dtype=torch.float32))
    order = torch.argsort(keyed, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(x.shape[1], device=x.device).expand_as(order))
    n_keep = torch.ceil(valid.sum(dim=1).float() * quantile - 1e-6).long()  # (B,)
    return (rank < n_keep.unsqueeze(1)) & valid


def cycle_correspondence_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, desc_a_hat: torch.Tensor,
                              kp_a: torch.Tensor, kp_a_hat: torch.Tensor,
                              valid: torch.Tensor = None, tau: float = DEFAULT_TAU,
                              quantile: float = 0.35,
                              use_quantile_drop: bool = True, use_variance_scaling: bool = True,
                              details: dict = None):
    """
    Cycle-correspondence loss (Eq. 6-9).

    For each keypoint ``k_A``: ``d = D_A(k_A)`` is matched over ``D_B`` (Eq. 1-2), the
    *expected descriptor* ``d_B* = normalise(sum P_B(x,y) D_B(x,y))`` (Eq. 8) is matched
    over ``D_Â`` and its spatial expectation ``k*_Â`` (Eq. 3) is compared with the known
    ``k_Â`` (Eq. 5 / Eq. 9). The uncertainty ``X_i = chi_Â,i + chi_B,i`` with
    ``chi = sigma_x^2 + sigma_y^2`` (Eq. 4) is detached; it selects the ``quantile`` most
    confident points (quantile drop) and scales each error by ``1 / (1 + X_i)``.

    Args:
        desc_a, desc_b, desc_a_hat: ``(B, D, h, w)`` maps of I_A, I_B and Î_A.
        kp_a: ``(B, N, 2)`` keypoints in I_A (grid coordinates, inside the map).
        kp_a_hat: ``(B, N, 2)`` their known positions in Î_A.
        valid: ``(B, N)`` bool, False where a point left Î_A.
        tau: softmax temperature (0.03).
        quantile: fraction kept by the quantile drop (0.35).
        use_quantile_drop, use_variance_scaling: ablation switches.
        details: optional dict, filled with detached tensors for instruments: ``keep``
            ``(B, N)`` bool (the cycles the quantile drop kept), ``kp_b_star`` ``(B, N, 2)``
            (the spatial expectation of the heatmap over ``D_B``, grid coordinates),
            ``kp_a_hat_star`` ``(B, N, 2)`` and ``uncertainty`` ``(B, N)``.

    Returns:
        ``(loss, stats)``: scalar loss and a dict of detached floats
        (``kept_fraction``, ``mean_uncertainty``, ``mean_error``).
    """
    valid = _check_valid(valid, kp_a)
    if desc_b.shape != desc_a.shape or desc_a_hat.shape != desc_a.shape:
        raise ValueError(f'descriptor maps differ: A {tuple(desc_a.shape)}, '
                         f'B {tuple(desc_b.shape)}, A_hat {tuple(desc_a_hat.shape)}')
    query = sample_descriptors(desc_a, kp_a)                             # (B, N, D)
    prob_b = heatmap_probabilities(query, desc_b, tau)                    # (B, N, h, w)  Eq. 1-2
    desc_b_star = expected_descriptor(prob_b, desc_b)                     # (B, N, D)     Eq. 8
    prob_hat = heatmap_probabilities(desc_b_star, desc_a_hat, tau)        # over D_Â
    kp_star = spatial_expectation(prob_hat)                               # k*_Â          Eq. 3
    with torch.no_grad():                                 # X_i is detached: Eq. 4 off the graph
        uncertainty = spatial_variance(prob_hat, kp_star).sum(-1) + \
            spatial_variance(prob_b).sum(-1)

    keep = valid
    if use_quantile_drop:
        keep = quantile_drop(uncertainty, valid, quantile)
    weight = 1.0 / (1.0 + uncertainty) if use_variance_scaling else None
    loss = distributional_loss(kp_star, kp_a_hat, keep, weight)

    with torch.no_grad():
        err = torch.linalg.norm(kp_star.float() - kp_a_hat.float(), dim=-1)
        n_valid = valid.sum().clamp(min=1)
        stats = {
            'kept_fraction': float(keep.sum() / n_valid),
            'mean_uncertainty': float((uncertainty * valid).sum() / n_valid),
            'mean_error': float((err * valid).sum() / n_valid),
        }
        if details is not None:
            details.update(keep=keep, kp_b_star=spatial_expectation(prob_b).detach(),
                           kp_a_hat_star=kp_star.detach(), uncertainty=uncertainty)
    return loss, stats


@dataclass(frozen=True)
class LossParams:
    """
    Hyper-parameters of the objectives (``loss.*`` of the training config).

    Attributes:
        tau: softmax temperature of the heatmaps (Eq. 2).
        quantile: fraction of valid cycles the quantile drop keeps (Eq. 7).
        lambda_iv: weight of the identical-view term of CCL + identical view.
        use_quantile_drop, use_variance_scaling: CCL ablation switches.
    """

    tau: float
    quantile: float
    lambda_iv: float
    use_quantile_drop: bool
    use_variance_scaling: bool


#: ``objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b, params, details)`` ->
#: ``(loss, stats)``: maps ``(B, D, h, w)`` of I_A, Î_A (or the second rendered view) and I_B
#: (None when the method needs none), keypoints ``(B, N, 2)`` on the grid, ``valid`` ``(B, N)``,
#: :class:`LossParams`, the optional ``details`` dict; a scalar loss and a dict of floats.
Objective = Callable


def identical_view_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b,
                             params: LossParams, details: dict = None):
    """Eq. 10 (Eq. 5 on exact correspondences when ``desc_a_hat`` is a second rendered view)."""
    loss = identical_view_loss(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, params.tau)
    return loss, {'loss_iv': float(loss.detach())}


def cycle_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b, params: LossParams,
                    details: dict = None):
    """Eq. 9 through ``desc_b`` (:func:`cycle_correspondence_loss`; ``details`` as there)."""
    loss, stats = cycle_correspondence_loss(
        desc_a, desc_b, desc_a_hat, kp_a, kp_a_hat, valid, tau=params.tau,
        quantile=params.quantile, use_quantile_drop=params.use_quantile_drop,
        use_variance_scaling=params.use_variance_scaling, details=details)
    stats['loss_ccl'] = float(loss.detach())
    return loss, stats


def cycle_plus_identical_view_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b,
                                        params: LossParams, details: dict = None):
    """CCL + ``lambda_iv`` * identical view (paper: lambda = 0.1)."""
    loss, stats = cycle_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b, params,
                                  details)
    iv, iv_stats = identical_view_objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, None,
                                            params)
    stats.update(iv_stats)
    return loss + params.lambda_iv * iv, stats
