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

"""DescriptorNet, backbones and upsample_descriptors: shapes, stride, norms, weights, grid."""
import logging

from ccl_perception.backbones import BACKBONES
from ccl_perception.backbones.efficientnet_lite0 import (EfficientNetLite0,
                                                         load_imagenet_weights, weights_path)
from ccl_perception.backbones.fuse import fuse_strides, upsample_to_stride8
from ccl_perception.correspondence import grid_to_full
from ccl_perception.model import build_model, DescriptorNet, upsample_descriptors
import pytest
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def _net(backbone, dim=16):
    # ResNets without ImageNet weights (no download in tests); lite0's weights are offline.
    return DescriptorNet(backbone, dim, pretrained=backbone == 'efficientnet_lite0').eval()


class TestDescriptorNet:

    @pytest.mark.parametrize('backbone', BACKBONES)
    def test_shape_stride_and_unit_norm(self, backbone):
        net = _net(backbone)
        assert net.stride == 8
        with torch.no_grad():
            for (h, w), expected in (((64, 96), (8, 12)), ((61, 90), (8, 12))):
                out = net(torch.rand(2, 3, h, w))
                assert out.shape == (2, 16) + expected
                assert torch.allclose(out.norm(dim=1), torch.ones(2, *expected), atol=1e-5)
            feats = net.backbone_features(torch.rand(1, 3, 40, 72))
        assert feats.shape == (1, net.feature_dim, 5, 9)
        assert torch.allclose(feats.norm(dim=1), torch.ones(1, 5, 9), atol=1e-5)

    def test_feature_dims(self):
        dims = {name: DescriptorNet(name, 8, pretrained=False, trunk='dilated').feature_dim
                for name in BACKBONES}
        assert dims == {'efficientnet_lite0': 112, 'resnet18': 256, 'resnet34': 256,
                        'resnet50': 1024}
        # fpn: stride-8 stage + stride-16 stage channels (40 + 112, 128 + 256, 512 + 1024)
        dims = {name: DescriptorNet(name, 8, pretrained=False, trunk='fpn').feature_dim
                for name in BACKBONES}
        assert dims == {'efficientnet_lite0': 152, 'resnet18': 384, 'resnet34': 384,
                        'resnet50': 1536}
        assert _net('efficientnet_lite0').config['trunk'] == 'fpn'  # the default

    def test_uint8_and_float_inputs_agree(self):
        net = _net('efficientnet_lite0')
        images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
        with torch.no_grad():
            a = net(images)
            b = net(images.float() / 255.0)
        assert torch.equal(a, b)

    @pytest.mark.parametrize('bad', [torch.rand(3, 32, 32), torch.rand(1, 4, 32, 32),
                                     torch.rand(
        1, 1, 32, 32), torch.zeros(
        1, 3, 8, 8, dtype=torch.int64),
        torch.rand(0, 3, 8, 8)])
    def test_bad_input_raises(self, bad):
        with pytest.raises(ValueError):
            _net('efficientnet_lite0')(bad)

    def test_gradients_reach_trunk(self):
        net = DescriptorNet('efficientnet_lite0', 8, pretrained=False).train()
        net(torch.rand(2, 3, 32, 32)).sum().backward()
        assert net.backbone._conv_stem.weight.grad.abs().sum() > 0
        assert net.head.proj.weight.grad.abs().sum() > 0

    def test_build_model_config(self):
        net = build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False})
        assert net.config == {'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False,
                              'trunk': 'dilated', 'head': 'conv', 'head_hidden': 192,
                              'stride': 8}  # ResNets default to dilated
        assert build_model(dict(net.config)).head.proj.out_channels == 8
        assert build_model(dict(net.config, trunk='fpn')).config['trunk'] == 'fpn'
        with pytest.raises(ValueError, match='unknown trunk'):
            build_model({'backbone': 'resnet18', 'trunk': 'aspp'})
        with pytest.raises(ValueError, match='unknown model config'):
            build_model({'backbone': 'resnet18', 'lr': 1.0})
        with pytest.raises(ValueError, match='stride'):
            build_model({'stride': 16})
        with pytest.raises(ValueError, match='unknown backbone'):
            build_model({'backbone': 'vgg16'})

    def test_resnet_without_download_warns(self, caplog, monkeypatch):
        import torchvision

        def fail(*args, **kwargs):
            raise OSError('offline')
        monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1, 'get_state_dict',
                            fail)
        with caplog.at_level(logging.WARNING):
            net = DescriptorNet('resnet18', 8, pretrained=True)
        assert net.backbone.pretrained_loaded is False
        assert 'RANDOM initialisation' in caplog.text


