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
Evaluate a checkpoint (or the pretrained-features baseline) on a pairs file.

    python training/evaluate.py --checkpoint runs/ccl/last.pt --pairs data/eval/pairs.json \
        --json out/eval.json
    python training/evaluate.py --baseline pretrained --pairs data/eval/pairs.json \
        --json out/pretrained.json

Writes the JSON, a markdown table (.md) and a PCK-curve plot (_pck.png) next to it.
"""
import argparse
import sys

from ccl_perception import cli
from ccl_perception.evaluation.evaluate import evaluate_model
from ccl_perception.evaluation.report import markdown_table, write_report
from ccl_perception.validation import integer, MAX_THREADS, real, THREADS
import torch


def main(argv=None):
    parser = cli.ArgumentParser(prog='evaluate', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--checkpoint', help='trained DescriptorNet checkpoint (.pt); default: the '
                     'shipped model (ccl_perception/models/ccl_default.pt)')
    src.add_argument('--baseline', choices=['pretrained'],
                     help="'pretrained': the ImageNet backbone's own stride-8 features, "
                          'no training')
    parser.add_argument('--backbone', default='efficientnet_lite0',
                        help='backbone of --baseline pretrained')
    parser.add_argument('--pairs', default='data/eval/pairs.json')
    parser.add_argument(
        '--json',
        default='out/eval.json',
        help='output JSON (also .md and _pck.png)')
    parser.add_argument('--method', choices=['argmax', 'expectation'], default='argmax',
                        help='best cosine match (paper) or spatial expectation of the softmax '
                             'heatmap')
    parser.add_argument('--tau', type=cli.arg_type(real(0, 1, low_open=True)), default=None,
                        help='softmax temperature for --method expectation (default: the one the '
                             'checkpoint was trained with, else correspondence.DEFAULT_TAU)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-pairs', type=cli.arg_type(integer(1)), default=None)
    parser.add_argument('--threads', type=cli.arg_type(THREADS), default=None,
                        help=f'torch CPU threads, 1 to {MAX_THREADS}')
    parser.add_argument('--input-size', default='auto', metavar='WxH|auto|native',
                        help="resolution the network runs at: 'auto' (default) = the checkpoint's "
                             'working resolution (data.width x data.height x train.eval_scale), '
                             "'native' = each image's own, or WxH; descriptors are resampled "
                             "onto the image's pixels, errors stay in its pixels")
    args = parser.parse_args(argv)
    from ccl_perception.checkpoint import CheckpointError
    return cli.run('evaluate', lambda: _run(args), CheckpointError)


def _run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = cli.check_device(args.device)
    if not args.json.endswith('.json'):
        raise ValueError(
            f'--json {args.json!r} must end in .json (the .md and _pck.png go next to it)')
    from ccl_perception.correspondence import DEFAULT_TAU
    tau = args.tau
    if not args.baseline and not args.checkpoint:
        from ccl_perception.model_zoo import default_model_path
        args.checkpoint = default_model_path()
    if args.checkpoint:
        from ccl_perception.checkpoint import load_checkpoint, model_from_checkpoint, training_tau
        data = load_checkpoint(args.checkpoint)
        model = model_from_checkpoint(data, args.checkpoint, device=device)
        features, title = 'head', args.checkpoint
        tau = tau if tau is not None else training_tau(data)
    else:
        from ccl_perception.model import DescriptorNet
        model = DescriptorNet(backbone=args.backbone, pretrained=True)
        features, title = 'backbone', f'pretrained {args.backbone} features'
    tau = DEFAULT_TAU if tau is None else tau
    input_size = _input_size(args.input_size, data if args.checkpoint else None)
    results = evaluate_model(model, args.pairs, device=device, method=args.method, tau=tau,
                             features=features, max_pairs=args.max_pairs, input_size=input_size)
    results['input_size'] = list(input_size) if input_size else 'native'
    results['source'] = title
    paths = write_report(results, args.json, title)
    print(markdown_table(results, title))
    print('wrote', ', '.join(paths.values()))
    return 0


def _input_size(text: str, checkpoint: dict = None):
    """``--input-size`` -> (W, H) or None (native)."""
    if text == 'native':
        return None
    if text == 'auto':
        config = ((checkpoint or {}).get('extra') or {}).get('config', {})
        data, scale = config.get('data', {}), float(config.get('train', {}).get('eval_scale', 1))
        if 'width' in data and 'height' in data:
            return int(round(data['width'] * scale)), int(round(data['height'] * scale))
        return None
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f"--input-size {text!r}: expected WxH (e.g. 640x480), 'auto' or "
                         "'native'") from None
    if not (8 <= width <= 4096 and 8 <= height <= 4096):
        raise ValueError(f'--input-size {text!r}: width and height must be in [8, 4096]')
    return width, height


if __name__ == '__main__':
    sys.exit(main())
