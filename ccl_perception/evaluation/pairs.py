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
The pairs file: annotated keypoints on images and the image pairs to evaluate.

Schema (JSON; full description in docs/pairs_schema.md)::

    {
      "format": "ccl_pairs", "version": 1,
      "objects": {"duck": {"split": "seen"}, "box_031": {"split": "unseen"}},   # optional
      "images": [
        {"file": "images/s000_v0.png",          # relative to the JSON file's folder
         "width": 320, "height": 240,           # optional; checked against the image if given
         "objects": {
           "duck": {"keypoints": [[x, y], ...],     # pixels (column, row), centres at integers
                    "visible": [true, false, ...],  # same length; invisible points may be null
                    "kinds": ["boundary", "interior", ...]}}}   # optional
      ],
      "pairs": [{"image_1": 0, "image_2": 5, "objects": ["duck"]}]   # "objects" optional
    }

Keypoint ``k`` of object ``O`` is the same physical point in every image, so hand-annotated
real images use the same format: annotate each image once, then list the pairs. A pair
evaluates, per object, the keypoints visible in both images.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
import math
import os

import numpy as np

FORMAT = 'ccl_pairs'
VERSION = 1


@dataclass
class PairsFile:
    """
    A loaded pairs file.

    Attributes:
        root: folder the image paths are relative to.
        images: list of image dicts as in the schema.
        pairs: list of ``{"image_1", "image_2", "objects"}`` dicts.
        objects: ``{name: {"split": ...}}`` metadata (may be empty).
    """

    root: str
    images: list
    pairs: list
    objects: dict = field(default_factory=dict)

    def image_path(self, index: int) -> str:
        """Absolute path of image ``index``."""
        return os.path.join(self.root, self.images[index]['file'])

    def check_image(self, index: int, shape) -> None:
        """
        Check image ``index`` as read from disk against the file's annotations.

        Args:
            shape: ``(H, W, ...)`` of the decoded image.

        Raises:
            ValueError: the declared ``width`` / ``height`` differ from the image, or a
                visible keypoint lies outside it; the message names the image and keypoint.
        """
        im = self.images[index]
        h, w = int(shape[0]), int(shape[1])
        declared = (im.get('width'), im.get('height'))
        if declared != (None, None) and declared != (w, h):
            raise ValueError(f'images[{index}] {im["file"]!r} is {w}x{h} px but the pairs file '
                             f'declares {declared[0]}x{declared[1]}')
        check_keypoints_inside(im, index, w, h)

    def pair_keypoints(self, pair: dict) -> dict:
        """Return ``{object: (kp_1 (N, 2), kp_2 (N, 2), kinds list)}`` visible in both images."""
        im1, im2 = self.images[pair['image_1']], self.images[pair['image_2']]
        names = pair.get('objects') or sorted(set(im1['objects']) & set(im2['objects']))
        out = {}
        for name in names:
            if name not in im1['objects'] or name not in im2['objects']:
                continue
            a, b = im1['objects'][name], im2['objects'][name]
            n = min(len(a['keypoints']), len(b['keypoints']))
            both = [k for k in range(n) if a['visible'][k] and b['visible'][k]]
            if not both:
                continue
            kinds = a.get('kinds') or ['unknown'] * n
            out[name] = (np.array([a['keypoints'][k] for k in both], dtype=float),
                         np.array([b['keypoints'][k] for k in both], dtype=float),
                         [kinds[k] for k in both])
        return out


def _fail(path: str, msg: str):
    raise ValueError(f'invalid pairs file {path}: {msg}')


def check_keypoints_inside(im: dict, index: int, width: int, height: int) -> None:
    """
    Raise ``ValueError`` when a visible keypoint of image dict ``im`` lies outside the image.

    The image is ``width x height``, pixel centres at integers: allowed ``[-0.5, width - 0.5]``.
    """
    for name, ann in im.get('objects', {}).items():
        for k, (pt, v) in enumerate(zip(ann['keypoints'], ann['visible'])):
            if v and not (-0.5 <= pt[0] <= width - 0.5 and -0.5 <= pt[1] <= height - 0.5):
                raise ValueError(f'images[{index}] {im["file"]!r}: visible keypoint {k} of '
                                 f'{name!r} at ({pt[0]:g}, {pt[1]:g}) is outside the '
                                 f'{width}x{height} image (allowed x in '
                                 f'[-0.5, {width - 0.5:g}], y in [-0.5, {height - 0.5:g}])')


