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

"""PCK / AUC / normalised error against hand-computed values."""
import math

from ccl_perception.evaluation import metrics
import numpy as np
import pytest


class TestPck:

    def test_hand_computed(self):
        errors = [0.0, 2.0, 4.0, 30.0]
        assert metrics.pck(errors, 3) == 0.5
        assert metrics.pck(errors, 5) == 0.75
        assert metrics.pck(errors, 10) == 0.75
        assert metrics.pck(errors, 25) == 0.75
        assert metrics.pck(errors, 50) == 1.0

    def test_threshold_inclusive(self):
        assert metrics.pck([3.0], 3) == 1.0
        assert metrics.pck([3.0001], 3) == 0.0

    def test_empty_is_nan_and_negative_threshold_rejected(self):
        assert math.isnan(metrics.pck([], 3))
        with pytest.raises(ValueError, match='threshold'):
            metrics.pck([1.0], -1)


class TestAuc:

    def test_hand_computed(self):
        # errors 0 and 30: PCK@t = 0.5 for t < 30 (29 thresholds), 1.0 for t >= 30 (21 thresholds)
        assert metrics.auc([0.0, 30.0]) == pytest.approx((29 * 0.5 + 21 * 1.0) / 50)

    def test_perfect_and_hopeless(self):
        assert metrics.auc([0.0, 0.5]) == 1.0
        assert metrics.auc([51.0, 100.0]) == 0.0


def test_pixel_errors_and_normalised_error():
    pred = np.array([[0.0, 0.0], [3.0, 4.0]])
    target = np.array([[0.0, 0.0], [0.0, 0.0]])
    e = metrics.pixel_errors(pred, target)
    np.testing.assert_allclose(e, [0.0, 5.0])
    # 3x4 image: diagonal 5 -> mean error 2.5 / 5
    assert metrics.normalised_mean_error(e, 4, 3) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        metrics.pixel_errors(np.zeros((2, 3)), np.zeros((2, 3)))


def test_summarise_and_aggregate_mean_std_over_pairs():
    a = metrics.summarise([0.0, 2.0, 4.0, 30.0], 4, 3)
    b = metrics.summarise([10.0, 10.0], 4, 3)
    assert a['pck']['3'] == 0.5 and b['pck']['3'] == 0.0
    agg = metrics.aggregate([a, b])
    assert agg['pck']['3'] == pytest.approx(0.25)
    assert agg['pck_std']['3'] == pytest.approx(0.25)  # population std of {0.5, 0}
    assert agg['mean_px_error'] == pytest.approx((9.0 + 10.0) / 2)
    assert agg['num'] == 2
