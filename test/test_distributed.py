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

"""DDP: the training script under torchrun with 2 gloo processes on the CPU, and the helpers."""
import json
import os
from pathlib import Path
import socket
import subprocess
import sys

from ccl_perception.checkpoint import load_checkpoint
from ccl_perception.learning import distributed
from ccl_perception.learning.synthetic import write_shape_images
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / 'training' / 'configs' / 'tiny.yaml'
TRAIN = REPO / 'training' / 'train.py'


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(args, timeout=50):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
           '--master_addr=127.0.0.1', f'--master_port={free_port()}', str(TRAIN), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=timeout)


class TestHelpers:

    def test_single_process_without_torchrun_env(self, monkeypatch):
        for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
            monkeypatch.delenv(key, raising=False)
        ctx = distributed.init_distributed('cpu')
        assert (ctx.rank, ctx.world_size, ctx.initialized, ctx.is_main) == (0, 1, False, True)
        assert ctx.device == torch.device('cpu')
        assert distributed.all_gather_objects(ctx, 5) == [5]
        assert distributed.mean_across_ranks(ctx, {'a': 1.5}) == {'a': 1.5}

    def test_device_names(self):
        assert distributed.resolve_device('cpu') == torch.device('cpu')
        with pytest.raises(ValueError, match='auto, cpu or cuda'):
            distributed.resolve_device('gpu')
        if not torch.cuda.is_available():
            assert distributed.resolve_device('auto') == torch.device('cpu')
            with pytest.raises(ValueError, match='no CUDA device'):
                distributed.resolve_device('cuda')


def test_two_process_gloo_run_and_resume(tmp_path):
    """
    Run ``torchrun --nproc_per_node=2`` on the CPU.

    Rank 0 writes, both ranks' RNG states are saved, resume works.
    """
    images = tmp_path / 'images'
    write_shape_images(images, 6, height=64, width=96, seed=4)
    out = tmp_path / 'ddp'
    common = [
        '--set',
        f'data.root={images}',
        '--set',
        'train.checkpoint_every=2',
        '--out',
        str(out)]
    run = torchrun(['--config', str(TINY), '--set', 'train.steps=3', *common])
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['world_size'] == 2 and metrics['final_step'] == 3
    assert len(metrics['peak_memory_mib_per_rank']) == 2
    ckpt = load_checkpoint(out / 'checkpoint.pt')
    assert ckpt['step'] == 3 and ckpt['extra']['world_size'] == 2
    rng = ckpt['extra']['rng']
    assert len(rng) == 2 and not torch.equal(rng[0]['torch'], rng[1]['torch'])  # per-rank seeds
    sums = ckpt['extra']['rank_weight_checksums']
    # replicas in sync although the ranks saw different data
    assert len(sums) == 2 and sums[0] == sums[1]
    assert (out / 'model.pt').exists()
    assert not list(out.glob('*.tmp')) and not list(out.glob('.*.tmp'))

    run = torchrun(['--resume', '--set', 'train.steps=5', '--out', str(out)])
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['start_step'] == 3 and metrics['final_step'] == 5 and metrics['world_size'] == 2
    assert load_checkpoint(out / 'checkpoint.pt')['step'] == 5
