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

"""CorrespondenceAugmentation and warp_points: exact homographies, validity, determinism."""
import math

from ccl_perception.augment import CorrespondenceAugmentation, warp_points
import pytest
import torch

torch.set_num_threads(1)


def _centroid(channel):
    ys, xs = torch.meshgrid(torch.arange(channel.shape[0], dtype=torch.float32),
                            torch.arange(channel.shape[1], dtype=torch.float32), indexing='ij')
    total = channel.sum()
    return torch.stack([(channel * xs).sum() / total, (channel * ys).sum() / total])


class TestWarpPoints:

    def test_hand_computed(self):
        # Rotation by 90 degrees about the origin then a shift of (9, 0): (x, y) -> (9 - y, x).
        mat = torch.tensor([[[0.0, -1.0, 9.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
        kp = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 12.0], [2.0, 9.6]]])
        kp_hat, valid = warp_points(kp, mat, (10, 10))
        expected = torch.tensor([[[7.0, 1.0], [9.0, 0.0], [-3.0, 3.0], [-0.6, 2.0]]])
        assert torch.allclose(kp_hat, expected)
        assert valid.tolist() == [[True, True, False, False]]

    def test_projective_and_border(self):
        mat = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]]])
        kp = torch.tensor([[[10.0, 4.0], [-20.0, 0.0], [-0.5, 0.0], [3.0, 3.0]]])
        kp_hat, valid = warp_points(kp, mat, (8, 8))
        assert torch.allclose(kp_hat[0, 0], torch.tensor([5.0, 2.0]))
        # (-20, 0): w = -1 (behind the camera) -> invalid; (-0.5, 0) -> (-0.5263, 0) outside.
        # (3, 3) -> (2.3077, 2.3077) inside.
        assert valid.tolist() == [[True, False, False, True]]

    def test_bad_shapes(self):
        with pytest.raises(ValueError):
            warp_points(torch.zeros(5, 2), torch.eye(3)[None], (4, 4))
        with pytest.raises(ValueError):
            warp_points(torch.zeros(2, 5, 2), torch.eye(3)[None], (4, 4))


class TestAugmentation:

    @pytest.mark.parametrize('seed', range(6))
    def test_bright_dot_lands_where_warp_points_says(self, seed):
        aug = CorrespondenceAugmentation({'perspective_p': 1.0, 'jitter_p': 0.0})
        height, width = 48, 64
        x0, y0 = 28 + seed, 22 - seed
        image = torch.zeros(1, 3, height, width)
        image[0, :, y0, x0] = 1.0
        out, mat = aug(image, seed=seed)
        assert out.shape == image.shape and mat.shape == (1, 3, 3)
        kp_hat, valid = warp_points(torch.tensor([[[float(x0), float(y0)]]]), mat, (height, width))
        assert not torch.allclose(mat, torch.eye(3))
        channel = out[0].sum(0)
        assert bool(valid[0, 0]) and channel.sum() > 0.5  # the dot stayed in view
        assert torch.linalg.norm(_centroid(channel) - kp_hat[0, 0]) < 1.0

    def test_points_leaving_the_image_are_invalid(self):
        aug = CorrespondenceAugmentation({'degrees': 0.0, 'scale': (2.0, 2.0), 'translate': (0, 0),
                                          'perspective_p': 0.0, 'jitter_p': 0.0})
        _, mat = aug(torch.rand(1, 3, 40, 40), seed=0)
        # Zoom x2 about the centre (19.5, 19.5): x -> 2x - 19.5.
        assert torch.allclose(mat[0], torch.tensor([[2.0, 0, -19.5], [0, 2.0, -19.5], [0, 0, 1]]),
                              atol=1e-4)
        kp = torch.tensor([[[19.5, 19.5], [1.0, 1.0], [30.0, 20.0], [38.0, 10.0]]])
        kp_hat, valid = warp_points(kp, mat, (40, 40))
        assert valid.tolist() == [[True, False, False, False]]
        assert torch.allclose(kp_hat[0, 2], torch.tensor([40.5, 20.5]), atol=1e-3)

    def test_rotation_matrix_matches_config_range(self):
        aug = CorrespondenceAugmentation({'degrees': 10.0, 'scale': (1.0, 1.0),
                                          'translate': (0, 0), 'perspective_p': 0.0,
                                          'jitter_p': 0.0})
        _, mat = aug(torch.rand(8, 3, 16, 16), seed=1)
        angles = torch.atan2(mat[:, 1, 0], mat[:, 0, 0]).abs()
        assert (angles <= math.radians(10.0) + 1e-5).all()
        assert torch.allclose(torch.linalg.det(mat[:, :2, :2]), torch.ones(8), atol=1e-4)

    def test_deterministic_and_global_rng_untouched(self):
        aug = CorrespondenceAugmentation()
        images = torch.rand(3, 3, 24, 32)
        torch.manual_seed(123)
        state = torch.get_rng_state()
        a, ma = aug(images, generator=torch.Generator().manual_seed(7))
        assert torch.equal(torch.get_rng_state(), state)
        b, mb = aug(images, generator=torch.Generator().manual_seed(7))
        c, mc = aug(images, seed=8)
        assert torch.equal(a, b) and torch.equal(ma, mb)
        assert not torch.equal(ma, mc)

    def test_bad_input(self):
        aug = CorrespondenceAugmentation()
        with pytest.raises(ValueError):
            aug(torch.rand(3, 24, 32))
        with pytest.raises(ValueError):
            aug(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
        with pytest.raises(ValueError, match='unknown augmentation'):
            CorrespondenceAugmentation({'rotation': 5})
