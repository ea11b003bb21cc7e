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

"""The hardware line of every benchmark table (ccl_perception/hardware.py)."""
import os
import subprocess
import sys

from ccl_perception import hardware
import pytest

CPUINFO = """processor\t: 0
model name\t: Test CPU 9000
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512_bf16

processor\t: 1
model name\t: Test CPU 9000
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512_bf16
"""


def test_flags_and_name_from_cpuinfo(tmp_path):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO)
    flags = hardware.cpu_flags(str(path))
    assert {'avx2', 'avx512f', 'avx512_bf16'} <= flags and 'amx_tile' not in flags
    assert hardware.cpu_name(str(path)) == f'Test CPU 9000 ({os.cpu_count()} CPUs)'
    assert hardware.cpu_flags(str(tmp_path / 'missing')) == set()


@pytest.mark.parametrize('flags, isa', [
    ({'sse2', 'avx', 'avx2', 'fma'}, 'AVX2'),                      # Zen 1-3, most desktop Intel
    ({'avx2', 'avx512f'}, 'AVX-512'),                               # Skylake-SP
    ({'avx2', 'avx512f', 'avx512_bf16'}, 'AVX-512 + bf16'),         # Zen 4, Cooper Lake
    ({'avx2', 'avx512f', 'avx512_bf16', 'amx_tile', 'amx_bf16'}, 'AMX (bf16)'),  # Sapphire R.
    ({'sse2', 'avx'}, 'below AVX2'),
])
def test_isa_from_flags(flags, isa):
    assert hardware.isa_from_flags(flags) == isa


def test_describe_names_dtype_threads_and_the_caps():
    line = hardware.describe('cpu', 'bf16', 3)
    assert line.endswith('| bf16 | 3 threads') and 'CPU flags' in line
    assert 'torch dispatch' in line and 'oneDNN bf16 native: ' in line


def test_avx2_caps_switch_bf16_off():
    """With PyTorch and oneDNN capped at AVX2 (benchmark.py --isa avx2) bf16 is not native."""
    code = ('from ccl_perception import hardware; '
            'print(hardware.torch_capability(), hardware.bf16_native(), hardware.describe())')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**os.environ, **hardware.AVX2_ENV}, timeout=120)
    capability, native, line = done.stdout.split(' ', 2)
    assert capability in ('AVX2', 'DEFAULT') and native == 'False'
    assert '(capped: ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)' in line
