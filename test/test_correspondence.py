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

"""Correspondence math against values computed by hand on tiny maps."""
import math

from ccl_perception.correspondence import (
    cosine_heatmap, expected_descriptor, full_to_grid, grid_to_full, heatmap_softmax,
    match_descriptors, sample_descriptors, spatial_expectation, spatial_variance,
)
import pytest
import torch


def one_hot_map(h=5, w=5):
    """(1, h*w, h, w) map whose pixel (x, y) holds the one-hot vector e_{y*w+x}."""
    return torch.eye(h * w).reshape(h * w, h, w).unsqueeze(0)


class TestGridMapping:

    def test_hand_values(self):
        g = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-0.5, -0.5]])
        full = grid_to_full(g, stride=8)
        # cell 0 covers pixels 0..7 -> centre 3.5; cell 1 -> 11.5; cell 2 -> 19.5;
        # edge -0.5 -> -0.5
        assert full.tolist() == [[3.5, 3.5], [11.5, 19.5], [-0.5, -0.5]]
        assert torch.allclose(full_to_grid(full, stride=8), g)

    def test_matches_bilinear_upsampling(self):
        # align_corners=False upsampling samples the coarse map at full_to_grid(x).
        coarse = torch.arange(4.0).view(1, 1, 1, 4)
        up = torch.nn.functional.interpolate(coarse, size=(
            1, 32), mode='bilinear', align_corners=False)
        # interior full-res pixel x (away from the clamped borders) holds the value at grid x'
        for x in range(4, 28):
            assert up[0, 0, 0, x].item() == pytest.approx(
                full_to_grid(torch.tensor(float(x))).item(), abs=1e-6)


class TestSampleDescriptors:

    def test_integer_points_pick_pixels(self):
        desc = one_hot_map()
        kp = torch.tensor([[[0.0, 0.0], [3.0, 1.0], [4.0, 4.0]]])
        out = sample_descriptors(desc, kp)
        assert out.shape == (1, 3, 25)
        assert out[0, 0].argmax() == 0 and out[0, 1].argmax() == 1 * \
            5 + 3 and out[0, 2].argmax() == 24
        assert torch.allclose(out.norm(dim=-1), torch.ones(1, 3))

    def test_half_pixel_blends_equally(self):
        desc = one_hot_map()
        out = sample_descriptors(desc, torch.tensor([[[1.5, 2.0]]]))[0, 0]
        # equal mix of e_11 and e_12, renormalised -> 1/sqrt(2) each
        assert out[11].item() == pytest.approx(1 / math.sqrt(2), abs=1e-6)
        assert out[12].item() == pytest.approx(1 / math.sqrt(2), abs=1e-6)

    def test_outside_raises(self):
        with pytest.raises(ValueError, match='outside'):
            sample_descriptors(one_hot_map(), torch.tensor([[[5.0, 0.0]]]))
        with pytest.raises(ValueError, match='outside'):
            sample_descriptors(one_hot_map(), torch.tensor([[[0.0, -0.6]]]))

    def test_bad_shapes_raise(self):
        with pytest.raises(ValueError, match=r'\(B, D, h, w\)'):
            sample_descriptors(torch.zeros(25, 5, 5), torch.zeros(1, 1, 2))
        with pytest.raises(ValueError, match=r'\(B, N, 2\)'):
            sample_descriptors(one_hot_map(), torch.zeros(1, 3))
        with pytest.raises(ValueError, match='batch'):
            sample_descriptors(one_hot_map(), torch.zeros(2, 1, 2))

    def test_empty(self):
        assert sample_descriptors(one_hot_map(), torch.zeros(1, 0, 2)).shape == (1, 0, 25)


