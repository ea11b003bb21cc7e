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
Image files -> numpy: the one reader of colour images as RGB (no ROS).

Used by the training data (``learning.dataset``), the keypoint-transfer evaluation and the
``make_target`` CLI. Every failure is one :class:`ImageReadError`.
"""

import os

import cv2
import numpy as np


class ImageReadError(ValueError, OSError):
    """
    An image file is missing, unreadable or not a decodable image; the message names it.

    Both a ``ValueError`` (bad input, as the CLIs and the evaluation report it) and an
    ``OSError`` (as the training data skips unreadable files), like ``io.UnsupportedOperation``,
    so either ``except`` clause catches it.
    """


def read_rgb(path, size=None) -> np.ndarray:
    """
    Decode an image file as RGB.

    Args:
        path: image file (str or path-like); any format OpenCV decodes, EXIF orientation
            applied.
        size: optional ``(width, height)`` in pixels to resize to (INTER_AREA when shrinking,
            INTER_LINEAR otherwise).

    Returns:
        ``(H, W, 3)`` uint8 RGB array (C-contiguous).

    Raises:
        ImageReadError: the file does not exist, cannot be read, or is not a decodable image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(f'image {path!r} does not exist')
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f'cannot read image {path!r}: {exc.strerror or exc}') from exc
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageReadError(f'cannot read image {path!r}: not a decodable image')
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
        shrink = img.shape[1] > size[0] or img.shape[0] > size[1]
        img = cv2.resize(img, tuple(size),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return img
