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

"""Pairs schema: round trip, keypoints visible in both images, clear errors on invalid files."""
import json

from ccl_perception.evaluation.pairs import load_pairs, save_pairs
import numpy as np
import pytest


def _images():
    return [
        {'file': 'images/a.png', 'width': 8, 'height': 6,
         'objects': {'duck': {'keypoints': [[1.0, 2.0], None, [3.5, 4.0]],
                              'visible': [True, False, True],
                              'kinds': ['boundary', 'interior', 'interior']}}},
        {'file': 'images/b.png', 'width': 8, 'height': 6,
         'objects': {'duck': {'keypoints': [[5.0, 1.0], [2.0, 2.0], None],
                              'visible': [True, True, False]}}},
    ]


def test_round_trip_and_common_keypoints(tmp_path):
    path = tmp_path / 'pairs.json'
    save_pairs(str(path), _images(), [{'image_1': 0, 'image_2': 1}], {'duck': {'split': 'seen'}})
    pf = load_pairs(str(path))
    assert pf.root == str(tmp_path)
    assert pf.image_path(1) == str(tmp_path / 'images' / 'b.png')
    assert pf.objects == {'duck': {'split': 'seen'}}
    kps = pf.pair_keypoints(pf.pairs[0])
    k1, k2, kinds = kps['duck']
    # only keypoint 0 is visible in both images
    np.testing.assert_array_equal(k1, [[1.0, 2.0]])
    np.testing.assert_array_equal(k2, [[5.0, 1.0]])
    assert kinds == ['boundary']


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d.update(format='other'), 'format'),
    (lambda d: d.update(version=7), 'version'),
    (lambda d: d.update(images=[]), 'non-empty'),
    (lambda d: d['pairs'].append({'image_1': 0, 'image_2': 5}), 'image index'),
    (lambda d: d['pairs'].append({'image_1': 1, 'image_2': 1}), 'itself'),
    (lambda d: d['images'][0]['objects']['duck']['visible'].pop(), 'equal length'),
    (lambda d: d['images'][0]['objects']['duck']['keypoints'].__setitem__(0, [1.0]), r'\[x, y\]'),
    (lambda d: d['images'][0].update(file='/abs/a.png'), 'relative'),
    (lambda d: d['images'][0].update(file='../other/a.png'),
     r"images\[0\].file '../other/a.png' must name a file inside the JSON file's folder"),
    (lambda d: d['images'][0].update(file='images/../../a.png'), 'inside the JSON'),
    (lambda d: d['images'][0].update(width=0), 'positive integers'),
    (lambda d: d['images'][0].update(width=8.5), 'positive integers'),
    # visible keypoint (5000, -300) in an 8x6 image: allowed x in [-0.5, 7.5], y in [-0.5, 5.5]
    (lambda d: d['images'][1]['objects']['duck']['keypoints'].__setitem__(1, [5000, -300]),
     r"images\[1\] 'images/b.png': visible keypoint 1 of 'duck' at \(5000, -300\) "
     r'is outside the 8x6 image \(allowed x in \[-0.5, 7.5\], y in \[-0.5, 5.5\]\)'),
    (lambda d: d['images'][0]['objects']['duck']
     ['keypoints'].__setitem__(2, [7.6, 1.0]), 'outside the 8x6'),
])
def test_invalid_files_give_clear_errors(tmp_path, mutate, message):
    data = {'format': 'ccl_pairs', 'version': 1, 'images': _images(),
            'pairs': [{'image_1': 0, 'image_2': 1}]}
    mutate(data)
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_pairs(str(path))


def test_missing_and_non_json(tmp_path):
    with pytest.raises(ValueError, match='not found'):
        load_pairs(str(tmp_path / 'nope.json'))
    bad = tmp_path / 'x.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='not JSON'):
        load_pairs(str(bad))


def test_edge_keypoints_and_invisible_ones_are_allowed(tmp_path):
    images = _images()
    images[0]['objects']['duck']['keypoints'][0] = [-0.5,
                                                    5.5]          # the corner pixel's outer edge
    images[1]['objects']['duck']['keypoints'][2] = [5000.0, -300.0]     # not visible: not checked
    save_pairs(str(tmp_path / 'p.json'), images, [{'image_1': 0, 'image_2': 1}])
    assert load_pairs(str(tmp_path / 'p.json')
                      ).images[0]['objects']['duck']['keypoints'][0] == [-0.5, 5.5]


def test_check_image_against_the_decoded_image(tmp_path):
    images = _images()
    del images[1]['width'], images[1]['height']
    images[1]['objects']['duck']['keypoints'][1] = [
        9.0, 2.0]  # fine until the image is known to be 8 wide
    save_pairs(str(tmp_path / 'p.json'), images, [{'image_1': 0, 'image_2': 1}])
    pf = load_pairs(str(tmp_path / 'p.json'))
    pf.check_image(0, (6, 8, 3))
    with pytest.raises(ValueError, match=r"^images\[0\] 'images/a.png' is 16x12 px "
                                         r'but the pairs file declares 8x6$'):
        pf.check_image(0, (12, 16, 3))
    with pytest.raises(ValueError, match=r"images\[1\] 'images/b.png': visible keypoint 1 "
                                         r"of 'duck' at \(9, 2\) is outside the 8x6 image"):
        pf.check_image(1, (6, 8, 3))
    pf.check_image(1, (6, 10, 3))
