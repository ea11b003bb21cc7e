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
Dense correspondence math of the Cycle-Correspondence Loss paper (Adrian et al.).

Everything here is batched over ``B`` images and ``N`` query descriptors and never
materialises a ``B x N x H x W x D`` tensor: heatmaps are ``(B, N, h, w)`` and are
produced by one batched matrix product.

Pixel convention (see docs/ARCHITECTURE.md): points are ``(x, y)`` = (column, row),
pixel centres sit at integer coordinates. On a map of width ``w`` the valid range of
``x`` is ``[-0.5, w - 0.5]``. Coordinates returned by these functions are in the pixel
units of the map they were computed on: grid cells for the 1/8 descriptor map,
full-resolution pixels for an upsampled map. ``grid_to_full`` / ``full_to_grid``
convert between the two exactly.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

STRIDE = 8
DEFAULT_TAU = 0.03


def grid_to_full(xy: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """
    Map 1/stride grid coordinates to full-resolution pixel coordinates.

    Grid cell ``j`` covers full-resolution pixels ``[stride*j, stride*j + stride)``, so its
    centre is at ``stride*j + (stride-1)/2``. This is the sampling grid of bilinear
    upsampling with ``align_corners=False``.

    Args:
        xy: ``(..., 2)`` grid coordinates (any float tensor).
        stride: model output stride.

    Returns:
        ``(..., 2)`` full-resolution pixel coordinates.
    """
    return xy * stride + (stride - 1) / 2.0


def full_to_grid(xy: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Inverse of :func:`grid_to_full`: full-resolution pixels ``(..., 2)`` to grid coordinates."""
    return (xy - (stride - 1) / 2.0) / stride


def _check_map(desc: torch.Tensor, name: str = 'desc') -> None:
    if desc.dim() != 4:
        raise ValueError(f'{name} must be (B, D, h, w), got shape {tuple(desc.shape)}')


def _check_points(kp: torch.Tensor, batch: int, name: str = 'kp') -> None:
    if kp.dim() != 3 or kp.shape[-1] != 2:
        raise ValueError(f'{name} must be (B, N, 2) (x, y) points, got shape {tuple(kp.shape)}')
    if kp.shape[0] != batch:
        raise ValueError(f'{name} has batch {kp.shape[0]} but the descriptor map has {batch}')


def sample_descriptors(desc: torch.Tensor, kp: torch.Tensor) -> torch.Tensor:
    """
    Bilinearly sample unit descriptors at sub-pixel points.

    Args:
        desc: ``(B, D, h, w)`` descriptor map.
        kp: ``(B, N, 2)`` points ``(x, y)`` in the map's pixel coordinates, inside
            ``[-0.5, w-0.5] x [-0.5, h-0.5]``.

    Returns:
        ``(B, N, D)`` L2-normalised descriptors.

    Raises:
        ValueError: on wrong shapes or points outside the map.
    """
    _check_map(desc)
    _check_points(kp, desc.shape[0])
    b, d, h, w = desc.shape
    if kp.shape[1] == 0:
        return desc.new_zeros(b, 0, d)
    outside = (kp[..., 0] < -0.5) | (kp[..., 0] > w -
                                     0.5) | (kp[..., 1] < -0.5) | (kp[..., 1] > h - 0.5)
    if bool(outside.any()):
        bad = kp[outside][0].tolist()
        raise ValueError(f'keypoints outside the {w}x{h} map, e.g. (x, y) = {bad}')
    # align_corners=True: -1 / +1 are the centres of the first / last pixel.
    gx = 2.0 * kp[..., 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * kp[..., 1] / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(1).to(desc.dtype)  # (B, 1, N, 2)
    sampled = F.grid_sample(desc, grid, mode='bilinear', padding_mode='border', align_corners=True)
    return F.normalize(sampled.squeeze(2).transpose(1, 2), dim=-1)  # (B, N, D)


def _similarity(query: torch.Tensor, desc: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """
    Compute ``scale`` x cosine similarity of ``(B, N, D)`` queries with a ``(B, D, h, w)`` map.

    Returns ``(B, N, h*w)``.
    """
    _check_map(desc)
    if query.dim() != 3 or query.shape[0] != desc.shape[0] or query.shape[2] != desc.shape[1]:
        raise ValueError(
            f'query must be (B, N, D) matching desc (B, D, h, w); got {tuple(query.shape)} '
            f'and {tuple(desc.shape)}')
    b, d, h, w = desc.shape
    q = F.normalize(query, dim=-1)
    if scale != 1.0:
        q = q * scale  # (B, N, D): cheaper than scaling the (B, N, h*w) result
    return torch.bmm(q, F.normalize(desc, dim=1).reshape(b, d, h * w))


def cosine_heatmap(query: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
    """
    Cosine similarity of each query descriptor with every pixel of a map (Eq. 1).

    Args:
        query: ``(B, N, D)`` descriptors.
        desc: ``(B, D, h, w)`` descriptor map.

    Returns:
        ``(B, N, h, w)`` similarities in ``[-1, 1]``.
    """
    return _similarity(query, desc).reshape(desc.shape[0], -1, *desc.shape[-2:])


def heatmap_softmax(sim: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """
    Temperature softmax over all pixels of each heatmap (Eq. 2).

    Args:
        sim: ``(B, N, h, w)`` similarities.
        tau: temperature (paper: 0.03).

    Returns:
        ``(B, N, h, w)`` probabilities ``P(x, y)`` summing to one per heatmap.
    """
    if tau <= 0:
        raise ValueError(f'temperature tau must be > 0, got {tau}')
    b, n, h, w = sim.shape
    return torch.softmax(sim.reshape(b, n, h * w).float() / tau, dim=-1).reshape(b, n, h, w)


def heatmap_probabilities(query: torch.Tensor, desc: torch.Tensor,
                          tau: float = DEFAULT_TAU) -> torch.Tensor:
    """
    ``heatmap_softmax(cosine_heatmap(query, desc), tau)`` (Eq. 1-2) in one pass.

    The ``1/tau`` scale is folded into the ``(B, N, D)`` queries before the matrix product,
    so no ``(B, N, h, w)`` division runs forward or backward: the training losses use this.

    Returns:
        ``(B, N, h, w)`` probabilities.
    """
    if tau <= 0:
        raise ValueError(f'temperature tau must be > 0, got {tau}')
    logits = _similarity(query, desc, 1.0 / tau)
    return torch.softmax(logits.float(), dim=-1).reshape(desc.shape[0], -1, *desc.shape[-2:])


def _pixel_axes(prob: torch.Tensor):
    h, w = prob.shape[-2:]
    xs = torch.arange(w, device=prob.device, dtype=prob.dtype)
    ys = torch.arange(h, device=prob.device, dtype=prob.dtype)
    return xs, ys


def spatial_expectation(prob: torch.Tensor) -> torch.Tensor:
    """
    Compute the expected pixel position under a heatmap distribution (Eq. 3).

    Args:
        prob: ``(B, N, h, w)`` probabilities.

    Returns:
        ``(B, N, 2)`` expected ``(x, y)`` in the map's pixel coordinates.
    """
    xs, ys = _pixel_axes(prob)
    ex = (prob.sum(dim=-2) * xs).sum(dim=-1)  # marginal over rows, then E[x]
    ey = (prob.sum(dim=-1) * ys).sum(dim=-1)
    return torch.stack([ex, ey], dim=-1)


def spatial_variance(prob: torch.Tensor, mean: torch.Tensor = None) -> torch.Tensor:
    """
    Variances ``(sigma_x^2, sigma_y^2)`` of a heatmap distribution (Eq. 4).

    Args:
        prob: ``(B, N, h, w)`` probabilities.
        mean: ``(B, N, 2)`` expectation; computed when omitted.

    Returns:
        ``(B, N, 2)`` variances in squared map pixels.
    """
    if mean is None:
        mean = spatial_expectation(prob)
    xs, ys = _pixel_axes(prob)
    dx2 = (xs.view(1, 1, -1) - mean[..., 0:1]) ** 2  # (B, N, w)
    dy2 = (ys.view(1, 1, -1) - mean[..., 1:2]) ** 2  # (B, N, h)
    vx = (prob.sum(dim=-2) * dx2).sum(dim=-1)
    vy = (prob.sum(dim=-1) * dy2).sum(dim=-1)
    return torch.stack([vx, vy], dim=-1)


def expected_descriptor(prob: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
    """
    Probability-weighted sum of a descriptor map, renormalised (Eq. 8).

    Args:
        prob: ``(B, N, h, w)`` probabilities over the map.
        desc: ``(B, D, h, w)`` descriptor map.

    Returns:
        ``(B, N, D)`` unit descriptors.
    """
    _check_map(desc)
    b, d, h, w = desc.shape
    if prob.shape[0] != b or prob.shape[-2:] != desc.shape[-2:]:
        raise ValueError(f'prob {tuple(prob.shape)} does not match desc {tuple(desc.shape)}')
    mixed = torch.bmm(prob.reshape(b, -1, h * w).to(desc.dtype),
                      desc.reshape(b, d, h * w).transpose(1, 2))
    return F.normalize(mixed, dim=-1)


@dataclass
class Match:
    """
    Result of matching ``N`` descriptors against a ``(B, D, h, w)`` map.

    Attributes:
        keypoints: ``(B, N, 2)`` spatial expectation ``(x, y)`` (Eq. 3).
        variance: ``(B, N, 2)`` ``(sigma_x^2, sigma_y^2)`` (Eq. 4); small = confident.
        prob: ``(B, N, h, w)`` the softmax heatmap (Eq. 2).
        similarity: ``(B, N, h, w)`` the cosine heatmap (Eq. 1).
    """

    keypoints: torch.Tensor
    variance: torch.Tensor
    prob: torch.Tensor
    similarity: torch.Tensor


def match_descriptors(query: torch.Tensor, desc: torch.Tensor, tau: float = DEFAULT_TAU) -> Match:
    """
    Match query descriptors over a map: Eq. 1 -> Eq. 2 -> Eq. 3 and Eq. 4.

    Args:
        query: ``(B, N, D)`` descriptors.
        desc: ``(B, D, h, w)`` descriptor map.
        tau: softmax temperature.
    """
    sim = cosine_heatmap(query, desc)
    prob = heatmap_softmax(sim, tau)
    mean = spatial_expectation(prob)
    return Match(keypoints=mean, variance=spatial_variance(prob, mean), prob=prob, similarity=sim)
