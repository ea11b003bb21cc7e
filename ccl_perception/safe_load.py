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
``torch.load(..., weights_only=True)`` with a one-line error a user can read.

torch's text for a file that holds Python objects is ~700 characters over six lines (how to
load it unsafely, which globals to allow, a documentation link); every file the package loads
with torch goes through :func:`load_weights_only`, which says the same in one line.
"""
import re


class WeightsFileError(RuntimeError):
    """A torch file cannot be read safely; the message is one line naming the file."""


def load_error_line(exc: BaseException) -> str:
    """Return one short line saying why ``torch.load(..., weights_only=True)`` failed."""
    text = str(exc)
    if 'Weights only load failed' in text:
        found = re.search(r'Unsupported (?:global|operand)[^:]*: (?:GLOBAL )?([\w.]+)', text)
        what = found.group(1) if found else 'a Python object'
        return (f'it holds Python objects ({what}) that safe loading (torch.load '
                'weights_only=True) refuses to run')
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), '')
    return f'the file is corrupt, truncated or not a torch file ({type(exc).__name__}: ' \
           f'{first[:200]})'


def load_weights_only(path: str, map_location='cpu'):
    """
    Return ``torch.load(path, map_location, weights_only=True)``.

    Raises:
        WeightsFileError: ``cannot read <path>: <one line>``.
    """
    import torch
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip/pickle errors differ between corruptions
        raise WeightsFileError(f'cannot read {path}: {load_error_line(exc)}') from None
