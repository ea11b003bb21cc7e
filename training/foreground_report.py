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

r"""
Precision and recall of the label-free foreground against the rendered segmentation.

    python training/foreground_report.py data/v2/train [--threshold 40] [--out report.json]

The training recipe samples CCL's keypoints on the pixels that differ from the per-pixel
median of a fixed-camera capture (``ccl_perception.learning.foreground``); the user records
only RGB. On a folder rendered with ground truth (``render_dataset.py train --depth``) this
script compares that estimate, computed exactly as the trainer computes it (images at the
training size, the same threshold and frames), with the true object pixels, with and
without the per-image gain/offset lighting fit, per pixel and per stride-8 cell (a cell
counts as foreground when at least ``cell_fraction`` of its pixels are; truth: the same rule
on the true mask). Objects are the bodies in ``object_ids`` of each frame.
"""
import argparse
import json
import sys

from ccl_perception import cli
from ccl_perception.learning import foreground as fg
from ccl_perception.learning.dataset import list_images, read_rgb
from ccl_perception.learning.instruments import CycleInstruments
from ccl_perception.validation import integer, real
import cv2
import numpy as np


def parse_args(argv=None):
    p = cli.ArgumentParser(prog='foreground_report', description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root', help='rendered training folder with frames.json (--depth)')
    p.add_argument('--width', type=cli.arg_type(integer(8, 4096)), default=320,
                   help='training width in pixels')
    p.add_argument('--height', type=cli.arg_type(integer(8, 4096)), default=240,
                   help='training height in pixels')
    p.add_argument('--threshold', type=cli.arg_type(real(0, 255, low_open=True)),
                   default=fg.DEFAULT_THRESHOLD,
                   help='max-channel grey-level difference that counts as foreground')
    p.add_argument('--cell-fraction', type=cli.arg_type(real(0, 1, low_open=True)),
                   default=fg.DEFAULT_CELL_FRACTION,
                   help="share of a cell's pixels that makes it a foreground cell")
    p.add_argument('--out', help='also write the numbers as JSON here')
    return p.parse_args(argv)


def true_masks(root: str, paths, size) -> np.ndarray:
    """``(M, H, W)`` bool object pixels of every image, at the training size (nearest)."""
    gt = CycleInstruments(root, paths, size)  # the trainer's image -> frames.json lookup
    masks = []
    for i, path in enumerate(paths):
        frame = gt.frame(i)
        if frame is None:
            raise ValueError(f'{path} has no entry in {root}/frames.json')
        ids = np.array(sorted(frame.object_ids.values()))
        mask = np.isin(frame.segmentation, ids).astype(np.uint8)
        masks.append(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(bool))
    return np.stack(masks)


def report(root: str, size=(320, 240), threshold=fg.DEFAULT_THRESHOLD,
           cell_fraction=fg.DEFAULT_CELL_FRACTION) -> dict:
    """Pixel and cell precision/recall with and without the lighting fit."""
    paths = list_images(root)
    if not paths:
        raise ValueError(f'no images in {root}')
    frames = [read_rgb(p, size) for p in paths]
    truth = true_masks(root, paths, size)
    true_cells = np.stack([fg.cell_fractions(t) >= cell_fraction for t in truth])
    # the trainer's estimate itself (lighting fit on), then the plain difference beside it
    estimate = fg.ForegroundCells(frames, threshold, cell_fraction=cell_fraction)
    plain = np.stack([fg.foreground_mask(f, estimate.background, threshold, fit_lighting=False)
                      for f in frames])
    variants = {'lighting_fit': (estimate.masks, estimate.cells),
                'no_lighting_fit': (plain, np.stack([fg.cell_fractions(m) >= cell_fraction
                                                     for m in plain]))}
    out = {'root': str(root), 'frames': len(frames), 'size': list(size),
           'threshold': threshold, 'true_object_share': float(truth.mean())}
    for name, (masks, cells) in variants.items():
        p, r = fg.precision_recall(masks, truth)
        cp, cr = fg.precision_recall(cells, true_cells)
        out[name] = {'pixel_precision': p, 'pixel_recall': r,
                     'cell_precision': cp, 'cell_recall': cr,
                     'foreground_share': float(masks.mean())}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    return cli.run('foreground_report', lambda: _run(args), KeyError)


def _run(args) -> int:
    res = report(args.root, (args.width, args.height), args.threshold, args.cell_fraction)
    print(f"{res['frames']} frames of {res['root']} at {args.width}x{args.height}, threshold "
          f"{args.threshold:g}; true object pixels {100 * res['true_object_share']:.1f} %")
    print('| estimate | pixel precision | pixel recall | cell precision | cell recall |')
    print('|---|---|---|---|---|')
    for name in ('lighting_fit', 'no_lighting_fit'):
        r = res[name]
        print(f"| {name.replace('_', ' ')} | {r['pixel_precision']:.3f} | "
              f"{r['pixel_recall']:.3f} | {r['cell_precision']:.3f} | {r['cell_recall']:.3f} |")
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
