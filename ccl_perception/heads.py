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
Descriptor heads: trunk features (B, C, h, w) -> raw descriptors (B, D, h, w), before L2 norm.

Two heads (``DescriptorNet(head=...)``):

``linear``
    The paper's 1x1 convolution on the raw trunk features (checkpoints saved before heads
    were configurable all have it).

``conv`` (the default)
    Capacity for a frozen trunk: the trunk features are L2-normalised per cell (so the head
    sees the cosine geometry of the pretrained-features baseline), then

        y = P x + B(x),   B = conv3x3(C->H) -> ReLU -> conv3x3(H->H) -> ReLU -> conv1x1(H->D)

    ``P`` is a 1x1 projection (D x C, with bias) and ``B`` a residual branch whose last layer
    starts at zero. So at step 0 the head *is* the linear projection ``P``: initialised from a
    label-free PCA of the trunk features (:func:`ccl_perception.learning.head_init.init_head_pca`)
    the untrained model already scores like the pretrained features instead of a random
    64-D projection of them (issue "Self-supervised training that beats its start": a random
    head costs ~0.05 AUC before any step). The branch then learns what the projection cannot.
    With H = 192, C = 152, D = 64: 152*192*9 + 192*192*9 + 192*64 + 152*64 (+ biases)
    = 617 k parameters (2.4 MB in float32).
"""
import torch
from torch import nn
import torch.nn.functional as F

HEADS = ('linear', 'conv')


class LinearHead(nn.Conv2d):
    """
    1x1 convolution C -> D on the raw trunk features (the paper's head).

    A plain ``nn.Conv2d`` (state keys ``weight``, ``bias``), so checkpoints saved before the
    head was configurable load unchanged and keep their model identity.
    """

    def __init__(self, in_channels: int, descriptor_dim: int):
        super().__init__(in_channels, descriptor_dim, kernel_size=1)

    @property
    def proj(self) -> nn.Conv2d:
        """Return the projection (the layer itself), as for :class:`ConvHead`."""
        return self

    @staticmethod
    def head_input(features: torch.Tensor) -> torch.Tensor:
        """Return what ``proj`` sees: the raw trunk features."""
        return features


class ConvHead(nn.Module):
    """
    Cell-normalised input, 1x1 projection plus a zero-initialised 3x3-conv residual branch.

    Args:
        in_channels: C of the trunk.
        descriptor_dim: D.
        hidden: H, channels of the two 3x3 convolutions.
    """

    def __init__(self, in_channels: int, descriptor_dim: int, hidden: int = 192):
        super().__init__()
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f'head hidden channels must be a positive int, got {hidden!r}')
        self.proj = nn.Conv2d(in_channels, descriptor_dim, kernel_size=1)
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, descriptor_dim, 1))
        nn.init.zeros_(self.branch[-1].weight)
        nn.init.zeros_(self.branch[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, D, h, w), not normalised."""
        x = self.head_input(features)
        return self.proj(x) + self.branch(x)

    @staticmethod
    def head_input(features: torch.Tensor) -> torch.Tensor:
        """Return what ``proj`` and ``branch`` see: trunk features L2-normalised per cell."""
        return F.normalize(features, dim=1)


def build_head(name: str, in_channels: int, descriptor_dim: int, hidden: int = 192) -> nn.Module:
    """Build the head called ``name`` (one of :data:`HEADS`)."""
    if name == 'linear':
        return LinearHead(in_channels, descriptor_dim)
    if name == 'conv':
        return ConvHead(in_channels, descriptor_dim, hidden)
    raise ValueError(f'unknown head {name!r}; choose one of {list(HEADS)}')
