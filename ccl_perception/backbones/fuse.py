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
Fusion of a stride-16 feature map into the stride-8 grid (the ``trunk='fpn'`` mode).

With symmetric padding, a stride-2 convolution's output cell k is centred on input cell 2k,
so cell k of a 1/16 map sits exactly on cell 2k of the 1/8 map of the same network. The 1/8
cell j therefore reads the 1/16 map at coordinate j / 2: bilinear interpolation with
``align_corners=True`` onto ``2 * n - 1`` cells, after replicating the last row/column once
so that the even sizes ``ceil(H / 8) = 2 * ceil(H / 16)`` are covered too (the last 1/8 cell
then copies the last 1/16 cell, as clamped bilinear sampling would). Everything is computed
from tensor shapes without Python branches, so the ONNX export stays valid for any H, W.
"""
import torch
import torch.nn.functional as F


def upsample_to_stride8(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """
    Bilinearly resample a 1/16 map onto the grid of a 1/8 map of the same image.

    Args:
        coarse: (B, C16, ceil(H/16), ceil(W/16)) features.
        fine: (B, C8, ceil(H/8), ceil(W/8)) features (only its shape is used).

    Returns:
        (B, C16, ceil(H/8), ceil(W/8)); output cell (j, i) = ``coarse`` at (j/2, i/2).
    """
    padded = F.pad(coarse, (0, 1, 0, 1), mode='replicate')
    h, w = padded.shape[-2:]
    up = F.interpolate(padded, size=(2 * h - 1, 2 * w - 1), mode='bilinear', align_corners=True)
    return up[..., :fine.shape[-2], :fine.shape[-1]]


def fuse_strides(fine: torch.Tensor, mid: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """
    Concatenate 1/8 features with 1/16 and 1/32 features resampled onto the 1/8 grid.

    The 1/32 map is resampled onto the 1/16 grid and then onto the 1/8 grid with the same
    exact-centre rule (1/32 cell k sits on 1/16 cell 2k, on 1/8 cell 4k).

    Args:
        fine: (B, C8, h, w) at stride 8.
        mid: (B, C16, ceil(h/2), ceil(w/2)) at stride 16.
        coarse: (B, C32, ceil(h/4), ceil(w/4)) at stride 32.

    Returns:
        (B, C8 + C16 + C32, h, w).
    """
    coarse16 = upsample_to_stride8(coarse, mid)
    return torch.cat([fine, upsample_to_stride8(mid, fine),
                      upsample_to_stride8(coarse16, fine)], dim=1)


def fuse_stride8(fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """
    Concatenate 1/8 features with the 1/16 features resampled onto the 1/8 grid.

    Args:
        fine: (B, C8, h, w) at stride 8.
        coarse: (B, C16, ceil(h/2), ceil(w/2)) at stride 16.

    Returns:
        (B, C8 + C16, h, w).
    """
    return torch.cat([fine, upsample_to_stride8(coarse, fine)], dim=1)
