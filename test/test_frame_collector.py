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

"""Frame collector: keeps exactly the sharp, distinct frames of a video and of a rosbag2."""
import csv
import os

from ccl_perception.frame_collector import collect_frames, CollectConfig
import cv2
import numpy as np
import pytest

rosbags = pytest.importorskip('rosbags')
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import get_typestore, Stores  # noqa: E402


def _scene(seed, size=(96, 128)):
    """Make a distinct, detailed BGR image."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
                     size[::-1], interpolation=cv2.INTER_NEAREST)
    for _ in range(15):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(
            img, (int(
                rng.integers(
                    0, size[1])), int(
                rng.integers(
                    0, size[0]))), int(
                        rng.integers(
                            3, 12)), c, 2)
    return img


def _blur(img):
    return cv2.GaussianBlur(img, (0, 0), 4)


# index:      0     1     2      3          4     5     6     7          8     9
SEQUENCE = ['A', 'A', 'B', 'blurC', 'C', 'D', 'D', 'blurE', 'E', 'F']
EXPECTED_KEPT = [0, 2, 4, 5, 8, 9]


def _frames():
    scenes = {k: _scene(i) for i, k in enumerate('ABCDEF')}
    return [_blur(scenes[s[-1]]) if s.startswith('blur') else scenes[s] for s in SEQUENCE]


def test_video_keeps_expected_frames(tmp_path):
    path = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (128, 96))
    assert writer.isOpened()
    for f in _frames():
        writer.write(f)
    writer.release()
    out = tmp_path / 'out'
    summary = collect_frames(path, str(out), progress=False)
    assert summary['kept_indices'] == EXPECTED_KEPT
    assert (summary['total'], summary['blurry'], summary['duplicate']) == (10, 2, 2)
    assert sorted(os.listdir(out)) == sorted([f'frame_{i:06d}.png' for i in EXPECTED_KEPT]
                                             + ['collect_log.csv', 'collect_summary.json'])
    with open(out / 'collect_log.csv', encoding='utf-8') as f:
        decisions = [row['decision'] for row in csv.DictReader(f)]
    assert decisions == ['kept', 'duplicate', 'kept', 'blurry', 'kept', 'kept', 'duplicate',
                         'blurry', 'kept', 'kept']


def _write_bag(path, frames, encoding='rgb8', topic='/camera/image_raw',
               storage=StoragePlugin.SQLITE3):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    image_t, header_t, time_t = (ts.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time'))
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conn = writer.add_connection(topic, image_t.__msgtype__, typestore=ts)
        for i, bgr in enumerate(frames):
            if encoding == 'rgb8':
                data = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            elif encoding == 'mono8':
                data = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            else:
                data = bgr
            h, w = data.shape[:2]
            msg = image_t(header=header_t(stamp=time_t(sec=i, nanosec=0), frame_id='cam'),
                          height=h, width=w, encoding=encoding, is_bigendian=0,
                          step=data.strides[0],
                          data=np.ascontiguousarray(data).reshape(-1))
            writer.write(conn, (i + 1) * 10**9, ts.serialize_cdr(msg, image_t.__msgtype__))


@pytest.mark.parametrize('encoding, storage', [('rgb8', StoragePlugin.SQLITE3),
                                               ('mono8', StoragePlugin.MCAP),
                                               ('bgr8', StoragePlugin.SQLITE3)])
def test_rosbag_keeps_expected_frames(tmp_path, encoding, storage):
    bag = tmp_path / 'bag'
    _write_bag(bag, _frames(), encoding, storage=storage)
    summary = collect_frames(str(bag), str(tmp_path / 'out'),
                             topic='/camera/image_raw', progress=False)
    assert summary['kept_indices'] == EXPECTED_KEPT
    kept = cv2.imread(str(tmp_path / 'out' / 'frame_000002.png'))
    expected = _frames()[2]
    if encoding == 'mono8':
        expected = cv2.cvtColor(cv2.cvtColor(expected, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert np.array_equal(kept, expected)  # bags are lossless


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='not found'):
        collect_frames(str(tmp_path / 'missing.avi'), str(tmp_path / 'o'), progress=False)
    junk = tmp_path / 'junk.avi'
    junk.write_bytes(b'not a video at all')
    with pytest.raises(ValueError, match='video'):
        collect_frames(str(junk), str(tmp_path / 'o'), progress=False)
    bag = tmp_path / 'bag'
    _write_bag(bag, _frames()[:2])
    with pytest.raises(ValueError, match='not in bag'):
        collect_frames(str(bag), str(tmp_path / 'o'), topic='/nope', progress=False)
    bad = tmp_path / 'bag16'
    _write_bag(bad, _frames()[:2], encoding='16UC1')
    with pytest.raises(ValueError, match='unsupported image encoding'):
        collect_frames(str(bad), str(tmp_path / 'o'), progress=False)
    with pytest.raises(ValueError, match='step'):
        collect_frames(str(bag), str(tmp_path / 'o'), config=CollectConfig(step=0), progress=False)
