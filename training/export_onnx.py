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

"""Export a descriptor checkpoint to ONNX and check it against PyTorch."""
# A one-line docstring: main() shows its first line as the description of --help. Usage:
#   python training/export_onnx.py --checkpoint ck.pt --out model.onnx --height 480 --width 640
import sys

from ccl_perception import cli
from ccl_perception.validation import integer, real


def main(argv=None) -> int:
    parser = cli.ArgumentParser(prog='export_onnx', description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True, help='checkpoint from training')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--height', type=cli.arg_type(integer(8, 8192)),
                        default=480, help='example input height (px)')
    parser.add_argument('--width', type=cli.arg_type(integer(8, 8192)),
                        default=640, help='example input width (px)')
    parser.add_argument('--tolerance', type=cli.arg_type(real(0, None, low_open=True)),
                        default=1e-4,
                        help='max abs difference allowed between ONNX Runtime and PyTorch')
    args = parser.parse_args(argv)
    from ccl_perception.checkpoint import CheckpointError
    return cli.run('export_onnx', lambda: _run(args), CheckpointError)


def _run(args) -> int:
    import os

    from ccl_perception.checkpoint import load_model
    from ccl_perception.inference import compare_onnx, export_onnx
    if not args.out.endswith('.onnx'):
        raise ValueError(f'--out {args.out!r} must end in .onnx')
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise OSError(f'--out {args.out!r}: folder {folder} is not writable')
    model = load_model(args.checkpoint)
    export_onnx(model, args.out, args.height, args.width)
    diff = compare_onnx(model, args.out, args.height, args.width)
    print(f'exported {args.out} ({args.height}x{args.width} example); '
          f'max |onnx - torch| = {diff:.2e}')
    if diff > args.tolerance:
        return cli.fail(
            'export_onnx',
            f'max |onnx - torch| = {diff:.2e} is above --tolerance {args.tolerance:g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
