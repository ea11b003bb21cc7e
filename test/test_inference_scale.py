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

"""DescriptorExtractor(downscale=s): a model trained at 320x240 run on a 640x480 camera."""
from ccl_perception.inference import DescriptorExtractor, shrink
from ccl_perception.model import build_model
import numpy as np
import pytest
import torch


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False,
                        'head_hidden': 8}).eval()


def test_downscale_is_a_stride_16_model_on_the_camera_image(model):
    rgb = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    half = DescriptorExtractor(model, downscale=2)
    full = DescriptorExtractor(model)
    assert half.stride == 16 and full.stride == 8
    desc = half(rgb)
    assert tuple(desc.shape) == (8, 4, 6)
    assert torch.allclose(desc, full(shrink(rgb, 2)))
    # shrink is a 2x2 mean
    assert shrink(rgb, 2)[0, 0, 0] == pytest.approx(rgb[:2, :2, 0].mean(), abs=1)


def test_targets_of_another_scale_are_told_apart(model):
    assert DescriptorExtractor(model, downscale=2).identity \
        == DescriptorExtractor(model).identity + '/2'


def test_bad_downscale_and_sizes_are_refused(model):
    with pytest.raises(ValueError, match='downscale'):
        DescriptorExtractor(model, downscale=0)
    with pytest.raises(ValueError, match='divisible by 2'):
        DescriptorExtractor(model, downscale=2)(np.zeros((63, 96, 3), np.uint8))
