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

"""Losses (Eq. 5, 6-10) against hand-computed cases on one-hot descriptor maps."""
import math

from ccl_perception.correspondence import (
    cosine_heatmap, expected_descriptor, heatmap_softmax, match_descriptors, sample_descriptors,
    spatial_variance,
)
from ccl_perception.losses import (
    cycle_correspondence_loss, cycle_objective, cycle_plus_identical_view_objective,
    distributional_loss, identical_view_loss, identical_view_objective, LossParams,
    quantile_drop,
)
import pytest
import torch


def one_hot_map(h=5, w=5):
    return torch.eye(h * w).reshape(h * w, h, w).unsqueeze(0)


def shifted(desc, dx):
    """Content moved right by dx pixels (wrapping), so A(x, y) == A_hat(x + dx, y)."""
    return torch.roll(desc, shifts=dx, dims=-1)


KP = torch.tensor([[[0.0, 0.0], [2.0, 1.0], [3.0, 4.0], [1.0, 3.0]]])


class TestDistributionalLoss:

    def test_hand_values(self):
        pred = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]]])
        target = torch.zeros(1, 3, 2)
        # errors 0, 5, sqrt(2)
        assert distributional_loss(
            pred, target).item() == pytest.approx(
            (5 + math.sqrt(2)) / 3, abs=1e-5)
        valid = torch.tensor([[True, True, False]])
        assert distributional_loss(pred, target, valid).item() == pytest.approx(2.5, abs=1e-5)
        weight = torch.tensor([[1.0, 0.5, 1.0]])
        assert distributional_loss(
            pred,
            target,
            valid,
            weight).item() == pytest.approx(
            1.25,
            abs=1e-5)

    def test_no_valid_point_is_zero_and_differentiable(self):
        pred = torch.ones(1, 2, 2, requires_grad=True)
        loss = distributional_loss(pred, torch.zeros(1, 2, 2), torch.zeros(1, 2, dtype=torch.bool))
        loss.backward()
        assert loss.item() == 0 and torch.all(pred.grad == 0)

    def test_shape_errors(self):
        with pytest.raises(ValueError, match=r'\(B, N, 2\)'):
            distributional_loss(torch.zeros(1, 2, 2), torch.zeros(1, 3, 2))
        with pytest.raises(ValueError, match='valid'):
            distributional_loss(
                torch.zeros(
                    1, 2, 2), torch.zeros(
                    1, 2, 2), torch.ones(
                    2, 2, dtype=torch.bool))


class TestIdenticalViewLoss:

    def test_exact_when_views_agree(self):
        desc = one_hot_map()
        loss = identical_view_loss(desc, shifted(desc, 1), KP, KP + torch.tensor([1.0, 0.0]))
        assert loss.item() == pytest.approx(0.0, abs=1e-4)

    def test_known_error(self):
        desc = one_hot_map()
        # the correct answer is k + (1, 0); claiming k + (1, 2) costs exactly 2 px per point
        loss = identical_view_loss(desc, shifted(desc, 1), KP, KP + torch.tensor([1.0, 2.0]))
        assert loss.item() == pytest.approx(2.0, abs=1e-4)


class TestQuantileDrop:

    def test_keeps_expected_count(self):
        x = torch.tensor([[5.0, 1.0, 3.0, 2.0, 4.0, 9.0, 0.5, 7.0, 6.0, 8.0, 0.1, 0.2]])
        valid = torch.ones(1, 12, dtype=torch.bool)
        valid[0, 10:] = False  # the two smallest are invalid and must never be kept
        keep = quantile_drop(x, valid, 0.35)
        # 10 valid, ceil(3.5) = 4 kept: values 0.5, 1, 2, 3
        assert keep.sum().item() == 4
        assert sorted(x[keep].tolist()) == [0.5, 1.0, 2.0, 3.0]

    def test_per_image_and_full(self):
        x = torch.arange(8.0).view(2, 4)
        valid = torch.tensor([[True] * 4, [True, True, False, False]])
        keep = quantile_drop(x, valid, 0.5)
        assert keep.tolist() == [[True, True, False, False], [True, False, False, False]]
        assert torch.equal(quantile_drop(x, valid, 1.0), valid)

    def test_bad_quantile(self):
        with pytest.raises(ValueError, match='quantile'):
            quantile_drop(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), 0.0)


