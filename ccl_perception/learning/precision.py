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
Mixed precision only where it pays (``train.amp``: ``auto`` | ``true`` | ``false``).

bf16 autocast on a CPU without bf16 instructions is emulated and 10-40x slower than fp32
(measured on an AVX2-only AMD EPYC: a conv-head forward+backward on one thread took 0.62 s in
fp32 and 23.2 s in bf16). So ``auto`` picks bf16 only on a CPU that has them (``avx512_bf16``
or ``amx_bf16`` in ``/proc/cpuinfo``; where that file is missing, oneDNN's own support
query), fp32 on every other CPU, and fp16 with a gradient scaler on CUDA. ``true`` forces
autocast (bf16 on the CPU, with one warning where it is slow), ``false`` forces fp32.
"""

from dataclasses import dataclass
import logging

from ccl_perception import hardware
import torch

LOG = logging.getLogger(__name__)

#: /proc/cpuinfo flags of native bf16 arithmetic (AVX-512 BF16, AMX).
BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


@dataclass(frozen=True)
class Precision:
    """
    The arithmetic a run trains in.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16``.
        reason: why, in words (logged and written to ``metrics.json``).
    """

    name: str
    reason: str

    @property
    def autocast_enabled(self) -> bool:
        """Return True when the forward passes run under ``torch.autocast``."""
        return self.name != 'fp32'

    @property
    def dtype(self) -> torch.dtype:
        """Return the autocast dtype: float16 for fp16, else bfloat16 (unused when off)."""
        return torch.float16 if self.name == 'fp16' else torch.bfloat16

    def autocast(self, device_type: str):
        """Return the ``torch.autocast`` context of this precision on ``device_type``."""
        return torch.autocast(device_type, dtype=self.dtype, enabled=self.autocast_enabled)


def cpu_flags() -> set:
    """Return the flags of the first CPU (:func:`hardware.cpu_flags`); None where unreadable."""
    return hardware.cpu_flags() or None


def cpu_description() -> str:
    """Return the CPU and its vector instructions, e.g. ``AMD EPYC (2 CPUs), AVX2``."""
    return f'{hardware.cpu_name()}, {hardware.isa_from_flags(hardware.cpu_flags())}'


def onednn_bf16_supported() -> bool:
    """Return oneDNN's answer to "can this CPU run bf16?" (:func:`hardware.bf16_native`)."""
    return hardware.bf16_native()


def cpu_bf16_support():
    """
    Return ``(native, why)``: does this CPU have bf16 instructions, and how that was decided.

    ``native`` is True with ``avx512_bf16`` or ``amx_bf16`` among the CPU flags; without a
    readable ``/proc/cpuinfo`` it is oneDNN's support query.
    """
    query = onednn_bf16_supported()
    flags = cpu_flags()
    if flags is None:
        return query, f'no /proc/cpuinfo; oneDNN bf16 support: {query}'
    found = sorted(flags.intersection(BF16_FLAGS))
    if found:
        return True, f'the CPU has {"/".join(found)} (oneDNN bf16 support: {query})'
    return False, (f'the CPU has no {"/".join(BF16_FLAGS)} (oneDNN bf16 support: {query}): '
                   'bf16 autocast would be emulated, 10-40x slower than fp32')


def resolve_precision(amp, device_type: str) -> Precision:
    """
    Turn ``train.amp`` (``'auto'``, True or False) into the run's :class:`Precision`.

    Logs the choice and its reason; an explicit ``true`` on a CPU without bf16 instructions
    warns once (per call: a run resolves its precision once).
    """
    if amp is False:
        precision = Precision('fp32', 'train.amp is false')
    elif device_type == 'cuda':
        precision = Precision('fp16', f'train.amp is {amp} on CUDA (fp16 autocast + GradScaler)')
    elif device_type != 'cpu':
        precision = Precision('fp32', f'no autocast policy for device {device_type!r}')
    else:
        native, why = cpu_bf16_support()
        if amp is True:
            precision = Precision('bf16', f'train.amp is true; {why}')
            if not native:
                LOG.warning('train.amp=true trains in bf16 on a CPU without bf16 instructions: '
                            '%s; train.amp=auto (the default) picks fp32 here', why)
        elif native:
            precision = Precision('bf16', f'train.amp is auto and {why}')
        else:
            precision = Precision('fp32', f'train.amp is auto and {why}')
    LOG.info('precision %s: %s', precision.name, precision.reason)
    return precision
