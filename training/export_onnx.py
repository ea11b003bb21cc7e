"""Export a descriptor checkpoint to ONNX and check it against PyTorch.

    python training/export_onnx.py --checkpoint ck.pt --out model.onnx --height 480 --width 640
"""
import argparse
import sys

from ccl_perception.checkpoint import load_model
from ccl_perception.inference import compare_onnx, export_onnx


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True, help='checkpoint from training')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--height', type=int, default=480, help='example input height (px)')
    parser.add_argument('--width', type=int, default=640, help='example input width (px)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='max abs difference allowed between ONNX Runtime and PyTorch')
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    export_onnx(model, args.out, args.height, args.width)
    diff = compare_onnx(model, args.out, args.height, args.width)
    print(f'exported {args.out} ({args.height}x{args.width} example); '
          f'max |onnx - torch| = {diff:.2e}')
    if diff > args.tolerance:
        print(f'ERROR: difference above tolerance {args.tolerance}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
