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

"""Head-only checkpoints and the shipped default model."""
import json
import os

from ccl_perception import model_zoo
from ccl_perception.checkpoint import (
    CheckpointError, load_checkpoint, load_model, model_identity, save_checkpoint)
from ccl_perception.checkpoint import trunk_digest
from ccl_perception.model import build_model
import pytest
import torch


@pytest.fixture(scope='module')
def frozen_model():
    torch.manual_seed(0)
    net = build_model({'head_hidden': 16}).eval()  # ImageNet Lite0 trunk, offline weights
    with torch.no_grad():
        for p in net.head.parameters():
            p.add_(0.01 * torch.randn_like(p))  # a "trained" head
    return net


def test_head_only_roundtrip_keeps_the_identity(frozen_model, tmp_path):
    path = tmp_path / 'head.pt'
    model_zoo.save_head_only(path, frozen_model, step=7, extra={'tau': 0.03})
    raw = torch.load(path, weights_only=True)
    assert not any(k.startswith('backbone.') for k in raw['model_state'])
    assert os.path.getsize(path) < 0.2 * sum(p.numel() * 4 for p in frozen_model.parameters())
    loaded = load_model(str(path))
    assert model_identity(loaded) == model_identity(frozen_model)
    for key, value in frozen_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert load_checkpoint(str(path))['step'] == 7


def test_a_trained_trunk_is_not_exported_head_only(frozen_model, tmp_path):
    other = build_model({'head_hidden': 16})
    other.load_state_dict(frozen_model.state_dict())
    with torch.no_grad():
        other.backbone._conv_stem.weight.add_(1e-3)
    with pytest.raises(ValueError, match='trunk differs'):
        model_zoo.save_head_only(tmp_path / 'bad.pt', other)


def test_another_trunk_is_refused_with_both_digests(frozen_model, tmp_path):
    path = tmp_path / 'head.pt'
    model_zoo.save_head_only(path, frozen_model)
    data = torch.load(path, weights_only=True)
    data['extra']['trunk_reference']['sha256'] = '0' * 64
    torch.save(data, path)
    with pytest.raises(CheckpointError, match='0000000000') as info:
        load_model(str(path))
    assert trunk_digest(frozen_model.state_dict()) in str(info.value)


def test_full_checkpoints_still_load(frozen_model, tmp_path):
    save_checkpoint(tmp_path / 'full.pt', frozen_model)
    assert model_identity(load_model(str(tmp_path / 'full.pt'))) == model_identity(frozen_model)


# ------------------------------------------------------------------------ shipped model
SHIPPED = model_zoo.DEFAULT_MODEL_FILE
CARD = os.path.splitext(SHIPPED)[0] + '.json'


def test_the_shipped_model_loads_offline_and_matches_its_card():
    assert os.path.isfile(SHIPPED), f'{SHIPPED} is missing: run `make model`'
    assert os.path.getsize(SHIPPED) < 5 * 2 ** 20
    with open(CARD, encoding='utf-8') as f:
        card = json.load(f)
    model = load_model(model_zoo.default_model_path())
    assert model_identity(model) == card['identity']
    assert model.config['head'] == card['config']['model']['head']


def test_a_corrupted_shipped_file_names_itself(tmp_path):
    broken = tmp_path / 'ccl_default.pt'
    with open(SHIPPED, 'rb') as f:
        data = f.read()
    broken.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='ccl_default.pt'):
        load_model(str(broken))
