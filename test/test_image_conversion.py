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

"""Image conversion: every encoding round-trips, bad step/size/encoding raise clear errors."""
from types import SimpleNamespace

from ccl_perception import image_conversion as ic
import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')


@pytest.mark.parametrize('encoding,dtype,shape', [
    ('rgb8', np.uint8, (4, 5, 3)), ('bgr8', np.uint8, (4, 5, 3)), ('mono8', np.uint8, (4, 5)),
    ('16UC1', np.uint16, (3, 7)), ('32FC1', np.float32, (2, 3)),
    ('32FC64', np.float32, (2, 3, 64))])
def test_round_trip(encoding, dtype, shape):
    rng = np.random.default_rng(0)
    arr = (rng.random(shape) * 200).astype(dtype)
    msg = ic.numpy_to_image(arr, encoding)
    item = np.dtype(dtype).itemsize
    assert msg.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * item
    out = ic.image_to_numpy(msg)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(out, arr)


def test_known_bytes_16uc1_little_and_big_endian():
    # 2x1 image, values 1000 and 258 (0x03E8, 0x0102)
    le = SimpleNamespace(height=1, width=2, encoding='16UC1', is_bigendian=0, step=4,
                         data=bytes([0xE8, 0x03, 0x02, 0x01]))
    be = SimpleNamespace(height=1, width=2, encoding='16UC1', is_bigendian=1, step=4,
                         data=bytes([0x03, 0xE8, 0x01, 0x02]))
    assert ic.image_to_numpy(le).tolist() == [[1000, 258]]
    assert ic.image_to_numpy(be).tolist() == [[1000, 258]]


def test_padded_rows():
    # width 2 mono8 with step 4 (2 bytes of padding per row)
    msg = SimpleNamespace(height=2, width=2, encoding='mono8', is_bigendian=0, step=4,
                          data=bytes([1, 2, 99, 99, 3, 4, 99, 99]))
    assert ic.image_to_numpy(msg).tolist() == [[1, 2], [3, 4]]


def test_errors():
    ok = ic.numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8')
    with pytest.raises(ValueError, match='unsupported image encoding'):
        ic.image_to_numpy(
            SimpleNamespace(
                height=1,
                width=1,
                encoding='yuv422',
                is_bigendian=0,
                step=2,
                data=b'00'))
    with pytest.raises(ValueError, match='not accepted'):
        ic.image_to_numpy(ok, expected=('16UC1', '32FC1'))
    with pytest.raises(ValueError, match='step'):
        ic.image_to_numpy(
            SimpleNamespace(
                height=2,
                width=2,
                encoding='rgb8',
                is_bigendian=0,
                step=5,
                data=b'0' * 10))
    with pytest.raises(ValueError, match='height\\*step'):
        ic.image_to_numpy(
            SimpleNamespace(
                height=2,
                width=2,
                encoding='rgb8',
                is_bigendian=0,
                step=6,
                data=b'0' * 11))
    with pytest.raises(ValueError, match='channel'):
        ic.numpy_to_image(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ValueError, match='dtype'):
        ic.numpy_to_image(np.zeros((2, 2), np.float64), '32FC1')


def test_depth_to_metres_and_rgb():
    d = ic.depth_to_metres(np.array([[0, 1500]], np.uint16), '16UC1')
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(1.5)
    f = ic.depth_to_metres(np.array([[np.inf, -1, 0.75]], np.float32), '32FC1')
    assert np.isnan(f[0, :2]).all() and f[0, 2] == pytest.approx(0.75)
    with pytest.raises(ValueError, match='16UC1'):
        ic.depth_to_metres(np.zeros((1, 1), np.uint8), 'mono8')
    bgr = np.array([[[1, 2, 3]]], np.uint8)
    assert ic.to_rgb(bgr, 'bgr8').tolist() == [[[3, 2, 1]]]
    assert ic.to_rgb(np.array([[7]], np.uint8), 'mono8').tolist() == [[[7, 7, 7]]]


def test_pca_colouring_is_frozen_and_heatmap_overlay():
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(8, 4, 5)).astype(np.float32)
    col = ic.PCAColoriser()
    a = col(desc)
    assert a.shape == (4, 5, 3) and a.dtype == np.uint8 and a.max() > a.min()
    b = col(desc * 0 + desc[:, :1, :1])  # constant map: same basis, one colour
    assert len(np.unique(b.reshape(-1, 3), axis=0)) == 1
    rgb = np.zeros((16, 16, 3), np.uint8)
    hm = np.zeros((1, 2, 2), np.float32)
    hm[0, 0, 0] = 1.0
    out = ic.heatmap_overlay(rgb, hm, keypoints=None, alpha=0.5)
    assert out[0, 0, 0] == 127 and out[15, 15, 0] == 0
