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
What every command-line tool shares: one-line errors on stderr and exit code 2.

Every CLI of the package (``train``, ``evaluate``, ``make_target``, ``export_onnx``,
``render_dataset``, ``collect_frames``, ``grasp_benchmark``, ``bringup``, ``ccl``) ends a
known failure -- a bad argument, a missing or corrupt file, an unwritable output -- with
exactly one line ``<prog>: error: <reason>`` on stderr and exit code 2, never a traceback
(test/test_cli.py and test/test_ccl_cli.py run each through its bad inputs). Unknown errors
(bugs) still raise; ``CCL_DEBUG=1`` re-raises the known ones too, with their traceback.

    parser = cli.ArgumentParser(prog='evaluate', ...)        # argparse errors: one line, code 2
    parser.add_argument('--max-pairs', type=cli.arg_type(integer(1)))
    return cli.run('evaluate', lambda: _main(args), CheckpointError)
"""

import argparse
import os
import sys
from typing import Callable

from ccl_perception.validation import DEVICE, Limit

#: Exit code of a known failure (argparse's own code for usage errors).
EXIT_ERROR = 2


def one_line(message) -> str:
    """Return ``message`` as text on one line (its newlines become ``; ``)."""
    return '; '.join(part.strip() for part in str(message).splitlines() if part.strip())


def error_line(prog: str, message) -> str:
    """``'<prog>: error: <message>'`` on one line (newlines in ``message`` become ``; ``)."""
    return f'{prog}: error: {one_line(message)}'


def fail(prog: str, message) -> int:
    """Print :func:`error_line` to stderr and return :data:`EXIT_ERROR`."""
    print(error_line(prog, message), file=sys.stderr, flush=True)
    return EXIT_ERROR


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line usage errors (``... (see --help)``), exit 2."""

    def error(self, message):
        self.exit(EXIT_ERROR, error_line(self.prog, f'{message} (see --help)') + '\n')


def arg_type(limit: Limit, convert: Callable = None):
    """
    Return an argparse ``type=`` that parses a number and checks it against ``limit``.

    The message names the value and the allowed range; argparse prefixes the option name.
    """
    convert = convert or (int if limit.kind == 'int' else float)

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        try:
            return limit.check('value', value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace('value = ', '', 1)) from None
    parse.__name__ = f'{limit.kind} {limit.describe()}'
    return parse


def check_device(device: str) -> str:
    """Return ``device`` if it exists on this machine, else raise ``ValueError`` naming it."""
    DEVICE.check('device', device)
    if device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ValueError(
                f'device = {device!r}: CUDA is not available on this machine (use cpu)')
        index = int(device.split(':')[1]) if ':' in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f'device = {device!r}: this machine has '
                             f'{torch.cuda.device_count()} CUDA device(s)')
    return device


def run(prog: str, fn: Callable[[], int], *errors) -> int:
    """
    ``fn()``, with ``ValueError``, ``OSError`` and ``errors`` turned into :func:`fail`.

    Returns:
        ``fn()``'s exit code, or :data:`EXIT_ERROR` after a known failure.
    """
    try:
        return fn()
    except (ValueError, OSError, *errors) as exc:
        if os.environ.get('CCL_DEBUG'):
            raise
        return fail(prog, exc)