class TestEfficientNetWeights:

    @pytest.mark.parametrize('mode', ['dilated', 'fpn', 'fpn32'])
    def test_every_used_key_loads(self, mode):
        trunk = EfficientNetLite0(output_stride=8, trunk=mode)
        keys = load_imagenet_weights(trunk)
        assert keys == sorted(trunk.state_dict())
        file_state = torch.load(weights_path(), map_location='cpu', weights_only=True)
        # Stages 1-5 = blocks 0..10 (fpn32: stages 1-7 = blocks 0..15); the head is not used.
        last = 15 if mode == 'fpn32' else 10
        assert not any(k.startswith((f'_blocks.{last + 1}.', '_conv_head', '_fc')) for k in keys)
        assert any(k.startswith(f'_blocks.{last}.') for k in keys)
        for key, value in trunk.state_dict().items():
            assert torch.equal(value, file_state[key]), key

    def test_pretrained_differs_from_random(self):
        torch.manual_seed(0)
        random_init = DescriptorNet('efficientnet_lite0', 8, pretrained=False)
        loaded = DescriptorNet('efficientnet_lite0', 8, pretrained=True)
        stem_random = random_init.backbone._conv_stem.weight
        stem_loaded = loaded.backbone._conv_stem.weight
        assert not torch.allclose(stem_random, stem_loaded)
        assert loaded.backbone._bn0.running_var.sub(1).abs().max() > 0.1  # real statistics

    def test_full_classifier_reproduces_imagenet_prediction(self):
        cv2 = pytest.importorskip('cv2')
        matplotlib = pytest.importorskip('matplotlib')
        import os
        import numpy as np
        path = os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
        if not os.path.isfile(path):
            pytest.skip('matplotlib sample image grace_hopper.jpg not installed')
        net = EfficientNetLite0(output_stride=32, include_top=True)
        assert load_imagenet_weights(net) == sorted(net.state_dict())  # all 296 tensors
        rgb = cv2.resize(cv2.imread(path)[:, :, ::-1].copy(), (224, 224),
                         interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
        x = (x - 127 / 255) / (128 / 255)
        with torch.no_grad():
            logits = net.eval()(x)
        assert int(logits.argmax()) == 652  # ImageNet class 652: "military uniform"


class TestUpsampleDescriptors:

    def test_one_hot_peak_lands_on_grid_to_full(self):
        desc = torch.zeros(1, 2, 4, 5)
        desc[:, 1] = 1.0
        j, i = 2, 3  # row, column
        desc[0, 0, j, i] = 50.0  # a cell whose first channel dominates
        up = upsample_descriptors(F.normalize(desc, dim=1), (32, 40))
        assert up.shape == (1, 2, 32, 40)
        centre = grid_to_full(torch.tensor([[float(i), float(j)]]))[0]  # (8i+3.5, 8j+3.5)
        assert torch.allclose(centre, torch.tensor([27.5, 19.5]))
        channel0 = up[0, 0]
        peak = channel0.max()
        ys, xs = torch.nonzero(channel0 >= peak - 1e-6, as_tuple=True)
        # The peak is the 2x2 block of pixels around (27.5, 19.5): columns 27-28, rows 19-20.
        assert set(xs.tolist()) == {27, 28} and set(ys.tolist()) == {19, 20}
        assert torch.allclose(up.norm(dim=1), torch.ones(1, 32, 40), atol=1e-5)

    def test_matches_hand_computed_bilinear(self):
        desc = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]]).permute(1, 0, 2, 3)  # (1,2,1,2)
        up = upsample_descriptors(desc, (8, 16))
        # Pixel x = 5.5 is the midpoint between cell centres 3.5 and 11.5 -> halfway.
        # Pixel x = 5 samples grid 0.1875 -> weights (0.8125, 0.1875) before renormalising.
        v = torch.tensor([0.8125, 0.1875])
        assert torch.allclose(up[0, :, 0, 5], v / v.norm(), atol=1e-6)
        assert torch.allclose(up[0, :, 3, 3], torch.tensor([1.0, 0.0]))  # left of centre: clamp

    def test_crop_for_non_multiple_of_eight(self):
        desc = F.normalize(torch.randn(2, 4, 8, 12), dim=1)
        up = upsample_descriptors(desc, (61, 90))
        full = upsample_descriptors(desc, (64, 96))
        assert up.shape == (2, 4, 61, 90)
        assert torch.allclose(up, full[..., :61, :90])

    def test_size_mismatch_raises(self):
        with pytest.raises(ValueError, match='does not match'):
            upsample_descriptors(torch.rand(1, 4, 8, 12), (48, 96))


