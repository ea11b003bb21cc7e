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
What the grasp planner says about a frame: its status line and its ``~/heatmap`` picture.

:func:`status_text` is the one wording of a frame's outcome (``~/status``, the log, ``ccl
status``): ``ok: <target> confidence <c> similarity <s> width <w> cm at (x, y, z) m`` or
``abstain: <target>: <reason>``. The confidence is printed with three significant digits
(``exp(-std / confidence_scale_px)`` is often 0.001-0.05 for a 30-100 px heatmap spread,
which two decimals showed as 0.00). :func:`heatmap_image` draws the keypoint heatmaps, the
matched keypoints and the executed gripper with a legend on top and the status line at the
bottom. No ROS here.
"""

import numpy as np

LEGEND = 'red: heatmaps | green +: keypoints (1-2: grasp axis) | cyan/yellow: gripper'


def status_text(target_name: str, result) -> str:
    """One line for a :class:`ccl_perception.grasp_pipeline.PipelineResult`."""
    if not result.ok:
        return f'abstain: {target_name}: {result.reason}'
    g = result.pose
    sim = ('' if result.match is None
           else f' similarity {float(np.min(result.match.peak_similarity[:2])):.3f}')
    x, y, z = g.position
    return (f'ok: {target_name} confidence {result.confidence:.3g}{sim} width '
            f'{g.width * 100:.1f} cm at ({x:.3f}, {y:.3f}, {z:.3f}) m')


def heatmap_image(rgb: np.ndarray, K, result, status: str) -> np.ndarray:
    """
    Draw the planner's ``~/heatmap``: heatmaps, keypoints, gripper, legend and status line.

    Args:
        rgb: ``(H, W, 3)`` uint8 camera image; K: its ``(3, 3)`` intrinsics.
        result: a ``PipelineResult`` with ``match`` (the heatmaps).
        status: the :func:`status_text` line.

    Returns:
        ``(H, W, 3)`` uint8, the camera's size.
    """
    from ccl_perception import image_conversion as ic
    out = ic.heatmap_overlay(rgb, result.match.heatmaps, result.match.keypoints)
    if result.ok:  # the gripper pose the executor gets, drawn where it will close
        g = result.pose
        out = ic.draw_grasp(out, K, g.position, g.rotation, g.width)
    out = ic.draw_text_band(out, [LEGEND])
    return ic.draw_text_band(out, [status], bottom=True)
