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
torch.distributed set-up for ``torchrun``: NCCL on GPUs, gloo on the CPU; a no-op for one process.

``torchrun --nproc_per_node=K training/train.py ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; without them the trainer runs as a single process (rank 0 of 1).
"""

from dataclasses import dataclass
import os

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, GPU ``local_rank``, the device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and metrics."""
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """
    ``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``.

    ``cuda`` without a GPU is an error.
    """
    if name not in ('auto', 'cpu', 'cuda'):
        raise ValueError(f'train.device must be auto, cpu or cuda, got {name!r}')
    if name == 'cpu' or (name == 'auto' and not torch.cuda.is_available()):
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise ValueError('train.device is cuda but no CUDA device is available')
    return torch.device('cuda', local_rank % torch.cuda.device_count())


def init_distributed(device_name: str = 'auto') -> DistContext:
    """
    Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        device_name: ``train.device`` of the config.

    Returns:
        A :class:`DistContext`; ``initialized`` is True only when a process group was created.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_device(device_name, local_rank)
    if world_size <= 1:
        return DistContext(device=device)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method='env://')
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device,
                       initialized=True)


def wrap(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """Return ``model`` in ``DistributedDataParallel`` under a process group, else itself."""
    if not ctx.initialized:
        return model
    kwargs = {'device_ids': [ctx.device.index]} if ctx.device.type == 'cuda' else {}
    return torch.nn.parallel.DistributedDataParallel(model, **kwargs)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for one process)."""
    if ctx.initialized:
        if ctx.device.type == 'cuda':
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def all_gather_objects(ctx: DistContext, obj) -> list:
    """Every rank's ``obj`` as a list indexed by rank (``[obj]`` for one process)."""
    if not ctx.initialized:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj):
    """Rank 0's ``obj`` on every rank."""
    if not ctx.initialized:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_across_ranks(ctx: DistContext, values: dict) -> dict:
    """Average a dict of floats over the ranks (for logging)."""
    if not ctx.initialized or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist()))


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """Return True when ``flag`` is True on any rank (collective under DDP)."""
    if not ctx.initialized:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group."""
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()