class TestHeatmapExpectationVariance:
    """One-hot 5x5 map, query e_k, tau = 1: P(k) = e/(e+24), every other pixel 1/(e+24)."""

    def setup_method(self):
        self.desc = one_hot_map()
        self.x0, self.y0 = 3, 1
        self.query = torch.eye(25)[self.y0 * 5 + self.x0].view(1, 1, 25)
        self.z = math.e + 24

    def test_cosine(self):
        sim = cosine_heatmap(self.query, self.desc)
        assert sim.shape == (1, 1, 5, 5)
        assert sim[0, 0, self.y0, self.x0] == 1 and sim.sum() == 1

    def test_softmax(self):
        prob = heatmap_softmax(cosine_heatmap(self.query, self.desc), tau=1.0)
        assert prob[0, 0, self.y0, self.x0].item() == pytest.approx(math.e / self.z)
        assert prob[0, 0, 0, 0].item() == pytest.approx(1 / self.z)
        assert prob.sum().item() == pytest.approx(1.0)

    def test_expectation_and_variance(self):
        prob = heatmap_softmax(cosine_heatmap(self.query, self.desc), tau=1.0)
        mean = spatial_expectation(prob)[0, 0]
        # sum over the 25 pixels of x is 5 * (0+1+2+3+4) = 50
        ex = (math.e * self.x0 + (50 - self.x0)) / self.z
        ey = (math.e * self.y0 + (50 - self.y0)) / self.z
        assert mean.tolist() == pytest.approx([ex, ey], abs=1e-5)
        var = spatial_variance(prob)[0, 0]
        vx = sum(((x - ex) ** 2) * (math.e if (x, y) == (self.x0, self.y0) else 1)
                 for x in range(5) for y in range(5)) / self.z
        vy = sum(((y - ey) ** 2) * (math.e if (x, y) == (self.x0, self.y0) else 1)
                 for x in range(5) for y in range(5)) / self.z
        assert var.tolist() == pytest.approx([vx, vy], abs=1e-5)

    def test_expected_descriptor(self):
        prob = heatmap_softmax(cosine_heatmap(self.query, self.desc), tau=1.0)
        d = expected_descriptor(prob, self.desc)[0, 0]
        norm = math.sqrt(math.e ** 2 + 24)
        expected = torch.full((25,), 1 / norm)
        expected[self.y0 * 5 + self.x0] = math.e / norm
        assert torch.allclose(d, expected, atol=1e-6)

    def test_sharp_temperature_is_exact(self):
        match = match_descriptors(self.query, self.desc, tau=0.03)
        assert match.keypoints[0, 0].tolist() == pytest.approx([self.x0, self.y0], abs=1e-6)
        assert match.variance[0, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)

    def test_fused_probabilities_equal_softmax_of_cosine(self):
        torch.manual_seed(0)
        desc, query = torch.randn(2, 8, 4, 6), torch.randn(2, 5, 8)
        from ccl_perception.correspondence import heatmap_probabilities
        for tau in (0.03, 1.0):
            assert torch.allclose(heatmap_probabilities(query, desc, tau),
                                  heatmap_softmax(cosine_heatmap(query, desc), tau), atol=1e-6)
        with pytest.raises(ValueError, match='tau'):
            heatmap_probabilities(query, desc, -1.0)

    def test_bad_tau(self):
        with pytest.raises(ValueError, match='tau'):
            heatmap_softmax(torch.zeros(1, 1, 2, 2), tau=0.0)

    def test_mismatched_query(self):
        with pytest.raises(ValueError, match='query'):
            cosine_heatmap(torch.zeros(1, 1, 3), self.desc)


class TestShapesAndGradients:

    @pytest.mark.parametrize('b,n,d,h,w', [(1, 1, 4, 3, 5), (2, 7, 16, 6, 4), (3, 0, 8, 2, 2)])
    def test_shapes(self, b, n, d, h, w):
        desc = torch.nn.functional.normalize(torch.randn(b, d, h, w), dim=1)
        query = torch.nn.functional.normalize(torch.randn(b, n, d), dim=-1)
        m = match_descriptors(query, desc)
        assert m.keypoints.shape == (
            b,
            n,
            2) and m.variance.shape == (
            b,
            n,
            2) and m.prob.shape == (
            b,
            n,
            h,
            w)
        assert expected_descriptor(m.prob, desc).shape == (b, n, d)

    def test_gradcheck(self):
        torch.manual_seed(0)
        desc = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
        query = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)

        def f(q, m):
            sim = cosine_heatmap(q, m)
            prob = torch.softmax(sim.reshape(1, 2, -1) / 0.5, -
                                 1).reshape(1, 2, 3, 4)  # float64 softmax
            mean = spatial_expectation(prob)
            return mean, spatial_variance(prob, mean), expected_descriptor(prob, m)

        assert torch.autograd.gradcheck(f, (query, desc))
