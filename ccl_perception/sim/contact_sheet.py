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
Contact sheets: a grid of rendered images with small labels, for docs/benchmark.md.

    python -m ccl_perception.sim.contact_sheet data/v2/train --out docs/img/v2_train.jpg --count 12
    python -m ccl_perception.sim.contact_sheet data/v2/eval/images --out docs/img/v2_eval.jpg \
        --pattern 's00[0-2]_v*.png' --cols 4

Images are scaled to ``--tile`` pixels wide; the sheet is written as JPEG (quality lowered
until it is below ``--max-kb``) or PNG.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys

import cv2
import numpy as np


def make_sheet(paths, cols: int = 4, tile_width: int = 320, labels=None) -> np.ndarray:
    """BGR uint8 grid of the images at ``paths`` (each scaled to ``tile_width``), labelled."""
    if not paths:
        raise ValueError('no images for the contact sheet')
    tiles = []
    for k, path in enumerate(paths):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read image {path}')
        h = round(img.shape[0] * tile_width / img.shape[1])
        img = cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA)
        text = labels[k] if labels is not None else os.path.splitext(os.path.basename(path))[0]
        cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    h = max(t.shape[0] for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * h, cols * tile_width, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * h:r * h + t.shape[0], c * tile_width:(c + 1) * tile_width] = t
    return sheet


def write_sheet(sheet: np.ndarray, out: str, max_kb: int = 300) -> int:
    """Write ``sheet`` (JPEG: quality 90 -> 40 until below ``max_kb``; PNG as is); return bytes."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if out.lower().endswith(('.jpg', '.jpeg')):
        for q in range(90, 35, -5):
            ok, buf = cv2.imencode('.jpg', sheet, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok and len(buf) <= max_kb * 1024:
                break
    else:
        ok, buf = cv2.imencode('.png', sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f'could not encode {out}')
    with open(out, 'wb') as f:
        f.write(buf.tobytes())
    return len(buf)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('folder')
    ap.add_argument('--out', required=True)
    ap.add_argument('--pattern', default='*.png')
    ap.add_argument('--count', type=int, default=12, help='first N matching images (sorted)')
    ap.add_argument('--cols', type=int, default=4)
    ap.add_argument('--tile', type=int, default=320, help='tile width in px')
    ap.add_argument('--max-kb', type=int, default=300)
    args = ap.parse_args(argv)
    if not os.path.isdir(args.folder):
        print(f'error: {args.folder} is not a folder', file=sys.stderr)
        return 2
    names = sorted(
        n for n in os.listdir(
            args.folder) if fnmatch.fnmatch(
            n, args.pattern))[
                :args.count]
    if not names:
        print(f'error: no {args.pattern} in {args.folder}', file=sys.stderr)
        return 2
    size = write_sheet(make_sheet([os.path.join(args.folder, n) for n in names], args.cols,
                                  args.tile),
                       args.out, args.max_kb)
    print(f'wrote {args.out} ({len(names)} images, {size / 1024:.0f} KB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
