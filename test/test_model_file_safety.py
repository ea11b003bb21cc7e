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
Model files a user can damage or confuse (issue 20).

* every checkpoint carries the sha256 of its tensors (``tensor_sha256``), checked on load: a
  copy with flipped bytes is refused with one line naming the file; the shipped
  ``ccl_default.pt`` carries it (tensors and identity unchanged, its card says the same), and
  ``training/export_default_model.py`` writes it into a re-exported model;
* weights that are not finite (NaN/inf) are refused on load, so no NaN target is made;
* a torch file holding Python objects gives one short line, not torch's ~700-character text,
  wherever a user meets it (``load_checkpoint``, ``evaluate``, ``make_target``, a node's
  status, the ImageNet weights loader).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile

from ccl_perception import model_zoo
from ccl_perception.checkpoint import (CheckpointError, load_checkpoint, load_model,
                                       model_identity, save_checkpoint, tensor_digest)
from ccl_perception.model import DescriptorNet
import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp('files')
    net = DescriptorNet('resnet18', 8, pretrained=False)
    return {'dir': d, 'net': net, 'ck': save_checkpoint(str(d / 'tiny.pt'), net)}


def tensor_data_spans(path: str) -> list:
    """Return ``(offset, size)`` of the tensor bytes of a torch zip file (``data/N`` members)."""
    spans = []
    with zipfile.ZipFile(path) as z, open(path, 'rb') as f:
        for info in z.infolist():
            if '/data/' in info.filename and info.file_size > 0:
                # stored uncompressed after the 30-byte local header, its name and extra field
                f.seek(info.header_offset + 26)
                name_len, extra_len = np.frombuffer(f.read(4), '<u2')
                spans.append((info.header_offset + 30 + int(name_len) + int(extra_len),
                              info.file_size))
    return spans


def flip_bytes(src: str, dst: str, n: int, seed: int = 0, in_tensors: bool = True) -> None:
    """Copy ``src`` to ``dst`` with ``n`` bytes inverted (inside the tensor data, or anywhere)."""
    data = bytearray(open(src, 'rb').read())
    rng = np.random.default_rng(seed)
    if in_tensors:
        positions = np.concatenate([np.arange(s, s + size) for s, size in tensor_data_spans(src)])
    else:
        positions = np.arange(len(data))
    for i in rng.choice(positions, size=n, replace=False):
        data[i] ^= 0xFF
    open(dst, 'wb').write(bytes(data))


# ------------------------------------------------------------------------------ checksum
def test_every_checkpoint_carries_the_checksum_of_its_tensors(tiny):
    raw = torch.load(tiny['ck'], weights_only=True)
    assert raw['tensor_sha256'] == tensor_digest(tiny['net'].state_dict())
    assert len(raw['tensor_sha256']) == 64


def test_flipped_tensor_bytes_are_refused_with_one_line_naming_the_file(tiny):
    bad = str(tiny['dir'] / 'flipped.pt')
    flip_bytes(tiny['ck'], bad, 20)
    assert torch.load(bad, weights_only=True)['step'] == 0  # torch itself reads it fine
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    text = str(info.value)
    assert text.startswith(f'checkpoint {bad} is corrupt: its tensors do not match the sha256 '
                           'stored with them') and '\n' not in text, text


def test_a_checkpoint_without_a_checksum_still_loads(tiny):
    """Files written before the checksum existed: read as before (nothing to compare)."""
    raw = torch.load(tiny['ck'], weights_only=True)
    del raw['tensor_sha256']
    old = str(tiny['dir'] / 'old.pt')
    torch.save(raw, old)
    assert model_identity(load_model(old)) == model_identity(tiny['net'])


SHIPPED = model_zoo.DEFAULT_MODEL_FILE


def test_the_shipped_model_carries_its_checksum_and_its_identity_is_unchanged():
    raw = torch.load(SHIPPED, weights_only=True)
    with open(os.path.splitext(SHIPPED)[0] + '.json', encoding='utf-8') as f:
        card = json.load(f)
    assert raw['tensor_sha256'] == tensor_digest(raw['model_state']) == card['tensor_sha256']
    # the identity recorded when the model was exported (targets made with it stay valid)
    assert model_identity(load_model(SHIPPED)) == card['identity'] == 'cf44c0ea74cd71be'


@pytest.mark.parametrize('in_tensors', [True, False])
def test_a_shipped_model_copy_with_2000_flipped_bytes_is_refused(tmp_path, in_tensors):
    bad = str(tmp_path / 'ccl_default.pt')
    flip_bytes(SHIPPED, bad, 2000, in_tensors=in_tensors)
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    text = str(info.value)
    assert bad in text and '\n' not in text and len(text) < 400, text
    if in_tensors:
        assert 'do not match the sha256' in text


