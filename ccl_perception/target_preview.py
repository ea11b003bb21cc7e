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
A picture of chosen target points on the reference image, before a target is made.

``ccl preview --image color.png --points 300,200 340,210 ... --out preview.png`` draws
points 1 and 2 (the grasp axis) in green joined by a line, further points (the 3D shape
check) in cyan, each numbered; with ``--depth``, a point without valid depth in its
``depth_window`` median (the check ``make_target`` makes) gets a red cross and is listed.
No model is loaded, so choosing points is quick. No ROS here.
"""

import numpy as np

AXIS_RGB, SHAPE_RGB, NO_DEPTH_RGB = (0, 255, 0), (0, 255, 255), (255, 0, 0)


def depth_missing(depth: np.ndarray, points: np.ndarray, window: int) -> np.ndarray:
    """``(N,)`` bool: no valid depth (finite, > 0) in the ``window`` median around the point."""
    from ccl_perception.geometry import robust_depth
    return ~np.isfinite(robust_depth(depth, np.asarray(points, np.float64), window))


def draw_preview(rgb: np.ndarray, points, missing=None) -> np.ndarray:
    """
    Draw target points on a copy of ``rgb``.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        points: ``(N >= 2, 2)`` pixels ``(x, y)``, checked by ``targets.check_points``.
        missing: optional ``(N,)`` bool, points without depth (red cross).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    import cv2

    from ccl_perception.targets import check_points
    pts = check_points(points, rgb.shape[:2])
    out = np.ascontiguousarray(np.asarray(rgb, np.uint8).copy())
    p = np.round(pts).astype(int)
    scale = max(0.4, out.shape[1] / 1280)
    cv2.line(out, tuple(map(int, p[0])), tuple(map(int, p[1])), AXIS_RGB, 1, cv2.LINE_AA)
    for i, (x, y) in enumerate(p):
        colour = AXIS_RGB if i < 2 else SHAPE_RGB
        cv2.circle(out, (int(x), int(y)), 4, colour, 1, cv2.LINE_AA)
        if missing is not None and missing[i]:
            cv2.drawMarker(out, (int(x), int(y)), NO_DEPTH_RGB, cv2.MARKER_TILTED_CROSS, 10, 2)
        cv2.putText(out, str(i + 1), (int(x) + 5, int(y) - 5), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    colour, 1, cv2.LINE_AA)
    legend = '1-2 grasp axis (green), 3+ shape check (cyan)'
    if missing is not None:
        legend += ', x = no depth'
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, int(22 * scale / 0.5)), (0, 0, 0), -1)
    cv2.putText(out, legend, (4, int(15 * scale / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out
