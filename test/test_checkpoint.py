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

"""save_checkpoint / load_checkpoint / load_model / model_identity."""
import os

from ccl_perception.checkpoint import (CheckpointError, load_checkpoint, load_model,
                                       model_identity, save_checkpoint)
from ccl_perception.model import DescriptorNet
import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def trained():
    """Make a small model and an optimiser that has taken one step (so it has state)."""
    torch.manual_seed(0)
    model = DescriptorNet('efficientnet_lite0', 8, pretrained=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 32, 32)).square().sum().backward()
    optimizer.step()
    return model.eval(), optimizer


class TestRoundTrip:

    def test_round_trip(self, trained, tmp_path):
        model, optimizer = trained
        path = tmp_path / 'ck.pt'
        extra = {'rng': torch.get_rng_state(), 'np_state': np.arange(4, dtype=np.uint32),
                 'train_config': {'lr': 1e-3, 'method': 'ccl'}, 'epoch': np.int64(3)}
        save_checkpoint(path, model, optimizer, step=17, extra=extra)
        data = load_checkpoint(path)
        assert data['step'] == 17
        assert data['model_config'] == model.config
        assert torch.equal(
            data['extra']['np_state'], torch.arange(
                4, dtype=torch.int64).to(
                torch.uint32))
        assert data['extra']['epoch'] == 3 and data['extra']['train_config']['method'] == 'ccl'
        fresh = torch.optim.Adam(
            DescriptorNet(
                'efficientnet_lite0',
                8,
                pretrained=False).parameters())
        fresh.load_state_dict(data['optimizer_state'])
        assert fresh.state_dict()['state'][0]['step'] == 1

        loaded = load_model(path)
        assert not loaded.training
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        images = torch.rand(1, 3, 40, 48)
        with torch.no_grad():
            assert torch.equal(loaded(images), model(images))
        assert model_identity(loaded) == model_identity(model) == model_identity(data)

    def test_overwrite_is_atomic_and_leaves_no_temp_files(self, trained, tmp_path, monkeypatch):
        model, _ = trained
        path = tmp_path / 'ck.pt'
        save_checkpoint(path, model, step=1)
        before = path.read_bytes()

        def crash(*args, **kwargs):
            raise KeyboardInterrupt('killed mid-write')
        monkeypatch.setattr(torch, 'save', crash)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(path, model, step=2)
        assert path.read_bytes() == before  # old checkpoint intact
        assert os.listdir(tmp_path) == ['ck.pt']  # no partial temp file left
        monkeypatch.undo()
        save_checkpoint(path, model, step=3)
        assert load_checkpoint(path)['step'] == 3
        assert os.listdir(tmp_path) == ['ck.pt']

    def test_mode_follows_the_umask(self, trained, tmp_path):
        """Not mkstemp's 0600: a node running as another user must be able to read it."""
        model, _ = trained
        old = os.umask(0o022)
        try:
            save_checkpoint(tmp_path / 'a.pt', model)
            os.umask(0o027)
            save_checkpoint(tmp_path / 'b.pt', model)
        finally:
            os.umask(old)
        assert os.stat(tmp_path / 'a.pt').st_mode & 0o777 == 0o644
        assert os.stat(tmp_path / 'b.pt').st_mode & 0o777 == 0o640

    def test_unloadable_extra_raises(self, trained, tmp_path):
        with pytest.raises(ValueError, match='weights_only'):
            save_checkpoint(tmp_path / 'ck.pt', trained[0], extra={'bad': object()})
        assert not os.listdir(tmp_path)


class TestBadFiles:

    def test_missing(self, tmp_path):
        with pytest.raises(CheckpointError, match='not found'):
            load_checkpoint(tmp_path / 'nope.pt')

    def test_empty(self, tmp_path):
        (tmp_path / 'e.pt').write_bytes(b'')
        with pytest.raises(CheckpointError, match='empty'):
            load_model(tmp_path / 'e.pt')

    def test_truncated(self, trained, tmp_path):
        path = tmp_path / 'ck.pt'
        save_checkpoint(path, trained[0])
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match='corrupt, truncated'):
            load_checkpoint(path)

    def test_garbage(self, tmp_path):
        path = tmp_path / 'g.pt'
        path.write_bytes(b'this is not a checkpoint at all' * 10)
        with pytest.raises(CheckpointError, match='corrupt, truncated'):
            load_checkpoint(path)

    def test_other_torch_file(self, tmp_path):
        path = tmp_path / 'sd.pt'
        torch.save({'weight': torch.zeros(2)}, path)
        with pytest.raises(CheckpointError, match='not a ccl_perception checkpoint'):
            load_checkpoint(path)

    def test_weights_do_not_fit_config(self, trained, tmp_path):
        path = tmp_path / 'ck.pt'
        save_checkpoint(path, trained[0])
        data = torch.load(path, weights_only=True)
        data['model_config']['descriptor_dim'] = 9
        torch.save(data, path)
        with pytest.raises(CheckpointError, match='does not fit'):
            load_model(path)

    def test_is_runtime_error(self):
        assert issubclass(CheckpointError, RuntimeError)


class TestIdentity:

    def test_stable_and_sensitive(self, trained):
        model, _ = trained
        ident = model_identity(model)
        assert len(ident) == 16 and int(ident, 16) >= 0
        assert model_identity(model) == ident
        other = DescriptorNet('efficientnet_lite0', 8, pretrained=False)
        other.load_state_dict(model.state_dict())
        other.config['pretrained'] = True  # the flag is not part of the identity
        assert model_identity(other) == ident
        with torch.no_grad():
            other.head.proj.bias[0] += 1e-3
        assert model_identity(other) != ident

    def test_config_only(self):
        a = model_identity({'backbone': 'resnet18', 'descriptor_dim': 64, 'stride': 8})
        b = model_identity({'backbone': 'resnet18', 'descriptor_dim': 32, 'stride': 8})
        assert a != b
        with pytest.raises(ValueError):
            model_identity(42)
