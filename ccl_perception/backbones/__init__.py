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
Stride-8 backbone trunks for the descriptor network.

``build_backbone(name, pretrained)`` returns ``(trunk, out_channels, (mean, std))``: the trunk
maps (B, 3, H, W) normalised images to (B, C, ceil(H/8), ceil(W/8)) features, and (mean, std)
are the per-channel input statistics (on [0, 1] RGB) the trunk's weights were trained with.
"""
BACKBONES = ('efficientnet_lite0', 'resnet18', 'resnet34', 'resnet50')
#: Stride-8 trunk modes: ``dilated`` (1/16 stage dilated) or ``fpn`` (1/16 stage upsampled +
#: concat).
TRUNKS = ('dilated', 'fpn', 'fpn32')

#: torchvision's ImageNet statistics (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: EfficientNet-Lite's TensorFlow preprocessing, (x*255 - 127) / 128: the lite weights are a
#: TensorFlow port, and on the one natural image available offline (matplotlib's
#: grace_hopper.jpg, 224x224) they give the right top-1 class with 0.39 confidence with these
#: statistics against 0.28 with IMAGENET_MEAN/STD.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def build_backbone(name: str, pretrained: bool = True, trunk: str = 'dilated'):
    """
    Build a stride-8 trunk.

    Args:
        name: one of ``BACKBONES``.
        pretrained: load ImageNet weights (offline file for EfficientNet-Lite0; torchvision
            download/cache for ResNets, random init with a warning when unavailable).
        trunk: ``dilated`` (the 1/16 stage dilated to stride 8; C = 112 / 256 / 256 / 1024)
            or ``fpn`` (that stage at its native stride 16, resampled onto the 1/8 grid and
            concatenated with the 1/8 features; C = 152 / 384 / 384 / 1536), or ``fpn32``
            (EfficientNet-Lite0 only: ``fpn`` plus the 1/32 stage 7, C = 472). All load the
            same ImageNet weights.

    Returns:
        (trunk nn.Module, output channels int, (mean, std) tuples of 3 floats).
    """
    if trunk not in TRUNKS:
        raise ValueError(f'unknown trunk {trunk!r}; choose one of {list(TRUNKS)}')
    if name == 'efficientnet_lite0':
        from .efficientnet_lite0 import EfficientNetLite0, load_imagenet_weights
        net = EfficientNetLite0(output_stride=8, trunk=trunk)
        if pretrained:
            load_imagenet_weights(net)
        return net, net.out_channels, (LITE_MEAN, LITE_STD)
    if name in ('resnet18', 'resnet34', 'resnet50'):
        if trunk == 'fpn32':
            raise ValueError(f"trunk 'fpn32' exists for efficientnet_lite0 only, not {name!r}")
        from .resnet import ResNetTrunk
        net = ResNetTrunk(name, pretrained=pretrained, trunk=trunk)
        return net, net.out_channels, (IMAGENET_MEAN, IMAGENET_STD)
    raise ValueError(f'unknown backbone {name!r}; choose one of {list(BACKBONES)}')
