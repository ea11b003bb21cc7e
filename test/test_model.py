"""DescriptorNet, backbones and upsample_descriptors: shapes, stride, norms, weights, grid mapping."""
import logging

import pytest
import torch
import torch.nn.functional as F

from ccl_perception.backbones import BACKBONES
from ccl_perception.backbones.efficientnet_lite0 import (EfficientNetLite0,
                                                         load_imagenet_weights, weights_path)
from ccl_perception.correspondence import grid_to_full
from ccl_perception.model import DescriptorNet, build_model, upsample_descriptors

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
        dims = {name: _net(name).feature_dim for name in BACKBONES}
        assert dims == {'efficientnet_lite0': 112, 'resnet18': 256, 'resnet34': 256,
                        'resnet50': 1024}

    def test_uint8_and_float_inputs_agree(self):
        net = _net('efficientnet_lite0')
        images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
        with torch.no_grad():
            a = net(images)
            b = net(images.float() / 255.0)
        assert torch.equal(a, b)

    @pytest.mark.parametrize('bad', [torch.rand(3, 32, 32), torch.rand(1, 4, 32, 32),
                                     torch.rand(1, 1, 32, 32), torch.zeros(1, 3, 8, 8, dtype=torch.int64),
                                     torch.rand(0, 3, 8, 8)])
    def test_bad_input_raises(self, bad):
        with pytest.raises(ValueError):
            _net('efficientnet_lite0')(bad)

    def test_gradients_reach_trunk(self):
        net = DescriptorNet('efficientnet_lite0', 8, pretrained=False).train()
        net(torch.rand(2, 3, 32, 32)).sum().backward()
        assert net.backbone._conv_stem.weight.grad.abs().sum() > 0
        assert net.head.weight.grad.abs().sum() > 0

    def test_build_model_config(self):
        net = build_model({'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False})
        assert net.config == {'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False,
                              'stride': 8}
        assert build_model(dict(net.config)).head.out_channels == 8
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
    def test_every_used_key_loads(self):
        trunk = EfficientNetLite0(output_stride=8)
        keys = load_imagenet_weights(trunk)
        assert keys == sorted(trunk.state_dict())
        file_state = torch.load(weights_path(), map_location='cpu', weights_only=True)
        # Stages 1-5 = blocks 0..10; stages 6-7 and the head are not used.
        assert not any(k.startswith(('_blocks.11.', '_conv_head', '_fc')) for k in keys)
        assert any(k.startswith('_blocks.10.') for k in keys)
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
