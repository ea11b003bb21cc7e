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

"""ONNX export and the DescriptorExtractor backends agree with eager PyTorch."""
import os
import runpy

import numpy as np
import pytest
import torch

pytest.importorskip('onnx', reason='onnx is not installed')
pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')

from ccl_perception.checkpoint import CheckpointError, save_checkpoint  # noqa: E402, I100
from ccl_perception.inference import compare_onnx, DescriptorExtractor, export_onnx  # noqa: E402
from ccl_perception.model import DescriptorNet  # noqa: E402

# training/ is a folder of scripts, not a package: load the CLI from its file.
_CLI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    'training', 'export_onnx.py')
export_main = runpy.run_path(_CLI, run_name='export_onnx_cli')['main']

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp('onnx')
    torch.manual_seed(0)
    model = DescriptorNet('efficientnet_lite0', 8, pretrained=True).eval()
    checkpoint = folder / 'ck.pt'
    save_checkpoint(checkpoint, model)
    assert export_main(['--checkpoint', str(checkpoint), '--out', str(folder / 'ck.onnx'),
                        '--height', '48', '--width', '64']) == 0
    return model, checkpoint, folder / 'ck.onnx'


def test_onnx_matches_torch_at_other_sizes(exported):
    model, _, onnx_path = exported
    assert compare_onnx(model, onnx_path, 48, 64) < 1e-4
    assert compare_onnx(model, onnx_path, 37, 90) < 1e-4  # dynamic height/width


def test_extractor_backends_agree(exported):
    model, checkpoint, _ = exported
    rgb = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    eager = DescriptorExtractor(checkpoint)
    onnx = DescriptorExtractor(checkpoint, backend='onnx')  # finds ck.onnx next to ck.pt
    a, b = eager(rgb), onnx(rgb)
    assert a.shape == b.shape == (8, 6, 9)
    assert torch.allclose(a, b, atol=1e-4)
    assert eager.stride == onnx.stride == 8 and eager.identity == onnx.identity
    direct = model(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0]
    assert torch.allclose(a, direct.detach(), atol=1e-6)


def test_onnx_backend_runs_at_a_downscale(exported):
    """The exported file carries the weights' identity, the extractor ``<weights>/2``."""
    _, checkpoint, _ = exported
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    eager = DescriptorExtractor(checkpoint, downscale=2)
    onnx = DescriptorExtractor(checkpoint, backend='onnx', downscale=2)
    assert onnx.identity == eager.identity and onnx.identity.endswith('/2')
    assert torch.allclose(eager(rgb), onnx(rgb), atol=1e-4)


def test_onnx_of_another_model_is_refused(exported, tmp_path):
    _, checkpoint, onnx_path = exported
    other = DescriptorNet('efficientnet_lite0', 8, pretrained=False)
    with pytest.raises(ValueError, match='identity'):
        DescriptorExtractor(other, backend='onnx', onnx_path=onnx_path)
    export_onnx(other, tmp_path / 'other.onnx', 32, 32)
    assert DescriptorExtractor(other, backend='onnx',
                               onnx_path=tmp_path / 'other.onnx').identity


def test_bad_inputs(exported):
    _, checkpoint, _ = exported
    extractor = DescriptorExtractor(checkpoint)
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                np.zeros((10, 10, 3), np.float32), torch.zeros(10, 10, 3)):
        with pytest.raises(ValueError):
            extractor(bad)
    with pytest.raises(ValueError):
        DescriptorExtractor(checkpoint, backend='tensorrt')
    with pytest.raises(CheckpointError):
        DescriptorExtractor(checkpoint.parent / 'missing.pt')
