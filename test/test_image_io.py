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


"""image_io.read_rgb: the one reader of colour images (training data, evaluation, make_target)."""
import os

from ccl_perception.image_io import ImageReadError, read_rgb
import cv2
import numpy as np
import pytest


def _bgr_file(tmp_path, name='img.png'):
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :, 0] = 10   # blue
    img[:, :, 1] = 20   # green
    img[:, :, 2] = 32   # red
    img[0, 0] = (255, 0, 0)  # one pure blue pixel
    path = str(tmp_path / name)
    assert cv2.imwrite(path, img)
    return path


def test_rgb_order_shape_and_dtype(tmp_path):
    rgb = read_rgb(_bgr_file(tmp_path))
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8 and rgb.flags['C_CONTIGUOUS']
    assert rgb[1, 1].tolist() == [32, 20, 10] and rgb[0, 0].tolist() == [0, 0, 255]


def test_resize_to_width_height(tmp_path):
    path = _bgr_file(tmp_path)
    assert read_rgb(path, (3, 2)).shape == (2, 3, 3)    # shrink (INTER_AREA)
    assert read_rgb(path, (12, 8)).shape == (8, 12, 3)  # enlarge (INTER_LINEAR)
    np.testing.assert_array_equal(read_rgb(path, (6, 4)), read_rgb(path))  # same size: as is
    # INTER_AREA halving averages 2x2 blocks; the block of the blue pixel:
    # R (0 + 3 * 32) / 4 = 24, G (0 + 3 * 20) / 4 = 15, B (255 + 3 * 10) / 4 = 71.25 -> 71
    assert read_rgb(path, (3, 2))[0, 0].tolist() == [24, 15, 71]


def test_path_like_accepted(tmp_path):
    from pathlib import Path
    assert read_rgb(Path(_bgr_file(tmp_path))).shape == (4, 6, 3)


@pytest.mark.parametrize('make, message', [
    (lambda d: os.path.join(d, 'missing.png'), 'does not exist'),
    (lambda d: d, 'does not exist'),  # a folder is not an image file
    (lambda d: _write(d, 'empty.png', b''), 'not a decodable image'),
    (lambda d: _write(d, 'text.png', b'not a png'), 'not a decodable image'),
])
def test_one_error_type_names_the_file(tmp_path, make, message):
    path = make(str(tmp_path))
    with pytest.raises(ImageReadError, match=message) as info:
        read_rgb(path)
    assert repr(path) in str(info.value) and '\n' not in str(info.value)
    # callers catch it as bad input (ValueError) or as an unreadable file (OSError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)


def _write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def test_every_caller_reads_through_it():
    from ccl_perception import image_io
    from ccl_perception.evaluation import evaluate
    from ccl_perception.learning import dataset
    assert dataset.read_rgb is image_io.read_rgb and evaluate.read_rgb is image_io.read_rgb
    import ccl_perception.targets as targets
    assert not hasattr(targets, 'read_rgb')  # make_target imports image_io's reader
