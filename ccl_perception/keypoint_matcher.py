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
Find a target's keypoints in a frame's descriptor map (no ROS).

For each target descriptor: cosine heatmap over the 1/8 descriptor map (Eq. 1),
temperature softmax (Eq. 2), spatial expectation (Eq. 3) and its variance (Eq. 4),
via :func:`ccl_perception.correspondence.match_descriptors`. The expectation is mapped
to full-resolution pixels with ``grid_to_full``.

Confidence from the variance: ``std_px = stride * sqrt(var_x + var_y)`` is the spread
of the heatmap in full-resolution pixels and ``confidence = exp(-std_px / scale_px)``
(1 for a single-peak heatmap, -> 0 for a spread-out or multi-modal one; with the
default ``scale_px = 16`` a 16 px spread gives 0.37). A heatmap split between two
distant peaks has a large variance, so a low confidence.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from ccl_perception.correspondence import DEFAULT_TAU, grid_to_full, match_descriptors, STRIDE
import numpy as np
import torch


@dataclass
class KeypointMatch:
    """
    Matched keypoints of one frame.

    Attributes:
        keypoints: ``(N, 2)`` full-resolution pixels ``(x, y)``, float64.
        keypoints_grid: ``(N, 2)`` the same in 1/8 grid coordinates.
        variance: ``(N, 2)`` ``(sigma_x^2, sigma_y^2)`` in squared grid cells (Eq. 4).
        std_px: ``(N,)`` heatmap spread in full-resolution pixels.
        confidence: ``(N,)`` in (0, 1].
        peak_similarity: ``(N,)`` highest cosine similarity (Eq. 1) in the map; a low value
            means no pixel looks like the target point (object absent).
        heatmaps: ``(N, h, w)`` softmax probabilities at 1/8 resolution, float32.
    """

    keypoints: np.ndarray
    keypoints_grid: np.ndarray
    variance: np.ndarray
    std_px: np.ndarray
    confidence: np.ndarray
    peak_similarity: np.ndarray
    heatmaps: np.ndarray


@contextmanager
def one_thread(device: torch.device):
    """
    Run the enclosed torch operations on one CPU thread (no-op for other devices).

    Matching is a few small operations (a ``(N, D) x (D, h w)`` product, a softmax over ``h w``
    cells): too small to gain from torch's intra-op threads, and on a machine whose other
    cores are busy every parallel region waits for its second thread to be scheduled: the
    match of the planner's operating point took 150 ms with 2 threads against 0.5 ms with one
    on 2 loaded cores (``training/benchmark.py --planner``). The previous thread count is
    restored on exit.
    """
    if torch.device(device).type != 'cpu':
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class KeypointMatcher:
    """
    Match ``(N, D)`` target descriptors in ``(D, h, w)`` descriptor maps.

    Args:
        tau: softmax temperature of Eq. 2 (paper: 0.03).
        stride: descriptor map stride (8).
        confidence_scale_px: ``scale_px`` of the confidence formula above.
    """

    def __init__(self, tau: float = DEFAULT_TAU, stride: int = STRIDE,
                 confidence_scale_px: float = 16.0):
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        if confidence_scale_px <= 0:
            raise ValueError(f'confidence_scale_px must be > 0, got {confidence_scale_px}')
        self.tau = float(tau)
        self.stride = int(stride)
        self.confidence_scale_px = float(confidence_scale_px)

    def confidence_from_variance(self, variance: np.ndarray) -> np.ndarray:
        """``(N, 2)`` grid-cell variances -> ``(std_px (N,), confidence (N,))``."""
        std_px = self.stride * \
            np.sqrt(np.clip(np.asarray(variance, dtype=np.float64), 0, None).sum(-1))
        return std_px, np.exp(-std_px / self.confidence_scale_px)

    @torch.no_grad()
    def match(self, target_desc, desc_map: torch.Tensor) -> KeypointMatch:
        """
        Match target descriptors in one frame.

        Args:
            target_desc: ``(N, D)`` descriptors (numpy or torch, any norm).
            desc_map: ``(D, h, w)`` descriptor map of the frame at 1/stride resolution.

        Raises:
            ValueError: when descriptor dimensions differ or shapes are wrong.
        """
        q = torch.as_tensor(np.asarray(target_desc)
                            if not torch.is_tensor(target_desc) else target_desc)
        if desc_map.dim() != 3:
            raise ValueError(f'desc_map must be (D, h, w), got {tuple(desc_map.shape)}')
        if q.dim() != 2 or q.shape[1] != desc_map.shape[0]:
            raise ValueError(f'target descriptors {tuple(q.shape)} do not fit a '
                             f'{desc_map.shape[0]}-D descriptor map '
                             '(was the target made with another model?)')
        q = q.to(device=desc_map.device, dtype=desc_map.dtype)
        with one_thread(desc_map.device):
            m = match_descriptors(q[None], desc_map[None], tau=self.tau)
            kp_grid = m.keypoints[0].double().cpu().numpy()
            var = m.variance[0].double().cpu().numpy()
            std_px, conf = self.confidence_from_variance(var)
            return KeypointMatch(
                keypoints=grid_to_full(torch.from_numpy(kp_grid), self.stride).numpy(),
                keypoints_grid=kp_grid, variance=var, std_px=std_px, confidence=conf,
                peak_similarity=m.similarity[0].flatten(1).amax(1).double().cpu().numpy(),
                heatmaps=m.prob[0].float().cpu().numpy())