class TestCycleCorrespondenceLoss:

    def test_exact_cycle_is_zero(self):
        a = one_hot_map()
        b = shifted(a, 2)  # the same content elsewhere in I_B
        loss, stats = cycle_correspondence_loss(
            a, b, shifted(a, 1), KP, KP + torch.tensor([1.0, 0.0]))
        assert loss.item() == pytest.approx(0.0, abs=1e-4)
        assert stats['kept_fraction'] == pytest.approx(0.5)  # ceil(0.35 * 4) = 2 of 4

    def test_known_loss_without_drop_and_scaling(self):
        a = one_hot_map()
        loss, stats = cycle_correspondence_loss(
            a, shifted(a, 2), shifted(a, 1), KP, KP,  # true answer is KP + (1, 0): error 1 px
            use_quantile_drop=False, use_variance_scaling=False)
        assert loss.item() == pytest.approx(1.0, abs=1e-4)
        assert stats['kept_fraction'] == 1.0 and stats['mean_error'] == pytest.approx(
            1.0, abs=1e-4)

    def test_variance_scaling_value(self):
        # soft temperature: X_i > 0 and known from the two heatmaps, loss = mean(err_i / (1 + X_i))
        torch.manual_seed(0)
        a = torch.nn.functional.normalize(torch.randn(1, 8, 5, 5), dim=1)
        b = torch.nn.functional.normalize(torch.randn(1, 8, 5, 5), dim=1)
        target = KP + 0.3
        loss, _ = cycle_correspondence_loss(a, b, a, KP, target, tau=0.5, use_quantile_drop=False)
        prob_b = heatmap_softmax(cosine_heatmap(sample_descriptors(a, KP), b), 0.5)
        m = match_descriptors(expected_descriptor(prob_b, b), a, 0.5)
        x = m.variance.sum(-1) + spatial_variance(prob_b).sum(-1)
        err = (m.keypoints - target).norm(dim=-1)
        assert loss.item() == pytest.approx((err / (1 + x)).mean().item(), rel=1e-4)

    def test_gradient_reaches_descriptors_not_variances(self):
        torch.manual_seed(1)
        maps = [torch.nn.functional.normalize(torch.randn(1, 8, 5, 5, dtype=torch.float64), dim=1)
                for _ in range(3)]
        kp, target = KP.double(), KP.double() + 0.2

        def grads(detach):
            a, b, ah = [m.clone().requires_grad_(True) for m in maps]
            prob_b = heatmap_softmax(cosine_heatmap(sample_descriptors(a, kp), b), 0.3).double()
            m = match_descriptors(expected_descriptor(prob_b, b), ah, 0.3)
            x = m.variance.sum(-1) + spatial_variance(prob_b).sum(-1)
            x = x.detach() if detach else x
            ((m.keypoints - target).norm(dim=-1) / (1 + x)).mean().backward()
            return a.grad, b.grad, ah.grad

        a, b, ah = [m.clone().requires_grad_(True) for m in maps]
        loss, _ = cycle_correspondence_loss(a, b, ah, kp, target, tau=0.3, use_quantile_drop=False)
        loss.backward()
        for got, want, attached in zip((a.grad, b.grad, ah.grad), grads(True), grads(False)):
            assert got.abs().sum() > 0  # gradients reach all three maps
            assert torch.allclose(got.double(), want, atol=1e-6)
            # would differ if X_i were attached
            assert not torch.allclose(got.double(), attached, atol=1e-6)

    def test_invalid_and_empty(self):
        a = one_hot_map()
        valid = torch.zeros(1, 4, dtype=torch.bool)
        loss, stats = cycle_correspondence_loss(a, a, a, KP, KP + 100, valid)
        assert loss.item() == 0.0 and stats['kept_fraction'] == 0.0
        loss, _ = cycle_correspondence_loss(a, a, a, torch.zeros(1, 0, 2), torch.zeros(1, 0, 2))
        assert loss.item() == 0.0

    def test_mismatched_maps(self):
        with pytest.raises(ValueError, match='differ'):
            cycle_correspondence_loss(one_hot_map(), one_hot_map(4, 4), one_hot_map(), KP, KP)


#: Loss hyper-parameters without the quantile drop and the variance scaling (exact by hand).
PLAIN = LossParams(tau=0.03, quantile=0.35, lambda_iv=0.1, use_quantile_drop=False,
                   use_variance_scaling=False)


class TestObjectives:

    def test_each_objective_by_hand(self):
        a = one_hot_map()
        ah = shifted(a, 1)
        target = KP + torch.tensor([1.0, 2.0])  # off by 2 px from the truth
        iv, iv_stats = identical_view_objective(a, ah, KP, target, None, None, PLAIN)
        ccl, _ = cycle_objective(a, ah, KP, target, None, a, PLAIN)
        both, stats = cycle_plus_identical_view_objective(a, ah, KP, target, None, a, PLAIN)
        assert iv.item() == pytest.approx(2.0, abs=1e-4)
        assert ccl.item() == pytest.approx(2.0, abs=1e-4)
        assert both.item() == pytest.approx(2.0 + 0.1 * 2.0, abs=1e-4)
        assert set(stats) >= {'loss_ccl', 'loss_iv', 'kept_fraction'}
        assert iv_stats == {'loss_iv': pytest.approx(2.0, abs=1e-4)}

    def test_the_method_table_binds_the_objectives(self):
        from ccl_perception.learning.methods import CorrespondenceLoss, get_method
        a = one_hot_map()
        ah = shifted(a, 1)
        target = KP + torch.tensor([1.0, 2.0])
        for method in ('identical_view', 'ccl', 'ccl_iv', 'supervised'):
            m = get_method(method)
            loss, _ = CorrespondenceLoss(m, PLAIN)(a, ah, KP, target, desc_b=a)
            want, _ = m.objective(a, ah, KP, target, None, a, PLAIN)
            assert torch.equal(loss, want)
        with pytest.raises(ValueError, match='unknown method'):
            CorrespondenceLoss('dino', PLAIN)
        with pytest.raises(ValueError, match='desc_b'):
            CorrespondenceLoss('ccl', PLAIN)(one_hot_map(), one_hot_map(), KP, KP)