def test_export_default_model_writes_the_checksum(tmp_path):
    """A re-exported default model carries ``tensor_sha256`` (in the file and its card)."""
    sys.path.insert(0, os.path.join(REPO, 'training'))
    try:
        from export_default_model import main
    finally:
        sys.path.pop(0)
    from ccl_perception.model import build_model
    torch.manual_seed(0)
    net = build_model({'head_hidden': 16}).eval()  # ImageNet Lite0 trunk, offline weights
    with torch.no_grad():
        for p in net.head.parameters():
            p.add_(0.01 * torch.randn_like(p))  # a "trained" head, frozen trunk
    ck = save_checkpoint(str(tmp_path / 'model.pt'), net, step=5, extra={'tau': 0.03})
    out = str(tmp_path / 'export' / 'default.pt')
    assert main(['--checkpoint', ck, '--out', out]) == 0
    raw = torch.load(out, weights_only=True)
    assert not any(k.startswith('backbone.') for k in raw['model_state'])  # head only
    assert raw['tensor_sha256'] == tensor_digest(raw['model_state'])
    with open(os.path.join(tmp_path, 'export', 'default.json'), encoding='utf-8') as f:
        assert json.load(f)['tensor_sha256'] == raw['tensor_sha256']
    assert model_identity(load_model(out)) == model_identity(net)
    flip_bytes(out, str(tmp_path / 'bad.pt'), 50)
    with pytest.raises(CheckpointError, match='do not match the sha256'):
        load_model(str(tmp_path / 'bad.pt'))


# ------------------------------------------------------------------------------ NaN weights
@pytest.fixture(scope='module')
def nan_checkpoint(tiny):
    torch.manual_seed(0)
    net = DescriptorNet('resnet18', 8, pretrained=False)
    with torch.no_grad():
        next(net.head.parameters()).view(-1)[0] = float('nan')
    return save_checkpoint(str(tiny['dir'] / 'nan.pt'), net)


def test_nan_weights_are_refused_on_load(nan_checkpoint):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(nan_checkpoint)
    assert str(info.value).startswith(f'checkpoint {nan_checkpoint} has non-finite weights '
                                      '(NaN/inf) in 1 tensor(s), e.g. head.')


def test_make_target_with_nan_weights_exits_2_and_writes_nothing(nan_checkpoint, tmp_path,
                                                                 capsys):
    import cv2
    from ccl_perception.targets import main
    cv2.imwrite(str(tmp_path / 'ref.png'), np.full((48, 64, 3), 90, np.uint8))
    out = tmp_path / 'nan_target.npz'
    rc = main(['--checkpoint', nan_checkpoint, '--image', str(tmp_path / 'ref.png'),
               '--points', '10,10', '40,20', '--name', 'x', '--out', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'has non-finite weights (NaN/inf)' in err[0], err
    assert not out.exists()


# ------------------------------------------------------------------------ weights_only text
@pytest.fixture(scope='module')
def object_file(tiny):
    """Write a torch file holding a Python object (as torch.save of an argparse result does)."""
    path = str(tiny['dir'] / 'objects.pt')
    torch.save({'format': 'x', 'args': argparse.Namespace(lr=0.1)}, path)
    return path


ONE_LINE = ('it holds Python objects (argparse.Namespace) that safe loading (torch.load '
            'weights_only=True) refuses to run')


def test_load_checkpoint_says_it_in_one_short_line(object_file):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(object_file)
    assert str(info.value) == f'cannot read checkpoint {object_file}: {ONE_LINE}'


@pytest.mark.parametrize('tool', ['evaluate', 'make_target'])
def test_the_clis_print_one_short_line(object_file, tmp_path, tool):
    import cv2
    cv2.imwrite(str(tmp_path / 'ref.png'), np.full((48, 64, 3), 90, np.uint8))
    argv = {'evaluate': [os.path.join(REPO, 'training', 'evaluate.py'), '--checkpoint',
                         object_file, '--pairs', 'x.json'],
            'make_target': ['-m', 'ccl_perception.targets', '--checkpoint', object_file,
                            '--image', str(tmp_path / 'ref.png'), '--points', '1,1', '20,20',
                            '--name', 'x', '--out', str(tmp_path / 'x.npz')]}[tool]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f'{tool}: error: cannot read checkpoint {object_file}: '
                                   f'{ONE_LINE}'), proc.stderr


def test_a_node_reports_it_in_one_line(object_file):
    pytest.importorskip('rclpy')
    from ccl_perception.nodes import NodeRunner
    from ccl_perception.nodes.descriptor_node import DescriptorNode
    from rclpy.parameter import Parameter
    made = {}

    def factory(ctx):
        made['node'] = DescriptorNode(
            context=ctx, cli_args=['--ros-args', '-r', f'__node:=desc_obj{os.getpid()}',
                                   '-r', f'camera/color/image_raw:=obj{os.getpid()}/c'],
            parameter_overrides=[Parameter('checkpoint', value=object_file)])
        return made['node']

    with NodeRunner(factory):
        assert made['node'].load_error == (f'model not loaded: cannot read checkpoint '
                                           f'{object_file}: {ONE_LINE}')


def test_the_imagenet_weights_loader_says_it_in_one_line(object_file):
    from ccl_perception.backbones.efficientnet_lite0 import (EfficientNetLite0,
                                                             load_imagenet_weights)
    from ccl_perception.safe_load import WeightsFileError
    with pytest.raises(WeightsFileError) as info:
        load_imagenet_weights(EfficientNetLite0(), object_file)
    assert str(info.value) == f'cannot read {object_file}: {ONE_LINE}'


def test_a_corrupt_file_is_still_named_in_one_line(tiny):
    bad = str(tiny['dir'] / 'trunc.pt')
    shutil.copy(tiny['ck'], bad)
    with open(bad, 'r+b') as f:
        f.truncate(os.path.getsize(bad) // 2)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    text = str(info.value)
    assert text.startswith(f'cannot read checkpoint {bad}: the file is corrupt, truncated or '
                           'not a torch file (') and '\n' not in text and len(text) < 400, text