def validate(data: dict, path: str = '<dict>') -> None:
    """Raise ValueError with a clear message when ``data`` does not follow the schema."""
    if not isinstance(data, dict):
        _fail(path, 'top level must be a JSON object')
    if data.get('format') != FORMAT:
        _fail(path, f'"format" must be "{FORMAT}", got {data.get("format")!r}')
    if data.get('version') != VERSION:
        _fail(path, f'unsupported "version" {data.get("version")!r} (expected {VERSION})')
    images, pairs = data.get('images'), data.get('pairs')
    if not isinstance(images, list) or not images:
        _fail(path, '"images" must be a non-empty list')
    if not isinstance(pairs, list):
        _fail(path, '"pairs" must be a list')
    for i, im in enumerate(images):
        if not isinstance(im, dict) or not isinstance(im.get('file'), str):
            _fail(path, f'images[{i}] needs a "file" string')
        if os.path.isabs(im['file']):
            _fail(path, f'images[{i}].file must be relative to the JSON file, got {im["file"]!r}')
        parts = os.path.normpath(im['file']).split(os.sep)
        if not im['file'] or parts[0] in ('..', '.'):
            _fail(
                path,
                f'images[{i}].file {im["file"]!r} must name a file inside the JSON file\'s folder')
        size = (im.get('width'), im.get('height'))
        if size != (None, None) and not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            _fail(path, f'images[{i}] width/height must both be positive integers, '
                        f'got {size[0]!r}x{size[1]!r}')
        objs = im.get('objects', {})
        if not isinstance(objs, dict):
            _fail(path, f'images[{i}].objects must be an object {{name: annotation}}')
        for name, ann in objs.items():
            where = f'images[{i}].objects[{name!r}]'
            kp, vis = ann.get('keypoints') if isinstance(ann, dict) else None, \
                ann.get('visible') if isinstance(ann, dict) else None
            if not isinstance(kp, list) or not isinstance(vis, list) or len(kp) != len(vis):
                _fail(path, f'{where} needs "keypoints" and "visible" lists of equal length')
            for k, (pt, v) in enumerate(zip(kp, vis)):
                if not isinstance(v, bool):
                    _fail(path, f'{where}.visible[{k}] must be true/false')
                if v and (not isinstance(pt, list) or len(pt) != 2 or not all(
                        isinstance(c, (int, float)) and math.isfinite(c) for c in pt)):
                    _fail(path, f'{where}.keypoints[{k}] must be [x, y] numbers when visible')
            kinds = ann.get('kinds')
            if kinds is not None and (not isinstance(kinds, list) or len(kinds) != len(kp)):
                _fail(path, f'{where}.kinds must be a list as long as keypoints')
        if size != (None, None):
            try:
                check_keypoints_inside(im, i, *size)
            except ValueError as exc:
                _fail(path, str(exc))
    for j, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            _fail(path, f'pairs[{j}] must be an object')
        for key in ('image_1', 'image_2'):
            idx = pair.get(key)
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(images):
                _fail(path, f'pairs[{j}].{key} must be an image index in '
                            f'[0, {len(images) - 1}], got {idx!r}')
        if pair['image_1'] == pair['image_2']:
            _fail(path, f'pairs[{j}] pairs image {pair["image_1"]} with itself')
        objs = pair.get('objects')
        if objs is not None and not (isinstance(
                objs, list) and all(isinstance(o, str) for o in objs)):
            _fail(path, f'pairs[{j}].objects must be a list of object names')


def load_pairs(path: str) -> PairsFile:
    """Read and validate a pairs file (ValueError with the reason when it is invalid)."""
    if not os.path.isfile(path):
        raise ValueError(f'pairs file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f'invalid pairs file {path}: not JSON ({exc})') from exc
    validate(data, path)
    return PairsFile(os.path.dirname(os.path.abspath(path)), data['images'], data['pairs'],
                     data.get('objects', {}))


def save_pairs(path: str, images: list, pairs: list, objects: dict | None = None) -> None:
    """Validate and write a pairs file (atomically: temp file + rename)."""
    data = {'format': FORMAT, 'version': VERSION, 'objects': objects or {},
            'images': images, 'pairs': pairs}
    validate(data, path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
