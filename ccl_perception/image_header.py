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
An image file's size from its header, read before anything is decoded (no ROS, no torch).

A 30000x30000 PNG is a few MB on disk and 2.7 GB once decoded: the package's colour image
reader (``image_io.read_rgb``: ``make_target``, the evaluation, the training data) and
``make_target``'s depth reader check the header first and refuse an image larger than
:data:`MAX_IMAGE_SIDE` pixels per side with a one-line reason. PNG and JPEG headers are parsed
here; other formats go through Pillow's lazy ``Image.open`` (header only).
"""

import struct
from typing import Optional, Tuple

#: Largest image side a tool decodes, pixels (4K cameras are 3840 x 2160; the sim world's
#: largest image is 4096 too).
MAX_IMAGE_SIDE = 4096

_PNG = b'\x89PNG\r\n\x1a\n'
#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, ...): not DHT (C4),
#: JPG (C8) or DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(f) -> Optional[Tuple[int, int]]:
    """Walk the JPEG marker segments up to the first start-of-frame; ``(width, height)``."""
    f.seek(2)
    while True:
        byte = f.read(1)
        while byte == b'\xff':  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length
            continue
        raw = f.read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack('>H', raw)[0]
        if length < 2:  # a broken segment: let the decoder report the file
            return None
        if marker in _SOF:
            data = f.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack('>HH', data[1:5])
            return width, height
        f.seek(length - 2, 1)


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """
    Return ``(width, height)`` read from the header of image file ``path``, without decoding.

    None when the format is not recognised (the decoder then reports the file itself).

    Raises:
        OSError: the file cannot be opened.
    """
    with open(path, 'rb') as f:
        head = f.read(24)
        if head[:8] == _PNG and head[12:16] == b'IHDR':
            return struct.unpack('>II', head[16:24])
        if head[:2] == b'\xff\xd8':
            return _jpeg_size(f)
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as im:  # lazy: reads the header only
            return im.size
    except Image.DecompressionBombError:
        return (2 ** 31, 2 ** 31)  # Pillow's own bomb check fired: far over any limit
    except Exception:  # noqa: BLE001 - not an image Pillow knows: let the decoder say so
        return None


def check_image_size(path: str, what: str = 'image', max_side: int = MAX_IMAGE_SIDE) -> None:
    """
    Refuse an image file whose header declares a side over ``max_side`` pixels.

    Raises:
        ValueError: one line naming the file, its size and the limit.
    """
    size = image_size(path)
    if size is not None and max(size) > max_side:
        raise ValueError(f'{what} {path!r} is {size[0]}x{size[1]} px: larger than the '
                         f'{max_side}x{max_side} limit (MAX_IMAGE_SIDE); scale it down first')
