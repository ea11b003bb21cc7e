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
Dense descriptor network: stride-8 backbone trunk + descriptor head + L2 normalisation.

``DescriptorNet`` maps RGB images (B, 3, H, W) to unit descriptors (B, D, ceil(H/8),
ceil(W/8)); grid cell (j, i) of that map is centred at full-resolution pixel
``(8*i + 3.5, 8*j + 3.5)`` (see ``ccl_perception.correspondence.grid_to_full`` and
docs/ARCHITECTURE.md). The losses (Adrian et al., Eq. 1-10) work on this 1/8 map;
``upsample_descriptors`` produces full-resolution maps for inference and evaluation.

Note on the receptive-field centre: every backbone here uses symmetric padding, so the
untrained trunk's feature at cell j is centred on pixel 8*j rather than 8*j + 3.5. For
matching between two images through the same network this constant offset cancels (the
query descriptor and the matched location are shifted alike); the trained descriptors
learn the convention because the loss is written in it.
"""
import torch
from torch import nn
import torch.nn.functional as F

from .backbones import BACKBONES, build_backbone, TRUNKS
from .heads import build_head, HEADS

STRIDE = 8

#: Model configuration defaults (``build_model`` merges a user dict over these).
DEFAULT_CONFIG = {
    'backbone': 'efficientnet_lite0',  # efficientnet_lite0 | resnet18 | resnet34 | resnet50
    'descriptor_dim': 64,              # D, channels of the unit descriptor map
    'pretrained': True,                # ImageNet init (offline file for efficientnet_lite0)
    # None = DEFAULT_TRUNKS[backbone] | fpn (1/16 stage upsampled + concat) | dilated
    'trunk': None,
    # conv (normalised input, 1x1 projection + 3x3-conv residual branch) | linear (the paper's 1x1)
    'head': 'conv',
    # H, channels of the conv head's 3x3 layers (ignored by linear)
    'head_hidden': 192,
}
#: Trunk per backbone when none is given: fpn for efficientnet_lite0 (~1.8x / 1.9x faster
#: inference / training on the CPU); dilated for the ResNets (no offline weights here; their
#: users and tests rely on the exact 8-px shift equivariance of the dilated trunk).
DEFAULT_TRUNKS = {'efficientnet_lite0': 'fpn', 'resnet18': 'dilated', 'resnet34': 'dilated',
                  'resnet50': 'dilated'}
#: Trunk of configs saved before the ``trunk`` key existed (every checkpoint then was dilated).
LEGACY_TRUNK = 'dilated'
#: Head of configs saved before the ``head`` key existed (every checkpoint then had a 1x1 head).
LEGACY_HEAD = 'linear'
#: Trunk training modes (:meth:`DescriptorNet.set_trunk_mode`).
TRUNK_MODES = ('full', 'last_stage', 'frozen')


def _check_images(images: torch.Tensor) -> torch.Tensor:
    """Validate (B, 3, H, W) uint8 [0, 255] or float [0, 1] RGB; return float in [0, 1]."""
    if torch.jit.is_tracing():  # ONNX export: shapes are symbolic, checked before export
        return images.float() / 255.0 if images.dtype == torch.uint8 else images
    if not isinstance(images, torch.Tensor):
        raise ValueError(f'images must be a torch.Tensor, got {type(images).__name__}')
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'images must have shape (B, 3, H, W) (RGB), got {tuple(images.shape)}')
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f'images must be non-empty, got shape {tuple(images.shape)}')
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f'images must be uint8 [0, 255] or float [0, 1], got {images.dtype}')
    return images


class DescriptorNet(nn.Module):
    """
    Backbone (output stride 8) + descriptor head to D channels + L2 normalisation.

    Args:
        backbone: ``efficientnet_lite0`` (default) | ``resnet18`` | ``resnet34`` | ``resnet50``.
        descriptor_dim: D.
        pretrained: ImageNet initialisation of the trunk (the head is always random).
        trunk: ``fpn`` (the 1/16 stage at its native stride, bilinearly resampled to 1/8 and
            concatenated with the 1/8 stage; ~1.8x faster inference and ~1.9x faster training
            than ``dilated`` on the CPU, see ``backbones/efficientnet_lite0.py``), ``dilated``
            (the 1/16 stage dilated to stride 8; the original trunk), or None:
            ``DEFAULT_TRUNKS[backbone]`` (fpn for efficientnet_lite0, dilated for ResNets).
            Note: fpn's 1/16 half is shift-equivariant only for multiples of 16 px.
        head: ``conv`` (default) or ``linear``; see :mod:`ccl_perception.heads`.
        head_hidden: H of the conv head.

    Attributes:
        stride: 8, output stride of every map this model returns.
        config: dict (``backbone``, ``descriptor_dim``, ``pretrained``, ``trunk``, ``head``,
            ``head_hidden``, ``stride``), enough to rebuild the architecture with ``build_model``.
        feature_dim: channels of ``backbone_features``.
        trunk_mode: ``full`` | ``last_stage`` | ``frozen`` (:meth:`set_trunk_mode`).
    """

    stride = STRIDE

    def __init__(self, backbone: str = 'efficientnet_lite0', descriptor_dim: int = 64,
                 pretrained: bool = True, trunk: str = None, head: str = 'conv',
                 head_hidden: int = 192):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f'unknown backbone {backbone!r}; choose one of {list(BACKBONES)}')
        trunk = DEFAULT_TRUNKS[backbone] if trunk is None else trunk
        if trunk not in TRUNKS:
            raise ValueError(f'unknown trunk {trunk!r}; choose one of {list(TRUNKS)}')
        if not isinstance(descriptor_dim, int) or descriptor_dim < 1:
            raise ValueError(f'descriptor_dim must be a positive int, got {descriptor_dim!r}')
        if head not in HEADS:
            raise ValueError(f'unknown head {head!r}; choose one of {list(HEADS)}')
        self.backbone, self.feature_dim, (mean, std) = build_backbone(backbone, pretrained, trunk)
        self.head = build_head(head, self.feature_dim, descriptor_dim, int(head_hidden))
        # Input statistics of the trunk's weights; not saved (they follow from the backbone).
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.config = {'backbone': backbone, 'descriptor_dim': descriptor_dim,
                       'pretrained': bool(pretrained), 'trunk': trunk, 'head': head,
                       'head_hidden': int(head_hidden), 'stride': STRIDE}
        self.trunk_mode = 'full'

    def _trunk(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        x = (x.to(self.mean.dtype) - self.mean) / self.std
        return self.backbone(x)

    def trunk_features(self, images: torch.Tensor) -> torch.Tensor:
        """
        Raw trunk features (B, C, ceil(H/8), ceil(W/8)) of (B, 3, H, W) RGB images.

        With a frozen trunk they do not depend on the training step, so a trainer may compute
        them once per image (:meth:`describe_features` finishes the forward pass).
        """
        return self._trunk(images)

    def describe_features(self, features: torch.Tensor) -> torch.Tensor:
        """Head + L2 norm: trunk features (B, C, h, w) -> unit descriptors (B, D, h, w)."""
        return F.normalize(self.head(features), dim=1)

    def forward(self, images: torch.Tensor = None, features: torch.Tensor = None) -> torch.Tensor:
        """
        (B, 3, H, W) uint8 or float [0, 1] RGB -> (B, D, ceil(H/8), ceil(W/8)) unit vectors.

        ``features=`` (keyword) instead of images: precomputed :meth:`trunk_features`, so that
        a DDP-wrapped model can run the head alone (its gradients are then still reduced).
        """
        if (images is None) == (features is None):
            raise ValueError('pass exactly one of images and features')
        return self.describe_features(self._trunk(images) if features is None else features)

    def set_trunk_mode(self, mode: str) -> None:
        """
        Choose which trunk weights train.

        - ``full``: every weight trains; BatchNorm updates its statistics in train mode.
        - ``last_stage``: only the trunk's last block group trains (``backbone.last_stage()``);
          every trunk BatchNorm keeps its ImageNet statistics (eval mode).
        - ``frozen``: no trunk weight trains and every BatchNorm keeps its statistics: the
          trunk is a fixed feature extractor (DenseMatching's ``train_features=False``).

        Sets ``requires_grad``; :meth:`train` keeps frozen BatchNorms in eval mode.
        """
        if mode not in TRUNK_MODES:
            raise ValueError(f'unknown trunk mode {mode!r}; choose one of {list(TRUNK_MODES)}')
        trainable = set()
        if mode == 'full':
            trainable = {id(p) for p in self.backbone.parameters()}
        elif mode == 'last_stage':
            trainable = {id(p) for p in self.backbone.last_stage().parameters()}
        for param in self.backbone.parameters():
            param.requires_grad_(id(param) in trainable)
        self.trunk_mode = mode
        self.train(self.training)

    def train(self, mode: bool = True):
        """
        Set the training mode, as ``nn.Module.train``.

        Except that trunk BatchNorms stay in eval mode unless the trunk mode is ``full`` (their
        running statistics must not drift while the trunk is fixed).
        """
        super().train(mode)
        if mode and self.trunk_mode != 'full':
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def trunk_parameters(self):
        """Return the trunk parameters that train in the current trunk mode."""
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def head_parameters(self):
        """Return the head's parameters."""
        return list(self.head.parameters())

    def backbone_features(self, images: torch.Tensor) -> torch.Tensor:
        """
        Raw trunk features, L2-normalised: (B, C, ceil(H/8), ceil(W/8)), C = feature_dim.

        The "pretrained features" baseline (no head, no CCL training).
        """
        return F.normalize(self._trunk(images), dim=1)


def build_model(config: dict = None) -> DescriptorNet:
    """
    Build a ``DescriptorNet`` from a config dict merged over ``DEFAULT_CONFIG``.

    Accepted keys: ``backbone``, ``descriptor_dim``, ``pretrained``, ``trunk``, ``head``,
    ``head_hidden`` and ``stride`` (must be 8). A config that has ``stride`` but no ``trunk``
    (or no ``head``) is a ``DescriptorNet.config`` saved before that option existed (e.g. in an
    old checkpoint): it gets what those models had, ``LEGACY_TRUNK`` ('dilated') and
    ``LEGACY_HEAD`` ('linear'), so old checkpoints keep loading.

    Raises:
        ValueError: unknown keys or values.
    """
    config = dict(config or {})
    if 'stride' in config and 'trunk' not in config:
        config['trunk'] = LEGACY_TRUNK
    if 'stride' in config and 'head' not in config:
        config['head'] = LEGACY_HEAD
    stride = config.pop('stride', STRIDE)
    if stride != STRIDE:
        raise ValueError(f'only output stride {STRIDE} is supported, got {stride}')
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f'unknown model config keys {unknown}; allowed: '
                         f'{sorted(DEFAULT_CONFIG) + ["stride"]}')
    merged = {**DEFAULT_CONFIG, **config}
    return DescriptorNet(merged['backbone'], int(merged['descriptor_dim']),
                         bool(merged['pretrained']), merged['trunk'], merged['head'],
                         int(merged['head_hidden']))