class TestTrunkModes:
    """trunk='fpn': stages 4-5 at native stride 16, resampled onto the 1/8 grid, concatenated."""

    @pytest.mark.parametrize('backbone, mode', [
        ('efficientnet_lite0', 'dilated'), ('efficientnet_lite0', 'fpn'),
        ('efficientnet_lite0', 'fpn32'), ('resnet18', 'dilated'), ('resnet18', 'fpn')])
    def test_output_contract_at_two_sizes(self, backbone, mode):
        net = DescriptorNet(backbone, 16, pretrained=backbone == 'efficientnet_lite0',
                            trunk=mode).eval()
        with torch.no_grad():
            for (h, w), grid in (((64, 96), (8, 12)), ((50, 70), (7, 9))):
                out = net(torch.rand(1, 3, h, w))
                assert out.shape == (1, 16) + grid
                assert torch.allclose(out.norm(dim=1), torch.ones(1, *grid), atol=1e-5)
                feats = net.backbone_features(torch.rand(1, 3, h, w))
                assert feats.shape == (1, net.feature_dim) + grid

    def test_upsample_to_stride8_hand_computed(self):
        coarse = torch.tensor([[[[1.0, 3.0]], [[0.0, -2.0]]]])  # (1, 2, 1, 2): 1/16 map
        # odd 1/8 width 3 = 2*2 - 1: cells 0, 1, 2 read coarse x = 0, 0.5, 1
        out = upsample_to_stride8(coarse, torch.zeros(1, 1, 1, 3))
        assert torch.equal(out, torch.tensor([[[[1.0, 2.0, 3.0]], [[0.0, -1.0, -2.0]]]]))
        # even width 4 = 2*2: cell 3 reads x = 1.5, clamped to the last coarse cell
        out = upsample_to_stride8(coarse, torch.zeros(1, 1, 1, 4))
        assert torch.equal(out[0, 0], torch.tensor([[1.0, 2.0, 3.0, 3.0]]))
        col = torch.tensor([[[[4.0], [8.0]]]])  # (1, 1, 2, 1): rows
        assert torch.equal(upsample_to_stride8(col, torch.zeros(1, 1, 4, 2))[0, 0],
                           torch.tensor([[4.0, 4.0], [6.0, 6.0], [8.0, 8.0], [8.0, 8.0]]))

    def test_fpn_features_are_the_imagenet_stage_outputs(self):
        """Channels 0-39: stage 3 at 1/8; channels 40-151 on even cells: stage 5 at 1/16."""
        fpn = EfficientNetLite0(output_stride=8, trunk='fpn')
        load_imagenet_weights(fpn)
        fpn.eval()
        x = torch.randn(1, 3, 72, 88)
        with torch.no_grad():
            fused = fpn(x)
            y = fpn.act(fpn._bn0(fpn._conv_stem(x)))
            for index, block in enumerate(fpn._blocks):
                y = block(y)
                if index == 4:
                    stride8 = y.clone()
        assert fused.shape == (1, 152, 9, 11) and y.shape == (1, 112, 5, 6)
        assert torch.equal(fused[:, :40], stride8)
        assert torch.equal(fused[:, 40:, ::2, ::2], y)  # 1/16 cell k sits on 1/8 cell 2k
        assert torch.allclose(fused[:, 40:, 1, 0], (y[:, :, 0, 0] + y[:, :, 1, 0]) / 2, atol=1e-6)

    def test_fuse_strides_puts_each_coarse_cell_on_its_fine_cell(self):
        """1/32 cell k sits on 1/16 cell 2k and on 1/8 cell 4k; between them: bilinear."""
        fine = torch.zeros(1, 1, 1, 5)
        mid = torch.tensor([[[[2.0, 4.0, 6.0]]]])      # 1/16 cells at 1/8 cells 0, 2, 4
        coarse = torch.tensor([[[[10.0, 30.0]]]])      # 1/32 cells at 1/8 cells 0, 4
        out = fuse_strides(fine, mid, coarse)
        assert out.shape == (1, 3, 1, 5)
        assert torch.equal(out[0, 1, 0], torch.tensor([2.0, 3.0, 4.0, 5.0, 6.0]))
        assert torch.equal(out[0, 2, 0], torch.tensor([10.0, 15.0, 20.0, 25.0, 30.0]))

    def test_fpn32_is_fpn_plus_the_imagenet_stage7(self):
        """Channels 0-151: the fpn trunk; 152-471 on every 4th cell: stage 7 at 1/32."""
        fpn, deep = (EfficientNetLite0(output_stride=8, trunk=mode) for mode in ('fpn', 'fpn32'))
        for net in (fpn, deep):
            load_imagenet_weights(net)
            net.eval()
        x = torch.randn(1, 3, 96, 128)
        with torch.no_grad():
            fused, base = deep(x), fpn(x)
            y = deep.act(deep._bn0(deep._conv_stem(x)))
            for block in deep._blocks:
                y = block(y)
        assert deep.out_channels == 472 and fused.shape == (1, 472, 12, 16)
        assert y.shape == (1, 320, 3, 4)
        assert torch.equal(fused[:, :152], base)
        assert torch.allclose(fused[:, 152:, ::4, ::4], y, atol=1e-6)
        assert list(deep.last_stage().parameters())[0] is next(deep._blocks[15].parameters())
        with pytest.raises(ValueError, match='fpn32'):
            DescriptorNet('resnet18', 8, pretrained=False, trunk='fpn32')

    def test_fpn_uint8_and_float_agree(self):
        net = DescriptorNet('efficientnet_lite0', 16, pretrained=True, trunk='fpn').eval()
        images = torch.randint(0, 256, (2, 3, 40, 56), dtype=torch.uint8)
        with torch.no_grad():
            assert torch.equal(net(images), net(images.float() / 255.0))

    def test_legacy_config_without_trunk_builds_dilated(self, tmp_path):
        from ccl_perception.checkpoint import load_model, save_checkpoint
        old = DescriptorNet('efficientnet_lite0', 8, pretrained=False, trunk='dilated')
        del old.config['trunk']  # what checkpoints saved before the trunk option hold
        assert build_model(dict(old.config)).config['trunk'] == 'dilated'
        assert build_model({'backbone': 'efficientnet_lite0'}).config['trunk'] == 'fpn'
        path = save_checkpoint(str(tmp_path / 'old.pt'), old)
        loaded = load_model(path)
        assert loaded.config['trunk'] == 'dilated' and loaded.feature_dim == 112
        x = torch.rand(1, 3, 32, 40)
        with torch.no_grad():
            assert torch.equal(loaded(x), old.eval()(x))

    def test_bad_trunk_raises(self):
        with pytest.raises(ValueError, match='trunk'):
            DescriptorNet('efficientnet_lite0', 8, pretrained=False, trunk='aspp')
        with pytest.raises(ValueError, match='trunk'):
            EfficientNetLite0(output_stride=8, trunk='aspp')
