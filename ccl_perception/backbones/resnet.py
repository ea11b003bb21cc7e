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
torchvision ResNet-18/34/50 trunks at output stride 8.

The trunk is ``conv1 -> bn1 -> relu -> maxpool -> layer1 -> layer2 -> layer3``; ``layer4``,
the pooling and the classifier are dropped. ``layer2`` ends at stride 8; ``layer3`` (stride 16
in the ImageNet network) is dilated: its stride-2 convolutions (the first 3x3 / downsample
1x1) get stride 1 and the 3x3 convolutions of its later blocks dilation 2 (padding 2); the
first block keeps dilation 1, as torchvision's ``replace_stride_with_dilation`` does. The
receptive field of layer3 is kept, the grid stays at 1/8. torchvision refuses dilation in
``BasicBlock`` (ResNet-18/34), so the convolutions are patched after construction; the same
patch is used for ResNet-50's ``Bottleneck`` so that all three are built one way. Dropping
``layer4`` (rather than dilating it with rate 4) keeps the cost near the original network's:
layer4 at stride 8 would cost ~16x its ImageNet FLOPs.

``trunk='fpn'`` instead keeps ``layer3`` at its native stride 16 and concatenates its output,
resampled onto the 1/8 grid (``fuse.upsample_to_stride8``), with ``layer2``'s: 384 (ResNet-18/34)
or 1536 (ResNet-50) channels, same ImageNet weights, ~4x fewer layer3 FLOPs.

Output channels (dilated): 256 (ResNet-18/34) or 1024 (ResNet-50), at ``ceil(H/8) x ceil(W/8)``.
ImageNet weights come from torchvision when ``pretrained=True`` and they can be downloaded
(or are in the torch hub cache); otherwise the trunk is randomly initialised and a warning
is logged.
"""
import logging

import torch
from torch import nn
import torchvision

from .fuse import fuse_stride8

_LOG = logging.getLogger(__name__)

#: Trunk modes at output stride 8 (see the module docstring).
TRUNKS = ('dilated', 'fpn')

_BUILDERS = {
    'resnet18': ('resnet18', 'ResNet18_Weights', 256),
    'resnet34': ('resnet34', 'ResNet34_Weights', 256),
    'resnet50': ('resnet50', 'ResNet50_Weights', 1024),
}


def _layer_channels(layer: nn.Sequential) -> int:
    """Output channels of a ResNet stage (its last block's last BatchNorm)."""
    return [m for m in layer[-1].modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features


def _dilate_layer(layer: nn.Sequential, dilation: int = 2) -> None:
    """Turn a stride-2 ResNet stage into a stride-1 stage with dilated 3x3 convolutions."""
    for block_index, block in enumerate(layer):
        for module in block.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            if module.stride != (1, 1):
                module.stride = (1, 1)
            if module.kernel_size == (3, 3) and block_index > 0:
                module.dilation = (dilation, dilation)
                module.padding = (dilation, dilation)


class ResNetTrunk(nn.Module):
    """
    ResNet trunk up to ``layer3`` (dilated), output stride 8.

    Args:
        name: ``resnet18`` | ``resnet34`` | ``resnet50``.
        pretrained: try torchvision's ImageNet weights; fall back to random init (warning).

    Input (B, 3, H, W) ImageNet-normalised float; output (B, C, ceil(H/8), ceil(W/8)),
    C = ``out_channels`` (256 or 1024). ``self.pretrained_loaded`` says whether ImageNet
    weights were actually loaded.
    """

    def __init__(self, name: str = 'resnet18', pretrained: bool = True, trunk: str = 'dilated'):
        super().__init__()
        if name not in _BUILDERS:
            raise ValueError(f'unknown ResNet {name!r}; choose one of {sorted(_BUILDERS)}')
        if trunk not in TRUNKS:
            raise ValueError(f'trunk must be one of {TRUNKS}, got {trunk!r}')
        builder_name, weights_name, self.out_channels = _BUILDERS[name]
        self.trunk = trunk
        builder = getattr(torchvision.models, builder_name)
        net = None
        self.pretrained_loaded = False
        if pretrained:
            try:
                weights = getattr(torchvision.models, weights_name).IMAGENET1K_V1
                net = builder(weights=weights)
                self.pretrained_loaded = True
            except Exception as exc:  # no network, no cache, broken download
                _LOG.warning('could not get torchvision ImageNet weights for %s (%s: %s); '
                             'using RANDOM initialisation', name, type(exc).__name__, exc)
        if net is None:
            net = builder(weights=None)
        if trunk == 'dilated':
            _dilate_layer(net.layer3)
        else:  # layer2 (1/8) + layer3 at its native 1/16 resampled onto the 1/8 grid
            self.out_channels += _layer_channels(net.layer2)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def last_stage(self) -> nn.Module:
        """Return the last block group ``layer3``: what trains with ``trunk_mode='last_stage'``."""
        return self.layer3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stride8 = self.layer2(self.layer1(x))
        x = self.layer3(stride8)
        return fuse_stride8(stride8, x) if self.trunk == 'fpn' else x
