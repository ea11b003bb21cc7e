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


"""The planner's status line and heatmap picture (issue 20: real confidence, legend, status)."""
from types import SimpleNamespace

from ccl_perception import image_conversion as ic
from ccl_perception.geometry import grasp_from_axis, intrinsics_matrix
from ccl_perception.grasp_pipeline import PipelineResult
from ccl_perception.planner_view import heatmap_image, status_text
import numpy as np

H, W = 120, 160
K = intrinsics_matrix(100.0, 100.0, 79.5, 59.5)


def result(ok: bool, confidence: float = 0.00312):
    heat = np.zeros((2, H // 8, W // 8))
    heat[0, 7, 10] = heat[1, 7, 12] = 1.0
    match = SimpleNamespace(heatmaps=heat, keypoints=np.array([[83.5, 59.5], [99.5, 59.5]]),
                            peak_similarity=np.array([0.912, 0.874]))
    pose = grasp_from_axis(np.array([-0.02, 0.0, 0.5]), np.array([0.02, 0.0, 0.5])) if ok else None
    return PipelineResult(pose=pose, reason='ok' if ok else 'depth refinement: no object',
                          match=match, confidence=confidence)


def test_status_says_the_real_confidence_and_the_similarity():
    # exp(-92 px / 16) = 0.0032: two decimals showed it as 0.00
    assert status_text('mug', result(True)) == (
        'ok: mug confidence 0.00312 similarity 0.874 width 6.0 cm at (0.000, 0.000, 0.500) m')
    assert status_text('mug', result(False)) == 'abstain: mug: depth refinement: no object'


def test_heatmap_image_has_a_legend_and_the_status_line():
    rgb = np.full((H, W, 3), 128, np.uint8)
    res = result(True)
    status = status_text('mug', res)
    out = heatmap_image(rgb, K, res, status)
    plain = ic.draw_grasp(ic.heatmap_overlay(rgb, res.match.heatmaps, res.match.keypoints), K,
                          res.pose.position, res.pose.rotation, res.pose.width)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    for band in (out[:5], out[-5:]):          # the legend on top, the status at the bottom:
        dark = band.max(axis=2) < 20          # a black band with light text on it
        assert dark.mean() > 0.5 and band.max() > 150
    assert not np.array_equal(out[:5], plain[:5]) and not np.array_equal(out[-5:], plain[-5:])
    assert np.array_equal(out[40:80], plain[40:80])  # the picture between is kept


def test_text_band_cuts_long_lines_to_the_width():
    grey = np.full((40, 60, 3), 128, np.uint8)
    out = ic.draw_text_band(grey, ['x' * 200], bottom=True)
    assert np.array_equal(out[:20], grey[:20])       # above the band: untouched
    assert out[-12:].max() > 150 and (out[-12:].max(axis=2) < 20).mean() > 0.5
