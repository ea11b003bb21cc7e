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

"""The GPU check's dry run: every section of training/gpu_check.sh on the CPU, one JSON."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_dry_run_runs_every_section(tmp_path):
    pytest.importorskip('onnxruntime')
    out = tmp_path / 'dry.json'
    env = dict(os.environ, PY=sys.executable, PYTHONPATH=ROOT)
    done = subprocess.run(['bash', 'training/gpu_check.sh', '--dry-run', '--out', str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    sections = report['sections']
    assert report['profile'] == 'dry-run (CPU)'
    assert list(sections) == ['env', 'train_step', 'ddp', 'train_full', 'inference']
    assert not [name for name, s in sections.items() if 'error' in s]
    assert 'CPU flags' in sections['env']['hardware'] and 'threads' in sections['env']['hardware']
    for run in sections['train_step']['trainer'].values():
        assert run['step_s'] > 0
    assert sections['train_step']['model_and_loss_ms']['fp32'] > 0
    ddp = sections['ddp']
    assert ddp['backend'] == 'gloo' and ddp['all_reduce_ok'] and ddp['final_step'] == 2
    assert ddp['model_wrapper'] == 'DistributedDataParallel'
    full = sections['train_full']
    assert full['train']['exit'] == 0 and full['eval']['exit'] == 0
    assert 0.0 <= full['eval']['auc'] <= 1.0 and full['eval']['num_pairs'] == 2
    inference = sections['inference']
    assert inference['torch_ms']['fp32'] > 0 and inference['onnx']['ms'] > 0


def test_without_a_gpu_the_real_run_refuses(tmp_path):
    torch = pytest.importorskip('torch')
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is here: the real run would start')
    done = subprocess.run([sys.executable, 'training/gpu_check.py', '--out',
                           str(tmp_path / 'x.json')], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == 'gpu_check: no CUDA device here (use --dry-run for the CPU path)'
