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
What the machine that runs a measurement can do: the line every benchmark table starts with.

Speed on a CPU depends on its vector instructions far more than on its clock: bf16 autocast
trains ~2x faster than fp32 on a CPU with native bf16 (AVX-512 BF16, AMX) and 10-40x slower
on one without (AVX2: every AMD before Zen 4, most Intel desktop and laptop chips), where
oneDNN falls back to reference kernels. So a number without the CPU's instruction set says
little. Two sources are read:

* the CPU flags in ``/proc/cpuinfo`` (what the silicon has: ``avx2``, ``avx512f``,
  ``avx512_bf16``, ``amx_bf16``);
* PyTorch's own view (what it will use): ``torch.backends.cpu.get_cpu_capability()`` (its
  kernel dispatch level; ``ATEN_CPU_CAPABILITY=avx2`` caps it) and oneDNN's bf16 query
  ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` (False under ``ONEDNN_MAX_CPU_ISA=AVX2``,
  which is how ``training/benchmark.py --isa avx2`` shows an AVX2 CPU on a newer one).
"""
import os
import platform
from typing import Optional

#: The environment that caps PyTorch and oneDNN at AVX2 (``benchmark.py --isa avx2``).
AVX2_ENV = {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2'}


def cpu_flags(path: str = '/proc/cpuinfo') -> set:
    """Return the ``flags`` of the first CPU in ``path`` (empty where there is no such file)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name(path: str = '/proc/cpuinfo') -> str:
    """Return the first CPU's ``model name`` and the number of CPUs: ``AMD EPYC (2 CPUs)``."""
    name = platform.processor() or 'cpu'
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{name} ({os.cpu_count()} CPUs)'


def isa_from_flags(flags: set) -> str:
    """
    Name the widest vector instruction set in ``flags``, with its bf16 support.

    Returns one of ``AMX (bf16)``, ``AVX-512 + bf16``, ``AVX-512``, ``AVX2``, ``below AVX2``.
    """
    if 'amx_bf16' in flags or 'amx_tile' in flags:
        return 'AMX (bf16)'
    if 'avx512f' in flags:
        return 'AVX-512 + bf16' if 'avx512_bf16' in flags else 'AVX-512'
    if 'avx2' in flags:
        return 'AVX2'
    return 'below AVX2'


def torch_capability() -> str:
    """Return the CPU kernel dispatch level of torch (``AVX2``, ``AVX512``, ...) or ``unknown``."""
    import torch
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return 'unknown'


def bf16_native() -> bool:
    """Say whether oneDNN runs bf16 with native instructions here (its query; False if absent)."""
    import torch
    query = getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', None)
    try:
        return bool(query()) if query is not None else False
    except RuntimeError:
        return False


def describe(device: str = 'cpu', dtype: str = 'fp32', threads: Optional[int] = None) -> str:
    """
    One line naming the hardware of a measurement.

    Args:
        device: ``cpu`` or a CUDA device (``cuda``, ``cuda:0``).
        dtype: the precision measured (``fp32``, ``bf16``, ``fp16``, or ``fp32 | bf16``).
        threads: CPU threads used (default: ``torch.get_num_threads()``).

    Example: ``AMD EPYC (2 CPUs), CPU flags AVX-512 + bf16, torch dispatch AVX512, oneDNN bf16
    native: yes | fp32 | 2 threads``.
    """
    import torch
    threads = torch.get_num_threads() if threads is None else threads
    if str(device).startswith('cuda'):
        name = torch.cuda.get_device_name(torch.device(device))
        return f'{name} (CUDA {torch.version.cuda}) | {dtype} | host {cpu_name()}'
    capped = ', '.join(f'{k}={os.environ[k]}' for k in sorted(AVX2_ENV) if k in os.environ)
    return (f'{cpu_name()}, CPU flags {isa_from_flags(cpu_flags())}, torch dispatch '
            f'{torch_capability()}, oneDNN bf16 native: {"yes" if bf16_native() else "no"}'
            + (f' (capped: {capped})' if capped else '') + f' | {dtype} | {threads} threads')