def upsample_descriptors(desc: torch.Tensor, size) -> torch.Tensor:
    """
    Upsample a 1/8 descriptor map to full resolution and renormalise.

    Bilinear with ``align_corners=False`` to (8h, 8w), then cropped to (H, W): full-res pixel
    x samples grid coordinate (x - 3.5) / 8, i.e. exactly ``full_to_grid`` (cell centres at
    8*i + 3.5). Vectors are renormalised to unit length (zero vectors stay zero).

    Args:
        desc: (B, D, h, w).
        size: (H, W) with ceil(H/8) == h and ceil(W/8) == w.

    Returns:
        (B, D, H, W) unit descriptors.
    """
    if not isinstance(desc, torch.Tensor) or desc.dim() != 4:
        raise ValueError(f'desc must be a (B, D, h, w) tensor, got '
                         f'{tuple(desc.shape) if isinstance(desc, torch.Tensor) else type(desc)}')
    height, width = int(size[0]), int(size[1])
    h, w = desc.shape[-2:]
    if -(-height // STRIDE) != h or -(-width // STRIDE) != w:
        raise ValueError(f'size {(height, width)} does not match a 1/{STRIDE} map of {(h, w)}: '
                         f'expected ceil(H/{STRIDE}) == h and ceil(W/{STRIDE}) == w')
    up = F.interpolate(desc, size=(STRIDE * h, STRIDE * w), mode='bilinear', align_corners=False)
    return F.normalize(up[..., :height, :width], dim=1)
